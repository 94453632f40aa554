"""Benchmark: DMC training speed on the current device (not a test).

For the ``tiny`` and ``paper`` presets it measures, side by side in one run:

* step time and samples/s of full training steps (forward, max-margin loss, backward,
  Adam) on batches already in memory;
* the same steps fed by the trainer's own loader (``dmc.model.dataset.batch_loader``: whole uint8
  batches read from memory-mapped ``.npy`` shards, persistent workers, prefetch), once per loader
  worker count (default: ``train.num_workers`` of params.yaml, and 2), and so the share of step
  time spent waiting for data.  Like is compared with like: the in-memory batches are the same
  uint8 tensors (pinned on a GPU, as the loader's are), and both paths scale them on the device;
* peak memory (CUDA: ``torch.cuda.max_memory_allocated``; CPU: peak RSS of the process);
* on CUDA with bf16 autocast, the model FLOPs utilisation (MFU) of the paper preset, from
  a FLOP count of one step (torch.utils.flop_counter) and the GPU's bf16 peak (``--peak-tflops``).

Shards of random frames / log-mels of the right sizes are written to a temp folder, so no
corpus is needed.  ``python benchmarks/train.py [--presets tiny paper] [--steps 10]``
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from dmc.model.dataset import Batches, ShardDataset, batch_loader, unit_range
from dmc.model.loss import max_margin_loss, mismatch_indices
from dmc.model.network import DMC
from dmc.pipeline.params import load_params
from dmc.model.training import pick_device


def make_shard(root: Path, n: int, size: int, frames_t: int, n_mels: int) -> Path:
    rng = np.random.default_rng(0)
    d = root / "shard-00000"
    d.mkdir(parents=True)
    np.save(d / "frames.npy", rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8))
    np.save(d / "logmel.npy", rng.standard_normal((n, frames_t, n_mels), dtype=np.float32))
    seg = pd.DataFrame({"video": [f"v{i % 97:05d}.mp4" for i in range(n)], "segment": np.arange(n) // 97})
    seg.to_csv(d / "segments.csv", index=False)
    seg.insert(0, "row", np.arange(n))
    seg.insert(0, "shard", d.name)
    seg.to_csv(root / "index.csv", index=False)
    return root


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sizes(p: dict, preset: str) -> tuple[int, int]:
    """(frame size, log-mel frames) of a preset: the paper's 256 x 256 and 5 s, else the params'."""
    d = p["decode"]
    size = 256 if preset == "paper" else d["frame_size"]
    seconds = 5.0 if preset == "paper" else d["segment_seconds"]
    return size, 1 + int(seconds * d["sample_rate"]) // int(d["hop_seconds"] * d["sample_rate"])


def bench(preset: str, p: dict, device: torch.device, batch: int, steps: int, workers: int, peak_tflops: float,
          compile_model: bool = False):
    d = p["decode"]
    size, frames_t = sizes(p, preset)
    model = DMC.from_params(dict(p["model"], preset=preset), p["train"]).to(device)
    cuda = device.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
        torch.cuda.reset_peak_memory_stats(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    net = torch.compile(model) if compile_model else model
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else torch.autocast("cpu", enabled=False)

    def step(frames, mel, vids):
        fmt = torch.channels_last if cuda else torch.contiguous_format
        frames = unit_range(frames.to(device, non_blocking=True), memory_format=fmt)
        mel = mel.to(device, non_blocking=True)
        with amp:
            out = net(frames, mel)
        loss, _ = max_margin_loss(out["ca"].float(), out["cv"].float(), mismatch_indices(vids).to(device), 5.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def timed(batches):
        it = iter(batches)
        step(*next(it))                        # warm-up (cudnn autotune, allocator, compilation)
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        for b in it:
            step(*b)
        if cuda:
            torch.cuda.synchronize()
        return (time.perf_counter() - t) / (steps)

    with tempfile.TemporaryDirectory() as tmp:
        root = make_shard(Path(tmp), batch * (steps + 1), size, frames_t, d["n_mels"])
        ds = ShardDataset(root)
        order = [list(range(i * batch, (i + 1) * batch)) for i in range(steps + 1)]
        loader = batch_loader(ds, Batches(order), workers, pin_memory=cuda)
        in_memory = [ds.__getitems__(b) for b in order]
        if cuda:                               # the loader pins its batches: so do these
            in_memory = [tuple(t.pin_memory() for t in b) for b in in_memory]
        t_mem = timed(in_memory)
        t_loader = timed(loader)
        del loader                             # stops its persistent workers
    flops = None
    if cuda:
        from torch.utils.flop_counter import FlopCounterMode

        frames, mel, vids = in_memory[0]
        with FlopCounterMode(display=False) as fc:    # counted on the eager model
            with amp:
                out = model(unit_range(frames.to(device), memory_format=torch.channels_last), mel.to(device))
            max_margin_loss(out["ca"].float(), out["cv"].float(), mismatch_indices(vids).to(device),
                            5.0)[0].backward()
        flops = fc.get_total_flops()
    mfu = flops / t_mem / (peak_tflops * 1e12) if flops and peak_tflops else None
    return {"preset": preset, "compile": compile_model, "loader_workers": workers, "frame": size, "logmel": f"{frames_t}x{d['n_mels']}", "batch": batch,
            "step_s": t_mem, "samples_per_s": batch / t_mem, "loader_step_s": t_loader,
            "data_wait_share": max(0.0, (t_loader - t_mem) / t_loader), "peak_mem_mb": peak_memory_mb(device),
            "mfu": mfu}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["tiny", "paper"])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, nargs="+", default=None, help="per preset (default: tiny 32, paper 4 on CPU / 32 on GPU)")
    ap.add_argument("--workers", type=int, nargs="+", default=None,
                    help="loader worker counts, one row each (default: train.num_workers of params.yaml, and 2)")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="bf16 dense peak of the GPU (H100 SXM: 989)")
    ap.add_argument("--compile", choices=["off", "on", "both"], default="off", help="torch.compile the model")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda (make bench: cpu)")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args()
    p = load_params()
    device = pick_device(args.device)
    workers = list(dict.fromkeys(args.workers or [p["train"]["num_workers"], 2]))
    print(f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, loader workers {workers}")
    rows = []
    for i, preset in enumerate(args.presets):
        batch = args.batch[i] if args.batch else (32 if preset == "tiny" or device.type == "cuda" else 4)
        for compiled in {"off": [False], "on": [True], "both": [False, True]}[args.compile]:
            for w in workers:
                rows.append(bench(preset, p, device, batch, args.steps, w, args.peak_tflops, compiled))
    print(f"\n{'preset':7s} {'comp':>4s} {'wkr':>3s} {'frame':>5s} {'log-mel':>8s} {'batch':>5s} {'step s':>8s} {'samples/s':>10s} "
          f"{'loader step s':>13s} {'data wait':>9s} {'peak MB':>8s} {'MFU':>6s}")
    for r in rows:
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "-"
        print(f"{r['preset']:7s} {'on' if r['compile'] else 'off':>4s} {r['loader_workers']:3d} {r['frame']:5d} {r['logmel']:>8s} {r['batch']:5d} {r['step_s']:8.3f} "
              f"{r['samples_per_s']:10.1f} {r['loader_step_s']:13.3f} {r['data_wait_share']:9.1%} "
              f"{r['peak_mem_mb']:8.0f} {mfu:>6s}")
    if args.json:
        import json

        figures = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                   "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "loader_workers": workers,
                   "steps": args.steps, "rows": [{k: (round(v, 5) if isinstance(v, float) else v) for k, v in r.items()}
                                                 for r in rows]}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
