"""Clip-level bootstrap intervals for the localization, counting and ESC-like metrics.

Every metric the pipeline reports on a test set is a *ratio of sums over clips*:

* pointing = sum_c hits_c / sum_c n_c (n_c: the clip's pairs with a sounding region),
* cIoU@0.5 = sum_c #{cIoU >= 0.5}_c / sum_c n_c, mean cIoU = sum_c (sum of cIoU)_c / sum_c n_c,
* AUC = sum_t w_t sum_c #{cIoU >= t}_c / sum_c n_c (the trapezoid weights w_t of
  :func:`dmc.loc_metrics.auc` over the 21 thresholds: AUC is linear in the success counts),
* a clip-level accuracy (counting, ESC-like) = sum_c correct_c / sum_c 1.

So a clip table of numerators ``num`` (clips x metrics) and denominators ``den`` (clips) is
all a bootstrap needs: a replicate draws the clips with replacement (``counts``: how often
each clip is drawn) and its metric is ``counts @ num / counts @ den``. Runs of several seeds
on the same clips share the draw (the pairing by clip); a replicate's value is the mean over
the seeds, and a paired difference is the mean over seeds of (method A - method B) on the
same drawn clips. The interval is the percentile interval (2.5 %, 97.5 %) of the replicates.
The draws come from ``numpy.random.default_rng(seed)``: the same seed, the same intervals.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dmc.localization.metrics import SUCCESS_THRESHOLDS

#: Localization metrics, as in :data:`dmc.loc_metrics.LOC_FIELDS`.
LOC_METRICS = ("pointing", "ciou50", "auc", "ciou_mean")
REPLICATES = 2000
LEVEL = 0.95


def auc_weights(thresholds=SUCCESS_THRESHOLDS) -> np.ndarray:
    """w_t with auc(ious) = sum_t w_t * mean(ious >= t) (trapezoids over ``thresholds``)."""
    x = np.asarray(thresholds, dtype=np.float64)
    w = np.zeros(len(x))
    dx = np.diff(x)
    w[:-1] += dx / 2
    w[1:] += dx / 2
    return w


def loc_clip_sums(pairs: pd.DataFrame, method: str, clips: list) -> tuple[np.ndarray, np.ndarray]:
    """Per clip (in ``clips`` order): numerators (clips x 4: pointing, ciou50, auc, ciou_mean) and
    the number of pairs with a sounding region, from a per-pair table with ``video``,
    ``<method>_ciou`` (nan: no sounding region) and ``<method>_pointing``."""
    iou = pairs[f"{method}_ciou"].to_numpy(dtype=np.float64)
    ok = ~np.isnan(iou)
    iou0 = np.where(ok, iou, -1.0)
    hit = pairs[f"{method}_pointing"].to_numpy(dtype=np.float64) * ok
    succ = (iou0[:, None] >= SUCCESS_THRESHOLDS[None, :]) & ok[:, None]
    cols = np.column_stack([hit, (iou0 >= 0.5) & ok, succ @ auc_weights(), np.where(ok, iou, 0.0), ok])
    sums = pd.DataFrame(cols).groupby(pairs.video.to_numpy()).sum().reindex(clips).fillna(0.0).to_numpy()
    return sums[:, :4], sums[:, 4]


def draw_counts(n_clips: int, replicates: int = REPLICATES, seed: int = 0) -> np.ndarray:
    """(replicates, n_clips) how often each clip is drawn in each replicate (n_clips draws with
    replacement), from ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_clips, size=(replicates, n_clips))
    counts = np.zeros((replicates, n_clips), dtype=np.float64)
    np.add.at(counts, (np.arange(replicates)[:, None], idx), 1.0)
    return counts


def ratio(num: np.ndarray, den: np.ndarray, counts: np.ndarray | None = None) -> np.ndarray:
    """sum_c w_c num_c / sum_c w_c den_c; ``counts`` None: every clip once (the point estimate),
    else (replicates, clips) weights -> (replicates, metrics)."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    if counts is None:
        return num.sum(0) / den.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        return (counts @ num) / (counts @ den)[..., None] if num.ndim == 2 else (counts @ num) / (counts @ den)


def interval(replicates: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates (nan replicates dropped)."""
    r = np.asarray(replicates, dtype=np.float64)
    r = r[~np.isnan(r)]
    if not len(r):
        return float("nan"), float("nan")
    a = (1 - level) / 2
    lo, hi = np.quantile(r, [a, 1 - a])
    return float(lo), float(hi)


def seed_mean(per_seed: list[tuple[np.ndarray, np.ndarray]], counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(point, replicates) of the mean over seeds of a ratio metric: ``per_seed`` holds one
    (num, den) per seed, all on the same clips in the same order."""
    point = np.mean([ratio(n, d) for n, d in per_seed], axis=0)
    reps = np.mean([ratio(n, d, counts) for n, d in per_seed], axis=0)
    return point, reps


def paired_difference(a: list[tuple[np.ndarray, np.ndarray]], b: list[tuple[np.ndarray, np.ndarray]],
                      counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(point, replicates, per-seed differences) of mean_s [metric(a_s) - metric(b_s)] on the same
    drawn clips; ``a`` and ``b`` are paired by seed (same length, same order)."""
    if len(a) != len(b):
        raise ValueError(f"paired runs differ in number: {len(a)} and {len(b)}")
    per_seed = np.array([ratio(*x) - ratio(*y) for x, y in zip(a, b)])
    reps = np.mean([ratio(*x, counts) - ratio(*y, counts) for x, y in zip(a, b)], axis=0)
    return per_seed.mean(0), reps, per_seed
