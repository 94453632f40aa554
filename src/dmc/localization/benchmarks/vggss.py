"""VGG-SS (Chen et al., CVPR 2021): ``vggss.json`` as published with LVS
(github.com/hche11/Localizing-Visual-Sounds-the-Hard-Way ``metadata/vggss.json``, Apache-2.0):
a list of 5,158 entries ``{"file": id, "class": name, "bbox": [[x1, y1, x2, y2], ...]}``, boxes
normalised to [0, 1] on the middle frame of the 10 s clip. Ground truth: the binary union of the
boxes at 224 px, corrupt values clipped to [0, 1] (:func:`protocol.vggss_pixels`).

An entry that is not an object with a string ``file`` and a non-empty list of 4-number boxes is
named and skipped; a box holding a value outside [0, 1] (12 published entries hold about -2.9e16)
is clipped, as the official code does, and counted in ``clipped``.
"""

from __future__ import annotations

import math
from pathlib import Path

from dmc.localization.benchmarks import protocol
from dmc.localization.benchmarks.layout import Benchmark, BenchmarkError, Entry, load_json


def _boxes(raw) -> list[list[float]] | None:
    if not isinstance(raw, list) or not raw:
        return None
    out = []
    for b in raw:
        if (not isinstance(b, list) or len(b) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in b)):
            return None
        out.append([float(v) for v in b])
    return out


def read_vggss(annotations: str | Path, test_list: list[str] | None = None) -> Benchmark:
    """The VGG-SS entries of ``annotations`` (those of ``test_list`` only, when given)."""
    data = load_json(annotations)
    if not isinstance(data, list):
        raise BenchmarkError(f"{annotations}: expected a list of entries, got {type(data).__name__}")
    wanted = None if test_list is None else set(test_list)
    bench = Benchmark("vggss", n_listed=len(data) if wanted is None else len(wanted))
    seen, clipped = set(), 0
    for i, item in enumerate(data):
        name = item.get("file") if isinstance(item, dict) else None
        if not isinstance(name, str):
            bench.problems.append(f"{annotations} entry {i}: no 'file' name")
            continue
        if wanted is not None and name not in wanted:
            continue
        seen.add(name)
        if item.get("bbox") == []:
            bench.problems.append(f"{name}: no box (nothing to localize)")
            continue
        boxes = _boxes(item.get("bbox"))
        if boxes is None:
            bench.problems.append(f"{name}: corrupt box list {item.get('bbox')!r:.80}")
            continue
        clipped += any(not 0 <= v <= 1 for b in boxes for v in b)
        gt = protocol.union_map([protocol.vggss_pixels(b) for b in boxes])
        if not gt.any():   # scored (cIoU 0, as the official code), but said
            bench.notes.append(f"{name}: every box is empty at 224 px {boxes!r:.80}")
        bench.entries.append(Entry(name, gt, len(boxes), cls=item.get("class")))
    if wanted is not None:
        bench.problems += [f"{n}: listed in the test list, not in {annotations}" for n in sorted(wanted - seen)]
    bench.clipped = clipped
    return bench
