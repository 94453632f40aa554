"""Benchmark: eval-set decoding + features + SVM protocol, against issue 12's time and accuracy targets.

On an ESC-50-sized set (2000 clips of 5 s, 50 categories, 5 folds; made by the synthetic
generator, or ``--esc50 DIR``) and a DCASE-sized one (100 recordings of 30 s, 10 scenes, 60
sub-clips each; or ``--dcase DIR``), in this process, one after another:

  1. decoding + log-mel of every clip: ``dmc evalset``'s path (dmc.io.audio: stdlib WAV reader,
     batched resampling);
  2. features of the untrained network (``random_init``; the trained model costs the same);
  3. the SVM protocol with the C search: dmc.evaluation.svm's batched Newton solver to a tolerance;
  4. the reference for the accuracy target: dmc.evaluation.protocols's own protocol (same inner sets, same
     C search) with every SVM solved to ``REF_TOL`` (1e-8) instead of 1e-4 (not timed against
     the targets).

Prints each phase, the totals, accuracy and C per fold of the protocol and of the reference.
(The previous scikit-learn / libswresample path it was once timed against is gone; the README's
figures of it come from the commits before the package was split into subpackages.) Targets (issue 12, 2 cores): ESC-50-sized total < 30 s,
SVM part < 10 s; DCASE-sized total < 20 s; accuracy within 0.5 points of the converged
reference with the same C in every fold.

    .venv/bin/python benchmarks/evaluate.py [--esc50 DIR] [--dcase DIR] [--skip-reference] [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from dmc.evaluation.protocols import evaluate_dcase, evaluate_esc50
from dmc.config import Params
from dmc.evaluation.features import evalset_logmel, method_features
from dmc.pipeline.params import load_params
from dmc.pipeline.provenance import cpu_model
from dmc.synth import generate_dcase, generate_esc50

TARGETS = {"esc50 total": 30.0, "esc50 SVM": 10.0, "dcase total": 20.0}
# the accuracy target's reference: the same protocol with every SVM solved to this tolerance. (liblinear
# itself, LinearSVC(dual=False) at tol 1e-4, gave the DCASE-sized set's accuracy and C in 111 s, but on
# the ESC-50-sized set it stopped at 10,000 iterations, unconverged, after 7 minutes)
REF_TOL = 1e-8


# ---------------------------------------------------------------- tightly converged (reference)

def converged_reference(dataset, feats, clips, grid):
    """dmc.evaluation.protocols's protocol (the same inner sets and C search) with every SVM solved to
    ``REF_TOL`` instead of dmc.evaluation.protocols.SVM_TOL: float64 throughout, the tolerance at which
    tests/test_evaluation_svm.py checks the solver against liblinear run to convergence."""
    if dataset == "esc50":
        return evaluate_esc50(feats, clips, grid, tol=REF_TOL)
    table = clips.drop_duplicates("recording")[["recording", "label", "split"]]
    return evaluate_dcase(feats, clips.recording, table, grid, "recording", tol=REF_TOL)


# ---------------------------------------------------------------- the run

def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def run(dataset, root, p, skip_reference=False):
    grid = p["evaluate"]["C_grid"]
    rows, summary = [], {}
    (logmel, clips), t_dec = timed(evalset_logmel, dataset, root, p["decode"])
    feats, t_feat = timed(method_features, "random_init", logmel, Params.from_dict(p), None)
    if dataset == "esc50":
        new, t_svm = timed(evaluate_esc50, feats, clips, grid)
    else:
        table = clips.drop_duplicates("recording")[["recording", "label", "split"]]
        new, t_svm = timed(evaluate_dcase, feats, clips.recording, table, grid, "recording")
    rows.append(("new", t_dec, t_feat, t_svm))
    summary["new"] = new
    if not skip_reference:
        summary["ref"], t_ref = timed(converged_reference, dataset, feats, clips, grid)
    print(f"\n== {dataset}: {len(clips)} clips, log-mel {tuple(logmel.shape)}, features {tuple(feats.shape)}, "
          f"C grid {grid}, torch threads {torch.get_num_threads()}, CPU {cpu_model()}")
    print(f"{'path':10s} {'decode+log-mel':>15s} {'features':>9s} {'SVM':>8s} {'total':>8s}")
    for name, a, b, c in rows:
        print(f"{name:10s} {a:14.1f}s {b:8.1f}s {c:7.1f}s {a + b + c:7.1f}s")
    total = rows[0][1] + rows[0][2] + rows[0][3]
    key = "esc50" if dataset == "esc50" else "dcase"
    for what, value in ((f"{key} total", total), (f"{key} SVM", rows[0][3])):
        if what in TARGETS:
            print(f"target {what} < {TARGETS[what]:.0f} s: {'PASS' if value < TARGETS[what] else 'FAIL'} ({value:.1f} s)")
    if dataset == "esc50":
        print(f"new:      accuracy {new['acc_mean']:.4f}, folds {np.round(new['fold_acc'], 4).tolist()}, C {new['fold_C']}"
              f" (edge of the configured grid: {new['fold_C_edge']})")
    else:
        print(f"new:      accuracy {new['acc']:.4f}, mean scene accuracy {new['scene_acc_mean']:.4f}, C {new['C']}")
    figures = {"clips": int(len(clips)), "logmel_shape": list(logmel.shape), "features_shape": list(feats.shape),
               "decode_logmel_s": round(t_dec, 3), "features_s": round(t_feat, 3), "svm_s": round(t_svm, 3),
               "total_s": round(total, 3), "torch_threads": torch.get_num_threads(),
               "targets_s": {k: v for k, v in TARGETS.items() if k.startswith(key)}}
    if dataset == "esc50":
        figures.update(accuracy=round(float(new["acc_mean"]), 4), fold_C=[float(c) for c in new["fold_C"]])
    else:
        figures.update(accuracy=round(float(new["acc"]), 4), scene_accuracy=round(float(new["scene_acc_mean"]), 4))
    if "ref" in summary:
        figures["reference"] = _compare_reference(dataset, new, summary["ref"], t_ref)
    return figures


def _compare_reference(dataset, new, ref, seconds):
    """Issue 12's accuracy target: within 0.5 points of the tightly converged reference, the same C
    per fold."""
    if dataset == "esc50":
        acc_new, acc_ref, C_new, C_ref = new["fold_acc"], ref["fold_acc"], new["fold_C"], ref["fold_C"]
        print(f"converged to {REF_TOL:g} ({seconds:.0f} s): accuracy {ref['acc_mean']:.4f}, folds "
              f"{np.round(acc_ref, 4).tolist()}, C {C_ref}")
    else:
        acc_new, acc_ref, C_new, C_ref = [new["acc"]], [ref["acc"]], [new["C"]], [ref["C"]]
        print(f"converged to {REF_TOL:g} ({seconds:.0f} s): accuracy {ref['acc']:.4f}, C {ref['C']}")
    gap = 100 * float(np.max(np.abs(np.subtract(acc_new, acc_ref))))
    same_C = [bool(np.isclose(a, b)) for a, b in zip(C_new, C_ref)]
    ok = gap <= 0.5 and all(same_C)
    print(f"target accuracy within 0.5 points of the converged reference, same C per fold: {'PASS' if ok else 'FAIL'}"
          f" (largest difference {gap:.2f} points, same C {same_C})")
    return {"seconds": round(seconds, 3), "largest_gap_points": round(gap, 3), "same_C": same_C, "pass": ok}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--esc50", help="an ESC-50-layout folder (default: generate 50 x 40 clips)")
    ap.add_argument("--dcase", help="a DCASE-layout folder (default: generate 10 scenes x 10 recordings)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--only", choices=["esc50", "dcase"], help="one data set only")
    ap.add_argument("--skip-reference", action="store_true",
                    help="without the tightly converged reference")
    ap.add_argument("--quick", action="store_true", help="small generated sets (5 classes x 5 clips, 10 scenes x 2 "
                                                         "recordings of 10 s), no reference: checks the harness only")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args()
    p = load_params(args.params)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in ("esc50", "dcase"):
            if args.only and dataset != args.only:
                continue
            root = getattr(args, dataset)
            if root is None:
                root = Path(tmp) / dataset
                t = time.perf_counter()
                if dataset == "esc50":
                    generate_esc50(root, n_classes=5 if args.quick else 50, clips_per_class=5 if args.quick else 40,
                                   seed=0)
                else:
                    generate_dcase(root, recordings_per_scene=2 if args.quick else 10,
                                   seconds=10.0 if args.quick else 30.0, seed=0)
                print(f"generated {dataset} in {time.perf_counter() - t:.1f} s (not counted)")
            out[dataset] = run(dataset, Path(root), p, args.skip_reference or args.quick)
            out[dataset]["source"] = str(getattr(args, dataset) or "generated")
    if args.json:
        import json

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    pd.set_option("display.width", 200)
    main()
