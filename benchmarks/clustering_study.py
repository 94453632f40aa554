"""Study: how sharply the multimodal clustering clusters, against z, iterations and the squash.

Short trainings on a decoded corpus; for each (variant, seed) the validation split's numbers
after the last epoch (and at initialisation) are printed as one Markdown table row:
correspondence accuracy and, per modality, the mean largest assignment max_i s_ij (uniform:
1/k), the mean row entropy / log k (uniform: 1) and the effective number of clusters holding
mass (see dmc.diagnostics). Nothing here reads the test split.

    python benchmarks/clustering_study.py --decoded DIR --epochs 8 --seeds 0 1 \
        --variant z=1 --variant z=10 --variant z=30 --variant z=10,iterations=1 \
        --variant z=10,squash=after

A variant is comma-separated ``key=value``: ``z`` (train.temperature), ``iterations``,
``clusters`` and ``squash`` = reference (squash, project, squash: the reference code),
after (project, squash: no squash of the conv vectors) or none (project only: the
supplement's sec. 3 says DMC has no squash).
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

from dmc import clustering
from dmc.params import load_params
from dmc.training import Trainer

KEYS = {"z": "temperature", "iterations": "iterations", "clusters": "clusters"}


def _project_after(self, u):
    uhat = self.proj(u).reshape(*u.shape[:-1], self.clusters, self.dim)
    return clustering.squash(uhat)


def _project_none(self, u):
    return self.proj(u).reshape(*u.shape[:-1], self.clusters, self.dim)


SQUASH = {"reference": clustering.MultimodalClustering.project, "after": _project_after, "none": _project_none}


def parse_variant(text: str) -> dict:
    out = {"squash": "reference"}
    for part in text.split(","):
        key, value = part.split("=")
        if key == "squash":
            if value not in SQUASH:
                raise SystemExit(f"--variant {text}: squash must be one of {', '.join(SQUASH)}")
            out["squash"] = value
        elif key in KEYS:
            out[KEYS[key]] = float(value) if key == "z" else int(value)
        else:
            raise SystemExit(f"--variant {text}: unknown key {key!r} (z, iterations, clusters, squash)")
    return out


def run(params: dict, decoded: Path, variant: dict, seed: int, epochs: int) -> dict:
    p = copy.deepcopy(params)
    p["seed"] = seed
    p["train"].update({k: v for k, v in variant.items() if k != "squash"},
                      epochs=epochs, checkpoint_every=0, device="cpu")
    clustering.MultimodalClustering.project = SQUASH[variant["squash"]]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            Trainer(p, decoded, Path(tmp) / "m.pt", Path(tmp) / "log.csv", Path(tmp) / "ck").fit()
            log = pd.read_csv(Path(tmp) / "log.csv")
    finally:
        clustering.MultimodalClustering.project = SQUASH["reference"]
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
    ap.add_argument("--variant", action="append", required=True, help="e.g. z=10,iterations=3,squash=after")
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
