"""The Flickr-SoundNet test set (Senocak et al., CVPR 2018), in the layout LVS and EZ-VSL read:
``<root>/Annotations/<id>.xml`` (boxes of up to 3 annotators, 4 integers each in 256 x 256
pixel coordinates), ``<root>/frames/<id>.jpg``, ``<root>/audio/<id>.wav``.

Boxes follow LVS ``utils.py`` ``testset_gt`` / EZ-VSL ``datasets.py`` ``load_all_bboxes``: every
``<bbox>`` element under a child of the root; its children after the first are the 4 numbers
(a ``<bbox>`` with ``xmin``/``ymin``/``xmax``/``ymax`` children is read by name). Each is rescaled
to 224 (``int(224 * v / 256)``) and the annotators' masks make the consensus map
(:func:`protocol.flickr_consensus`).

Test lists (first column of a CSV): 249 ids (LVS and EZ-VSL ``metadata/flickr_test.csv``) or
250 (SLAVC ``metadata/flickr_test.csv``: the 249 and ``3908875350``, whose files were not
released with the test set). Without a list, every XML file under Annotations is listed.
"""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from pathlib import Path

from dmc.localization.benchmarks import protocol
from dmc.localization.benchmarks.layout import Benchmark, BenchmarkError, Entry

NAMED = ("xmin", "ymin", "xmax", "ymax")


def read_test_list(path: str | Path) -> list[str]:
    """Ids of a test-list CSV (first column; blank lines skipped)."""
    try:
        with open(path, newline="") as f:
            return [row[0].strip() for row in csv.reader(f) if row and row[0].strip()]
    except FileNotFoundError:
        raise BenchmarkError(f"{path}: no such test list") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BenchmarkError(f"{path}: unreadable test list ({exc})") from None


def _box(el) -> list[int]:
    kids = {c.tag: c.text for c in el}
    texts = [kids[k] for k in NAMED] if all(k in kids for k in NAMED) else [c.text for c in list(el)[1:]]
    if len(texts) != 4:
        raise ValueError(f"a <bbox> with {len(texts)} numbers, not 4")
    values = [int(str(t).strip()) for t in texts]
    if not all(0 <= v <= protocol.FLICKR_PIXELS for v in values) or values[0] >= values[2] or values[1] >= values[3]:
        raise ValueError(f"box {values} outside 0..{protocol.FLICKR_PIXELS} or empty")
    return values


def read_annotation(path: Path) -> list[list[int]]:
    """The annotators' boxes of one XML file, in 256 px coordinates (raises on a corrupt file)."""
    root = ET.parse(path).getroot()
    boxes = [_box(el) for child in root for el in child if el.tag == "bbox"]
    if not boxes:
        raise ValueError("no <bbox>")
    return boxes


def read_flickr(root: str | Path, test_list: list[str] | None = None,
                annotations: str | Path | None = None) -> Benchmark:
    """The Flickr-SoundNet test entries (``annotations``: the Annotations folder, default <root>/Annotations)."""
    ann = Path(annotations) if annotations else Path(root) / "Annotations"
    if not ann.is_dir():
        raise BenchmarkError(f"{ann}: no Annotations folder")
    ids = test_list if test_list is not None else sorted(p.stem for p in ann.glob("*.xml"))
    bench = Benchmark("flickr", n_listed=len(ids))
    for name in ids:
        path = ann / f"{name}.xml"
        if not path.is_file():
            bench.problems.append(f"{name}: no annotation {path}")
            continue
        try:
            boxes = read_annotation(path)
        except (ET.ParseError, ValueError, TypeError, OSError) as exc:
            bench.problems.append(f"{name}: corrupt annotation {path} ({exc})")
            continue
        gt = protocol.flickr_consensus([protocol.flickr_pixels(b) for b in boxes])
        bench.entries.append(Entry(name, gt, len(boxes)))
    return bench
