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

The bytes of a shard do not depend on the CPU or the thread count: FFmpeg decodes with its
C code (``dmc.io.avcpu``; its float AAC and Opus decoders round differently with each SIMD
kernel) and the log-mel frontend and resampler work in float64.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import json
import shutil
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from dmc.atomic import atomic_dir, atomic_file
from dmc.io.decoding import VIDEO_EXTENSIONS
from dmc.io.pool import decoded_clips
from dmc.errors import DmcError
from dmc.io.logmel import LogMel

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


class _NpyAppender:
    """A ``.npy`` file written block by block (one clip at a time), so memory holds one clip.

    Room for the header is reserved up front; when the file is closed the header is
    rewritten with the final row count (padded with spaces to the reserved size, as the
    .npy format allows), so the result is an ordinary ``.npy`` file that ``np.load`` and
    memory-mapping read as usual.
    """

    def __init__(self, path: Path, dtype, row_shape: tuple[int, ...]):
        self.path, self.dtype, self.row_shape, self.rows = Path(path), np.dtype(dtype), tuple(row_shape), 0
        self.size = len(self._header(10**15))     # room for any realistic row count
        self.fh = open(self.path, "wb")
        self.fh.write(self._header(0, self.size))

    def _header(self, rows: int, size: int | None = None) -> bytes:
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(self.dtype),
                                                   "fortran_order": False, "shape": (rows, *self.row_shape)})
        head = buf.getvalue()
        if size is not None and len(head) != size:
            assert len(head) < size, (len(head), size)
            head = head[:8] + struct.pack("<H", size - 10) + head[10:-1].ljust(size - 11) + b"\n"
        return head

    def append(self, block: np.ndarray) -> None:
        if block.shape[1:] != self.row_shape or block.dtype != self.dtype:
            raise ValueError(f"{self.path.name}: block {block.dtype}{block.shape} does not match "
                             f"{self.dtype}(N, {self.row_shape})")
        self.fh.write(np.ascontiguousarray(block).data)
        self.rows += block.shape[0]

    def close(self) -> None:
        self.fh.seek(0)
        self.fh.write(self._header(self.rows, self.size))
        self.fh.close()


def _remove_stale_temporaries(out_dir: Path) -> None:
    """Temporary folders of an earlier run of this shard killed before its rename (SIGKILL,
    node failure) would otherwise stay in the decoded folder forever: remove them."""
    for stale in out_dir.parent.glob(glob.escape(out_dir.name) + ".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


def write_shard(out_dir: str | Path, root: str | Path, videos: list[str], decode: dict, workers: int = 1) -> dict:
    """Decode ``videos`` (relative to ``root``) into the shard folder ``out_dir``; return a summary.

    ``workers`` processes decode the clips (dmc.io.pool; 1: this process); the clips come back in
    the order of ``videos``, so the shard's bytes do not depend on the count. Frames, log-mels
    and segment rows are streamed to the shard's temporary folder as each clip arrives, so memory
    holds at most ``2 * workers`` clips whatever the shard's size; the folder is renamed to
    ``out_dir`` only when complete.
    """
    out_dir = Path(out_dir)
    logmel = LogMel.from_params(decode)
    seg_samples = int(round(decode["segment_seconds"] * decode["sample_rate"]))
    size = decode["frame_size"]
    seg = decode["segment_seconds"]
    report = []
    torch.set_num_threads(1)   # one core per decoding process
    if out_dir.parent.is_dir():
        _remove_stale_temporaries(out_dir)
    with atomic_dir(out_dir) as tmp:
        frames = _NpyAppender(tmp / "frames.npy", np.uint8, (size, size, 3))
        mels = _NpyAppender(tmp / "logmel.npy", np.float32, (logmel.num_frames(seg_samples), decode["n_mels"]))
        with frames.fh, mels.fh, open(tmp / "segments.csv", "w", newline="") as seg_fh:
            segments = csv.writer(seg_fh, lineterminator="\n")
            segments.writerow(SEGMENT_COLUMNS)
            # closing(): an exception here (Ctrl-C) shuts the pool down at once, not when the traceback goes
            with contextlib.closing(decoded_clips(root, videos, decode, workers)) as clips:
                for rel, clip in tqdm(clips, total=len(videos), desc=out_dir.name, unit="clip", file=sys.stderr,
                                      mininterval=2, disable=None):
                    if isinstance(clip, str):
                        report.append((rel, "bad", clip, 0, 0.0))
                        continue
                    mels.append(clip.logmel)
                    frames.append(clip.frames)
                    segments.writerows((rel, s, s * seg, (s + 1) * seg, round(float(t), 4))
                                       for s, t in enumerate(clip.frame_times))
                    report.append((rel, "partial" if clip.note else "ok", clip.note, len(clip.frame_times),
                                   round(clip.audio_seconds, 3)))
            frames.close()
            mels.close()
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


def shard_arrays(shard_dir: str | Path, mmap: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(frames, logmel) of a shard, memory-mapped by default; never unpickles."""
    shard_dir = Path(shard_dir)
    mode = "r" if mmap else None
    return (np.load(shard_dir / "frames.npy", mmap_mode=mode, allow_pickle=False),
            np.load(shard_dir / "logmel.npy", mmap_mode=mode, allow_pickle=False))


def open_shard(shard_dir: str | Path, mmap: bool = True):
    """(frames, logmel, segments DataFrame) of a shard; arrays memory-mapped by default."""
    return (*shard_arrays(shard_dir, mmap), pd.read_csv(Path(shard_dir) / "segments.csv", keep_default_na=False))


class TooManyBadVideos(DmcError, RuntimeError):
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
