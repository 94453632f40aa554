"""Source-conditioned localization with per-source stems, and distinct-source recall.

Stem-conditioned (:func:`stem_scores`): the frame of a multi-source clip with the audio of ONE
sounding source A (its stem alone).  On the normalised heat map (frame size):

* ``pointing``: the (first) argmax pixel lies in A's box (:func:`dmc.localization.metrics.pointing_hit`);
* ``ciou``: cIoU against A's box alone, binarised at ``threshold`` (:func:`dmc.localization.metrics.ciou`,
  ``localize.ciou_threshold``, the headline's rule);
* ``wrong_source``: the argmax lies in another sounding source's box and not in A's.

Distinct-source recall (:func:`distinct_source_recall`): the k per-cluster maps of the MIXTURE
(e.g. the cluster share maps of :mod:`dmc.localization.classmaps`, upsampled to the frame), each
binarised strictly above ``relative`` x its own maximum (DSOL's multi-source rule, 0.5,
:mod:`dmc.localization.classaware`), are matched one-to-one to the sounding objects' boxes by the
Hungarian algorithm on IoU (``scipy.optimize.linear_sum_assignment``, maximising the summed IoU).

Hit rule (chosen here, before any data): a source is *hit* when its matched cluster map has
IoU >= ``iou_hit`` with its box, ``iou_hit`` = 0.3 (DSOL's cIoU@0.3 cut).  The one-to-one match
means one cluster cannot explain two sources.  ``pointing_hits`` counts, for the same match,
the sources whose matched map peaks inside their box (a looser, secondary rule).  With more
sources than clusters the unmatched sources are misses.  Recall = hits / sources.

Boxes are x0, y0, x1, y1 in pixels of the map's frame; a pixel belongs to a box when its centre
lies inside (:func:`dmc.io.ground_truth.box_mask`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from dmc.io.ground_truth import box_mask
from dmc.localization.metrics import ciou, pointing_hit

IOU_HIT = 0.3
RELATIVE = 0.5


class StemScore(NamedTuple):
    pointing: bool
    ciou: float
    wrong_source: bool


class Recall(NamedTuple):
    hits: int             # sources whose matched cluster map has IoU >= iou_hit
    pointing_hits: int    # sources whose matched cluster map peaks inside their box
    sources: int          # sounding sources (the denominator)
    match: list           # (source index, cluster index, IoU) per matched pair


def stem_scores(heat: np.ndarray, box_a, other_boxes, threshold: float) -> StemScore:
    """Scores of a map made with source A's stem alone, against A's box and the other sources' boxes."""
    heat = np.asarray(heat)
    a = box_mask(box_a, heat.shape)
    others = box_mask(other_boxes, heat.shape) if np.size(other_boxes) else np.zeros(heat.shape, bool)
    hit_a = pointing_hit(heat, a)
    return StemScore(hit_a, ciou(heat, a, threshold), bool(pointing_hit(heat, others) and not hit_a))


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """|P & G| / |P | G| (0 when both are empty)."""
    union = np.sum(pred | gt)
    return float(np.sum(pred & gt) / union) if union else 0.0


def distinct_source_recall(cluster_maps: np.ndarray, boxes, relative: float = RELATIVE,
                           iou_hit: float = IOU_HIT) -> Recall:
    """Match k cluster maps (k, H, W) one-to-one to the n sounding boxes (n, 4) by IoU; count hits."""
    maps = np.asarray(cluster_maps, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    shape = maps.shape[-2:]
    if not len(boxes):
        return Recall(0, 0, 0, [])
    gts = [box_mask(b, shape) for b in boxes]
    preds = [m > relative * m.max() for m in maps]
    table = np.array([[iou(p, g) for p in preds] for g in gts])            # (n, k)
    rows, cols = linear_sum_assignment(table, maximize=True)
    match = [(int(r), int(c), float(table[r, c])) for r, c in zip(rows, cols)]
    hits = sum(v >= iou_hit for _, _, v in match)
    points = sum(pointing_hit(maps[c], gts[r]) for r, c, _ in match)
    return Recall(int(hits), int(points), len(boxes), match)
