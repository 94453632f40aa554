"""The ESC-10 release layout (Piczak 2015, as first published), made from the ESC-like generator.

    root/001 - Flute/1-123456-A.ogg     folder "NNN - Class name", clip "FOLD-SOURCE-TAKE.ogg"
    root/002 - Engine/...

The clips are those of :func:`dmc.synth.generate_esc50` with ``n_classes`` categories, resampled
to 48 kHz (FFmpeg's C code, :mod:`dmc.io.avcpu`) and encoded as Opus in OGG. The encoder is libopus:
PyAV's ``"opus"`` resolves to it (this FFmpeg build has no Opus encoder of its own), and libopus
picks its kernels from CPUID; its CELT search uses the approximate RCPPS/RSQRTPS instructions, whose
values differ between Intel and AMD, so these bytes can differ between hosts. With
``synth.portable_audio`` (the pipeline's default) the clips are FLAC instead (lossless, integer: the
same bytes everywhere). The release used OGG Vorbis; FFmpeg's Vorbis encoder takes stereo only, and
the reader, :func:`dmc.io.evalsets.read_esc10`, decodes any codec.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import av
import numpy as np

from ..atomic import atomic_dir
from dmc.io.avcpu import ffmpeg_portable
from .evalsets import generate_esc50


def write_ogg(path, audio: np.ndarray, sample_rate: int) -> None:
    """Mono float audio in [-1, 1] -> OGG Opus (48 kHz, Opus's only rate; PyAV resamples)."""
    with ffmpeg_portable(), av.open(str(path), "w", format="ogg", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("opus", rate=48000)
        stream.layout = "mono"
        stream.codec_context.thread_count = 1
        stream.codec_context.options = {"strict": "-2", "flags": "+bitexact"}   # FFmpeg's own encoder
        frame = av.AudioFrame.from_ndarray(np.asarray(audio, np.float32)[None], format="fltp", layout="mono")
        frame.sample_rate = sample_rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def write_flac(path, audio: np.ndarray, sample_rate: int) -> None:
    """Mono float audio holding 16-bit values (k / 32768, as read from a 16-bit WAV) -> FLAC at its
    own rate: lossless, and with fixed predictors an all-integer encoder, so the file's bytes and
    its decoded samples are the same on every CPU."""
    pcm = np.round(np.asarray(audio, np.float64) * 32768).clip(-32768, 32767).astype(np.int16)[None]
    with ffmpeg_portable(), av.open(str(path), "w", format="flac", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("flac", rate=sample_rate, layout="mono", format="s16")
        stream.codec_context.thread_count = 1
        stream.codec_context.options = {"flags": "+bitexact", "lpc_type": "fixed"}
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = sample_rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def generate_esc10(root, n_classes: int = 10, clips_per_class: int = 10, seed: int = 0,
                   portable_audio: bool = False) -> list[str]:
    """Write an ESC-10-release-layout set under ``root`` (replaced atomically); returns the
    class folder names. ``portable_audio``: FLAC clips (``FOLD-SOURCE-TAKE.flac``, 44.1 kHz,
    lossless: the ESC-like clips' own samples) instead of OGG Opus from libopus, whose output
    depends on the CPU (RCPPS/RSQRTPS in its CELT search; no switch avoids them)."""
    from dmc.io.audio import read_audio

    with tempfile.TemporaryDirectory() as tmp:
        meta = generate_esc50(Path(tmp) / "esc", n_classes=n_classes, clips_per_class=clips_per_class, seed=seed)
        folders = {t: f"{t + 1:03d} - {c.replace('_', ' ').capitalize()}"
                   for t, c in zip(meta["target"], meta["category"])}
        with atomic_dir(root) as out:
            for name in sorted(set(folders.values())):
                (Path(out) / name).mkdir()
            for r in meta.itertuples():
                audio, rate = read_audio(Path(tmp) / "esc" / "audio" / r.filename)
                if portable_audio:
                    write_flac(Path(out) / folders[r.target] / f"{r.fold}-{r.src_file}-{r.take}.flac", audio[0], rate)
                else:
                    write_ogg(Path(out) / folders[r.target] / f"{r.fold}-{r.src_file}-{r.take}.ogg", audio[0], rate)
    return sorted(set(folders.values()))
