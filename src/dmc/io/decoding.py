"""Decode one video into (frame, audio segment) pairs with PyAV.

Sampling, as in the reference loader (frame j <-> audio [5j, 5j+5) s) but with the
segment length a parameter: the audio track is cut into consecutive, non-overlapping
segments of ``segment_seconds``; segment s is paired with the video frame whose
timestamp is nearest to the segment's centre ``(s + 0.5) * segment_seconds``.

* Every packet is demuxed once; both streams are decoded in the same pass.  Inter-coded
  video must be decoded frame by frame anyway, but only the frames that are kept are
  converted to RGB and resized (one libswscale call each).
* Frames are resized to ``frame_size`` x ``frame_size`` without cropping (the aspect ratio
  is not kept), so a box (x0, y0, x1, y1) in the source maps linearly onto the frame.
* A display matrix (rotated phone videos) is applied: frames come out upright, as players
  show them.
* Audio of any sample format, rate and channel layout is converted to planar float,
  downmixed to mono by averaging the channels, then resampled with torchaudio.
* Times come from the presentation timestamps, relative to each stream's first frame, so
  variable frame rates are handled; a missing container duration does not matter.
* A stream that breaks off mid-way (truncated file) keeps the complete segments decoded
  before the break and says so in ``note``; audio merely shorter than the video is not a
  truncation. A file that yields no whole segment raises ``DecodeError`` with the reason
  ("no decodable video frame" only when not a single frame decodes; a clip shorter than one
  segment says so even when its frames decode).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from dmc.io.audio import PlanarFloat, resample, to_mono
from dmc.errors import DmcError

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")


class DecodeError(DmcError):
    """A video that cannot give a single (frame, audio segment) pair; str() is the reason."""


@dataclass
class Decoded:
    frames: np.ndarray       # (S, size, size, 3) uint8 RGB
    waves: np.ndarray        # (S, segment samples) float32 mono at the target rate
    frame_times: np.ndarray  # (S,) seconds, timestamp of the frame kept for each segment
    audio_seconds: float     # decoded audio length (before cutting into segments)
    note: str = ""           # non-fatal problem, e.g. "truncated after 3.2 s"
    threads: int = 0         # the video codec context's thread_count, read back after decoding


class _FramePicker:
    """Keeps, for each segment centre, the decoded frame nearest to it (converted once)."""

    def __init__(self, segment_seconds: float, size: int):
        self.seg, self.size = segment_seconds, size
        self.frames: list[np.ndarray] = []
        self.times: list[float] = []
        self.prev = None          # (time, frame) of the previous decoded frame
        self.t0 = None
        self.count = 0
        # one reformatter for all frames: a fresh swscale context per call costs ~10x more
        self.reformatter = av.video.reformatter.VideoReformatter()

    def _target(self) -> float:
        return (len(self.frames) + 0.5) * self.seg

    def _keep(self, t: float, frame: av.VideoFrame) -> None:
        rgb = self.reformatter.reformat(frame, width=self.size, height=self.size, format="rgb24",
                                        threads=1).to_ndarray()
        # display matrix (phone videos): turn the picture upright as players do; the frame is
        # square, so rotating after the resize equals resizing the rotated picture
        turns = round((getattr(frame, "rotation", 0) or 0) / 90) % 4
        if turns:
            rgb = np.ascontiguousarray(np.rot90(rgb, k=turns))
        self.frames.append(rgb)
        self.times.append(t)

    def push(self, frame: av.VideoFrame, rate: float) -> None:
        t = frame.time if frame.time is not None else self.count / rate
        self.count += 1
        if self.t0 is None:
            self.t0 = t
        t -= self.t0
        while self._target() <= t:
            target = self._target()
            if self.prev is not None and target - self.prev[0] < t - target:
                self._keep(*self.prev)
            else:
                self._keep(t, frame)
        self.prev = (t, frame)

    def finish(self, frame_duration: float) -> None:
        """Targets a little past the last frame (within one frame duration) take the last frame."""
        if self.prev is None:
            return
        while self._target() <= self.prev[0] + frame_duration:
            self._keep(*self.prev)


def _stream_seconds(stream) -> float | None:
    """The duration a stream declares (None when the container does not say)."""
    if stream.duration is None or stream.time_base is None:
        return None
    return float(stream.duration * stream.time_base)


def _truncation(audio_s: float, video_s: float, container_s: float | None, audio_declared_s: float | None) -> str:
    """A note when the data ends well before what the file declares, else "".

    Truncated means cut off: the audio stream ends before its own declared duration, or both
    streams end before the container's. A soundtrack that is merely shorter than the picture
    (audio 6 s in a 9 s video) is not truncated: its segments cover the audio there is.
    """
    def short(decoded: float, declared: float | None) -> bool:
        return bool(declared) and decoded < 0.9 * declared - 0.2

    if short(audio_s, audio_declared_s):
        return f"truncated: {audio_s:.2f} s of audio decoded, the audio stream says {audio_declared_s:.2f} s"
    if short(max(audio_s, video_s), container_s):
        return (f"truncated: {audio_s:.2f} s of audio and {video_s:.2f} s of video decoded, "
                f"container says {container_s:.2f} s")
    return ""


def decode_video(path: str | Path, segment_seconds: float, frame_size: int,
                 sample_rate: int, threads: int = 1) -> Decoded:
    """Decode ``path`` into S (frame, audio segment) pairs; raise DecodeError if S == 0.

    ``threads``: FFmpeg threads of each codec context, set explicitly (0 is FFmpeg's automatic
    choice, one per core). 1 by default: ``dmc decode`` gets its parallelism from worker
    processes that decode whole clips (dmc.io.pool), one thread each. The decoded pictures and
    samples are the same for any thread count (FFmpeg's threading is bit-exact).
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise DecodeError("empty file (0 bytes)")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise DecodeError(f"cannot open: {exc}") from None
    with container:
        if not container.streams.video:
            raise DecodeError("no video stream")
        if not container.streams.audio:
            raise DecodeError("no audio stream")
        vstream, astream = container.streams.video[0], container.streams.audio[0]
        vstream.thread_type = "AUTO"     # frame or slice threads, whichever the codec has...
        for stream in (vstream, astream):
            stream.codec_context.thread_count = threads   # ...but only this many
        rate = float(vstream.average_rate or vstream.guessed_rate or 25)
        picker = _FramePicker(segment_seconds, frame_size)
        audio = PlanarFloat()   # keeps rate and layout, planar float (dmc.io.audio)
        note = ""
        try:
            for packet in container.demux(vstream, astream):
                for frame in packet.decode():
                    if packet.stream.type == "video":
                        picker.push(frame, rate)
                        continue
                    audio.push(frame)
        except (av.FFmpegError, ValueError) as exc:
            note = f"decoding stopped early ({type(exc).__name__}: {exc})"
        picker.finish(1.0 / rate)
        duration = container.duration / 1e6 if container.duration else None
        threads_used = vstream.codec_context.thread_count
        audio_declared = _stream_seconds(astream)

    in_rate = audio.rate
    if not in_rate:
        if picker.count == 0 and note:   # stopped at the first (video) packet, before any audio came out
            raise DecodeError(f"no decodable video frame; {note}")
        raise DecodeError("audio stream has no decodable audio or no sample rate")
    mono = to_mono(audio.finish())
    audio_seconds = mono.shape[0] / in_rate
    video_seconds = picker.prev[0] + 1.0 / rate if picker.prev is not None else 0.0
    if not note:
        note = _truncation(audio_seconds, video_seconds, duration, audio_declared)
    if picker.count == 0:
        raise DecodeError("no decodable video frame" + (f"; {note}" if note else ""))
    wave = resample(mono, int(in_rate), int(sample_rate))
    seg_samples = int(round(segment_seconds * sample_rate))
    n = min(wave.shape[0] // seg_samples, len(picker.frames))
    if n == 0:      # also when every decoded frame lies before the first segment's centre
        raise DecodeError(f"shorter than one segment: {audio_seconds:.2f} s audio, {video_seconds:.2f} s video, "
                          f"segment {segment_seconds} s" + (f"; {note}" if note else ""))
    return Decoded(frames=np.stack(picker.frames[:n]),
                   waves=wave[: n * seg_samples].reshape(n, seg_samples).astype(np.float32),
                   frame_times=np.asarray(picker.times[:n], dtype=np.float64),
                   audio_seconds=audio_seconds, note=note, threads=threads_used)
