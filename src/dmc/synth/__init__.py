"""Embedded synthetic corpus: audiovisual training clips plus ESC-50- and DCASE-like sets.

Eight object classes (``CLASS_NAMES``), each with its own look (``visuals``) and sound
(``sounds``). ``generate_videos`` writes real MP4/WebM/MKV files with per-frame ground
truth boxes; ``generate_esc50`` and ``generate_dcase`` write evaluation sets in the exact
layouts of the public data sets, built from the same sound families. Everything is
deterministic from a seed and every output folder is replaced atomically.

``SIZES`` scales the counts in the ``synth`` section of params.yaml; use
:func:`scaled_counts` to apply it.
"""

from __future__ import annotations

from .esc10 import generate_esc10
from .evalsets import generate_dcase, generate_esc50
from .sounds import CLASS_NAMES
from .corpus import generate_videos

SIZES: dict[str, float] = {"tiny": 0.25, "small": 1.0, "medium": 4.0, "large": 20.0}

__all__ = ["CLASS_NAMES", "SIZES", "generate_dcase", "generate_esc10", "generate_esc50", "generate_videos", "scaled_counts"]


def scaled_counts(synth_params: dict) -> dict:
    """Counts of the ``synth`` params section scaled by ``SIZES[synth_params["size"]]``.

    Returns ``videos`` (>= 1), ``esc50_clips_per_class`` (a multiple of 5, >= 5, so every
    fold holds every class equally) and ``dcase_recordings_per_scene`` (even, >= 2).
    """
    size = synth_params.get("size", "small")
    if size not in SIZES:
        raise ValueError(f"unknown synth size {size!r}; expected one of {sorted(SIZES)}")
    m = SIZES[size]
    videos = max(1, int(round(synth_params["videos"] * m)))
    esc = max(5, 5 * int(round(synth_params["esc50_clips_per_class"] * m / 5)))
    dcase = max(2, 2 * int(round(synth_params["dcase_recordings_per_scene"] * m / 2)))
    return {"videos": videos, "esc50_clips_per_class": esc, "dcase_recordings_per_scene": dcase}
