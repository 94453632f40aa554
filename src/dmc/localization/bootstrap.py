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

:func:`hierarchical_difference` is the two-stage version for comparing two settings over
seeds (``dmc compare``): the seeds are drawn with replacement too, then each drawn seed's clips,
so the interval also holds the variation from one training seed to the next, which the shared
clip draw above leaves out.
"""

from __future__ import annotations

from dataclasses import dataclass

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


# ---------------------------------------------------------------------------------------------
# hierarchical bootstrap: seeds, then clips within each seed
# ---------------------------------------------------------------------------------------------
#: One run's per-unit sums: (num (units x metrics), den (units,)), as :func:`loc_clip_sums` gives.
Sums = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class PairedDifference:
    """A - B under the hierarchical bootstrap (:func:`hierarchical_difference`), one column per metric.

    ``point``: mean over seeds of the per-seed difference; ``per_seed`` (seeds x metrics): each
    seed's ratio(A) - ratio(B) on all its units; ``lo``/``hi``: the percentile interval of
    ``replicates`` (replicates x metrics; nan where a drawn unit set had a zero denominator, left
    out of the interval); ``higher``/``lower``: how many seeds have A > B / A < B (ties in neither).
    """

    point: np.ndarray
    per_seed: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    replicates: np.ndarray
    higher: np.ndarray
    lower: np.ndarray


def _as_sums(s: Sums) -> Sums:
    num, den = np.asarray(s[0], dtype=np.float64), np.asarray(s[1], dtype=np.float64)
    return (num[:, None] if num.ndim == 1 else num), den


def draw_hierarchical(units: list[int], replicates: int = REPLICATES,
                      seed: int = 0) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """The draws of the hierarchical bootstrap, from ``default_rng(seed)`` in this order:

    1. ``seeds`` (replicates x S): for each replicate, S seed indices drawn with replacement from
       the S seeds (``units[s]``: the number of units, e.g. clips, of seed s);
    2. then, for each seed s in order, one row of unit counts for every slot (replicate, k) that drew
       s: ``counts[s]`` (number of such slots x units[s]) in the row-major order of those slots,
       each row ``units[s]`` draws of that seed's units with replacement (as :func:`draw_counts`).

    A seed drawn twice in one replicate gets two independent unit draws.
    """
    rng = np.random.default_rng(seed)
    n_seeds = len(units)
    seeds = rng.integers(0, n_seeds, size=(replicates, n_seeds))
    counts = {}
    for s in range(n_seeds):
        slots = int((seeds == s).sum())
        idx = rng.integers(0, units[s], size=(slots, units[s]))
        c = np.zeros((slots, units[s]), dtype=np.float64)
        np.add.at(c, (np.arange(slots)[:, None], idx), 1.0)
        counts[s] = c
    return seeds, counts


def hierarchical_replicates(a: list[Sums], b: list[Sums], seeds: np.ndarray,
                            counts: dict[int, np.ndarray]) -> np.ndarray:
    """(replicates x metrics) replicates of mean_k [ratio(A_{s_k}) - ratio(B_{s_k})] for given draws
    (:func:`draw_hierarchical`): slot k of a replicate holds seed s_k = ``seeds[r, k]`` and its
    units weighted by that slot's row of ``counts[s_k]``; A and B get the same weights (paired by
    seed and by unit)."""
    a, b = [_as_sums(x) for x in a], [_as_sums(x) for x in b]
    diffs = np.full((*seeds.shape, a[0][0].shape[1]), np.nan)
    for s in range(len(a)):
        where = np.nonzero(seeds == s)          # row-major: the order of counts[s]'s rows
        w = counts[s]
        diffs[where] = ratio(*a[s], w) - ratio(*b[s], w)
    return diffs.mean(axis=1)


def hierarchical_difference(a: list[Sums], b: list[Sums], replicates: int = REPLICATES, seed: int = 0,
                            level: float = LEVEL) -> PairedDifference:
    """Paired difference A - B of ratio-of-sums metrics over seeds, with a two-stage bootstrap interval.

    ``a[s]`` and ``b[s]`` are seed s's runs of the two settings, each (num, den): num (units x
    metrics) and den (units,) per unit (clip, pair table grouped by clip, test recording) as
    :func:`loc_clip_sums`, :func:`dmc.pipeline.heldout.count_sums` give; a[s] and b[s] list the same
    units in the same order (the pairing by unit); seeds may have different units. A metric of a
    run is its ratio of sums, sum num / sum den.

    A replicate draws S seeds with replacement from the S seeds, then for each drawn seed draws
    that seed's units with replacement (the same units for A and B), computes each metric of A and
    of B as the ratio of the drawn units' sums, and averages A - B over the S drawn seeds. The
    interval is the percentile interval at ``level`` of ``replicates`` replicates; the draws come
    from ``numpy.random.default_rng(seed)`` (:func:`draw_hierarchical`): the same inputs and seed
    give the same interval. Seed-level resampling only (no per-unit data): give each seed one unit,
    (num = [[value]], den = [1]). The level of one setting with the same interval: ``b`` with zero
    numerators (and the same denominators).
    """
    if len(a) != len(b) or not len(a):
        raise ValueError(f"paired runs differ in number or are none: {len(a)} and {len(b)}")
    a, b = [_as_sums(x) for x in a], [_as_sums(x) for x in b]
    for s, (x, y) in enumerate(zip(a, b)):
        if x[0].shape != y[0].shape or x[1].shape != y[1].shape or x[0].shape[0] != x[1].shape[0]:
            raise ValueError(f"seed {s}: the two runs' units differ ({x[0].shape} and {y[0].shape})")
    per_seed = np.array([ratio(*x) - ratio(*y) for x, y in zip(a, b)])
    draws = draw_hierarchical([len(x[1]) for x in a], replicates, seed)
    reps = hierarchical_replicates(a, b, *draws)
    bounds = np.array([interval(reps[:, j], level) for j in range(reps.shape[1])])
    return PairedDifference(point=per_seed.mean(0), per_seed=per_seed, lo=bounds[:, 0], hi=bounds[:, 1],
                            replicates=reps, higher=(per_seed > 0).sum(0), lower=(per_seed < 0).sum(0))
