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


def run(args, cfg):
    import numpy as np
    import pandas as pd

    from dmc.evaluation.protocols import dcase_protocol, esc50_protocol
    from dmc.evaluation.reporting import write_evaluation
    from dmc.names import FOLD_DATASETS, METHODS

    results = []
    for dataset in DATASETS:        # in turn: a data set the protocol cannot use stops before the next is read
        clips = pd.read_csv(Path(args.evalsets) / dataset / "clips.csv", keep_default_na=False)
        features = {m: np.load(Path(args.features) / dataset / f"{m}.npy", allow_pickle=False) for m in METHODS}
        protocol = esc50_protocol if dataset in FOLD_DATASETS else dcase_protocol
        result = protocol(features, clips, cfg.evaluate, dataset=dataset)
        for method, r in result.methods.items():
            scored = f" ({r['n_scored']}/{r['n_listed']} clips scored)" if r.get("partial") else ""
            print(f"evaluate: {dataset:6s} {method:13s} accuracy {result.accuracy(method):.3f}{scored}",
                  file=sys.stderr)
        results.append(result)
    write_evaluation(results, args.out_dir)
