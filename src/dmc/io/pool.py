"""Decode clips in worker processes that stay alive, results handed back in the clips' order.

``dmc decode`` spends its time in FFmpeg and the log-mel frontend, one clip at a time, and one
clip does not split well over cores (FFmpeg's frame threads stall on inter-coded video; the
frontend's work per clip is small). So the unit of parallel work is the whole clip:

* ``workers`` processes are started once per shard (``fork`` where the platform has it: the
  parent's imports of torch, PyAV, pandas are inherited, not repeated; ``spawn`` elsewhere, each
  worker importing once) and kept until the shard is done;
* each worker pulls the next clip from the executor's queue, decodes it with **one** FFmpeg
  thread per codec context (set explicitly, :func:`dmc.io.decoding.decode_video`) and one torch
  thread, computes its log-mel and sends back the frames and log-mel;
* results are yielded in the order of ``videos``, so the shard the parent writes has the same
  bytes as with one worker; at most ``2 * workers`` clips are in flight (memory stays bounded);
* a broken video comes back as its reason (the run goes on); a worker that dies (a crash inside
  FFmpeg) fails the shard naming the clips it was decoding; Ctrl-C reaches the parent only
  (workers ignore SIGINT), and workers die with their parent (Linux ``PR_SET_PDEATHSIG``), so an
  interrupted run leaves neither a shard (``dmc.atomic``) nor orphans behind.

``workers == 1`` decodes in the calling process, with no pool.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from dmc.errors import DmcError
from dmc.io.avcpu import ffmpeg_portable
from dmc.io.decoding import DecodeError, decode_video
from dmc.io.logmel import LogMel


class WorkerDied(DmcError):
    """A decode worker process ended abnormally (a crash inside a native library)."""


@dataclass
class Clip:
    frames: np.ndarray       # (S, size, size, 3) uint8
    logmel: np.ndarray       # (S, T, n_mels) float32
    frame_times: np.ndarray  # (S,) seconds
    audio_seconds: float
    note: str
    threads: int             # FFmpeg threads the video decoder ran with (read back from its context)


# per-process state: the decode params and the log-mel frontend, built once per worker
_STATE: dict = {}


def _setup(root: str, decode: dict) -> None:
    torch.set_num_threads(1)                 # one core per worker: the pool is the parallelism
    _STATE.update(root=Path(root), decode=decode, logmel=LogMel.from_params(decode))


def _worker_init(root: str, decode: dict) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the parent's to handle
    _die_with_parent()
    _setup(root, decode)


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when its parent dies (a killed `dmc decode` leaves no orphans).
    The signal follows the thread that started the worker: the pool is started from the thread
    that iterates :func:`decoded_clips` (the main thread in ``dmc decode``)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))   # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


def decode_clip(rel: str) -> Clip | str:
    """One clip (relative to the root given to :func:`_setup`) -> :class:`Clip`, or the reason it is bad."""
    d = _STATE["decode"]
    try:
        with ffmpeg_portable():   # float audio decoders: same samples on every CPU
            v = decode_video(_STATE["root"] / rel, d["segment_seconds"], d["frame_size"], d["sample_rate"],
                             threads=1)
    except (DecodeError, OSError) as exc:
        return str(exc)
    with torch.no_grad():
        mel = _STATE["logmel"](torch.from_numpy(v.waves)).numpy()
    return Clip(v.frames, mel, v.frame_times, v.audio_seconds, v.note, v.threads)


def decoded_clips(root: str | Path, videos: list[str], decode: dict, workers: int = 1) -> Iterator[tuple[str, Clip | str]]:
    """(video, Clip or reason it is bad) for each of ``videos``, in their order, from ``workers`` processes."""
    if workers <= 1 or len(videos) <= 1:
        _setup(str(root), decode)
        for rel in videos:
            yield rel, decode_clip(rel)
        return
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    pool = ProcessPoolExecutor(min(workers, len(videos)), mp_context=ctx, initializer=_worker_init,
                               initargs=(str(root), decode))
    todo = iter(videos)
    pending: deque = deque()
    try:
        for rel in todo:
            pending.append((rel, pool.submit(decode_clip, rel)))
            if len(pending) >= 2 * workers:
                break
        while pending:
            rel, future = pending.popleft()
            try:
                result = future.result()
            except BrokenProcessPool:
                raise WorkerDied(f"a decode worker died while decoding {', '.join([rel, *(r for r, _ in pending)])} "
                                 f"(under {root}); run with compute.decode_workers: 1 to find the clip") from None
            nxt = next(todo, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(decode_clip, nxt)))
            yield rel, result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
