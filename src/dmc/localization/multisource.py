"""Multi-source detection: how many distinct sources sound in a clip, from DMC's assignments.

The rule
--------
For one (frame, audio segment) pair DMC gives soft assignments s_ij of the p_a audio and
p_v visual conv-map vectors to the k clusters.  With the reference temperature (z = 1 on
proximities in [-1, 1]) the soft assignments are nearly uniform (the audio assignment
mass sum_i s_ij / p_a stays close to 1/k for every cluster and clip), so a floor on the
soft mass separates nothing.  Their *hard*
version still does: the cluster each vector is closest to, argmax_j s_ij.

1. Hard shares: pi_j = (1 / p) * #{i : argmax_l s_il = j}, per modality (pi^a, pi^v).
2. Effective number of components of a modality: N = exp(H(pi)) = exp(-sum_j pi_j log pi_j),
   1 when every vector falls into one cluster, k when they spread evenly.  A clip with
   more sounding objects has more distinct parts in its spectrogram and its frame, so
   more clusters win vectors.
3. Score of a pair: (N^a + N^v) / 2; score of a clip: the mean over its segments.
4. Count = 1 + #{c : score >= t_c} with cut points t_1 <= ... <= t_{K-1} (K =
   ``localize.max_sources``), i.e. a monotone map from score to 1..K.  The cut points are
   fitted on the train and val videos' ground-truth counts (:func:`fit_cuts`: the exact
   accuracy-maximising monotone cuts, by dynamic programming) and applied unchanged to the
   held-out videos; ``localize.multisource_cuts`` can fix them instead.

The score was chosen on the val split (:mod:`dmc.studies.count_choice`, ``make count-choice``) among
one-modality effective numbers and the counting rule of the task sketch (cluster pairs j with
cos(c_j^a, c_j^v) above a threshold that hold audio mass).

Baselines use the same code: the untrained network (its cut points fitted the same way)
and a constant predictor of the most common count among the training videos.
Everything here is plain numpy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def hard_shares(assign: np.ndarray) -> np.ndarray:
    """Soft assignments (..., p, k) -> share of the p vectors whose largest s_ij is cluster j (..., k)."""
    assign = np.asarray(assign)
    k = assign.shape[-1]
    winners = assign.argmax(-1)                                # (..., p)
    return (winners[..., None] == np.arange(k)).mean(-2)


def effective_number(shares: np.ndarray) -> np.ndarray:
    """exp(entropy) of distributions over the last axis: 1 (one cluster) .. k (uniform)."""
    shares = np.asarray(shares, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(shares > 0, shares * np.log(np.where(shares > 0, shares, 1.0)), 0.0)
    return np.exp(-terms.sum(-1))


def source_score(shares_a: np.ndarray, shares_v: np.ndarray) -> np.ndarray:
    """(N^a + N^v) / 2 for hard shares (..., k) of the audio and the visual vectors."""
    return 0.5 * (effective_number(shares_a) + effective_number(shares_v))


def clip_scores(scores: np.ndarray, videos) -> pd.Series:
    """Mean score per video (index: video, sorted)."""
    return pd.Series(np.asarray(scores, dtype=np.float64)).groupby(np.asarray(videos)).mean().sort_index()


def fit_cuts(scores, labels, max_sources: int) -> list[float]:
    """Cut points t_1 <= .. <= t_{K-1} maximising the accuracy of ``predict_counts`` on (scores, labels).

    Exact, by dynamic programming over the sorted distinct scores (equal scores always get
    the same count); among equally accurate solutions the one found first (smaller counts
    for low scores) is kept.  A cut no training score reaches is +inf, one below all of
    them -inf.  Labels outside 1..K are ignored.
    """
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    K = int(max_sources)
    if K < 1:
        raise ValueError(f"max_sources must be >= 1, got {max_sources}")
    keep = (labels >= 1) & (labels <= K)
    scores, labels = scores[keep], labels[keep].astype(int)
    if K == 1:
        return []
    if len(scores) == 0:
        return [float("inf")] * (K - 1)
    values, group = np.unique(scores, return_inverse=True)
    counts = np.zeros((len(values), K))
    np.add.at(counts, (group, labels - 1), 1)
    # best[g, c]: most correct predictions on groups 0..g with group g predicted as count c+1
    best = np.zeros((len(values), K))
    back = np.zeros((len(values), K), dtype=int)
    best[0] = counts[0]
    for g in range(1, len(values)):
        run_arg = np.zeros(K, dtype=int)
        for c in range(1, K):   # running argmax of best[g-1, :c+1]
            run_arg[c] = c if best[g - 1, c] > best[g - 1, run_arg[c - 1]] else run_arg[c - 1]
        back[g] = run_arg
        best[g] = best[g - 1, run_arg] + counts[g]
    assigned = np.zeros(len(values), dtype=int)
    assigned[-1] = int(np.argmax(best[-1]))
    for g in range(len(values) - 1, 0, -1):
        assigned[g - 1] = back[g, assigned[g]]
    cuts = []
    for c in range(1, K):   # boundary between count c and count c+1 (0-based: c-1 | c)
        above = np.nonzero(assigned >= c)[0]
        if len(above) == 0:
            cuts.append(float("inf"))
        elif above[0] == 0:
            cuts.append(float("-inf"))
        else:
            cuts.append(float((values[above[0] - 1] + values[above[0]]) / 2))
    return cuts


def predict_counts(scores, cuts, max_sources: int) -> np.ndarray:
    """1 + number of cut points at or below each score, clipped to 1..max_sources."""
    scores = np.asarray(scores, dtype=np.float64)
    cuts = np.asarray([c if c is not None else np.inf for c in cuts], dtype=np.float64)
    counts = 1 + (scores[..., None] >= cuts).sum(-1) if len(cuts) else np.ones(scores.shape, int)
    return np.clip(counts, 1, max_sources).astype(int)


def majority_count(labels) -> int:
    """The most common count (the smallest one on ties)."""
    values, n = np.unique(np.asarray(labels, dtype=int), return_counts=True)
    return int(values[np.argmax(n)])


def confusion(actual, predicted, max_sources: int) -> np.ndarray:
    """(K, K) counts: row = actual count - 1, column = predicted count - 1 (others ignored)."""
    K = int(max_sources)
    m = np.zeros((K, K), dtype=int)
    for a, p in zip(np.asarray(actual, dtype=int), np.asarray(predicted, dtype=int)):
        if 1 <= a <= K and 1 <= p <= K:
            m[a - 1, p - 1] += 1
    return m


def accuracy(actual, predicted) -> float:
    actual, predicted = np.asarray(actual), np.asarray(predicted)
    return float((actual == predicted).mean()) if len(actual) else float("nan")
