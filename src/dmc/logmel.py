"""Log-mel frontend (torchaudio), with the reference code's defaults.

Reference (DMC Keras code, VGGish-like): 16 kHz mono, 64 mel bands from 125 to 7500 Hz,
STFT window 0.08 s and hop 0.05 s, ``log(mel + 0.01)``.  Choices the paper leaves open,
made here:

* magnitude spectrogram (``power=1``), as VGGish, before the mel filterbank;
* ``n_fft`` = the next power of two at or above the window length (VGGish);
* Hann window, centred frames (torchaudio's default), so a segment of N samples gives
  ``1 + N // hop`` frames; HTK mel scale without filter normalisation (VGGish).

Output layout is (..., time, n_mels): time first, as the audio subnet reads it.
"""

from __future__ import annotations

import math

import torch
import torchaudio


class LogMel(torch.nn.Module):
    def __init__(self, sample_rate=16000, n_mels=64, f_min=125.0, f_max=7500.0,
                 window_seconds=0.08, hop_seconds=0.05, log_offset=0.01):
        super().__init__()
        self.sample_rate = sample_rate
        self.win_length = int(round(window_seconds * sample_rate))
        self.hop_length = int(round(hop_seconds * sample_rate))
        self.n_fft = 2 ** math.ceil(math.log2(self.win_length))
        self.log_offset = log_offset
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=self.n_fft, win_length=self.win_length,
            hop_length=self.hop_length, f_min=f_min, f_max=f_max, n_mels=n_mels,
            power=1.0, center=True, mel_scale="htk", norm=None)

    @classmethod
    def from_params(cls, decode: dict) -> "LogMel":
        keys = ("sample_rate", "n_mels", "f_min", "f_max", "window_seconds", "hop_seconds", "log_offset")
        return cls(**{k: decode[k] for k in keys})

    def num_frames(self, num_samples: int) -> int:
        """Frames for a waveform of ``num_samples`` (centred STFT)."""
        return 1 + num_samples // self.hop_length

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """(..., samples) float waveform -> (..., frames, n_mels) log-mel."""
        mel = self.mel(wave)                       # (..., n_mels, frames)
        return torch.log(mel + self.log_offset).transpose(-1, -2)
