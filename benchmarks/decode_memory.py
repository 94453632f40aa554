"""Benchmark: memory of `dmc decode --shard` as shards grow (a script, not a test).

Decoding a folder of tens of thousands of videos must not hold the corpus in memory nor
write one file per frame. `dmc decode --shard N` lists the folder once (relative paths
only), keeps the videos whose path hashes to shard N, and streams each decoded clip's
frames, log-mels and segment rows into the shard's temporary folder
(``dmc.io.shards.write_shard``): its memory should not depend on the shard's size.

What is measured
----------------
* A large synthetic folder: ``--distinct`` clips made by ``dmc.synth.generate_videos``
  (params.yaml ``synth`` settings), hard-linked under ``--clips`` names in sub-folders of
  100, so thousands of files cost seconds and no disk.
* Listing: the time and memory of ``list_videos`` + ``videos_of_shard`` over the whole
  folder (what every shard job does once), and the size of the listing.
* ``dmc decode --shard 0`` in a subprocess, with ``decode.num_shards`` chosen so shard 0
  holds about 1x, 4x and 16x ``--per-shard`` clips, with one decode worker (``--workers 1``:
  the memory of one process; a pool adds a worker process of about the same size per worker);
  peak RSS of that process (``os.wait4`` rusage ``ru_maxrss``, for that child only), wall
  time, shard bytes.
* The same shards decoded by an in-memory reference (this file, ``--in-memory``: the
  former ``write_shard``, which kept a shard's arrays in lists and saved them at the end),
  to show what streaming saves.

Run (from the repository root)::

    .venv/bin/python benchmarks/decode_memory.py [--clips 2000] [--per-shard 25] [--distinct 8] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def make_folder(root: Path, clips: int, distinct: int, params: dict) -> float:
    from dmc.synth import generate_videos

    s = params["synth"]
    t = time.perf_counter()
    src = root / "_distinct"
    generate_videos(src, root / "_gt", n_videos=distinct, seconds=s["video_seconds"], width=s["width"],
                    height=s["height"], fps=s["fps"], audio_rate=s["audio_rate"], other_containers=0.0,
                    max_sources=s["max_sources"], max_distractors=s["max_distractors"], seed=0)
    originals = sorted(p for p in src.iterdir() if p.is_file())
    videos = root / "videos"
    for i in range(clips):
        d = videos / f"grp_{i // 100:04d}"
        d.mkdir(parents=True, exist_ok=True)
        o = originals[i % len(originals)]
        os.link(o, d / f"clip_{i:06d}{o.suffix}")
    return time.perf_counter() - t


def child(cmd: list[str]) -> tuple[float, float, str]:
    """(peak RSS in MiB, wall seconds, stderr tail) of one child process."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    return usage.ru_maxrss / 1024, time.perf_counter() - t, err.strip().splitlines()[-1] if err.strip() else ""


def in_memory_shard(params_path: str, videos: str, shard: int, out: str) -> None:
    """The former write_shard: every clip's arrays kept in lists, concatenated and saved at the end."""
    import numpy as np
    import torch

    from dmc.io.decoding import DecodeError, decode_video
    from dmc.io.logmel import LogMel
    from dmc.pipeline.params import load_params
    from dmc.io.shards import videos_of_shard

    d = load_params(params_path)["decode"]
    logmel = LogMel.from_params(d)
    torch.set_num_threads(1)
    frames, mels = [], []
    for rel in videos_of_shard(videos, shard, d["num_shards"]):
        try:
            clip = decode_video(Path(videos) / rel, d["segment_seconds"], d["frame_size"], d["sample_rate"])
        except (DecodeError, OSError):
            continue
        with torch.no_grad():
            mels.append(logmel(torch.from_numpy(clip.waves)).numpy())
        frames.append(clip.frames)
    Path(out).mkdir(parents=True, exist_ok=True)
    np.save(Path(out) / "frames.npy", np.concatenate(frames))
    np.save(Path(out) / "logmel.npy", np.concatenate(mels))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=2000, help="files in the synthetic folder")
    ap.add_argument("--per-shard", type=int, default=25, help="clips per shard at 1x (then 4x, 16x)")
    ap.add_argument("--distinct", type=int, default=8, help="distinct clips behind the hard links")
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--keep", help="keep the work folder here instead of a temporary one")
    ap.add_argument("--factors", type=int, nargs="+", default=[1, 4, 16], help="shard sizes, in --per-shard clips")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    ap.add_argument("--in-memory", nargs=4, metavar=("PARAMS", "VIDEOS", "SHARD", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.in_memory:
        p, v, s, o = args.in_memory
        return in_memory_shard(p, v, int(s), o)

    from dmc.pipeline.params import load_params
    from dmc.io.shards import list_videos, videos_of_shard

    params = load_params(args.params)
    work = Path(args.keep or tempfile.mkdtemp(prefix="dmc-decode-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        made = make_folder(work, args.clips, args.distinct, params)
        videos = work / "videos"
        print(f"folder: {args.clips} videos ({args.distinct} distinct, hard-linked) in {made:.1f} s; "
              f"frame_size {params['decode']['frame_size']}, segment {params['decode']['segment_seconds']} s")

        t = time.perf_counter()
        listing = list_videos(videos)
        t_list = time.perf_counter() - t
        t = time.perf_counter()
        mine = videos_of_shard(videos, 0, 16)
        t_shard = time.perf_counter() - t
        print(f"listing: {len(listing)} paths, {sum(len(v) + 1 for v in listing) / 1024:.0f} KiB of text, "
              f"list_videos {t_list * 1000:.0f} ms, videos_of_shard (16 shards) {t_shard * 1000:.0f} ms "
              f"-> {len(mine)} videos")

        rows = []
        py = sys.executable
        for factor in args.factors:
            num_shards = max(1, round(args.clips / (args.per_shard * factor)))
            p = dict(params)
            p["decode"] = dict(params["decode"], num_shards=num_shards)
            ppath = work / f"params_{factor}.yaml"
            ppath.write_text(yaml.safe_dump(p, sort_keys=False))
            n = len(videos_of_shard(videos, 0, num_shards))
            out = work / f"decoded_{factor}" / "shard-00000"
            rss, wall, _ = child([py, "-m", "dmc.pipeline.cli", "--params", str(ppath), "decode", "--shard", "0",
                                  "--videos", str(videos), "--out", str(out), "--workers", "1"])
            size = sum(f.stat().st_size for f in out.iterdir()) / 2**20
            ref = work / f"inmem_{factor}"
            rss_ref, wall_ref, _ = child([py, __file__, "--in-memory", str(ppath), str(videos), "0", str(ref)])
            rows.append((factor, n, rss, wall, size, rss_ref, wall_ref))

        print()
        print("| shard size | clips | dmc decode peak RSS | wall | shard on disk | in-memory reference peak RSS | wall |")
        print("|---|---|---|---|---|---|---|")
        for factor, n, rss, wall, size, rss_ref, wall_ref in rows:
            print(f"| {factor}x | {n} | {rss:.0f} MiB | {wall:.1f} s | {size:.1f} MiB | {rss_ref:.0f} MiB | "
                  f"{wall_ref:.1f} s |")
        base, base_ref = rows[0][2], rows[0][5]
        print()
        print(f"{rows[-1][0]}x vs {rows[0][0]}x: dmc decode {rows[-1][2] - base:+.0f} MiB for "
              f"{rows[-1][4] - rows[0][4]:+.1f} MiB more shard data; in-memory reference {rows[-1][5] - base_ref:+.0f} MiB")
        if args.json:
            import json

            keys = ("factor", "clips", "peak_rss_mib", "wall_s", "shard_mib", "in_memory_peak_rss_mib", "in_memory_wall_s")
            figures = {"clips_in_folder": args.clips, "distinct": args.distinct, "per_shard": args.per_shard,
                       "listing": {"paths": len(listing), "list_videos_s": round(t_list, 4),
                                   "videos_of_shard_s": round(t_shard, 4)},
                       "shards": [dict(zip(keys, (round(v, 3) if isinstance(v, float) else v for v in r))) for r in rows],
                       "growth_mib": round(rows[-1][2] - base, 1), "in_memory_growth_mib": round(rows[-1][5] - base_ref, 1)}
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
