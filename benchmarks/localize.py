"""Benchmark: the localization step (``dmc localize``'s work) on the CPU (a script, not a test).

What is measured
----------------
A synthetic corpus at the params.yaml ``synth`` settings and seed (by default as many clips as
the embedded default; ``--clips``) is generated and decoded into ``decode.num_shards`` shards
(not timed). An untrained network of the configured preset is saved as the model (the step
costs the same with trained weights: the same layers run on the same clips). Then
:func:`dmc.localization.localize.run_benchmark` (what ``dmc localize`` runs: heat maps of DMC
and the random-init baseline on the test split, the scores against the ground truth, the
multi-source counts, the overlays, the files written) runs ``--repeats`` times; the best wall
time counts. Torch runs with its default thread count (as the step does).

    .venv/bin/python benchmarks/localize.py [--clips N] [--repeats 2] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from dmc.config import Params
from dmc.cores import available_cores
from dmc.io.shards import build_index, videos_of_shard, write_shard
from dmc.localization.localize import random_init_model, run_benchmark
from dmc.pipeline.params import load_params
from dmc.synth import generate_videos, scaled_counts

REPO = Path(__file__).resolve().parents[1]


def make_decoded(work: Path, p: dict, clips: int) -> tuple[Path, Path]:
    s = p["synth"]
    generate_videos(work / "videos", work / "ground_truth", n_videos=clips, seconds=s["video_seconds"],
                    width=s["width"], height=s["height"], fps=s["fps"], audio_rate=s["audio_rate"],
                    other_containers=s["other_containers"], max_sources=s["max_sources"],
                    max_distractors=s["max_distractors"], seed=s["seed"], control=s["control"],
                    variants=s["variants"], portable_audio=s["portable_audio"])
    n = p["decode"]["num_shards"]
    dirs = [work / "decoded" / f"shard-{i:05d}" for i in range(n)]
    for i, d in enumerate(dirs):
        write_shard(d, work / "videos", videos_of_shard(work / "videos", i, n), p["decode"], available_cores())
    build_index(dirs, work / "decoded", p["decode"])
    return work / "decoded", work / "ground_truth"


def save_untrained(path: Path, p: dict) -> None:
    """An untrained network in ``dmc train``'s checkpoint format (dmc.model.training.load_model reads it)."""
    model = random_init_model(p)
    train = {k: p["train"][k] for k in ("clusters", "dim", "iterations", "temperature")}
    torch.save({"model": model.state_dict(), "config": {"model": p["model"], "train": train, "decode": p["decode"]},
                "step": 0}, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, help="synthetic clips (default: the embedded default's count)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--params", type=Path, default=REPO / "params.yaml")
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    p = load_params(args.params)
    clips = args.clips or scaled_counts(p["synth"])["videos"]
    work = Path(tempfile.mkdtemp(prefix="dmc-bench-localize-"))
    try:
        t, threads = time.perf_counter(), torch.get_num_threads()
        decoded, gt = make_decoded(work, p, clips)
        made = time.perf_counter() - t
        torch.set_num_threads(threads)      # write_shard pins this process to one torch thread
        save_untrained(work / "dmc.pt", p)
        cfg = Params.from_dict(p)
        times, flat = [], {}
        for r in range(args.repeats):
            t = time.perf_counter()
            flat = run_benchmark(cfg, decoded, work / "dmc.pt", gt, work / f"out{r}", work / f"metrics{r}.json",
                                 "cpu", log=lambda m: print(m, file=sys.stderr))
            times.append(time.perf_counter() - t)
            print(f"  repeat {r + 1}/{args.repeats}: {times[-1]:.2f} s", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    pairs = flat.get("correspondence.n_pairs")
    print(f"localize: {clips} clips (corpus made and decoded in {made:.1f} s, not timed), {pairs} held-out pairs; "
          f"best of {args.repeats}: {min(times):.2f} s on the CPU, torch threads {torch.get_num_threads()}")
    if args.json:
        figures = {"clips": clips, "held_out_pairs": pairs, "repeats": args.repeats, "seconds": round(min(times), 3),
                   "all_seconds": [round(x, 3) for x in times], "torch_threads": torch.get_num_threads(),
                   "model": "untrained (random init) network of the configured preset",
                   "preset": p["model"]["preset"]}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
