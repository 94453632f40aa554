"""Audio decoding shared by the training videos (:mod:`dmc.io.decoding`) and the evaluation clips
(:mod:`dmc.io.evalsets`): decoded frames -> planar float32 -> mono -> torchaudio resampling.

* :class:`PlanarFloat` collects the decoded frames of one audio stream as ``(channels, samples)``
  float32 at the stream's own rate. AAC, Opus and Vorbis decode to planar float and their planes
  are read as they are; integer and packed formats are converted with numpy by the same scale
  factors as libswresample (``s16 / 2^15``, ``s32 / 2^31``, ``(u8 - 128) / 2^7``), so the result
  equals what FFmpeg's converter gives; anything else goes through libswresample.
* :func:`read_audio` decodes a whole audio file. PCM WAV files (8/16/24/32-bit integer) are read
  with the standard library's :mod:`wave`, the rest (float WAV, FLAC, OGG Vorbis/Opus, MP3, AAC,
  video containers) with PyAV. PyAV opens a file with a small probe (``probesize`` 32 KiB, no
  stream analysis): by default FFmpeg decodes up to 5 s of audio just to guess stream
  parameters that the decoded frames carry anyway.
* :func:`resample` is torchaudio's sinc resampler (:class:`SincResample`: the same kernel, one
  matrix product instead of a strided conv1d), its kernel built once per rate pair
  (:func:`torch_resampler`, in float64 so the bytes do not depend on the CPU), applied to a
  batch of waveforms at once.
* Decoding runs FFmpeg's portable C code (:func:`dmc.io.avcpu.ffmpeg_portable`): its SIMD float
  decoders (AAC, Opus, ...) round differently per CPU.
"""

from __future__ import annotations

import wave
from functools import lru_cache
from pathlib import Path

import av
import numpy as np
import torch
import torchaudio

from dmc.io.avcpu import ffmpeg_portable

# FFmpeg sample formats converted here with numpy: dtype and the scale libswresample uses
_INTEGER = {"s16": (np.int16, 2.0 ** -15, 0), "s32": (np.int32, 2.0 ** -31, 0),
            "u8": (np.uint8, 2.0 ** -7, 128), "flt": (np.float32, 1.0, 0), "dbl": (np.float64, 1.0, 0)}
PROBE = {"probesize": "32768", "analyzeduration": "0"}


class AudioReadError(Exception):
    """An audio file or stream that cannot be decoded; ``str()`` is the reason."""


class PlanarFloat:
    """Collects decoded audio frames as ``(channels, samples)`` float32 at the stream's rate."""

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []
        self.rate: int | None = None
        self._resampler: av.AudioResampler | None = None   # only for formats numpy cannot read

    def push(self, frame: av.AudioFrame) -> None:
        self.rate = self.rate or frame.sample_rate
        name = frame.format.name
        channels = len(frame.layout.channels)
        if name == "fltp":
            self.chunks.append(np.stack([np.frombuffer(p, np.float32, frame.samples) for p in frame.planes]))
            return
        base, planar = name.rstrip("p"), name.endswith("p")
        if base in _INTEGER:
            dtype, scale, offset = _INTEGER[base]
            if planar:
                data = np.stack([np.frombuffer(p, dtype, frame.samples) for p in frame.planes])
            else:
                data = np.frombuffer(frame.planes[0], dtype, frame.samples * channels).reshape(-1, channels).T
            self.chunks.append(_scale(data, scale, offset))
            return
        if self._resampler is None:
            self._resampler = av.AudioResampler(format="fltp")
        for out in self._resampler.resample(frame):
            self.chunks.append(out.to_ndarray().reshape(len(out.layout.channels), -1))

    def finish(self) -> np.ndarray:
        """All samples so far, ``(channels, samples)`` (``(1, 0)`` when nothing was decoded)."""
        if self._resampler is not None:
            for out in self._resampler.resample(None):
                self.chunks.append(out.to_ndarray().reshape(len(out.layout.channels), -1))
            self._resampler = None
        if not self.chunks:
            return np.zeros((1, 0), np.float32)
        return np.concatenate(self.chunks, axis=1)


def _scale(data: np.ndarray, scale: float, offset: int) -> np.ndarray:
    out = data.astype(np.float32)
    if offset:
        out -= np.float32(offset)
    if scale != 1.0:
        out *= np.float32(scale)
    return out


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Mean of the channels (FFmpeg's own downmix scales by 1/sqrt(2) per channel and can clip).
    One channel is returned as it is (its mean, x / 1, is the same bytes; numpy's reduction over
    an axis of length 1 costs as much as a copy of the whole clip)."""
    if audio.shape[0] == 1:
        return np.ascontiguousarray(audio[0], dtype=np.float32)
    return np.ascontiguousarray(audio.mean(axis=0), dtype=np.float32)


def _read_wav_pcm(path: Path) -> tuple[np.ndarray, int] | None:
    """Integer-PCM WAV with the standard library; None for anything it does not read."""
    try:
        with wave.open(str(path), "rb") as fh:
            width, channels, rate, n = fh.getsampwidth(), fh.getnchannels(), fh.getframerate(), fh.getnframes()
            raw = fh.readframes(n)
    except (wave.Error, EOFError, OSError):
        return None
    if width == 3:   # 24-bit: FFmpeg decodes it to s32 (the 3 bytes shifted up by 8 bits)
        b = np.frombuffer(raw, np.uint8)[: len(raw) // 3 * 3].reshape(-1, 3)
        ints = (b[:, 0].astype(np.int32) << 8) | (b[:, 1].astype(np.int32) << 16) | (b[:, 2].astype(np.int32) << 24)
        dtype, scale, offset, data = np.int32, 2.0 ** -31, 0, ints
    elif width in (1, 2, 4):
        dtype, scale, offset = {1: (np.uint8, 2.0 ** -7, 128), 2: (np.int16, 2.0 ** -15, 0),
                                4: (np.int32, 2.0 ** -31, 0)}[width]
        data = np.frombuffer(raw, np.dtype(dtype).newbyteorder("<"))
    else:
        return None
    data = data[: len(data) // channels * channels].reshape(-1, channels).T
    return _scale(data, scale, offset), rate


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode the first audio stream of ``path``: ``((channels, samples) float32, rate)``.

    Raises :class:`AudioReadError` with the reason when the file cannot be opened, has no
    audio stream, or yields no audio.
    """
    path = Path(path)
    if path.suffix.lower() == ".wav":
        pcm = _read_wav_pcm(path)
        if pcm is not None:
            return pcm
    collector = PlanarFloat()
    try:
        with ffmpeg_portable(), av.open(str(path), options=PROBE) as container:
            if not container.streams.audio:
                raise AudioReadError("no audio stream")
            for frame in container.decode(container.streams.audio[0]):
                collector.push(frame)
            audio = collector.finish()
    except AudioReadError:
        raise
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise AudioReadError(f"cannot decode audio: {exc}") from None
    if not collector.rate:
        raise AudioReadError("no decodable audio")
    return audio, int(collector.rate)


class SincResample(torch.nn.Module):
    """torchaudio's sinc resampler (``torchaudio.functional.resample`` with its defaults: Hann
    window, 6 zero crossings, rolloff 0.99) in float64, returning float32.

    torchaudio applies its (phases, taps) kernel as a strided ``conv1d``; here the padded input
    is framed as a strided view and multiplied by the kernel as one matrix product, the same
    sums without conv1d's float64 im2col copies (faster: ``benchmarks/evaluate.py`` measures the
    decoding; tests/test_io_audio.py checks it against torchaudio). The input is converted to
    float64 straight into its padded buffer (one copy, not a conversion and then a pad).
    float64 keeps the bytes independent of the CPU's kernels: their summation order moves a
    float64 result far below float32's last bit (tests/test_determinism.py)."""

    def __init__(self, orig: int, new: int):
        super().__init__()
        ref = torchaudio.transforms.Resample(orig, new, dtype=torch.float64)
        self.orig, self.new, self.width = ref.orig_freq // ref.gcd, ref.new_freq // ref.gcd, ref.width
        self.kernel_t = ref.kernel[:, 0, :].T.contiguous()     # (taps, phases)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        shape = waveform.shape
        length = shape[-1]
        flat = waveform.reshape(-1, length)
        # zero padding of width on the left and width + orig on the right, as torchaudio's
        x = torch.empty(flat.shape[0], length + 2 * self.width + self.orig, dtype=torch.float64)
        x[:, :self.width] = 0
        x[:, self.width + length:] = 0
        x[:, self.width:self.width + length] = flat
        out = x.unfold(-1, self.kernel_t.shape[0], self.orig) @ self.kernel_t    # (B, frames, phases)
        target = -(-self.new * length // self.orig)           # ceil, as torchaudio
        return out.reshape(x.shape[0], -1)[:, :target].float().reshape(*shape[:-1], target)


@lru_cache(maxsize=16)
def torch_resampler(orig: int, new: int) -> SincResample:
    """The resampler of one rate pair, its kernel built once (see :class:`SincResample`)."""
    return SincResample(orig, new)


def resample(waves: np.ndarray, orig: int, new: int) -> np.ndarray:
    """Resample ``(..., samples)`` float32 waveforms from ``orig`` to ``new`` Hz (a no-op if equal)."""
    if orig == new or waves.shape[-1] == 0:
        return np.asarray(waves, dtype=np.float32)
    with torch.no_grad():
        return torch_resampler(int(orig), int(new))(torch.from_numpy(np.ascontiguousarray(waves))).numpy()
