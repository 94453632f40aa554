"""The published localization protocol, one function per rule.

Followed code (read, not copied):

* LVS, github.com/hche11/Localizing-Visual-Sounds-the-Hard-Way ``utils.py`` (``testset_gt``,
  ``Evaluator.cal_CIOU``) and ``test.py`` (the median threshold, the success-rate AUC);
* EZ-VSL, github.com/stoneMo/EZ-VSL ``utils.py`` (``Evaluator``: ``finalize_AP50`` = share of
  cIoU >= 0.5, ``finalize_cIoU`` = mean, ``finalize_AUC``), ``test.py`` (the map upsampled to
  224 x 224, ``normalize_img``, threshold = the sorted map's value at index N/2, positive where
  the map is >= it) and ``datasets.py`` (``load_all_bboxes``, ``bbox2gtmap``);
* SLAVC, github.com/stoneMo/SLAVC ``utils.py`` (``EvaluatorFull``: AP and F1 of the extended sets,
  one mismatched-audio clip with no sounding object per clip) and ``test.py`` (the confidence:
  mean of the top quarter of the map).

Where LVS and EZ-VSL differ, EZ-VSL's choice is the default (its ``>=`` at the median value;
LVS keeps only values strictly above it): it is the one under which a constant map scores the
published whole-image baseline (the ``strict`` switch gives LVS's).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from dmc.localization import metrics

SIZE = 224                       # every map and ground truth is scored at 224 x 224
FLICKR_PIXELS = 256              # Flickr-SoundNet boxes are in 256 x 256 pixel coordinates
# the success-rate thresholds exactly as written in the published code: 0.05 * i, i = 0..20
THRESHOLDS = np.array([0.05 * i for i in range(21)])


# -- the predicted map ------------------------------------------------------------------------------
def upsample(heat: np.ndarray, size: int = SIZE) -> np.ndarray:
    """(h, w) map -> (size, size), bilinear with aligned corners (EZ-VSL test.py ``F.interpolate``)."""
    t = torch.from_numpy(np.ascontiguousarray(heat, dtype=np.float64))[None, None]
    return F.interpolate(t, size=(size, size), mode="bilinear", align_corners=True)[0, 0].numpy()


def min_max(heat: np.ndarray) -> np.ndarray:
    """(v - min) / (max - min); a constant map is returned unchanged (EZ-VSL/LVS ``normalize_img``)."""
    heat = np.asarray(heat, dtype=np.float64)
    lo, hi = heat.min(), heat.max()
    return (heat - lo) / (hi - lo) if hi - lo != 0 else heat


def median_threshold(pred: np.ndarray) -> float:
    """The value at index N/2 of the sorted map: the top half of the pixels lie at or above it."""
    flat = np.sort(np.asarray(pred).ravel())
    return float(flat[int(flat.size * 0.5)])


def binarize(pred: np.ndarray, threshold: float | None = None, strict: bool = False) -> np.ndarray:
    """0/1 prediction: pred >= threshold (``strict``: >, as LVS test.py); ``None``: the median threshold."""
    thr = median_threshold(pred) if threshold is None else threshold
    return (pred > thr if strict else pred >= thr).astype(np.float64)


def prepare(heat: np.ndarray, threshold: float | None = None, strict: bool = False) -> np.ndarray:
    """A model's map as the protocol scores it: upsampled to 224, min-max normalised, binarised
    (at its median by default, or at a fixed value of the normalised map)."""
    heat = np.asarray(heat, dtype=np.float64)
    if heat.shape != (SIZE, SIZE):
        heat = upsample(heat)
    return binarize(min_max(heat), threshold, strict)


# -- ground truth -------------------------------------------------------------------------------------
def _paint(boxes, size: int = SIZE) -> list[np.ndarray]:
    out = []
    for x1, y1, x2, y2 in boxes:
        m = np.zeros((size, size))
        m[y1:y2, x1:x2] = 1          # rows y1..y2-1, columns x1..x2-1 (LVS utils.py testset_gt)
        out.append(m)
    return out


def flickr_pixels(box, pixels: int = FLICKR_PIXELS, size: int = SIZE) -> tuple[int, ...]:
    """A Flickr box of 4 integers in 256 x 256 coordinates -> int(224 * v / 256) (LVS testset_gt)."""
    return tuple(int(size * int(v) / pixels) for v in box)


def flickr_consensus(boxes, size: int = SIZE) -> np.ndarray:
    """Consensus map of the annotators' boxes (224 px): the sum of their box masks / 2, clipped at 1
    (EZ-VSL datasets.py bbox2gtmap 'flickr'): a pixel two annotators agree on counts fully."""
    gt = np.zeros((size, size))
    for m in _paint(boxes, size):
        gt += m
    return np.minimum(gt / 2, 1.0)


def vggss_pixels(box, size: int = SIZE) -> tuple[int, ...]:
    """A VGG-SS box normalised to [0, 1] -> int(224 * clip(v, 0, 1)): the corrupt values
    (about -2.9e16 in 12 entries) become 0 (EZ-VSL datasets.py load_all_bboxes)."""
    return tuple(int(v) for v in np.clip(np.asarray(box, dtype=np.float64), 0, 1) * size)


def union_map(boxes, size: int = SIZE) -> np.ndarray:
    """Binary union of the boxes (224 px) (EZ-VSL bbox2gtmap 'vggss')."""
    gt = np.zeros((size, size))
    for m in _paint(boxes, size):
        gt = np.maximum(gt, m)
    return gt


# -- scores -------------------------------------------------------------------------------------------
def ciou(pred: np.ndarray, gt: np.ndarray) -> float:
    """cIoU = sum(pred * gt) / (sum(gt) + sum(pred * [gt = 0])) of a 0/1 prediction against a
    (consensus) ground-truth map (LVS/EZ-VSL ``cal_CIOU``). With a binary gt it is
    :func:`dmc.localization.metrics.ciou`. An all-zero gt (two published VGG-SS entries whose boxes
    are empty at 224 px) scores 0 against any non-empty prediction, as in the official code; nan
    only when both are empty (0 / 0)."""
    gt, pred = np.asarray(gt, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    den = gt.sum() + (pred * (gt == 0)).sum()
    return float((pred * gt).sum() / den) if den else float("nan")


def summarize(ious) -> dict:
    """ciou50 (share of images with cIoU >= 0.5, the papers' "cIoU"), auc (sklearn ``auc`` of the
    success rate over 0, 0.05, .., 1: the trapezoids of :func:`metrics.auc`), ciou_mean, n."""
    ious = np.asarray(ious, dtype=np.float64)
    if not len(ious):
        return {"ciou50": float("nan"), "auc": float("nan"), "ciou_mean": float("nan"), "n": 0}
    return {"ciou50": float((ious >= 0.5).mean()), "auc": metrics.auc(ious, THRESHOLDS),
            "ciou_mean": float(ious.mean()), "n": int(len(ious))}


def confidence(pred: np.ndarray) -> float:
    """SLAVC test.py's confidence of a normalised map: the mean of its top quarter of pixels."""
    flat = np.sort(np.asarray(pred, dtype=np.float64).ravel())
    return float(flat[-(flat.size // 4):].mean())


def precision_recall(n_boxes, ious, conf, conf_thr: float, iou_thr: float = 0.5) -> tuple[float, float]:
    """SLAVC utils.py ``calc_precision_recall``: a clip with boxes and conf >= thr is a true positive
    when its cIoU >= iou_thr, else a false positive; below thr, a false negative; a clip with no
    sounding object (a mismatched-audio negative) and conf >= thr is a false positive."""
    tp = fp = fn = 0
    for nb, iou, c in zip(n_boxes, ious, conf):
        if c >= conf_thr:
            if nb and iou >= iou_thr:
                tp += 1
            else:
                fp += 1
        elif nb:
            fn += 1
    return (1.0 if tp + fp == 0 else tp / (tp + fp)), (1.0 if tp + fn == 0 else tp / (tp + fn))


def average_precision(n_boxes, ious, conf, iou_thr: float = 0.5) -> float:
    """SLAVC ``calc_ap``: precision / recall at the sorted confidences (but the largest), from the
    highest down (every max(1, n // 200)-th), precision made monotone from the right, summed over
    the recall steps."""
    conf = np.asarray(conf, dtype=np.float64)
    step = max(1, len(conf) // 200)
    pr = [precision_recall(n_boxes, ious, conf, t, iou_thr) for t in np.sort(conf)[:-1][::-step]]
    p, r = [x[0] for x in pr], [x[1] for x in pr]
    pmax = [max(p[i:]) for i in range(len(p))]
    return float(sum(pmax[i] * (r[i + 1] - r[i]) for i in range(len(pmax) - 1)))


def max_f1(n_boxes, ious, conf, iou_thr: float = 0.5) -> float:
    """The largest F1 over SLAVC's confidence grid (every max(1, n // 10)-th sorted confidence,
    ``finalize_stats``)."""
    grid = sorted(conf)[::max(1, len(conf) // 10)]
    f1 = []
    for t in grid:
        p, r = precision_recall(n_boxes, ious, conf, t, iou_thr)
        f1.append(2 * p * r / (p + r) if p + r > 0 else 0.0)
    return float(max(f1)) if f1 else float("nan")
