"""DSOL's MUSIC box files (Hu et al., NeurIPS 2020; github.com/DTaoo/Discriminative-Sounding-Objects-
Localization ``music-exp/solotest.json`` and ``duettest.json``, MIT): ``{"<video>/frame_NNN/NNNNN.jpg":
{"bbox": [{"box": [x, y, w, h] px, "normbox": [x, y, w, h] normalised, "category_id": c}, ...],
"wdith": W, "height": H}}``.

Classes as DSOL ``music-exp/eval_duet.py`` (and ``eval.py``): ``category_id`` -> instrument by its
``duetkeys`` (:data:`CATEGORIES`), the class index = the name's place in the sorted ``keylist`` of
11 instruments (:data:`CLASSES`). Every boxed object of these files sounds (solo: the one player;
duet: both). A frame without a box is skipped by DSOL (``if len(gt[k]['bbox']) == 0: continue``
in ``eval_duet.py`` and ``tools.py``): it is named here and not scored.

Ground truth as DSOL: boxes of ``normbox`` x 224, rows int(y)..int(y + h), columns
int(x)..int(x + w). Each entry keeps its boxes (clipped to the frame) and their classes for the
class-aware scores (:mod:`.music_classaware`, the metric code being :mod:`dmc.localization.classaware`),
and the binary union of all its boxes (``gt``) for the class-blind table. The key's frame is the image:
``<root>/frames/<key>``, its id the key without ``.jpg`` (a ``/`` kept).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from dmc.localization import classaware
from dmc.localization.benchmarks import protocol
from dmc.localization.benchmarks.layout import Benchmark, Entry, load_json

# DSOL eval_duet.py: keylist (sorted there) and duetkeys (category_id -> instrument)
CLASSES = tuple(sorted(["flute", "acoustic_guitar", "accordion", "xylophone", "erhu", "tuba",
                        "saxophone", "cello", "violin", "clarinet", "trumpet"]))
CATEGORIES = {13: "accordion", 3: "acoustic_guitar", 1: "cello", 12: "flute", 8: "saxophone",
              10: "trumpet", 11: "violin"}
# DSOL's r of the class-aware binarisation (> r x max) per file: tools.py (solo), eval_duet.py (duet)
RELATIVE = {"music-solo": classaware.RELATIVE_THRESHOLDS["solo"],
            "music-duet": classaware.RELATIVE_THRESHOLDS["duet"]}


def box_pixels(normbox, size: int = protocol.SIZE) -> tuple[int, int, int, int]:
    """[x, y, w, h] normalised -> x1, y1, x2, y2 at 224 px, as DSOL eval.py (clipped to the frame)."""
    x, y, w, h = (float(np.clip(v, 0, 1)) * size for v in normbox)
    return int(x), int(y), int(x + w), int(y + h)


def _valid(normbox) -> bool:
    return (isinstance(normbox, list) and len(normbox) == 4
            and all(isinstance(v, (int, float)) and math.isfinite(v) for v in normbox)
            and normbox[2] > 0 and normbox[3] > 0)


def class_index(category) -> int | None:
    """DSOL's class index of a ``category_id`` (None: not one of DSOL's categories)."""
    name = CATEGORIES.get(category) if isinstance(category, int) and not isinstance(category, bool) else None
    return None if name is None else CLASSES.index(name)


def _problem(boxes) -> str | None:
    if not isinstance(boxes, list):
        return f"corrupt box list {boxes!r:.80}"
    if not boxes:
        return "no box (DSOL's eval_duet.py / tools.py skip such a frame)"
    if not all(isinstance(b, dict) and _valid(b.get("normbox")) for b in boxes):
        return f"corrupt box list {boxes!r:.80}"
    unknown = [b.get("category_id") for b in boxes if class_index(b.get("category_id")) is None]
    if unknown:
        return f"category_id {unknown} not among DSOL's {sorted(CATEGORIES)}"
    return None


def read_music(annotations: str | Path, kind: str) -> Benchmark:
    """``kind``: music-solo or music-duet (the name in the report)."""
    data = load_json(annotations)
    bench = Benchmark(kind, n_listed=len(data) if isinstance(data, dict) else 0)
    if not isinstance(data, dict):
        bench.problems.append(f"{annotations}: expected an object of frames, got {type(data).__name__}")
        return bench
    for key, item in data.items():
        name = key[:-4] if key.endswith(".jpg") else key
        boxes = item.get("bbox") if isinstance(item, dict) else None
        problem = _problem(boxes)
        if problem:
            bench.problems.append(f"{name}: {problem}")
            continue
        gt = protocol.union_map([box_pixels(b["normbox"]) for b in boxes])
        classes = tuple(class_index(b["category_id"]) for b in boxes)
        bench.entries.append(Entry(name, gt, len(boxes), cls=",".join(CLASSES[c] for c in classes),
                                   boxes=np.clip(np.array([b["normbox"] for b in boxes], dtype=np.float64), 0, 1),
                                   box_classes=classes))
    return bench
