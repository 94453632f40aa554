"""Sharded storage of decoded clips, and the index over all shards.

A shard is a folder ``shard-NNNNN/`` holding many clips:

* ``frames.npy``   (N, size, size, 3) uint8, one RGB frame per audio segment
* ``logmel.npy``   (N, T, n_mels) float32, the log-mel patch of each segment
* ``segments.csv`` one row per segment: video, segment, start_s, end_s, frame_time_s
* ``report.csv``   one row per video of the shard: status ok / partial / bad, reason

The arrays are plain ``.npy`` files, so training memory-maps them (``open_shard``)
instead of reloading a file per item.  A shard is written under a temporary name and
renamed when complete (``dmc.atomic.atomic_dir``).  Videos are assigned to shards by a
stable hash of their path relative to the corpus root, so adding a video changes one
shard only and the assignment needs no state.
"""

from __future__ import annotations

import json
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from .atomic import atomic_dir, atomic_file
from .decoding import VIDEO_EXTENSIONS, DecodeError, decode_video
from .logmel import LogMel

SEGMENT_COLUMNS = ["video", "segment", "start_s", "end_s", "frame_time_s"]
REPORT_COLUMNS = ["video", "status", "reason", "segments", "audio_seconds"]


def shard_name(shard: int) -> str:
    return f"shard-{shard:05d}"


def list_videos(root: str | Path) -> list[str]:
    """Video files under ``root`` (recursive, by extension), as sorted relative POSIX paths."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: video folder not found (params.yaml data.videos)")
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())


def shard_of(relpath: str, num_shards: int) -> int:
    return zlib.crc32(relpath.encode("utf-8")) % num_shards


def videos_of_shard(root: str | Path, shard: int, num_shards: int) -> list[str]:
    return [v for v in list_videos(root) if shard_of(v, num_shards) == shard]


def write_shard(out_dir: str | Path, root: str | Path, videos: list[str], decode: dict) -> dict:
    """Decode ``videos`` (relative to ``root``) into the shard folder ``out_dir``; return a summary."""
    logmel = LogMel.from_params(decode)
    seg_samples = int(round(decode["segment_seconds"] * decode["sample_rate"]))
    size = decode["frame_size"]
    frames, mels, segments, report = [], [], [], []
    torch.set_num_threads(1)   # Snakemake runs one job per core
    for rel in tqdm(videos, desc=Path(out_dir).name, unit="clip", file=sys.stderr, mininterval=2, disable=None):
        try:
            clip = decode_video(Path(root) / rel, decode["segment_seconds"], size, decode["sample_rate"])
        except (DecodeError, OSError) as exc:
            report.append((rel, "bad", str(exc), 0, 0.0))
            continue
        with torch.no_grad():
            mels.append(logmel(torch.from_numpy(clip.waves)).numpy())
        frames.append(clip.frames)
        seg = decode["segment_seconds"]
        for s, t in enumerate(clip.frame_times):
            segments.append((rel, s, s * seg, (s + 1) * seg, round(float(t), 4)))
        report.append((rel, "partial" if clip.note else "ok", clip.note, len(clip.frame_times),
                       round(clip.audio_seconds, 3)))
    n_frames = logmel.num_frames(seg_samples)
    with atomic_dir(out_dir) as tmp:
        np.save(tmp / "frames.npy", np.concatenate(frames) if frames else np.zeros((0, size, size, 3), np.uint8))
        np.save(tmp / "logmel.npy", np.concatenate(mels) if mels else
                np.zeros((0, n_frames, decode["n_mels"]), np.float32))
        pd.DataFrame(segments, columns=SEGMENT_COLUMNS).to_csv(tmp / "segments.csv", index=False)
        pd.DataFrame(report, columns=REPORT_COLUMNS).to_csv(tmp / "report.csv", index=False)
    return summarize(pd.DataFrame(report, columns=REPORT_COLUMNS), decode["segment_seconds"])


def summarize(report: pd.DataFrame, segment_seconds: float) -> dict:
    return {"videos": int(len(report)),
            "ok": int((report.status == "ok").sum()),
            "partial": int((report.status == "partial").sum()),
            "bad": int((report.status == "bad").sum()),
            "segments": int(report.segments.sum()),
            "frames": int(report.segments.sum()),
            "audio_seconds_decoded": round(float(report.audio_seconds.sum()), 2),
            "audio_seconds_in_segments": round(float(report.segments.sum() * segment_seconds), 2)}


def open_shard(shard_dir: str | Path, mmap: bool = True):
    """(frames, logmel, segments DataFrame) of a shard; arrays memory-mapped by default."""
    shard_dir = Path(shard_dir)
    mode = "r" if mmap else None
    return (np.load(shard_dir / "frames.npy", mmap_mode=mode),
            np.load(shard_dir / "logmel.npy", mmap_mode=mode),
            pd.read_csv(shard_dir / "segments.csv", keep_default_na=False))


class TooManyBadVideos(RuntimeError):
    pass


def build_index(shard_dirs: list[str | Path], out_dir: str | Path, decode: dict) -> dict:
    """Merge the shards' tables into ``index.csv``, ``report.csv`` and ``summary.json`` in ``out_dir``.

    index.csv has one row per segment with its shard and row inside the shard. Fails
    (TooManyBadVideos, listing them) when the share of bad videos exceeds
    ``decode.max_bad_fraction``.
    """
    out_dir = Path(out_dir)
    index, reports = [], []
    for d in sorted(map(Path, shard_dirs)):
        seg = pd.read_csv(d / "segments.csv", keep_default_na=False)
        seg.insert(0, "row", np.arange(len(seg)))
        seg.insert(0, "shard", d.name)
        index.append(seg)
        reports.append(pd.read_csv(d / "report.csv", keep_default_na=False))
    index = pd.concat(index, ignore_index=True) if index else pd.DataFrame(columns=["shard", "row"] + SEGMENT_COLUMNS)
    report = pd.concat(reports, ignore_index=True).sort_values("video") if reports else \
        pd.DataFrame(columns=REPORT_COLUMNS)
    summary = summarize(report, decode["segment_seconds"])
    bad = report[report.status == "bad"]
    frac = len(bad) / max(len(report), 1)
    if len(report) == 0 or frac > decode["max_bad_fraction"]:
        listing = "\n".join(f"  {r.video}: {r.reason}" for r in bad.head(20).itertuples())
        raise TooManyBadVideos(
            f"{len(bad)} of {len(report)} videos are unusable ({frac:.0%} > decode.max_bad_fraction="
            f"{decode['max_bad_fraction']}); per-shard reports: {out_dir}/shard-*/report.csv\n{listing}")
    with atomic_file(out_dir / "report.csv") as tmp:
        report.to_csv(tmp, index=False)
    with atomic_file(out_dir / "index.csv") as tmp:
        index.to_csv(tmp, index=False)
    with atomic_file(out_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    return summary
