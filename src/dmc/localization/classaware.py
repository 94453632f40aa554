"""Class-aware localization metrics, computed the way DSOL's evaluation code computes them.

Followed (read, not copied): DTaoo/Discriminative-Sounding-Objects-Localization (Hu et al.,
NeurIPS 2020, MIT licence), ``music-exp/eval.py`` (MUSIC-Synthetic), ``music-exp/eval_duet.py``
(MUSIC-Duet) and ``music-exp/tools.py`` (``cal_ciou``, MUSIC-Solo).

Per image (one frame with its audio), given one map per class:

1. each class map is resized to 224 x 224 (``cv2.resize`` with its default INTER_LINEAR:
   bilinear, half-pixel centres, no antialiasing = torch's ``align_corners=False``);
2. the ground truth of a sounding class: ``gtmap[int(y):int(y + h), int(x):int(x + w)] = 1`` for
   each of its boxes, (x, y, w, h) normalised to [0, 1] and multiplied by 224 (``int`` truncates);
3. the class map is binarised *strictly above* r x its own maximum, with
   r = 0.5 in eval.py (Synthetic: several sounding objects), 0.2 in eval_duet.py (Duet) and
   0.1 in tools.py (Solo: one source) -- :data:`RELATIVE_THRESHOLDS`; for a corpus that mixes such
   scenes, :func:`scene_relative` picks r per image from the scene it resembles;
4. cIoU of the class = |P & G| / (|G| + |P \\ G|) (= the IoU of P and G);
5. cIoU of the image = the mean over the image's sounding classes;
6. NSA of the image = the mean, over the classes that do NOT sound in it (absent ones
   included: eval.py loops over all 11 classes), of the share of the 224 x 224 pixels whose map
   value is <= 0.2 -- an absolute threshold: DSOL's class maps are a softmax over classes, in [0, 1].

Over images: success rate at t_i = 0.05 * i (i = 0..20) = share of images with cIoU >= t_i;
``cIoU@0.3`` = the rate at i = 6 (the float 0.05 * 6 is 0.30000000000000004, so an image at
exactly 0.3 does not count, as in DSOL); AUC = ``sklearn.metrics.auc(t, rates)`` (trapezoids);
NSA = the mean over images.

Where this differs from the DSOL files, and why:

* DSOL sums the maps of all clusters assigned to a sounding class but scores NSA on single cluster
  maps, so a sounding class's second cluster counts as "silent". Here every class has one map
  (:func:`dmc.localization.classmaps.class_maps` sums its clusters) and NSA is scored on the maps
  of the silent *classes*. With one cluster per class (the case DSOL evaluates) the two agree.
* An image without a sounding object gets no cIoU (skipped, as eval_duet.py and tools.py do;
  eval.py's synthetic set always has one), and one without a silent class no NSA.

Added beside DSOL's NSA (not part of it): ``nsa_drawn``, the same mean restricted to the silent
classes that are drawn in the frame (visible but silent objects), which DSOL's NSA mixes with
classes absent from the frame.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

SIZE = 224                                   # DSOL resizes every map to 224 x 224
RELATIVE_THRESHOLDS = {"synthetic": 0.5, "duet": 0.2, "solo": 0.1}   # r of step 3, per DSOL file
NSA_THRESHOLD = 0.2                          # eval.py / eval_duet.py: thresvalue = 0.2
SUCCESS_THRESHOLDS = 0.05 * np.arange(21)    # 0.05 * i, i = 0..20 (same floats as DSOL's list)
CIOU30_INDEX = 6                             # DSOL prints results[6] as cIoU@0.3


class ImageScore(NamedTuple):
    """One image: cIoU (mean over sounding classes; nan without one), NSA (mean over silent
    classes; nan without one), NSA over the drawn silent classes only (nan without one), and how
    many classes entered each."""

    ciou: float
    nsa: float
    n_sounding: int
    n_silent: int
    nsa_drawn: float = float("nan")
    n_drawn_silent: int = 0


def scene_relative(n_sounding: int, n_drawn: int) -> float:
    """r of the DSOL file whose data set the image resembles: one sounding object (Solo, tools.py) 0.1;
    two objects, both sounding (Duet, eval_duet.py) 0.2; otherwise (Synthetic, eval.py) 0.5."""
    if n_sounding == 1:
        return RELATIVE_THRESHOLDS["solo"]
    if n_sounding == n_drawn == 2:
        return RELATIVE_THRESHOLDS["duet"]
    return RELATIVE_THRESHOLDS["synthetic"]


def resize_map(m: np.ndarray, size: int = SIZE) -> np.ndarray:
    """Map(s) (..., h, w) -> (..., size, size), bilinear as cv2.resize INTER_LINEAR (float64)."""
    m = np.asarray(m, dtype=np.float64)
    lead = m.shape[:-2]
    t = torch.from_numpy(np.ascontiguousarray(m.reshape(-1, 1, *m.shape[-2:])))
    up = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    return up.numpy().reshape(*lead, size, size)


def xyxy_to_xywh(boxes, frame_wh: tuple[float, float]) -> np.ndarray:
    """Pixel boxes (n, 4) x0, y0, x1, y1 of a (W, H) frame -> DSOL's normalised (x, y, w, h)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    W, H = frame_wh
    return np.stack([b[:, 0] / W, b[:, 1] / H, (b[:, 2] - b[:, 0]) / W, (b[:, 3] - b[:, 1]) / H], axis=1)


def gt_map(boxes_xywh, size: int = SIZE) -> np.ndarray:
    """(size, size) 0/1 map of normalised (x, y, w, h) boxes, truncated with int() as DSOL does."""
    g = np.zeros((size, size))
    for box in np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4):
        x, y, w, h = box * size
        g[int(y):int(y + h), int(x):int(x + w)] = 1
    return g


def class_ciou(predmap: np.ndarray, gtmap: np.ndarray, relative: float) -> float:
    """cIoU of a (resized) class map against its ground truth, binarised at > relative x max."""
    pred = predmap > relative * np.max(predmap)
    gt = gtmap > 0
    return float(np.sum(pred & gt) / (np.sum(gt) + np.sum(pred & ~gt)))


def silent_share(predmap: np.ndarray, threshold: float = NSA_THRESHOLD) -> float:
    """Share of the (resized) map's pixels whose value is <= ``threshold`` (DSOL's NSA of one map)."""
    return float(np.sum(predmap <= threshold) / predmap.size)


def score_image(class_maps: np.ndarray, boxes_xywh, box_classes, sounding, relative: float = 0.5,
                nsa_threshold: float = NSA_THRESHOLD, size: int = SIZE) -> ImageScore:
    """DSOL's per-image cIoU and NSA.

    class_maps: (C, h, w), one map per class (index = class);
    boxes_xywh: (n, 4) normalised boxes of the objects drawn in the frame; box_classes: (n,) class
    index of each; sounding: (n,) bool. A class sounds when one of its objects does; its ground
    truth is the boxes of its sounding objects. Every other class (absent or silent) enters NSA.
    """
    class_maps = np.asarray(class_maps)
    boxes = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    box_classes, sounding = np.asarray(box_classes, dtype=int), np.asarray(sounding, dtype=bool)
    heard = sorted(set(box_classes[sounding].tolist()))
    if any(c < 0 or c >= len(class_maps) for c in heard):
        raise ValueError(f"a sounding box's class is outside 0..{len(class_maps) - 1}: {heard}")
    silent = [c for c in range(len(class_maps)) if c not in heard]
    maps = resize_map(class_maps, size)
    cious = [class_ciou(maps[c], gt_map(boxes[sounding & (box_classes == c)], size), relative) for c in heard]
    shares = {c: silent_share(maps[c], nsa_threshold) for c in silent}
    drawn = [shares[c] for c in sorted(set(box_classes.tolist())) if c in shares]

    def mean(x):
        return float(np.mean(x)) if len(x) else float("nan")

    return ImageScore(mean(cious), mean(list(shares.values())), len(heard), len(silent), mean(drawn), len(drawn))


def success_rates(cious, thresholds=SUCCESS_THRESHOLDS) -> np.ndarray:
    """Share of images with cIoU >= t for each threshold (nan cIoUs -- no sounding class -- dropped)."""
    c = np.asarray(cious, dtype=np.float64)
    c = c[~np.isnan(c)]
    if not len(c):
        return np.full(len(thresholds), np.nan)
    return np.array([np.sum(c >= t) / len(c) for t in thresholds])


def auc_weights(thresholds=SUCCESS_THRESHOLDS) -> np.ndarray:
    """w with AUC = sum_i w_i rate_i (trapezoids, as sklearn.metrics.auc on increasing x)."""
    x = np.asarray(thresholds, dtype=np.float64)
    w = np.zeros(len(x))
    w[:-1] += np.diff(x) / 2
    w[1:] += np.diff(x) / 2
    return w


def auc(cious, thresholds=SUCCESS_THRESHOLDS) -> float:
    """Area under the success-rate curve over t = 0, 0.05, .., 1."""
    return float(auc_weights(thresholds) @ success_rates(cious, thresholds))


def ciou_at_30(cious) -> float:
    """DSOL's cIoU@0.3: the success rate at SUCCESS_THRESHOLDS[6]."""
    return float(success_rates(cious)[CIOU30_INDEX])


def summarize(scores: list[ImageScore]) -> dict:
    """ciou30, auc, nsa (mean over images with a silent class), nsa_drawn (over images with a drawn
    silent class), n_images (with a sounding class)."""
    c = np.array([s.ciou for s in scores], dtype=np.float64)

    def nanmean(x):
        x = np.asarray(x, dtype=np.float64)
        return float(np.nanmean(x)) if (~np.isnan(x)).any() else float("nan")

    return {"ciou30": ciou_at_30(c), "auc": auc(c), "nsa": nanmean([s.nsa for s in scores]),
            "nsa_drawn": nanmean([s.nsa_drawn for s in scores]), "n_images": int((~np.isnan(c)).sum())}
