"""Localization metrics (numpy, per pair), against a ground-truth mask (:mod:`dmc.io.ground_truth`).

* cIoU (Senocak et al. 2018, as in their and LVS's evaluation code): the heat map is
  binarised at ``localize.ciou_threshold`` (a value on the normalised map);
  cIoU = |pred ∩ gt| / (|gt| + |pred \\ gt|), i.e. the IoU with the sounding region.
  ``ciou50`` = share of pairs with cIoU >= 0.5; ``auc`` = area under the success-rate
  curve (share of pairs with cIoU >= t) over t = 0, 0.05, .., 1 (21 thresholds,
  trapezoids); ``ciou_mean`` = mean cIoU.
* pointing game: the heat map's argmax pixel (the first one on ties) lies in a sounding
  object's box.
"""

from __future__ import annotations

import numpy as np

SUCCESS_THRESHOLDS = np.linspace(0.0, 1.0, 21)
LOC_FIELDS = ("ciou50", "auc", "ciou_mean", "pointing")


def ciou(heat: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> float:
    """IoU of (heat >= threshold) with the ground-truth mask (nan when the mask is empty)."""
    gt = np.asarray(gt, dtype=bool)
    if not gt.any():
        return float("nan")
    pred = np.asarray(heat) >= threshold
    return float((pred & gt).sum() / (gt.sum() + (pred & ~gt).sum()))


def pointing_hit(heat: np.ndarray, gt: np.ndarray) -> bool:
    """Does the (first) argmax pixel of the heat map lie in the ground-truth mask?"""
    return bool(np.asarray(gt, dtype=bool).flat[int(np.argmax(heat))])


def success_curve(ious, thresholds=SUCCESS_THRESHOLDS) -> np.ndarray:
    ious = np.asarray(ious, dtype=np.float64)
    return np.array([(ious >= t).mean() for t in thresholds])


def auc(ious, thresholds=SUCCESS_THRESHOLDS) -> float:
    """Area under the success-rate curve over IoU thresholds (trapezoids)."""
    y, x = success_curve(ious, thresholds), np.asarray(thresholds, dtype=np.float64)
    return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)))


def score_maps(heats, masks, threshold: float = 0.5) -> dict:
    """:func:`summarize` of heat maps against their ground-truth masks, binarised at ``threshold``."""
    return summarize([ciou(h, g, threshold) for h, g in zip(heats, masks)],
                     [pointing_hit(h, g) for h, g in zip(heats, masks)])


def summarize(ious, hits) -> dict:
    """ciou50, auc, ciou_mean, pointing over the pairs with a ground truth (nan IoUs dropped)."""
    ious, hits = np.asarray(ious, dtype=np.float64), np.asarray(hits, dtype=bool)
    ok = ~np.isnan(ious)
    ious, hits = ious[ok], hits[ok]
    if not len(ious):
        return {f: float("nan") for f in LOC_FIELDS}
    return {"ciou50": float((ious >= 0.5).mean()), "auc": auc(ious), "ciou_mean": float(ious.mean()),
            "pointing": float(hits.mean())}
