"""Sound-localization heat maps from DMC's clusters.

For a (frame, audio segment) pair, with û_ij^v the visual conv-map vector i projected
into shared space j (:meth:`dmc.model.clustering.MultimodalClustering.project`), s_ij^v and d_ij^v
its soft assignment and distance to the visual centers (eq. 1-6), and c_j^a, c_j^v the audio /
visual centers of the pair:

    w_j    = softmax_j( tau * cos(c_j^a, c_j^v) )                 agreement of cluster pair j
    heat_i = sum_j w_j * m_ij

with the per-cluster map m_ij given by ``localize.heatmap_rule`` (:data:`RULES`):

* ``proximity``: m_ij = max(0, <û_ij^v, c_j^a / ||c_j^a||>) = (-d_ij^{v->a})_+, how close
  visual position i lies to the *audio* centers ("the visual components matched by the audio";
  d is the clustering distance of :func:`dmc.model.clustering.distances`, visual vectors against
  audio centers);
* ``assignment``: m_ij = s_ij^v, the visual soft assignments;
* ``assignment_proximity``: m_ij = s_ij^v (-d_ij^v)_+, assignments times closeness to the
  visual centers.

The coarse (h, w) map is upsampled bilinearly (``align_corners=False``) to the frame size and
min-max normalised to [0, 1] (a constant map becomes all zeros).  tau =
``localize.agreement_temperature``.

The rule and tau are chosen on the val split (``make heatmap-choice``, :mod:`dmc.studies.heatmap_choice`,
with the trained models of the seeds sweep; the test split that the pipeline reports is not
read): the candidate with the highest mean val pointing (results/studies/heatmap_choice/heatmap_choice.md).

The centre prior (an isotropic Gaussian at the frame centre, sigma =
``localize.center_sigma`` x frame size, min-max normalised) is the trivial baseline map.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from dmc.model.clustering import distances
from dmc.localization.multisource import hard_shares


class Analysis(NamedTuple):
    """DMC's view of a batch of pairs (numpy arrays).

    coarse:   (B, h, w) heat map at the visual conv-map resolution (not normalised)
    shares_a: (B, k) hard shares of the audio vectors per cluster (:func:`dmc.localization.multisource.hard_shares`)
    shares_v: (B, k) same for the visual vectors
    agreement: (B, k) cos(c_j^a, c_j^v)
    centers_a: (B, k, d) audio centers c_j^a
    centers_v: (B, k, d) visual centers c_j^v
    """

    coarse: np.ndarray
    shares_a: np.ndarray
    shares_v: np.ndarray
    agreement: np.ndarray
    centers_a: np.ndarray
    centers_v: np.ndarray


RULES = ("proximity", "assignment", "assignment_proximity")


class PairClusters(NamedTuple):
    """Both modalities' clusterings of a batch of pairs (what every heat-map rule reads)."""

    uhat_v: torch.Tensor    # (B, p_v, k, d) projected visual vectors û_ij^v
    vis: object             # visual clustering (assign s^v, dist d^v, centers c^v)
    aud: object             # audio clustering (assign s^a, centers c^a)
    agree: torch.Tensor     # (B, k) cos(c_j^a, c_j^v), float32
    shape: tuple            # (h, w) of the visual conv map


def cluster_pairs(model, frames: torch.Tensor, logmel: torch.Tensor) -> PairClusters:
    """frames (B, 3, H, W) in [-1, 1], log-mel (B, 1, T, n_mels) -> :class:`PairClusters` (as DMC.forward)."""
    cl = model.clustering
    uv, shape = model.encode_visual(frames)
    uhat_v = cl.project(uv)
    vis = cl.cluster(uhat_v)
    aud = cl(model.encode_audio(logmel))
    agree = F.cosine_similarity(aud.centers.float(), vis.centers.float(), dim=-1, eps=1e-8)
    return PairClusters(uhat_v, vis, aud, agree, shape)


def cluster_map(rule: str, pc: PairClusters) -> torch.Tensor:
    """(B, p_v, k) per-cluster map m_ij of one rule of :data:`RULES` (float32)."""
    if rule == "proximity":                   # (-d_ij^{v->a})_+
        return (-distances(pc.uhat_v.float(), pc.aud.centers.float())).clamp_min(0)
    if rule == "assignment":                  # s_ij^v
        return pc.vis.assign.float()
    if rule == "assignment_proximity":        # s_ij^v (-d_ij^v)_+
        return pc.vis.assign.float() * (-pc.vis.dist.float()).clamp_min(0)
    raise ValueError(f"heat-map rule {rule!r} is not one of {', '.join(RULES)}")


def weighted_heat(m: torch.Tensor, pc: PairClusters, temperature: float) -> torch.Tensor:
    """(B, h, w) coarse heat_i = sum_j w_j m_ij, w_j = softmax_j(tau * cos(c_j^a, c_j^v))."""
    weight = torch.softmax(temperature * pc.agree, dim=-1)          # w_j
    return (m * weight[:, None, :]).sum(-1).reshape(-1, *pc.shape)


@torch.no_grad()
def analyse_batch(model, frames: torch.Tensor, logmel: torch.Tensor, temperature: float = 1.0,
                  rule: str = "proximity") -> Analysis:
    """frames (B, 3, H, W) in [-1, 1], log-mel (B, 1, T, n_mels) -> :class:`Analysis` (same as DMC.forward)."""
    pc = cluster_pairs(model, frames, logmel)
    heat = weighted_heat(cluster_map(rule, pc), pc, temperature)
    return Analysis(heat.cpu().numpy(), hard_shares(pc.aud.assign.float().cpu().numpy()),
                    hard_shares(pc.vis.assign.float().cpu().numpy()), pc.agree.cpu().numpy(),
                    pc.aud.centers.float().cpu().numpy(), pc.vis.centers.float().cpu().numpy())


def normalize_maps(maps: np.ndarray) -> np.ndarray:
    """Min-max normalise each map of (..., H, W) to [0, 1]; constant maps become 0."""
    maps = np.asarray(maps, dtype=np.float32)
    lo = maps.min(axis=(-2, -1), keepdims=True)
    span = maps.max(axis=(-2, -1), keepdims=True) - lo
    return np.where(span > 0, (maps - lo) / np.where(span > 0, span, 1), 0).astype(np.float32)


def upsample(coarse: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(B, h, w) coarse maps -> (B, H, W) bilinear (align_corners=False), normalised to [0, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(coarse, dtype=np.float32))[:, None]
    up = F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False)[:, 0].numpy()
    return normalize_maps(up)


def center_prior(size: tuple[int, int], sigma: float = 0.25) -> np.ndarray:
    """(H, W) Gaussian blob at the frame centre, sigma = ``sigma`` x the frame side, in [0, 1]."""
    H, W = size
    yy, xx = np.mgrid[:H, :W].astype(np.float64)
    g = np.exp(-(((yy - (H - 1) / 2) / (sigma * H)) ** 2 + ((xx - (W - 1) / 2) / (sigma * W)) ** 2) / 2)
    return normalize_maps(g)


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 frames (B, H, W, 3) -> float (B, 3, H, W) in [-1, 1], as :class:`dmc.model.dataset.ShardDataset`."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def analyse_arrays(model, frames: np.ndarray, logmel: np.ndarray, temperature: float = 1.0,
                   batch_size: int = 64, device: str | torch.device = "cpu", rule: str = "proximity") -> Analysis:
    """Batched :func:`analyse_batch` over uint8 frames (N, H, W, 3) and log-mel (N, T, n_mels)."""
    model = model.to(device).eval()
    parts = []
    for i in range(0, len(frames), batch_size):
        f = frames_to_tensor(np.asarray(frames[i:i + batch_size])).to(device)
        m = torch.from_numpy(np.asarray(logmel[i:i + batch_size], dtype=np.float32))[:, None].to(device)
        parts.append(analyse_batch(model, f, m, temperature, rule))
    return concat(parts)


def concat(parts: list[Analysis]) -> Analysis:
    """One :class:`Analysis` of several, in order."""
    return Analysis(*(np.concatenate(x) for x in zip(*parts)))
