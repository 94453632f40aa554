"""The cluster -> class mapping, learned on training data only.

DSOL (DTaoo/Discriminative-Sounding-Objects-Localization, ``music-exp/match_cluster.py``) builds
``label2cluster[c, j]`` = the share of class c's samples that fall in cluster j, then keeps the
best of 10^6 random 0/1 matrices in which every class gets at least one cluster and every
cluster exactly one class, scoring sum(matrix * label2cluster) (and notes the result "may need to
check manually").  Here:

1. **Contingency** (:func:`contingency`): M[c, j] = the mass of cluster j at the positions of
   class c's objects, summed over the training pairs (the caller picks the mass; the class-aware
   evaluation uses the one-hot winner of the cluster share maps of
   :mod:`dmc.localization.classmaps` at each conv-map position inside a sounding object's box:
   hard counts like DSOL's pseudo labels, soft assignments being near uniform at z = 1).
2. **Row shares** L[c, j] = M[c, j] / sum_l M[c, l], DSOL's label2cluster.
3. **Matching** (:func:`match`): DSOL's objective solved exactly instead of by random search.
   Hungarian (``scipy.optimize.linear_sum_assignment``) rather than a per-cluster argmax because an
   argmax can leave a class with no cluster at all (two classes' objects landing mostly in one
   cluster), and a class without a map can never be localized; the Hungarian form guarantees
   every class a cluster when k >= C.  With k >= C it solves "every cluster to one class, every
   class >= 1 cluster, maximise sum L" on a k x k matrix: C rows are one mandatory slot per class
   (value L[c, j]), k - C rows are free slots whose value for cluster j is max_c L[c, j] (a
   cluster in a free slot joins its best class).  Any feasible DSOL matrix is such an assignment
   and vice versa, so the optimum is DSOL's.  With k < C it is the one-to-one matching of the
   C x k matrix (k classes get a cluster, the others none: -1).

Ties go to the lower index (scipy's and numpy's order).  Nothing here reads test data: the
caller passes training pairs only.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def contingency(mass: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """M (C, k): mass (N, p, k) of cluster j at each position, labels (N, p) class per position
    (-1: background or ambiguous, ignored), summed per class."""
    mass, labels = np.asarray(mass, dtype=np.float64), np.asarray(labels, dtype=int)
    if mass.shape[:-1] != labels.shape:
        raise ValueError(f"mass {mass.shape} and labels {labels.shape} do not align")
    M = np.zeros((n_classes, mass.shape[-1]))
    ok = (labels >= 0) & (labels < n_classes)
    np.add.at(M, labels[ok], mass[ok])
    return M


def row_shares(M: np.ndarray) -> np.ndarray:
    """L[c, j] = M[c, j] / sum_l M[c, l] (a class never seen keeps a zero row)."""
    M = np.asarray(M, dtype=np.float64)
    total = M.sum(1, keepdims=True)
    return np.divide(M, total, out=np.zeros_like(M), where=total > 0)


def match(L: np.ndarray) -> np.ndarray:
    """cluster_to_class (k,) maximising sum_j L[class(j), j] (module docstring, step 3)."""
    L = np.asarray(L, dtype=np.float64)
    C, k = L.shape
    if k < C:
        rows, cols = linear_sum_assignment(L, maximize=True)
        out = np.full(k, -1, dtype=int)
        out[cols] = rows
        return out
    value = np.vstack([L, np.tile(L.max(0), (k - C, 1))])          # (k, k): C mandatory + k - C free slots
    rows, cols = linear_sum_assignment(value, maximize=True)
    out = np.empty(k, dtype=int)
    for r, j in zip(rows, cols):
        out[j] = r if r < C else int(np.argmax(L[:, j]))
    return out


def objective(L: np.ndarray, cluster_to_class) -> float:
    """DSOL's score sum(indexs * label2cluster) of a mapping."""
    L, owner = np.asarray(L, dtype=np.float64), np.asarray(cluster_to_class, dtype=int)
    return float(sum(L[c, j] for j, c in enumerate(owner) if c >= 0))


def learn(mass: np.ndarray, labels: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(cluster_to_class, contingency M) from training pairs (steps 1-3)."""
    M = contingency(mass, labels, n_classes)
    return match(row_shares(M)), M


def position_labels(boxes, box_classes, sounding, grid: tuple[int, int], frame: tuple[int, int]) -> np.ndarray:
    """(h * w,) class of each conv-map position (row-major): the class of the sounding object whose
    box (x0, y0, x1, y1 in pixels of an (H, W) = ``frame``) holds the position's centre; -1 for
    background and for positions in the boxes of two different classes (ambiguous)."""
    h, w = grid
    H, W = frame
    cy = (np.arange(h) + 0.5) * H / h
    cx = (np.arange(w) + 0.5) * W / w
    out = np.full((h, w), -1, dtype=int)
    seen = np.zeros((h, w), dtype=bool)
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    for (x0, y0, x1, y1), c, s in zip(b, np.asarray(box_classes, dtype=int), np.asarray(sounding, dtype=bool)):
        if not s:
            continue
        inside = ((cy >= y0) & (cy < y1))[:, None] & ((cx >= x0) & (cx < x1))[None, :]
        clash = inside & seen & (out != c)
        out[inside & ~seen] = c
        out[clash] = -2                                   # marked ambiguous for good
        seen |= inside
    out[out == -2] = -1
    return out.reshape(-1)
