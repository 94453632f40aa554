"""Sound families of the synthetic corpus: one procedural sound per object class.

Every class has a distinct spectral and temporal signature so that an audio network can
learn to tell them apart; each instance draws its own pitch, rate and texture from ``rng``
so that no two instances are identical. Everything is vectorised numpy (no Python loop
over samples), float32, mono, in [-1, 1], and fully determined by ``rng``: sines, exponentials
and powers come from :mod:`.portable`, so the samples do not depend on the CPU's SIMD kernels.

``pitch`` and ``rate`` scale a class's frequencies and temporal rates; the evaluation sets
use them to build variants of a family (e.g. ``flute_low``). Per-instance jitter stays
within about +-20 % so variants with factors 0.55 / 1.8 do not overlap.
"""

from __future__ import annotations

import numpy as np

from dmc.io import portable as P

CLASS_NAMES: tuple[str, ...] = ("flute", "engine", "bird", "clock", "siren", "hum", "drum", "warble")

__all__ = ["CLASS_NAMES", "render_sound", "colored_noise", "normalize"]


def _jit(rng: np.random.Generator, lo: float = 0.83, hi: float = 1.2) -> float:
    """A multiplicative per-instance jitter factor."""
    return float(rng.uniform(lo, hi))


def _fast_len(n: int) -> int:
    """Smallest 5-smooth integer (2^a 3^b 5^c) >= n: a fast FFT length."""
    best, p5 = 1 << max(0, int(n - 1).bit_length()), 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35 << max(0, int(-(-n // p35) - 1).bit_length())   # times the power of 2 reaching n
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def colored_noise(n: int, rng: np.random.Generator, exponent: float = 0.0, channels: int | None = None,
                  sample_rate: float = 44100.0, lo: float = 0.0, hi: float | None = None) -> np.ndarray:
    """Noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown), unit RMS.

    ``lo``/``hi`` (Hz) optionally band-limit it. Returns shape (n,) or (channels, n), float32.
    """
    n_out, n = n, _fast_len(n)                     # synthesise at an FFT-friendly length
    shape = (n // 2 + 1,) if channels is None else (channels, n // 2 + 1)
    # random-phase spectrum: flat magnitude, uniform phases (cheaper than FFT of white noise)
    phase = np.float32(2 * np.pi) * rng.random(shape, dtype=np.float32)
    f = np.fft.rfftfreq(n, 1.0 / sample_rate).astype(np.float32)
    gain = np.ones_like(f)
    gain[1:] = P.power(f[1:] / f[1], -exponent / 2.0)
    gain[0] = 0.0
    if lo > 0:
        q = np.square(lo / np.maximum(f, 1e-3))
        gain *= 1.0 / (1.0 + q * q)                              # smooth 4th-order high-pass
    if hi is not None:
        q = np.square(f / hi)
        gain *= 1.0 / (1.0 + q * q)                              # smooth 4th-order low-pass
    spec = np.empty(shape, np.complex64)          # cos + i sin, scaled (real products: exact)
    spec.real, spec.imag = P.cos(phase) * gain, P.sin(phase) * gain
    out = np.fft.irfft(spec, n=n, axis=-1)[..., :n_out].astype(np.float32)
    rms = np.sqrt(np.mean(out ** 2, axis=-1, keepdims=True)) + 1e-12
    return (out / rms).astype(np.float32)


def rms_of(x: np.ndarray) -> float:
    """Root mean square of ``x``, summed in float64."""
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def normalize(x: np.ndarray, rms: float, peak: float = 0.99) -> np.ndarray:
    """Scale to the target RMS, then down further if the peak would exceed ``peak``."""
    cur = rms_of(x) + 1e-12
    x = x * (rms / cur)
    top = float(np.max(np.abs(x))) + 1e-12
    if top > peak:
        x = x * (peak / top)
    return x.astype(np.float32)


def _onsets(n: int, sr: float, rate: float, rng: np.random.Generator, jitter: float = 0.0) -> np.ndarray:
    """Sample indices of a regular event train at ``rate`` Hz (random phase, optional jitter)."""
    period = sr / rate
    times = np.arange(rng.uniform(0, period), n, period)
    if jitter:
        times = times + rng.uniform(-jitter, jitter, len(times)) * period
    return np.clip(times.astype(np.int64), 0, n - 1)


def _place(n: int, onsets: np.ndarray, amps, kernel: np.ndarray) -> np.ndarray:
    """Sum of copies of a short ``kernel`` starting at ``onsets`` scaled by ``amps`` (cycled)."""
    out = np.zeros(n, np.float32)
    amps = np.resize(np.asarray(amps, np.float32), len(onsets))
    kernel = kernel.astype(np.float32)
    for i, a in zip(onsets, amps):
        k = kernel[: n - i]
        out[i:i + len(k)] += a * k
    return out


def _phase(freq, sr: float, t: np.ndarray) -> np.ndarray:
    """Wrapped float32 phase of a constant (scalar) or time-varying (array) frequency in Hz."""
    ph = 2 * np.pi * (freq * t if np.isscalar(freq) else np.cumsum(freq) / sr)
    return np.mod(ph, 2 * np.pi).astype(np.float32)


def _harmonics(phase: np.ndarray, amps) -> np.ndarray:
    """Sum of a_k * sin(k * phase) for k = 1, 2, ... (float32)."""
    out = np.zeros(phase.shape, np.float32)
    for k, a in enumerate(amps):
        if a:
            out += np.float32(a) * P.sin(np.float32(k + 1) * phase).astype(np.float32)
    return out


def _flute(n, sr, t, rng, pitch, rate):
    """Harmonic tone with vibrato playing short pentatonic notes."""
    f0 = 600.0 * pitch * _jit(rng)
    note_len = 0.4 / rate * _jit(rng)
    n_notes = int(np.ceil(t[-1] / note_len)) + 1
    ratios = np.array([1.0, 9 / 8, 5 / 4, 3 / 2, 5 / 3])[rng.integers(0, 5, n_notes)]
    note = np.minimum((t / note_len).astype(np.int64), n_notes - 1)
    freq = f0 * ratios[note] * (1 + 0.006 * P.sin(2 * np.pi * 5.0 * rate * t))
    pos = (t / note_len - note).astype(np.float32)                # 0..1 within a note
    env = np.minimum(1.0, pos * 8) * np.minimum(1.0, (1 - pos) * 6)
    breath = 1.0 + 0.04 * rng.standard_normal(n, dtype=np.float32)
    return _harmonics(_phase(freq, sr, t), [1.0, 0.45, 0.2, 0.08]) * env * breath


def _engine(n, sr, t, rng, pitch, rate):
    """Band-limited rumble amplitude-modulated at the firing rate."""
    centre = 700.0 * pitch * _jit(rng)
    noise = colored_noise(n, rng, 1.0, sample_rate=sr, lo=centre / 3, hi=centre * 1.5)
    fire = 30.0 * rate * _jit(rng)
    am = 1 + 0.6 * P.sin(_phase(fire, sr, t) + np.float32(rng.uniform(0, 6.3))).astype(np.float32)
    return noise * am + 0.4 * _harmonics(_phase(2 * fire * pitch, sr, t), [1.0, 0.5, 0.3])


def _bird(n, sr, t, rng, pitch, rate):
    """Repeated short upward chirps at a few kHz."""
    f_lo = 2500.0 * pitch * _jit(rng)
    dur = 0.08 * _jit(rng)
    kt = np.arange(int(dur * sr)) / sr
    chirp = P.sin(2 * np.pi * f_lo * (kt + 0.3 * kt ** 2 / dur)) * P.hann(len(kt))  # rising sweep
    on = _onsets(n, sr, 5.0 * rate * _jit(rng), rng, jitter=0.15)
    return _place(n, on, rng.uniform(0.5, 1.0, 8), chirp)


def _clock(n, sr, t, rng, pitch, rate):
    """Regular tick-tock click train: two alternating short resonant clicks."""
    res = 3000.0 * pitch * _jit(rng)
    kt = np.arange(int(0.02 * sr)) / sr
    decay = P.exp(-kt / 0.004)
    r = 2.0 * rate * _jit(rng)
    on = _onsets(n, sr, r / 2, rng)
    tick = _place(n, on, [1.0], P.sin(2 * np.pi * res * kt) * decay)
    tock = _place(n, np.minimum(on + int(sr / r), n - 1), [0.8], P.sin(2 * np.pi * 0.7 * res * kt) * decay)
    return tick + tock


def _siren(n, sr, t, rng, pitch, rate):
    """Bright buzzy tone (strong odd harmonics), deep slow AM with a rising-falling wail."""
    f0 = 700.0 * pitch * _jit(rng)
    lfo = P.sin(2 * np.pi * 2.0 * rate * _jit(rng) * t + rng.uniform(0, 6.3))
    am = (0.25 * (1 + lfo) ** 2).astype(np.float32)
    odd = [1.0, 0.0, 0.6, 0.0, 0.45, 0.0, 0.35, 0.0, 0.25]
    return _harmonics(_phase(f0 * (1 + 0.2 * lfo), sr, t), odd) * am


def _hum(n, sr, t, rng, pitch, rate):
    """Steady low hum: a low fundamental with decaying harmonics over a dull rumble."""
    f0 = 90.0 * pitch * _jit(rng)
    wobble = (1 + 0.15 * P.sin(2 * np.pi * 0.3 * rate * t + rng.uniform(0, 6.3))).astype(np.float32)
    rumble = colored_noise(n, rng, 1.0, sample_rate=sr, hi=3 * f0)
    buzz = _harmonics(_phase(f0, sr, t), [1.0 / (k + 1) for k in range(12)])
    return buzz * wobble + 0.3 * rumble


def _drum(n, sr, t, rng, pitch, rate):
    """Pulsed bursts: a decaying low thump plus a bright noise burst, on a beat with accents."""
    f_thump = 110.0 * pitch * _jit(rng)
    kt = np.arange(int(0.25 * sr)) / sr
    thump = P.sin(2 * np.pi * f_thump * kt * (1 + 0.5 * P.exp(-kt / 0.02))) * P.exp(-kt / 0.07)
    on = _onsets(n, sr, 3.0 * rate * _jit(rng), rng)
    accents = [1.0, 0.5, 0.75, 0.5]
    env = _place(n, on, accents, P.exp(-kt / 0.03))
    noise = colored_noise(n, rng, 0.5, sample_rate=sr, lo=1200 * pitch, hi=5000 * pitch)   # snare
    return _place(n, on, accents, thump) + 0.5 * env * noise


def _warble(n, sr, t, rng, pitch, rate):
    """Frequency-modulated tone: fast, wide vibrato around a high carrier."""
    fc = 1800.0 * pitch * _jit(rng)
    fm = 10.0 * rate * _jit(rng)
    freq = fc * (1 + 0.18 * P.sin(2 * np.pi * fm * t + rng.uniform(0, 6.3)))
    return _harmonics(_phase(freq, sr, t), [1.0, 0.25])


_RENDERERS = (_flute, _engine, _bird, _clock, _siren, _hum, _drum, _warble)


def render_sound(class_index: int, seconds: float, sample_rate: int, rng: np.random.Generator,
                 pitch: float = 1.0, rate: float = 1.0, level: float | None = None) -> np.ndarray:
    """Render one instance of class ``class_index`` as float32 mono in [-1, 1].

    ``pitch``/``rate`` scale the family's frequencies/temporal rates; ``level`` is the target
    RMS (random in [0.08, 0.2] when None). The output is faded in/out over 10 ms.
    """
    if not 0 <= class_index < len(_RENDERERS):
        raise ValueError(f"class_index must be in 0..{len(_RENDERERS) - 1}, got {class_index}")
    n = int(round(seconds * sample_rate))
    if n <= 0:
        return np.zeros(0, np.float32)
    t = np.arange(n, dtype=np.float64) / sample_rate
    x = np.asarray(_RENDERERS[class_index](n, float(sample_rate), t, rng, pitch, rate), np.float32)
    fade = min(n // 2, int(0.01 * sample_rate))
    if fade > 0:
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        x[:fade] *= ramp
        x[n - fade:] *= ramp[::-1]
    if level is None:
        level = float(rng.uniform(0.08, 0.2))
    return normalize(x, level)


def reverberate(x: np.ndarray, tail_seconds: float, sample_rate: int, rng: np.random.Generator,
                level: float = 0.15) -> np.ndarray:
    """A distant source: ``x`` convolved with a decaying noise tail of ``tail_seconds``
    (0.15 s time constant), the wet part at RMS ``level``, plus 0.3 of the dry sound."""
    n = len(x)
    ir_n = int(tail_seconds * sample_rate)
    decay = P.exp(-np.arange(ir_n) / (0.15 * sample_rate)).astype(np.float32)
    ir = rng.standard_normal(ir_n, dtype=np.float32) * decay
    size = 1 << (n + ir_n - 1).bit_length()
    wet = np.fft.irfft(P.complex_product(np.fft.rfft(x, size), np.fft.rfft(ir, size)), size)[:n]
    return 0.3 * x + normalize(wet.astype(np.float32), level)
