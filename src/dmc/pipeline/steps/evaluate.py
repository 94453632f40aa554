"""``dmc evaluate``: the SVM evaluations, metrics.json, tables and confusion matrices."""

from __future__ import annotations

import sys
from pathlib import Path

from dmc.names import DATASETS


def add_parsers(sub) -> None:
    c = sub.add_parser("evaluate", help="SVM evaluations, metrics.json, tables, confusion matrices")
    c.add_argument("--evalsets", default="data/evalsets")
    c.add_argument("--features", default="data/features")
    c.add_argument("--out-dir", default="results")
    c.set_defaults(func=run)


def run(args, p):
    import numpy as np
    import pandas as pd

    from dmc.evaluation.protocols import evaluate_dcase, evaluate_esc50
    from dmc.evaluation.reporting import write_results
    from dmc.names import FOLD_DATASETS, METHODS

    grid = p["evaluate"]["C_grid"]
    results = {d: {} for d in DATASETS}
    for dataset in results:
        clips = pd.read_csv(Path(args.evalsets) / dataset / "clips.csv", keep_default_na=False)
        for method in METHODS:
            X = np.load(Path(args.features) / dataset / f"{method}.npy", allow_pickle=False)
            if dataset in FOLD_DATASETS:
                results[dataset][method] = evaluate_esc50(
                    X, clips, grid, dataset=dataset,
                    min_fold_clips_per_class=p["evaluate"]["min_fold_clips_per_class"])
            else:
                table = clips.drop_duplicates("recording")[["recording", "label", "split"]]
                results[dataset][method] = evaluate_dcase(X, clips.recording, table, grid, id_col="recording")
            r = results[dataset][method]
            acc = r.get("acc_pooled", r.get("scene_acc_mean"))
            scored = f" ({r['n_scored']}/{r['n_listed']} clips scored)" if r.get("partial") else ""
            print(f"evaluate: {dataset:6s} {method:13s} accuracy {acc:.3f}{scored}", file=sys.stderr)
    write_results(results, args.out_dir)
