"""Elementary functions whose results do not depend on the CPU they run on.

Used where bytes must be the same on every machine: the synthetic corpus (``dmc.synth``)
and the log of the log-mel frontend (``dmc.io.logmel``).
numpy picks a SIMD kernel for ``sin``, ``cos``, ``exp``, ``power``, ``arctan2``, ``hypot``,
the complex product ... at run time (SSE, AVX2, AVX-512) and those kernels round differently, so the same
seed gave different synthetic audio, hence different media files, on two machines. The
functions here use only operations that IEEE 754 rounds exactly whatever the kernel
(``+ - * /``, ``floor``, ``ldexp``, ``frexp``, indexing): a table built once from scalar
``math`` calls, rounded to float32 so that a last-bit difference of the C library does not
reach it, and linear interpolation between its entries.

Accuracy (more than the 16-bit outputs need): ``sin``/``cos`` within 5e-8, ``exp2``/
``exp`` and ``power`` within 1e-7 relative.

Scalars (pan gains, motion of one object) use :mod:`math` directly: a scalar libm call
does not go through numpy's SIMD dispatch.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["sin", "cos", "exp", "exp2", "log2", "power", "hann", "complex_product", "log2_table"]

_N = 1 << 14          # table entries per period / octave


def _table(fn, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(values at k / n for k = 0..n, differences to the next entry), float32-rounded."""
    values = np.array([fn(k / n) for k in range(n + 1)], dtype=np.float32).astype(np.float64)
    return values[:-1], values[1:] - values[:-1]


_SIN, _DSIN = _table(lambda x: math.sin(2 * math.pi * x), _N)
_EXP2, _DEXP2 = _table(lambda x: 2.0 ** x, _N)
_LOG2, _DLOG2 = _table(lambda x: math.log2(0.5 + 0.5 * x), _N)   # log2 on [0.5, 1)


def log2_table() -> tuple[np.ndarray, np.ndarray, int]:
    """(values, differences, entries) of the log2 table on [0.5, 1), for a torch version of
    :func:`log2` (``dmc.io.logmel``)."""
    return _LOG2, _DLOG2, _N


def _lookup(u: np.ndarray, table: np.ndarray, diff: np.ndarray, wrap: bool = False) -> np.ndarray:
    """Linear interpolation of ``table`` at positions ``u`` (float64, consumed): ``u`` in
    [0, len(table)), or any real number when ``wrap`` (the table is one period; its length is
    a power of two, so the integer part is reduced exactly with a bit mask)."""
    i = np.floor(u)
    u -= i                                   # fraction, exact
    idx = i.astype(np.int64)
    if wrap:
        idx &= len(table) - 1
    else:
        np.minimum(idx, len(table) - 1, out=idx)
    out = np.take(table, idx)
    step = np.take(diff, idx)
    step *= u
    out += step
    return out


def _turns(x, offset: float = 0.0) -> np.ndarray:
    """``x`` radians in table positions (a fresh float64 array)."""
    u = np.multiply(np.asarray(x, np.float64), _N / (2 * math.pi))
    if offset:
        u += offset
    return u


def sin(x) -> np.ndarray:
    """sin(x) as float64."""
    return _lookup(_turns(x), _SIN, _DSIN, wrap=True)


def cos(x) -> np.ndarray:
    """cos(x) = sin(x + pi / 2) as float64 (a quarter of the table further)."""
    return _lookup(_turns(x, _N / 4), _SIN, _DSIN, wrap=True)


def exp2(y) -> np.ndarray:
    """2 ** y as float64: 2 ** floor(y) exactly (ldexp) times the table on [0, 1)."""
    y = np.asarray(y, np.float64)
    k = np.floor(y)
    return np.ldexp(_lookup((y - k) * _N, _EXP2, _DEXP2), k.astype(np.int64))


def exp(x) -> np.ndarray:
    """e ** x as float64."""
    return exp2(np.asarray(x, np.float64) * (1 / math.log(2)))


def log2(x) -> np.ndarray:
    """log2(x) for x > 0 as float64: the exponent exactly (frexp) plus the table on [0.5, 1)."""
    m, e = np.frexp(np.asarray(x, np.float64))
    return e + _lookup((m - 0.5) * (2 * _N), _LOG2, _DLOG2)


def power(x, a: float) -> np.ndarray:
    """x ** a for x > 0 as float64."""
    return exp2(a * log2(x))


def hann(m: int) -> np.ndarray:
    """Symmetric Hann window of ``m`` points (as ``np.hanning``)."""
    if m < 2:
        return np.ones(m)
    return 0.5 - 0.5 * cos(np.arange(m) * (2 * math.pi / (m - 1)))


def complex_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a * b for complex arrays from real products and sums (numpy's complex kernels fuse
    multiply-adds on CPUs that have them, which rounds differently)."""
    out = np.empty(np.broadcast_shapes(a.shape, b.shape), np.result_type(a, b))
    out.real = a.real * b.real - a.imag * b.imag
    out.imag = a.real * b.imag + a.imag * b.real
    return out
