"""Synthetic audiovisual training clips written as real media files with PyAV.

Each clip shows 1..max_sources *sounding* objects of distinct classes plus
0..max_distractors *silent* objects of other classes on a slowly changing textured
background; its audio is the sum of the sounding objects' sounds (panned by position when
stereo) plus low-level background noise. Most clips are MP4 (H.264 + AAC); a share
``other_containers`` is WebM (VP9 + Opus at 48 kHz) or MKV (H.264 + AAC).

Ground truth goes to a separate folder: ``clips.csv`` (one row per clip) and ``boxes.csv``
(one row per object per frame, pixel boxes with exclusive x1/y1). Every clip is fully
determined by ``(seed, clip index)`` and byte-identical on every x86-64 machine: the numbers
come from CPU-independent arithmetic (``portable.py``), frames are converted to YUV 4:2:0
with integer arithmetic here (not by libswscale, whose SIMD kernels round differently), the
encoders run single-threaded, and FFmpeg's own codecs (the AAC encoder) run its C code
(``dmc.io.avcpu``). The exception is the WebM clips' Opus audio: libopus picks its kernels from
CPUID and its CELT search uses approximate instructions (RCPPS/RSQRTPS) whose values differ
between Intel and AMD; ``portable_audio`` (``synth.portable_audio``, the pipeline's default) writes
Vorbis instead.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd

from ..atomic import atomic_dir, atomic_file
from dmc.io.avcpu import ffmpeg_portable
from .evalsets import VARIANTS, parallel_map
from .sounds import CLASS_NAMES, colored_noise, render_sound, reverberate, rms_of
from .visuals import MOTION_MARGIN, Background, draw_object, object_state

# container key -> (file extension, muxer, video codec, audio codec, forced audio rate)
CONTAINERS = {
    "mp4": ("mp4", "mp4", "libx264", "aac", None),
    "mkv": ("mkv", "matroska", "libx264", "aac", None),
    "webm": ("webm", "webm", "libvpx-vp9", "libopus", 48000),
}
VIDEO_OPTIONS = {
    "libx264": {"preset": "ultrafast", "crf": "20", "threads": "1"},
    "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8", "crf": "30", "b": "0", "threads": "1",
                   "row-mt": "0"},
}
AUDIO_OPTIONS = {"aac": {"aac_coder": "fast"}, "vorbis": {"strict": "-2", "flags": "+bitexact"}}
# synth.portable_audio: the WebM clips' audio without libopus, whose CELT search runs the CPU's
# approximate-reciprocal instructions (RCPPS/RSQRTPS: other values on Intel than on AMD) with no
# switch to avoid them; FFmpeg's own Vorbis encoder runs its C code (dmc.io.avcpu) and takes stereo only.
# container key -> (audio codec, audio rate, least channel count: mono is written as two equal channels)
PORTABLE_AUDIO = {"webm": ("vorbis", 48000, 2)}
CLIP_COLUMNS = ["video", "seconds", "n_sources", "sounding_classes", "container", "audio_channels",
                "audio_rate", "n_distractors"]
BOX_COLUMNS = ["video", "frame", "time_s", "object_id", "class", "sounding", "x0", "y0", "x1", "y1"]

__all__ = ["plan_clip", "CLIP_COLUMNS", "BOX_COLUMNS", "CONTAINERS"]


def _place(n: int, width: int, height: int, rng: np.random.Generator,
           scales: list[float] | None = None) -> list[tuple[float, float, float]]:
    """Random (x, y, radius) for ``n`` objects, kept inside the frame and apart if possible;
    object i's radius is scaled by ``scales[i]`` (default 1)."""
    short = min(width, height)
    placed: list[tuple[float, float, float]] = []
    for i in range(n):
        r = rng.uniform(0.10, 0.15) * short * (scales[i] if scales else 1.0)
        reach = (1 + MOTION_MARGIN) * r                      # extent including motion
        best, best_gap = None, -np.inf
        for _ in range(60):
            x, y = rng.uniform(reach, width - reach), rng.uniform(reach, height - reach)
            gap = min((math.hypot(x - px, y - py) - reach - (1 + MOTION_MARGIN) * pr
                       for px, py, pr in placed), default=np.inf)
            if gap > best_gap:
                best, best_gap = (x, y, r), gap
            if gap >= 0:
                break
        placed.append(best)
    return placed


CONTROLS = ("none", "no_objects")
# synth.variants: objects come in the variants of the ESC-like categories (evalsets.VARIANTS:
# pitch, rate, reverberant tail), each tied to how it looks: a low-pitched instance is drawn
# larger, a high-pitched one smaller, a distant (reverberant) one smaller and hazy.
# variant -> (radius scale, opacity)
LOOKS = {"": (1.0, 1.0), "low": (1.35, 1.0), "high": (0.7, 1.0), "far": (0.75, 0.5)}
SOUNDS = {v[0]: v[1:4] for v in VARIANTS}    # variant -> (pitch, rate, reverb seconds)


def plan_clip(rng: np.random.Generator, width: int, height: int, max_sources: int,
              max_distractors: int, variants: bool = False) -> list[dict]:
    """Choose the objects of one clip: class, sounding flag, position, radius, motion state
    and (``variants``) variant, drawn uniformly from :data:`LOOKS` ("" for every object otherwise)."""
    n_src = min(int(rng.integers(1, max(1, max_sources) + 1)), len(CLASS_NAMES))
    n_dis = int(rng.integers(0, max(0, max_distractors) + 1))
    classes = rng.permutation(len(CLASS_NAMES))[: min(n_src + n_dis, len(CLASS_NAMES))]
    names = [list(LOOKS)[int(rng.integers(len(LOOKS)))] for _ in classes] if variants else [""] * len(classes)
    places = _place(len(classes), width, height, rng, [LOOKS[v][0] for v in names])
    objs = []
    for i, (cls, (x, y, r), v) in enumerate(zip(classes, places, names)):
        objs.append({"id": i, "cls": int(cls), "sounding": i < n_src, "center": (x, y), "size": r,
                     "state": object_state(rng), "variant": v, "opacity": LOOKS[v][1]})
    order = rng.permutation(len(objs))                     # mix drawing order / object ids
    objs = [objs[j] for j in order]
    for i, o in enumerate(objs):
        o["id"] = i
    return objs


def _render_audio(objs: list[dict], seconds: float, sr: int, channels: int, width: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Mix of the sounding objects (+ background noise), shape (channels, n), peak <= 0.9."""
    n = int(round(seconds * sr))
    mix = np.zeros((channels, n), np.float32)
    for o in objs:
        if not o["sounding"]:
            continue
        pitch, rate, reverb = SOUNDS[o["variant"]]
        s = render_sound(o["cls"], seconds, sr, rng, pitch=pitch, rate=rate)
        if reverb:                                         # distant: the ESC-like set's tail
            s = reverberate(s, reverb, sr, rng, level=rms_of(s))
        if channels == 1:
            mix[0] += s
        else:                                              # constant-power pan by x position
            p = 0.15 + 0.7 * o["center"][0] / width
            mix[0] += np.float32(math.cos(p * math.pi / 2)) * s
            mix[1] += np.float32(math.sin(p * math.pi / 2)) * s
    noise = colored_noise(n, rng, rng.uniform(0.5, 1.5), channels=channels, sample_rate=sr)
    mix += float(rng.uniform(0.003, 0.015)) * noise
    peak = float(np.max(np.abs(mix))) + 1e-12
    return (mix * min(1.0, 0.9 / peak)).astype(np.float32)


def rgb_to_yuv420p(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (3H/2, W) uint8 planar YUV 4:2:0, BT.601 limited range (what
    libswscale does by default), in integer arithmetic; chroma from the mean of each 2x2 block."""
    c = rgb.astype(np.int32)
    r, g, b = c[..., 0], c[..., 1], c[..., 2]
    y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16
    h, w = r.shape
    rs, gs, bs = (x.reshape(h // 2, 2, w // 2, 2).sum(axis=(1, 3)) for x in (r, g, b))   # 2x2 sums
    u = ((-38 * rs - 74 * gs + 112 * bs + 512) >> 10) + 128
    v = ((112 * rs - 94 * gs - 18 * bs + 512) >> 10) + 128
    return np.concatenate([y.ravel(), u.ravel(), v.ravel()]).astype(np.uint8).reshape(h * 3 // 2, w)


def _encode(path: Path, container: str, frames, audio: np.ndarray, sr: int, fps: int,
            width: int, height: int, portable_audio: bool = False) -> None:
    """Write frames (iterable of RGB uint8 arrays) and audio (channels, n) into one file."""
    _, muxer, vcodec, acodec, _ = CONTAINERS[container]
    if portable_audio and container in PORTABLE_AUDIO:
        acodec = PORTABLE_AUDIO[container][0]
    layout = "mono" if audio.shape[0] == 1 else "stereo"
    with ffmpeg_portable(), av.open(str(path), "w", format=muxer, options={"fflags": "+bitexact"}) as out:
        vs = out.add_stream(vcodec, rate=fps, options=dict(VIDEO_OPTIONS[vcodec]))
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.codec_context.thread_count = 1
        aus = out.add_stream(acodec, rate=sr, layout=layout, options=dict(AUDIO_OPTIONS.get(acodec, {})))
        step = Fraction(sr, fps)
        a_pos = 0
        for k, rgb in enumerate(frames):
            a_end = min(audio.shape[1], int(round((k + 1) * step)))
            if a_end > a_pos:
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[:, a_pos:a_end]),
                                                format="fltp", layout=layout)
                af.sample_rate, af.pts, af.time_base = sr, a_pos, Fraction(1, sr)
                out.mux(aus.encode(af))
                a_pos = a_end
            vf = av.VideoFrame.from_ndarray(rgb_to_yuv420p(rgb), format="yuv420p")
            vf.pts, vf.time_base = k, Fraction(1, fps)
            out.mux(vs.encode(vf))
        if a_pos < audio.shape[1]:
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[:, a_pos:]), format="fltp",
                                            layout=layout)
            af.sample_rate, af.pts, af.time_base = sr, a_pos, Fraction(1, sr)
            out.mux(aus.encode(af))
        out.mux(vs.encode(None))
        out.mux(aus.encode(None))


def _make_clip(args: tuple) -> tuple[dict, list[tuple]]:
    """Render and write clip ``index`` into ``folder``; returns (clip row, box rows)."""
    (folder, index, container, seed, seconds, width, height, fps, audio_rate,
     max_sources, max_distractors, control, variants, portable_audio) = args
    rng = np.random.default_rng([seed, index])
    ext, _, _, _, forced_rate = CONTAINERS[container]
    sr = forced_rate or audio_rate
    name = f"vid_{index:05d}.{ext}"
    objs = plan_clip(rng, width, height, max_sources, max_distractors, variants)
    channels = int(rng.integers(1, 3))
    audio = _render_audio(objs, seconds, sr, channels, width, rng)
    if portable_audio and container in PORTABLE_AUDIO and channels < PORTABLE_AUDIO[container][2]:
        channels = PORTABLE_AUDIO[container][2]       # mono written as identical channels: the draws,
        audio = np.repeat(audio, channels, axis=0)     # hence the frames, stay those of the clip
    background = Background(width, height, rng)
    n_frames = int(round(seconds * fps))
    boxes: list[tuple] = []

    def frames():
        for k in range(n_frames):
            t = k / fps
            img = background.frame(t)
            for o in objs:
                if control == "no_objects" and o["sounding"]:
                    continue                  # the control: sounding objects heard, never seen
                box = draw_object(img, o["cls"], o["center"], o["size"], t, o["state"], o["opacity"])
                boxes.append((name, k, round(t, 6), o["id"], CLASS_NAMES[o["cls"]], int(o["sounding"]), *box))
            yield img

    with atomic_file(Path(folder) / name) as tmp:
        _encode(tmp, container, frames(), audio, sr, fps, width, height, portable_audio)
    sounding = [CLASS_NAMES[o["cls"]] for o in sorted(objs, key=lambda o: o["cls"]) if o["sounding"]]
    row = {"video": name, "seconds": float(seconds), "n_sources": len(sounding),
           "sounding_classes": ";".join(sounding), "container": container, "audio_channels": channels,
           "audio_rate": sr, "n_distractors": len(objs) - len(sounding)}
    return row, boxes


def _containers(n: int, share: float, rng: np.random.Generator) -> list[str]:
    """Container per clip: round(share * n) clips (at least one if share > 0) alternate WebM/MKV."""
    k = min(n, max(1 if share > 0 else 0, int(round(share * n))))
    kinds = ["mp4"] * n
    for j, i in enumerate(rng.permutation(n)[:k]):
        kinds[i] = "webm" if j % 2 == 0 else "mkv"
    return kinds
