"""DSOL's MUSIC box files (Hu et al., NeurIPS 2020; github.com/DTaoo/Discriminative-Sounding-Objects-
Localization ``music-exp/solotest.json`` and ``duettest.json``, MIT): ``{"<video>/frame_NNN/NNNNN.jpg":
{"bbox": [{"box": [x, y, w, h] px, "normbox": [x, y, w, h] normalised, "category_id": c}, ...],
"wdith": W, "height": H}}``.

Ground truth as DSOL ``music-exp/eval.py``: boxes of ``normbox`` x 224, rows int(y)..int(y + h),
columns int(x)..int(x + w). Class-blind here: the binary union of every box of the frame
(DSOL's class-aware scoring needs a model's per-class maps, which DMC's clusters are not; the
entry keeps the categories). The key's frame is the image: ``<root>/frames/<key>``, its id the
key without ``.jpg`` (a ``/`` kept).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from dmc.localization.benchmarks import protocol
from dmc.localization.benchmarks.layout import Benchmark, Entry, load_json


def box_pixels(normbox, size: int = protocol.SIZE) -> tuple[int, int, int, int]:
    """[x, y, w, h] normalised -> x1, y1, x2, y2 at 224 px, as DSOL eval.py (clipped to the frame)."""
    x, y, w, h = (float(np.clip(v, 0, 1)) * size for v in normbox)
    return int(x), int(y), int(x + w), int(y + h)


def _valid(normbox) -> bool:
    return (isinstance(normbox, list) and len(normbox) == 4
            and all(isinstance(v, (int, float)) and math.isfinite(v) for v in normbox)
            and normbox[2] > 0 and normbox[3] > 0)


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
        if not isinstance(boxes, list) or not boxes or not all(isinstance(b, dict) and _valid(b.get("normbox"))
                                                                 for b in boxes):
            bench.problems.append(f"{name}: corrupt box list {boxes!r:.80}")
            continue
        gt = protocol.union_map([box_pixels(b["normbox"]) for b in boxes])
        bench.entries.append(Entry(name, gt, len(boxes), cls=",".join(str(b.get("category_id")) for b in boxes)))
    return bench
