"""Study: how sharply the multimodal clustering clusters, against z, iterations and the squash.

Short trainings on a decoded corpus; for each (variant, seed) the validation split's numbers
after the last epoch (and at initialisation) are printed as one Markdown table row:
correspondence accuracy and, per modality, the mean largest assignment max_i s_ij (uniform:
1/k), the mean row entropy / log k (uniform: 1) and the effective number of clusters holding
mass (see dmc.model.diagnostics). Nothing here reads the test split.

    python -m dmc.studies.clustering --decoded DIR --epochs 8 --seeds 0 1 \
        --variant z=1 --variant z=10 --variant z=30 --variant z=10,iterations=1 \
        --variant z=10,squash=projected --variant z=10,init=spread

A variant is comma-separated ``key=value``: ``z`` (train.temperature), ``iterations``,
``clusters``, ``squash`` (train.squash: both = squash, project, squash: the reference code;
projected = no squash of the conv vectors; input; none = project only: the supplement's
sec. 3 says DMC has no squash; ``reference`` and ``after`` are kept as names of both and
projected) and ``init`` (train.cluster_init: uniform or spread).
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from dmc.model import clustering
from dmc.pipeline.params import load_params
from dmc.model.training import Trainer

KEYS = {"z": "temperature", "iterations": "iterations", "clusters": "clusters", "squash": "squash",
        "init": "cluster_init"}
ALIASES = {"reference": "both", "after": "projected"}


def parse_variant(text: str) -> dict:
    out = {}
    for part in text.split(","):
        key, value = part.split("=")
        if key not in KEYS:
            raise SystemExit(f"--variant {text}: unknown key {key!r} ({', '.join(KEYS)})")
        if key == "squash":
            value = ALIASES.get(value, value)
            if value not in clustering.SQUASH:
                raise SystemExit(f"--variant {text}: squash must be one of {', '.join(clustering.SQUASH)}")
        elif key == "init" and value not in clustering.INIT:
            raise SystemExit(f"--variant {text}: init must be one of {', '.join(clustering.INIT)}")
        out[KEYS[key]] = float(value) if key == "z" else value if key in ("squash", "init") else int(value)
    return out


def run(params: dict, decoded: Path, variant: dict, seed: int, epochs: int) -> dict:
    p = copy.deepcopy(params)
    p["seed"] = seed
    p["train"].update(variant, epochs=epochs, checkpoint_every=0, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        Trainer(p, decoded, Path(tmp) / "m.pt", Path(tmp) / "log.csv", Path(tmp) / "ck").fit()
        log = pd.read_csv(Path(tmp) / "log.csv")
    first, last = log.iloc[0], log.iloc[-1]
    return {"seed": seed, "k": p["train"]["clusters"], "val_acc_init": first.val_acc, "val_acc": last.val_acc,
            "train_acc": last.train_acc,
            **{f"{m}_{s}": last[f"val_{m}_{s}"] for m in ("audio", "visual")
               for s in ("max_assign", "entropy", "clusters_used")},
            "audio_max_assign_init": first.val_audio_max_assign, "seconds": round(time.perf_counter() - t0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--decoded", required=True, help="decoded corpus (index.csv + shards)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--variant", action="append", required=True, help="e.g. z=10,iterations=3,squash=projected,init=spread")
    args = ap.parse_args()
    torch.set_num_threads(2)
    params = load_params(args.params)
    rows = []
    for text in args.variant:
        variant = parse_variant(text)
        for seed in args.seeds:
            r = {"variant": text, **run(params, Path(args.decoded), variant, seed, args.epochs)}
            rows.append(r)
            print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()),
                  file=sys.stderr, flush=True)
    df = pd.DataFrame(rows)
    cols = ["val_acc_init", "val_acc", "train_acc", "audio_max_assign_init", "audio_max_assign", "audio_entropy",
            "audio_clusters_used", "visual_max_assign", "visual_entropy", "visual_clusters_used"]
    agg = df.groupby("variant", sort=False)[cols].agg(["mean", "std"])
    print(f"| variant (val split, {args.epochs} epochs, seeds {' '.join(map(str, args.seeds))}) | "
          + " | ".join(cols) + " |")
    print("|" + "---|" * (len(cols) + 1))
    for variant, r in agg.iterrows():
        print(f"| `{variant}` | " + " | ".join(f"{r[(c, 'mean')]:.3f} ± {r[(c, 'std')]:.3f}" for c in cols) + " |")


if __name__ == "__main__":
    main()
