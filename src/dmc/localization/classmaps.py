"""DMC's class-aware maps: each cluster's share of the heat, summed over the clusters of a class.

DMC's heat map of a pair (:mod:`dmc.localization.heatmaps`) is heat_i = sum_j w_j m_ij with the
per-cluster map m_ij of ``localize.heatmap_rule`` and the audio-visual agreement weights
w_j = softmax_j(tau cos(c_j^a, c_j^v)).  The map of cluster j is its share of that heat,

    a_ij = w_j m_ij / sum_l w_l m_il        (0 where the heat is 0),

so the k cluster maps lie in [0, 1] and sum to 1 at every position, like DSOL's class maps
(a softmax over classes, ``music-exp/test_stage_two.py`` of
DTaoo/Discriminative-Sounding-Objects-Localization), on which DSOL's NSA applies an absolute
threshold of 0.2 (:mod:`dmc.localization.classaware`).  A cluster is high where it holds most of the
heat, low where others do or where w_j is small (its audio centre disagrees with its visual one).

The map of class c is the sum of the maps of the clusters mapped to c
(:mod:`dmc.localization.class_mapping`), as DSOL's eval.py sums ``pred[k][row == 1]``; a class without a
cluster gets a zero map.

Gate (``localize.class_map_gate``, :data:`GATES`).  A share is a ratio, so where no cluster holds any
heat (the background, a silent object whose cluster the audio does not weight) the cluster with the
largest w_j m_ij still gets a share near 1.  DSOL gates its object maps by its sounding-area map
before the class softmax (``obj_mask = obj_mask * av_map_``, ``music-exp/model/location_model.py``
of the same repository), so that nothing is high where nothing sounds.  ``heat`` does the same with
DMC's own sounding map, the pair's heat map min-max normalised over its positions:

    g_ij = a_ij * (heat_i - min_l heat_l) / (max_l heat_l - min_l heat_l)     (0 for a constant heat)

i.e. cluster j's part of the heat in units of the frame's range of heat; the g_ij sum over j to
the normalised heat map.  ``none`` keeps a_ij.  The gate is applied at the conv-map resolution
(the class maps are resized to 224 x 224 after it, :mod:`dmc.localization.classaware`); it changes
no heat map, so the headline's pointing, cIoU and the stem-conditioned scores are the same either
way.  Which one the pipeline uses is chosen on validation data
(:mod:`dmc.studies.multisource_val`).
"""

from __future__ import annotations

import numpy as np


def cluster_shares(m: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """a_ij = w_j m_ij / sum_l w_l m_il for per-cluster maps m (..., p, k) and weights w (..., k)."""
    m, weight = np.asarray(m, dtype=np.float64), np.asarray(weight, dtype=np.float64)
    part = m * weight[..., None, :]
    total = part.sum(-1, keepdims=True)
    return np.divide(part, total, out=np.zeros_like(part), where=total > 0)


GATES = ("none", "heat")


def gate_by_heat(shares: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """g_ij = a_ij * (heat_i - min heat) / (max heat - min heat) for shares (..., p, k) and heat (..., p);
    a pair whose heat is constant gets all zeros."""
    shares, heat = np.asarray(shares, dtype=np.float64), np.asarray(heat, dtype=np.float64)
    lo, hi = heat.min(-1, keepdims=True), heat.max(-1, keepdims=True)
    scaled = np.divide(heat - lo, hi - lo, out=np.zeros_like(heat), where=hi > lo)
    return shares * scaled[..., None]


def gated_shares(m: np.ndarray, weight: np.ndarray, gate: str = "none") -> np.ndarray:
    """The cluster maps of per-cluster maps m (..., p, k) with weights w (..., k): a_ij (``none``) or
    g_ij (``heat``, with heat_i = sum_j w_j m_ij)."""
    a = cluster_shares(m, weight)
    if gate == "none":
        return a
    if gate == "heat":
        heat = (np.asarray(m, dtype=np.float64) * np.asarray(weight, dtype=np.float64)[..., None, :]).sum(-1)
        return gate_by_heat(a, heat)
    raise ValueError(f"class map gate {gate!r} is not one of {', '.join(GATES)}")


def class_maps(cluster_maps: np.ndarray, cluster_to_class, n_classes: int) -> np.ndarray:
    """Per-cluster maps (..., k, h, w) -> per-class maps (..., C, h, w): the sum over each class's
    clusters (``cluster_to_class[j]`` = class of cluster j, -1 for none)."""
    cm = np.asarray(cluster_maps, dtype=np.float64)
    owner = np.asarray(cluster_to_class, dtype=int)
    if owner.shape != (cm.shape[-3],):
        raise ValueError(f"cluster_to_class has {owner.shape[0]} entries for {cm.shape[-3]} cluster maps")
    onehot = (owner[:, None] == np.arange(n_classes)[None, :]).astype(np.float64)   # (k, C)
    return np.einsum("...khw,kc->...chw", cm, onehot)
