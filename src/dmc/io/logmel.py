"""Log-mel frontend (torchaudio's ``MelSpectrogram`` definition), with the reference code's defaults.

Reference (DMC Keras code, VGGish-like): 16 kHz mono, 64 mel bands from 125 to 7500 Hz,
STFT window 0.08 s and hop 0.05 s, ``log(mel + 0.01)``.  Choices the paper leaves open,
made here:

* magnitude spectrogram (``power=1``), as VGGish, before the mel filterbank;
* ``n_fft`` = the next power of two at or above the window length (VGGish);
* Hann window, centred frames (torchaudio's default), so a segment of N samples gives
  ``1 + N // hop`` frames; HTK mel scale without filter normalisation (VGGish).

Output layout is (..., time, n_mels): time first, as the audio subnet reads it.

The same bytes on every CPU: the STFT and the mel projection run in float64 and the result is
rounded to float32 at the end, and MKL (torch's FFT and DGEMM on x86) runs its CPU-independent
code paths (:func:`mkl_reproducible`, ``MKL_CBWR=COMPATIBLE``). Without that pin MKL's kernels
differ by CPU far below float32's last bit, yet a float64 result that lies within about 1e-16 of
a rounding boundary moves to the other float32: on an Intel host (AVX-512) one value in about a
million of the test corpus's log-mels did (docs/data.md "Checking a host"). The constants
are computed with scalar math instead of torchaudio's float32 kernels, which differ by CPU
(the Hann window, the mel filterbank), and the log goes through the table of
:mod:`dmc.io.portable` (within 3e-8 of ``torch.log``).
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from dmc.io.portable import log2_table

#: MKL's conditional numerical reproducibility mode for the frontend's FFT and DGEMM
MKL_CBWR = "COMPATIBLE"


def mkl_reproducible() -> None:
    """Ask MKL for its CPU-independent code paths in this process (``MKL_CBWR=COMPATIBLE``; a value
    already set is kept). MKL reads the variable at its first call and never again, so this must
    run before torch does any MKL work in the process: the data-making commands (``dmc decode``,
    ``dmc evalset``) call it first; other programs that compute log-mels and need the bytes of
    another host set ``MKL_CBWR=COMPATIBLE`` in their environment. Training is not pinned (its
    float32 kernels are not reproducible across CPUs anyway: docs/data.md)."""
    os.environ.setdefault("MKL_CBWR", MKL_CBWR)


def _hann(n: int) -> np.ndarray:
    """Periodic Hann window (``torch.hann_window``) in float64 from scalar math: ATen's
    vectorised cos differs by CPU."""
    return np.array([0.5 - 0.5 * math.cos(2 * math.pi * k / n) for k in range(n)])


def mel_filterbank(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int) -> np.ndarray:
    """(n_freqs, n_mels) triangular HTK filters without normalisation, float64: the formula of
    ``torchaudio.functional.melscale_fbanks``, computed with scalar math and exactly rounded
    array operations (torchaudio's float32 version depends on the CPU's kernels)."""
    def mel(f):
        return 2595.0 * math.log10(1.0 + f / 700.0)

    m_min, m_max = mel(f_min), mel(f_max)
    m_pts = [m_min + (m_max - m_min) * i / (n_mels + 1) for i in range(n_mels + 2)]
    f_pts = np.array([700.0 * (10.0 ** (m / 2595.0) - 1.0) for m in m_pts])
    freqs = np.arange(n_freqs) * (sample_rate / 2 / (n_freqs - 1))
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts[None, :] - freqs[:, None]
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return np.maximum(0.0, np.minimum(down, up))


class LogMel(torch.nn.Module):
    def __init__(self, sample_rate=16000, n_mels=64, f_min=125.0, f_max=7500.0,
                 window_seconds=0.08, hop_seconds=0.05, log_offset=0.01):
        super().__init__()
        self.sample_rate = sample_rate
        self.win_length = int(round(window_seconds * sample_rate))
        self.hop_length = int(round(hop_seconds * sample_rate))
        self.n_fft = 2 ** math.ceil(math.log2(self.win_length))
        self.log_offset = log_offset
        self.register_buffer("window", torch.from_numpy(_hann(self.win_length)), persistent=False)
        fb = torch.from_numpy(mel_filterbank(self.n_fft // 2 + 1, f_min, f_max, n_mels, sample_rate))
        self.register_buffer("fb_t", fb.T.contiguous(), persistent=False)      # (mels, freqs)
        values, diffs, entries = log2_table()
        self.register_buffer("log2_values", torch.from_numpy(values), persistent=False)
        self.register_buffer("log2_diffs", torch.from_numpy(diffs), persistent=False)
        self.log2_entries = entries

    @classmethod
    def from_params(cls, decode: dict) -> "LogMel":
        keys = ("sample_rate", "n_mels", "f_min", "f_max", "window_seconds", "hop_seconds", "log_offset")
        return cls(**{k: decode[k] for k in keys})

    def num_frames(self, num_samples: int) -> int:
        """Frames for a waveform of ``num_samples`` (centred STFT)."""
        return 1 + num_samples // self.hop_length

    def _log(self, x: torch.Tensor) -> torch.Tensor:
        """Natural log of x > 0 (float64): exponent exactly (frexp), mantissa from the table."""
        mantissa, exponent = torch.frexp(x)
        u = (mantissa - 0.5) * (2 * self.log2_entries)
        i = torch.floor(u)
        frac = u - i
        i = i.long().clamp_max(self.log2_entries - 1)
        return (exponent + (self.log2_values[i] + frac * self.log2_diffs[i])) * math.log(2)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """(..., samples) float waveform -> (..., frames, n_mels) float32 log-mel."""
        shape = wave.shape
        spec = torch.stft(wave.double().reshape(-1, shape[-1]), self.n_fft, self.hop_length, self.win_length,
                          window=self.window, center=True, pad_mode="reflect", return_complex=True)
        # |X| as sqrt(re^2 + im^2): exactly rounded operations, the same on every CPU (complex abs
        # is libm's hypot, slower and not guaranteed identical everywhere); the two differ in the
        # last float64 bit at most, far below the float32 result's
        magnitude = (spec.real.square() + spec.imag.square()).sqrt_()
        mel = torch.matmul(self.fb_t, magnitude)                   # (B, mels, frames)
        out = self._log(mel + self.log_offset).float().transpose(-1, -2)
        return out.reshape(*shape[:-1], *out.shape[-2:])
