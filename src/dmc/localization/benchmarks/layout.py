"""What every benchmark reader returns, and where each clip's media lie.

Media layout (LVS ``datasets/dataloader.py``, EZ-VSL ``datasets.py`` ``get_test_dataset``):
``<root>/frames/<id>.jpg`` and ``<root>/audio/<id>.wav``; a video ``<root>/videos/<id>.<ext>``
(mp4, webm, mkv, mov, avi) stands in for both (its middle frame and the audio around it).
A clip whose media are missing or unreadable is named with the reason and not scored: the
report says n scored / n listed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dmc.errors import DmcError


class BenchmarkError(DmcError):
    """An annotation file that cannot be read at all (the message names it)."""


def load_json(path: str | Path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise BenchmarkError(f"{path}: no such annotation file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchmarkError(f"{path}: unreadable annotation file ({exc})") from None


VIDEO_EXTS = (".mp4", ".webm", ".mkv", ".mov", ".avi")


@dataclass
class Entry:
    name: str
    gt: np.ndarray                 # 224 x 224 ground-truth map (binary, or Flickr's consensus)
    n_boxes: int
    cls: str | None = None
    image: Path | None = None      # frames/<id>.jpg, or None with a video
    audio: Path | None = None
    video: Path | None = None
    boxes: np.ndarray | None = None    # MUSIC: (n, 4) normalised x, y, w, h, clipped to [0, 1]
    box_classes: tuple[int, ...] = ()  # MUSIC: the class index of each box (music.CLASSES)


@dataclass
class Benchmark:
    name: str
    n_listed: int
    entries: list[Entry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)    # one line per clip not scored: id and reason
    notes: list[str] = field(default_factory=list)       # scored, but worth a line (an empty ground truth)
    clipped: int = 0       # entries with a box value outside the frame, clipped as the official code

    def report_line(self) -> str:
        return f"{self.name}: {len(self.entries)} scored / {self.n_listed} listed"


def _image_ok(path: Path) -> str | None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.verify()
    except Exception as exc:  # noqa: BLE001 - any decoder failure is the file's fault
        return f"{path}: unreadable image ({type(exc).__name__}: {exc})"
    return None


def _audio_ok(path: Path) -> str | None:
    from dmc.io.audio import read_audio

    try:
        wave, _ = read_audio(path)
        if not np.asarray(wave).size:
            return f"{path}: empty audio"
    except Exception as exc:  # noqa: BLE001
        return f"{path}: unreadable audio ({type(exc).__name__}: {exc})"
    return None


def _video_ok(path: Path) -> str | None:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video or not container.streams.audio:
                return f"{path}: no {'video' if not container.streams.video else 'audio'} stream"
    except Exception as exc:  # noqa: BLE001
        return f"{path}: unreadable video ({type(exc).__name__}: {exc})"
    return None


def attach_media(entry: Entry, root: Path) -> str | None:
    """Find and check the clip's media under ``root``; the reason it cannot be scored, or None."""
    for ext in VIDEO_EXTS:
        video = root / "videos" / f"{entry.name}{ext}"
        if video.is_file():
            problem = _video_ok(video)
            if problem:
                return f"{entry.name}: {problem}"
            entry.video = video
            return None
    image, audio = root / "frames" / f"{entry.name}.jpg", root / "audio" / f"{entry.name}.wav"
    missing = [str(p) for p in (image, audio) if not p.is_file()]
    if missing:
        return f"{entry.name}: missing media ({', '.join(missing)})"
    for problem in (_image_ok(image), _audio_ok(audio)):
        if problem:
            return f"{entry.name}: {problem}"
    entry.image, entry.audio = image, audio
    return None


def with_media(bench: Benchmark, root: Path | None) -> Benchmark:
    """Keep the entries whose media are present and readable (``root`` None: boxes only, every entry)."""
    if root is None:
        return bench
    kept = []
    for e in bench.entries:
        problem = attach_media(e, Path(root))
        if problem:
            bench.problems.append(problem)
        else:
            kept.append(e)
    bench.entries = kept
    return bench
