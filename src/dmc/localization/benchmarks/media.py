"""One benchmark clip as the network reads it: the image resized to ``decode.frame_size`` (no crop,
as ``dmc decode``) and the ``decode.segment_seconds`` of audio centred on the clip's middle
(EZ-VSL ``datasets.py`` ``load_spectrogram`` takes the middle 3 s), mono at ``decode.sample_rate``,
repeated when shorter (as LVS's dataloader). A video gives its middle pair (:func:`dmc.io.decoding.decode_video`).
"""

from __future__ import annotations

import numpy as np

from dmc.localization.benchmarks.layout import Entry


def _segment(wave: np.ndarray, n: int) -> np.ndarray:
    if len(wave) < n:
        wave = np.tile(wave, n // max(1, len(wave)) + 1)
    start = (len(wave) - n) // 2
    return np.ascontiguousarray(wave[start:start + n], dtype=np.float32)


def load_pair(entry: Entry, decode) -> tuple[np.ndarray, np.ndarray]:
    """(frame uint8 (S, S, 3), wave float32 (segment samples,)) of a clip; raises on unreadable media."""
    from PIL import Image

    from dmc.io.audio import read_audio, resample, to_mono
    from dmc.io.decoding import decode_video

    n = int(round(decode.segment_seconds * decode.sample_rate))
    if entry.video is not None:
        clip = decode_video(entry.video, decode.segment_seconds, decode.frame_size, decode.sample_rate)
        mid = len(clip.frames) // 2
        return clip.frames[mid], _segment(clip.waves[mid], n)
    with Image.open(entry.image) as im:
        frame = np.asarray(im.convert("RGB").resize((decode.frame_size, decode.frame_size), Image.BILINEAR))
    wave, rate = read_audio(entry.audio)
    wave = resample(to_mono(np.asarray(wave)), rate, decode.sample_rate)
    return frame, _segment(np.asarray(wave).ravel(), n)
