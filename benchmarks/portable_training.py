"""Benchmark: the cost of portable CPU training (train.portable) against the fast mode (not a test).

One run measures both modes side by side on the embedded default's training step: params.yaml's
network (model.preset), batch (train.batch_size), frame size and log-mel length, through
``dmc train``'s own Trainer (its settings, its DataLoader, its step: forward, max-margin loss,
backward, Adam) on a decoded folder of fixed random frames and log-mels.

Each mode must be set before torch's first call, so every measurement is a fresh worker process
(this script with ``--worker portable|fast``); the modes are interleaved, in the order
fast, portable, portable, fast, ... (each pair in turn reversed, so a drift of the machine's load
falls on both), ``--repeats`` workers per mode. A worker runs ``--warmup`` steps, then times
``--steps`` steps one by one; a mode's figure is the median over its workers of their median step
time. The ratio portable / fast is given from those medians and as the median of the
per-pair ratios (worker i of one mode against worker i of the other, run next to each other).
The CPU time of each step (all the process's threads) is given beside the wall-clock time: on a
machine busy with other work the wall-clock time of a step also measures the others' load.

Writes benchmarks/results/portable_training_<host>.json (beside gpu.json: not one of make bench's files): commit, date, CPU model, core count, load
average before and after, every worker's step times and the summary; and its summary as a Markdown
table, the same name with .md beside it.

``python benchmarks/portable_training.py [--repeats 5] [--steps 20] [--host NAME]`` (``make bench-portable``)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run import cpu_model, host_slug   # make bench's CPU model and host name (benchmarks/run.py)

ROOT = Path(__file__).resolve().parents[1]
MODES = ("fast", "portable")


def commit() -> str:
    run = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return run.stdout.strip() + ("-dirty" if dirty else "") if run.returncode == 0 else "unknown"


# -- worker ------------------------------------------------------------------------------------------
def worker(mode: str, steps: int, warmup: int, params_path: Path) -> dict:
    """Time ``steps`` training steps of the Trainer in ``mode`` (in this fresh process)."""
    from dmc.model.portable import pin_environment
    from dmc.pipeline.params import load_params

    p = load_params(params_path)
    p["train"].update(portable=mode == "portable", device="cpu", checkpoint_every=0, num_workers=0)
    pin_environment(p["train"])                       # before torch's first call, as `dmc train`
    import numpy as np
    import pandas as pd
    import torch

    from dmc.model.training import Trainer, epoch_batches, step_generator

    t, d = p["train"], p["decode"]
    frames_t = 1 + int(d["segment_seconds"] * d["sample_rate"]) // int(d["hop_seconds"] * d["sample_rate"])
    n_videos = 4 * t["batch_size"] * (warmup + steps) // 3 + 8       # train split ~60 %: enough batches
    with tempfile.TemporaryDirectory() as tmp:
        decoded = Path(tmp) / "decoded"
        shard = decoded / "shard-00000"
        shard.mkdir(parents=True)
        rng = np.random.default_rng(0)
        n = n_videos * 2
        np.save(shard / "frames.npy", rng.integers(0, 256, (n, d["frame_size"], d["frame_size"], 3), dtype=np.uint8))
        np.save(shard / "logmel.npy", rng.standard_normal((n, frames_t, d["n_mels"])).astype(np.float32))
        seg = pd.DataFrame({"video": [f"v{i // 2:05d}.mp4" for i in range(n)], "segment": [i % 2 for i in range(n)]})
        seg.to_csv(shard / "segments.csv", index=False)
        seg.insert(0, "row", np.arange(n))
        seg.insert(0, "shard", shard.name)
        seg.to_csv(decoded / "index.csv", index=False)
        trainer = Trainer(p, decoded, Path(tmp) / "m.pt", Path(tmp) / "log.csv", Path(tmp) / "ck")
        batches = epoch_batches(len(trainer.train_set), t["batch_size"], p["seed"], 0, 0, 1)[:warmup + steps]
        assert len(batches) == warmup + steps, f"{len(batches)} batches"
        times, cpu = [], []
        it = iter(trainer.loader(trainer.train_set, batches))
        for i in range(warmup + steps):
            t0, c0 = time.perf_counter(), time.process_time()
            frames, mel, vids = next(it)
            loss, _, _ = trainer.batch_loss(frames, mel, vids, step_generator(p["seed"], i))
            trainer.opt.zero_grad(set_to_none=True)
            loss.backward()
            trainer.opt.step()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
        return {"mode": mode, "training": trainer.training, "batch_size": t["batch_size"],
                "preset": p["model"]["preset"], "step_s": times, "median_step_s": statistics.median(times),
                "cpu_step_s": cpu, "median_cpu_step_s": statistics.median(cpu),
                "torch_threads": torch.get_num_threads()}


# -- report ------------------------------------------------------------------------------------------
def markdown(result: dict) -> str:
    """The summary as a Markdown table (the .md beside the JSON, which the docs link)."""
    s = result["summary"]
    rows = [("median step, wall clock (s)", s["median_step_s"]["fast"], s["median_step_s"]["portable"],
             s["ratio_portable_over_fast"]),
            ("median step, CPU time of the process (s)", s["median_cpu_step_s"]["fast"],
             s["median_cpu_step_s"]["portable"], s["cpu_ratio_portable_over_fast"])]
    lines = [f"Training step of the embedded default ({result['preset']}, batch {result['batch_size']}) on "
             f"{result['cpu_model']} ({result['cores']} cores), commit {result['commit'][:12]}, {result['date']}: "
             f"{result['repeats']} workers per mode, interleaved, {result['steps']} timed steps each; load average "
             f"{result['load_average_before'][0]:.1f} before, {result['load_average_after'][0]:.1f} after.", "",
             "| | fast | portable | portable / fast |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {f:.3f} | {p:.3f} | {r:.2f} |" for name, f, p, r in rows]
    lines += ["", f"Median of the per-pair wall-clock ratios: {s['ratio_median_of_pairs']:.2f}. Portable by "
              f"default if the ratio is at most {s['portable_default_if_at_most']:g}: "
              f"{'yes' if s['portable_within_2x'] else 'no'}.", ""]
    return "\n".join(lines)


# -- driver ------------------------------------------------------------------------------------------
def run_worker(mode: str, args) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src")] + [v for v in [env.get("PYTHONPATH")] if v])
    run = subprocess.run([sys.executable, __file__, "--worker", mode, "--steps", str(args.steps), "--warmup",
                          str(args.warmup), "--params", str(args.params)], env=env, capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(f"worker {mode} failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="workers per mode (default 5)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per worker")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--host", help="results folder name (default: from the CPU model and core count)")
    ap.add_argument("--out", type=Path, help="output JSON (default benchmarks/results/portable_training_<host>.json)")
    ap.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    ap.add_argument("--markdown-from", type=Path, help="only rewrite the Markdown summary of this JSON")
    args = ap.parse_args()
    if args.markdown_from:
        args.markdown_from.with_suffix(".md").write_text(markdown(json.loads(args.markdown_from.read_text())))
        return
    if args.worker:
        print(json.dumps(worker(args.worker, args.steps, args.warmup, args.params)))
        return

    out = args.out or ROOT / "benchmarks" / "results" / f"portable_training_{args.host or host_slug()}.json"
    load_before = os.getloadavg()
    runs = []
    for r in range(args.repeats):
        for mode in (MODES if r % 2 == 0 else MODES[::-1]):
            res = run_worker(mode, args)
            res["repeat"] = r
            runs.append(res)
            print(f"repeat {r} {mode:8s} median step {res['median_step_s'] * 1e3:7.1f} ms, CPU "
                  f"{res['median_cpu_step_s'] * 1e3:7.1f} ms ({res['training'].get('threads')} threads)", file=sys.stderr)
    med = {m: statistics.median(x["median_step_s"] for x in runs if x["mode"] == m) for m in MODES}
    pairs = [p["median_step_s"] / f["median_step_s"] for p, f in
             zip((x for x in runs if x["mode"] == "portable"), (x for x in runs if x["mode"] == "fast"))]
    cpu_med = {m: statistics.median(x["median_cpu_step_s"] for x in runs if x["mode"] == m) for m in MODES}
    summary = {"median_step_s": med, "median_cpu_step_s": cpu_med,
               "cpu_ratio_portable_over_fast": cpu_med["portable"] / cpu_med["fast"], "samples_per_s": {m: runs[0]["batch_size"] / v for m, v in med.items()},
               "ratio_portable_over_fast": med["portable"] / med["fast"],
               "ratio_median_of_pairs": statistics.median(pairs), "ratios_per_pair": pairs,
               "portable_default_if_at_most": 2.0}
    summary["portable_within_2x"] = summary["ratio_portable_over_fast"] <= 2.0
    result = {"benchmark": "portable_training", "commit": commit(),
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "cpu_model": cpu_model(), "cores": os.cpu_count(), "cores_usable": len(os.sched_getaffinity(0)),
              "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "preset": runs[0]["preset"], "batch_size": runs[0]["batch_size"], "repeats": args.repeats,
              "steps": args.steps, "warmup": args.warmup, "summary": summary, "runs": runs}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    print(f"portable / fast step time: {summary['ratio_portable_over_fast']:.2f} (median of pairs "
          f"{summary['ratio_median_of_pairs']:.2f}), CPU time {summary['cpu_ratio_portable_over_fast']:.2f}; "
          f"fast {med['fast'] * 1e3:.1f} ms, portable "
          f"{med['portable'] * 1e3:.1f} ms per step of {runs[0]['batch_size']}; {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
