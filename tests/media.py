"""Make small real media files with PyAV for the tests."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

CODECS = {  # container format -> (video codec, audio codec)
    "mp4": ("libx264", "aac"),
    "webm": ("libvpx-vp9", "libopus"),
    "mkv": ("libx264", "aac"),
}


def tone(seconds: float, rate: int, channels: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    wave = 0.3 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return np.stack([wave * (1 - 0.3 * c) for c in range(channels)])


def make_video(path: Path, seconds: float = 3.0, fps: int = 10, size=(64, 48), audio_rate: int = 44100,
               channels: int = 1, video: bool = True, audio: bool = True, vfr: bool = False,
               audio_seconds: float | None = None, audio_format: str = "fltp", fmt: str | None = None,
               vcodec: str | None = None, pix_fmt: str = "yuv420p", rotation: int | None = None,
               options: dict | None = None, acodec: str | None = None) -> Path:
    """Write a clip whose frame i is filled with grey level (10 * i) % 256 (R), so frames are identifiable.

    vfr: frame timestamps with irregular gaps (variable frame rate). audio_format: the
    sample format fed to the encoder (pcm codecs in mkv accept s16/s32/flt, and u8 = 8-bit,
    s24 = 24-bit PCM, fed as s32). vcodec/pix_fmt: another video codec (e.g. ffv1 + yuv444p
    or mpeg4 for odd frame sizes, which libx264's yuv420p refuses). rotation: a display
    matrix rotating the picture counter-clockwise by that many degrees (phone videos).
    options: muxer options, e.g. {"live": "1"} for an mkv without duration or cues.
    acodec: another audio codec (e.g. "vorbis", FFmpeg's experimental encoder).
    """
    fmt = fmt or path.suffix.lstrip(".")
    vcodec_default, acodec_default = CODECS.get(fmt, CODECS["mkv"])
    vcodec = vcodec or vcodec_default
    acodec = acodec or acodec_default
    if audio_format in ("s16", "s32", "flt", "u8", "s24") and fmt == "mkv":
        acodec = {"s16": "pcm_s16le", "s32": "pcm_s32le", "flt": "pcm_f32le", "u8": "pcm_u8",
                  "s24": "pcm_s24le"}[audio_format]
    if audio_format == "s24":
        audio_format = "s32"    # pcm_s24le takes s32 samples and keeps their top 24 bits
    if acodec == "libopus":
        audio_rate = 48000
    with av.open(str(path), "w", format={"mkv": "matroska"}.get(fmt, fmt), options=options or {}) as out:
        vs = as_ = None
        vtb = Fraction(1, fps * 100)   # frame timestamps in 1/(100 fps) s, so VFR gaps are exact
        if video:
            vs = out.add_stream(vcodec, rate=fps)
            vs.width, vs.height, vs.pix_fmt = size[0], size[1], pix_fmt
            if rotation is not None:
                vs.set_display_rotation(rotation)
            vs.codec_context.time_base = vtb
            if vcodec == "libx264":
                vs.options = {"preset": "ultrafast"}
        if audio:
            as_ = out.add_stream(acodec, rate=audio_rate,
                                 options={"strict": "-2"} if acodec == "vorbis" else {})   # experimental encoder
            as_.layout = {1: "mono", 2: "stereo", 6: "5.1"}[channels]
        events = []
        if video:
            n = int(round(seconds * fps))
            t = 0.0
            rng = np.random.default_rng(0)
            for i in range(n):
                events.append((t, "v", i))
                t += (1.0 / fps) * (rng.uniform(0.5, 1.5) if vfr else 1.0)
        if audio:
            wave = tone(audio_seconds if audio_seconds is not None else seconds, audio_rate, channels)
            step = 1024 if acodec != "libopus" else 960
            for start in range(0, wave.shape[1], step):
                events.append((start / audio_rate, "a", start))
        for t, kind, i in sorted(events, key=lambda e: (e[0], e[1])):
            if kind == "v":
                img = np.zeros((size[1], size[0], 3), np.uint8)
                img[..., 0] = (10 * i) % 256
                img[..., 1] = 128
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                frame.pts = int(round(t * fps * 100))
                frame.time_base = vtb
                for p in vs.encode(frame):
                    out.mux(p)
            else:
                chunk = wave[:, i:i + step]
                if audio_format == "u8":
                    data = np.round(chunk.T * 127 + 128).astype(np.uint8).reshape(1, -1)
                elif audio_format in ("s16", "s32"):
                    scale = 32767 if audio_format == "s16" else 2**31 - 1
                    data = (chunk.T * scale).astype(np.int16 if audio_format == "s16" else np.int32).reshape(1, -1)
                elif audio_format == "flt":
                    data = np.ascontiguousarray(chunk.T).reshape(1, -1)
                else:
                    data = np.ascontiguousarray(chunk)
                frame = av.AudioFrame.from_ndarray(data, format=audio_format, layout=as_.layout.name)
                frame.sample_rate = audio_rate
                frame.pts = i
                frame.time_base = Fraction(1, audio_rate)
                for p in as_.encode(frame):
                    out.mux(p)
        for s in (vs, as_):
            if s is not None:
                for p in s.encode(None):
                    out.mux(p)
    return path
