"""Run FFmpeg's portable C code instead of its CPU-specific SIMD kernels, where bytes matter.

FFmpeg chooses assembly kernels at run time from the CPU's features (SSE2 ... AVX-512).
Integer codecs (H.264, VP9, PCM) and the fixed-point decoders give the same bytes with any
kernel, but FFmpeg's floating-point audio codecs do not: the AAC encoder's MDCT and
quantiser, and the float AAC / Opus decoders, round differently with AVX2 than with SSE or
AVX-512. ``av_force_cpu_flags(0)`` (what ``ffmpeg -cpuflags 0`` does) makes every codec
opened afterwards use the C code, which gives the same result on every x86-64 CPU.

PyAV does not wrap that function, so it is called through ctypes on the libavutil that
PyAV itself loaded (found in /proc/self/maps, or next to the PyAV package).
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import threading
from functools import lru_cache
from typing import Iterator

import av

__all__ = ["ffmpeg_portable", "set_cpu_flags", "get_cpu_flags"]

_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _libavutil() -> ctypes.CDLL:
    av.library_versions          # noqa: B018  (libavutil is loaded with the av package)
    candidates = []
    try:
        with open("/proc/self/maps") as fh:
            candidates += [line.split()[-1] for line in fh if "libavutil" in line and "/" in line]
    except OSError:
        pass
    here = os.path.dirname(av.__file__)
    for pattern in ("../av.libs/libavutil*", ".dylibs/libavutil*", "../av.libs/avutil*.dll"):
        candidates += sorted(glob.glob(os.path.join(here, pattern)))
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
            lib.av_force_cpu_flags.argtypes = [ctypes.c_int]
            lib.av_get_cpu_flags.restype = ctypes.c_int
            return lib
        except (OSError, AttributeError):
            continue
    raise RuntimeError("cannot find the libavutil loaded by PyAV (needed to pin FFmpeg's CPU kernels)")


def set_cpu_flags(flags: int) -> None:
    """``av_force_cpu_flags(flags)``: 0 = C code only, -1 = detect the CPU again (the default)."""
    _libavutil().av_force_cpu_flags(int(flags))


def get_cpu_flags() -> int:
    return int(_libavutil().av_get_cpu_flags())


@contextlib.contextmanager
def ffmpeg_portable() -> Iterator[None]:
    """Codecs and scalers opened inside the block use FFmpeg's C code; restored afterwards.

    The setting is process-wide: blocks in several threads are serialised.
    """
    with _LOCK:
        set_cpu_flags(0)
        try:
            yield
        finally:
            set_cpu_flags(-1)
