"""The untouched test corpus written in VGG-SS's published layout, so that the embedded default
proves the benchmark path end to end: ``<out>/vggss.json`` (``{"file", "class", "bbox"}`` with the
sounding objects' boxes normalised to [0, 1]), ``<out>/frames/<id>.jpg`` (the middle frame, at the
written size) and ``<out>/audio/<id>.wav`` (the ``decode.segment_seconds`` around it, mono,
16-bit, ``decode.sample_rate``). As VGG-SS, one frame per clip: the middle one. A clip that does not
decode gets one line and is left out; a clip with no sounding object keeps an empty box list,
which the reader names as corrupt (nothing to localize).
"""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np

from dmc.atomic import atomic_dir


def clip_id(relpath: str) -> str:
    return relpath.rsplit(".", 1)[0].replace("/", "__")


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def write_vggss_layout(videos: str | Path, ground_truth: str | Path, out: str | Path, decode, size: tuple[int, int],
                       err=None) -> tuple[int, int]:
    """Write the layout atomically; (written, skipped)."""
    from PIL import Image

    from dmc.io.decoding import DecodeError, decode_video
    from dmc.io.ground_truth import GroundTruth
    from dmc.io.shards import list_videos

    width, height = size
    gt = GroundTruth(ground_truth, (width, height))
    entries, skipped = [], 0
    with atomic_dir(out) as tmp:
        tmp = Path(tmp)
        (tmp / "frames").mkdir()
        (tmp / "audio").mkdir()
        for rel in list_videos(videos):
            try:
                clip = decode_video(Path(videos) / rel, decode.segment_seconds, max(width, height), decode.sample_rate)
            except (DecodeError, OSError) as exc:
                print(f"benchmark layout: {rel}: skipped: {exc}", file=err)
                skipped += 1
                continue
            mid = len(clip.frames) // 2
            name = clip_id(rel)
            frame = Image.fromarray(clip.frames[mid]).resize((width, height), Image.BILINEAR)
            frame.save(tmp / "frames" / f"{name}.jpg", quality=95)
            _write_wav(tmp / "audio" / f"{name}.wav", clip.waves[mid], decode.sample_rate)
            boxes, sounding = gt.scaled(rel, float(clip.frame_times[mid]), (height, width))
            norm = [[float(x0) / width, float(y0) / height, float(x1) / width, float(y1) / height]
                    for x0, y0, x1, y1 in boxes[sounding]]
            entries.append({"file": name, "class": f"{len(norm)} source(s)", "bbox": norm})
        (tmp / "vggss.json").write_text(json.dumps(entries, indent=1) + "\n")
    return len(entries), skipped
