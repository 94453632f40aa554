"""Multimodal clustering (DMC supplement, eq. 1-12).

For one clip of one modality, the conv map gives vectors u_1..u_p. They are projected into
k shared spaces (one per cluster) and clustered there by a few fixed-point iterations, giving
one center c_j per space. Audio center j and visual center j are later compared by the loss.

Derivation in short (supplement):

- distance of vector i to center j:            d_ij = -<u_i, c_j / ||c_j||>
- objective (each vector to its nearest center): min  sum_i min_j d_ij
  with min_j d_ij = -max_j(-d_ij) made differentiable by eq. 1 / 7:
      max{x_1..x_n} ~= (1/z) log sum_i exp(z x_i)      (exact as z -> +inf)
- setting its gradient w.r.t. c_j to zero gives sum_i s_ij dd_ij/dc_j = 0 with the soft
  assignment  s_ij = exp(-z d_ij) / sum_l exp(-z d_il)        (softmax over clusters j)
- eq. 8-11 turn that into eq. 12:  c_j / ||c_j|| = sum_i s_ij u_i / ||sum_i s_ij u_i||,
  i.e. the center points along the assignment-weighted sum of the vectors.

s depends on c and c on s, so (like dynamic routing in capsule nets, supplement sec. 3) a
fixed number of iterations alternates the two, starting from uniform assignments
(``init="uniform"``, the supplement's start). ``init="spread"`` starts instead from k of the
clip's own vectors as centers (k-means style: vector i_j = floor((j + 1/2) p / k) in space j),
so the clusters differ from the first iteration on.

Squash placement (the reference code squashes twice; the supplement does not say):
``squash="both"`` squashes the conv vectors, projects, and squashes the projections;
``"projected"`` squashes only the projections (the conv vectors keep their norms, so the
first squash no longer acts as an L2 normalisation); ``"input"`` squashes only the conv
vectors (the projections are not bounded by 1); ``"none"`` squashes nothing (the supplement's
sec. 3: DMC has no squash). ``make structure`` and ``src/dmc/studies/clustering.py`` compare them.

In the k shared spaces u_i is replaced by its projection u^_ij = W_j u_i, so the updates read
s_ij = softmax_j(-z d_ij), c_j = sum_i s_ij u^_ij, d_ij = -<u^_ij, c_j / ||c_j||>.

``temperature`` is the paper's z; it multiplies the logits, so it is really a *precision*:
a larger z gives harder assignments (z -> inf: hard k-means-like assignment).

Everything is differentiable; gradients flow through all iterations into the projection and
the subnets (the iterations have no parameters of their own).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn

EPS = 1e-8
SQUASH = ("both", "projected", "input", "none")   # where the squash goes (module docstring)
INIT = ("uniform", "spread")               # how the first centers are formed


def _up(x: torch.Tensor) -> torch.Tensor:
    """x in at least float32 precision (half-precision norms under autocast under/overflow)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _norm(x: torch.Tensor, dim: int, eps: float) -> torch.Tensor:
    """||x|| along ``dim`` in at least float32, clamped at ``eps``."""
    return torch.linalg.vector_norm(_up(x), dim=dim, keepdim=True).clamp_min(eps)


def squash(x: torch.Tensor, dim: int = -1, gain: float = 10.0, eps: float = EPS) -> torch.Tensor:
    """Bound vector norms to [0, 1): squash(x) = x * tanh(gain * ||x||) / ||x|| (reference code).

    Keeps the direction; norms above ~0.3 map to ~1, small norms grow almost linearly
    (slope ``gain``). The norm is clamped at ``eps`` so x = 0 maps to 0 with finite gradients.
    """
    norm = _norm(x, dim, eps)
    return (_up(x) * (torch.tanh(gain * norm) / norm)).to(x.dtype)


def normalize(x: torch.Tensor, dim: int = -1, eps: float = EPS) -> torch.Tensor:
    """x / ||x|| along ``dim`` (zero vectors stay zero)."""
    return (_up(x) / _norm(x, dim, eps)).to(x.dtype)


class Clusters(NamedTuple):
    """Result of clustering one batch of one modality.

    centers: (B, k, d)  c_j after the last iteration (eq. 12, unnormalized weighted sums).
    assign:  (B, p, k)  s_ij that produced those centers (rows sum to 1 over j).
    dist:    (B, p, k)  d_ij = -<u^_ij, c_j/||c_j||> w.r.t. the returned centers
                        (in [-1, 1] only when the projections are squashed, ||u^_ij|| < 1; with
                        train.squash none they keep the activations' scale).
    """

    centers: torch.Tensor
    assign: torch.Tensor
    dist: torch.Tensor


def distances(uhat: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """d_ij = -<u^_ij, c_j / ||c_j||>  for u^ (B, p, k, d), centers (B, k, d) -> (B, p, k).

    The centers may come from the other modality (e.g. visual vectors vs. audio centers to
    localize the sounding object).
    """
    return -torch.einsum("bpkd,bkd->bpk", uhat, normalize(centers))


class MultimodalClustering(nn.Module):
    """Project vectors into k shared spaces and cluster them there (supplement eq. 1-12).

    Args:
        in_dim: channels C of the input vectors u_i.
        clusters: k, number of clusters (= number of shared spaces).
        dim: d, dimension of each space.
        iterations: number of center computations (>= 1); 1 means plain uniform-weighted sums.
        temperature: z of eq. 1/7 (a precision: larger -> harder assignments).
        squash: where the squash goes, one of :data:`SQUASH` (module docstring).
        init: the first assignments, one of :data:`INIT` (module docstring).

    The same module (hence the same projection W) must be used for both modalities so that
    cluster j means the same thing for audio and vision.
    """

    def __init__(
        self,
        in_dim: int,
        clusters: int = 10,
        dim: int = 16,
        iterations: int = 3,
        temperature: float = 1.0,
        squash: str = "both",
        init: str = "uniform",
    ):
        super().__init__()
        if clusters < 1 or dim < 1 or in_dim < 1:
            raise ValueError(f"in_dim, clusters and dim must be >= 1, got {in_dim}, {clusters}, {dim}")
        if iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {iterations}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if squash not in SQUASH or init not in INIT:
            raise ValueError(f"squash must be one of {SQUASH} and init one of {INIT}, got {squash!r}, {init!r}")
        self.squash, self.init = squash, init
        self.in_dim = in_dim
        self.clusters = clusters
        self.dim = dim
        self.iterations = iterations
        self.temperature = float(temperature)
        # W_1..W_k stacked into one matrix: u^_ij = W_j u_i (no bias), shared by both streams.
        self.proj = nn.Linear(in_dim, clusters * dim, bias=False)

    def project(self, u: torch.Tensor) -> torch.Tensor:
        """u (B, p, C) -> u^ (B, p, k, d): squash, project into the k spaces, squash again
        (``squash="both"``; the other placements drop one of the two)."""
        if self.squash in ("both", "input"):
            u = squash(u)                                # bounded input norms (reference code)
        uhat = self.proj(u)                              # W u_i for all j at once: (B, p, k*d)
        uhat = uhat.reshape(*uhat.shape[:-1], self.clusters, self.dim)  # u^_ij = W_j u_i
        if self.squash in ("input", "none"):
            return uhat
        return squash(uhat)                              # ||u^_ij|| < 1 in every space

    def cluster(self, uhat: torch.Tensor) -> Clusters:
        """Fixed-point iterations of eq. 12 on projected vectors u^ (B, p, k, d)."""
        z = self.temperature
        if self.init == "spread":                        # centers: k of the clip's vectors, one per space
            p, k = uhat.shape[1], self.clusters
            pick = ((torch.arange(k, device=uhat.device) + 0.5) * p / k).long()
            b = -z * distances(uhat, uhat[:, pick, torch.arange(k, device=uhat.device)])
        else:
            b = uhat.new_zeros(uhat.shape[:-1])          # logits b_ij = 0: uniform s to start
        for it in range(self.iterations):
            s = torch.softmax(b, dim=-1)                 # s_ij = e^{-z d_ij} / sum_l e^{-z d_il}
            c = torch.einsum("bpk,bpkd->bkd", s, uhat)   # eq. 12: c_j = sum_i s_ij u^_ij
            d = distances(uhat, c)                       # d_ij = -<u^_ij, c_j/||c_j||>
            if it < self.iterations - 1:
                b = -z * d                               # logits of the next s (eq. 1/7)
        return Clusters(centers=c, assign=s, dist=d)

    def forward(self, u: torch.Tensor) -> Clusters:
        """u (B, p, C) -> Clusters(centers (B,k,d), assign (B,p,k), dist (B,p,k))."""
        if u.dim() != 3 or u.shape[-1] != self.in_dim:
            raise ValueError(f"expected vectors (B, p, {self.in_dim}), got {tuple(u.shape)}")
        return self.cluster(self.project(u))

    def extra_repr(self) -> str:
        return (
            f"in_dim={self.in_dim}, clusters={self.clusters}, dim={self.dim}, "
            f"iterations={self.iterations}, temperature={self.temperature}, squash={self.squash}, init={self.init}"
        )
