"""Benchmark: feature extraction + SVM evaluation on an ESC-50-sized set (not a test).

Generates (or reuses, ``--esc50 DIR``) an ESC-50-sized set with the synthetic generator
(50 categories x 40 clips x 5 s = 2000 clips, the real data set's size and layout), then
times, one after another in this process:

  1. audio decoding + log-mel of every clip (``dmc evalset``'s code path),
  2. audio features for the DMC network (``dmc extract``'s code path; the trained model
     if ``--model`` is given, else the same network at random init: identical cost),
  3. the 5-fold linear-SVM protocol with C chosen on the training folds (``dmc evaluate``),

and prints each time, the total, and PASS/FAIL against the 5-minute target.

    .venv/bin/python benchmarks/evaluate.py [--esc50 DIR] [--model models/dmc.pt]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from dmc.evaluation import evaluate_esc50
from dmc.features import evalset_logmel, method_features
from dmc.params import load_params
from dmc.synth import generate_esc50

TARGET_S = 300.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--esc50", help="an ESC-50-layout folder (default: generate 50 x 40 clips)")
    ap.add_argument("--model", help="trained model (default: random init, same cost)")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args()
    p = load_params(args.params)
    print(f"torch threads: {torch.get_num_threads()}, C grid: {p['evaluate']['C_grid']}, "
          f"features: layer {p['features']['layer'] or 'last'}, pooling {p['features']['pooling']}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.esc50) if args.esc50 else Path(tmp) / "esc50"
        if not args.esc50:
            t = time.perf_counter()
            generate_esc50(root, n_classes=50, clips_per_class=40, seed=0)
            print(f"generated 2000 clips in {time.perf_counter() - t:.1f} s (not counted)")
        times = {}
        t = time.perf_counter()
        logmel, clips = evalset_logmel("esc50", root, p["decode"])
        times["decode + log-mel"] = time.perf_counter() - t
        t = time.perf_counter()
        method = "dmc" if args.model else "random_init"
        feats = method_features(method, logmel, p, args.model)
        times[f"features ({method})"] = time.perf_counter() - t
        t = time.perf_counter()
        result = evaluate_esc50(feats, clips, p["evaluate"]["C_grid"])
        times["SVM, 5 folds"] = time.perf_counter() - t
    total = sum(times.values())
    print(f"\nclips: {len(clips)}  log-mel {tuple(logmel.shape)}  features {tuple(feats.shape)}")
    for name, secs in times.items():
        print(f"{name:22s} {secs:8.1f} s  ({len(clips) / secs:7.1f} clips/s)")
    print(f"{'total':22s} {total:8.1f} s  target < {TARGET_S:.0f} s: {'PASS' if total < TARGET_S else 'FAIL'}")
    print(f"accuracy (mean of 5 folds): {result['acc_mean']:.3f}; C per fold: {result['fold_C']}")


if __name__ == "__main__":
    main()
