"""How sharply the multimodal clustering clusters: statistics of the soft assignments s_ij.

For one clip of one modality, row i of ``s`` (p vectors x k clusters, rows summing to 1) is
vector i's soft assignment (supplement eq. 1/7: s_ij = softmax_j(-z d_ij)). Three numbers
say whether the clustering really partitions the vectors or just averages them:

``max_assign``    mean over vectors of max_j s_ij, in [1/k, 1]. 1/k: every vector is spread
                  evenly over the clusters (uniform s, centers = plain sums); 1: hard
                  assignment (the z -> inf limit of eq. 1/7).
``entropy``       mean over vectors of H(s_i.) / log k, in [0, 1] (natural logs). 1: uniform
                  rows; 0: one-hot rows. 0 when k = 1 (nothing to choose).
``clusters_used`` effective number of clusters holding mass: exp(H(m)) with
                  m_j = mean_i s_ij the share of the clip's mass in cluster j, in [1, k].
                  k: the mass is spread evenly over all clusters (which uniform rows also
                  give, so read it together with ``max_assign``); 1: all vectors sit in one
                  cluster (collapse).

Each is computed per clip and averaged over the clips of a batch; :class:`SharpnessMeter`
averages them over many batches, weighting each clip equally.
"""

from __future__ import annotations

import math

import torch

NAMES = ("max_assign", "entropy", "clusters_used")


def _entropy(p: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) along the last axis; 0 log 0 = 0."""
    return -(p * torch.log(p.clamp_min(1e-30))).sum(dim=-1)


def sharpness_per_clip(s: torch.Tensor) -> dict[str, torch.Tensor]:
    """The three statistics for each clip of soft assignments ``s`` (B, p, k) -> {name: (B,)}."""
    if s.dim() != 3:
        raise ValueError(f"expected soft assignments (B, p, k), got shape {tuple(s.shape)}")
    s = s.detach().double()
    k = s.shape[-1]
    h = _entropy(s)                                      # (B, p)
    mass = s.mean(dim=1)                                 # (B, k): m_j = mean_i s_ij
    return {
        "max_assign": s.max(dim=-1).values.mean(dim=1),
        "entropy": (h / math.log(k)).mean(dim=1) if k > 1 else torch.zeros_like(h[:, 0]),
        "clusters_used": torch.exp(_entropy(mass)),
    }


def sharpness(s: torch.Tensor) -> dict[str, float]:
    """Batch means of :func:`sharpness_per_clip` as python floats."""
    return {name: float(v.mean()) for name, v in sharpness_per_clip(s).items()}


class SharpnessMeter:
    """Running per-clip means of the statistics over many batches."""

    def __init__(self):
        self.sums = {name: 0.0 for name in NAMES}
        self.count = 0

    def update(self, s: torch.Tensor) -> None:
        for name, v in sharpness_per_clip(s).items():
            self.sums[name] += float(v.sum())
        self.count += s.shape[0]

    def means(self) -> dict[str, float]:
        return {name: (v / self.count if self.count else float("nan")) for name, v in self.sums.items()}
