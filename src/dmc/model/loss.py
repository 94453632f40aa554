"""Audiovisual similarity and the max-margin loss (method summary, "Loss").

Audio center j is paired with visual center j (the projection into cluster spaces is shared,
so space j means the same thing in both modalities). The clip similarity is

    S(a, v) = sum_j cos(c_j^a, c_j^v)            in [-k, k]

and training pushes a clip's own audio closer to its frame than audio from another video:

    L = mean_i max(0, margin - S(a_i, v_i) + S(a_neg(i), v_i))

Choices the paper leaves open, made here:

- The hinge is averaged over the batch (mean, not sum), so the loss scale and the learning
  rate do not depend on the batch size.
- Negatives are *audio* of another clip of the same batch, taken from a different video
  (so a clip of the same video, which may sound the same, is never a negative); the frame is
  kept. One negative per clip, drawn at random by :func:`mismatch_indices`.
- The margin is a parameter without a default here. The reference code uses margin = k with
  the summed similarity: since S is in [-k, k], S(pos) - S(neg) can reach 2k and the hinge
  switches off once pos and neg are k apart. (The reference's margin 10 with a per-cluster
  cosine in [-1, 1] could never be met, which makes the loss linear.) Any margin in (0, 2k)
  lets the hinge act; the default lives in params.yaml.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-8


def similarity(ca: torch.Tensor, cv: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """S(a, v) = sum_j cos(c_j^a, c_j^v) for centers (B, k, d) -> (B,), values in [-k, k]."""
    return F.cosine_similarity(ca, cv, dim=-1, eps=eps).sum(dim=-1)


def mismatch_indices(video_ids: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """For each item i, the index of a random other item whose video id differs.

    Args:
        video_ids: (B,) integer video id of each item of the batch.
        generator: a CPU ``torch.Generator``; the same generator state gives the same picks.

    Returns a LongTensor (B,) on the device of ``video_ids``, uniform over the valid items.
    Raises ValueError if some item has no item of another video in the batch (e.g. the whole
    batch comes from one video).
    """
    ids = torch.as_tensor(video_ids).reshape(-1).to("cpu")
    n = ids.numel()
    valid = ids[:, None] != ids[None, :]                 # (B, B): j is a valid negative of i
    if n == 0 or not bool(valid.any(dim=1).all()):
        raise ValueError(
            "cannot pick mismatched pairs: every item needs another item of a different video "
            f"in its batch (video ids: {ids.tolist()})"
        )
    scores = torch.rand(n, n, generator=generator)
    scores = scores.masked_fill(~valid, -1.0)            # rand in [0, 1): invalid never wins
    return scores.argmax(dim=1).to(torch.as_tensor(video_ids).device)


def max_margin_loss(
    ca: torch.Tensor, cv: torch.Tensor, neg_index: torch.Tensor, margin: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """Hinge loss on matched vs. mismatched audio for each frame.

    Args:
        ca, cv: audio and visual centers (B, k, d); row i of both comes from clip i.
        neg_index: (B,) index of the clip whose audio is the negative for frame i
            (see :func:`mismatch_indices`).
        margin: the hinge margin Delta (reference code: k).

    Returns (loss, stats): loss = mean_i max(0, margin - S(a_i, v_i) + S(a_neg(i), v_i)),
    a scalar tensor; stats holds python floats: ``pos_sim`` and ``neg_sim`` (batch means of
    S), ``accuracy`` (share of clips with S(pos) > S(neg)) and ``active`` (share of clips
    whose hinge is > 0).
    """
    pos = similarity(ca, cv)                             # S(a_i, v_i)
    neg = similarity(ca[neg_index], cv)                  # S(a_neg(i), v_i)
    hinge = F.relu(margin - pos + neg)
    loss = hinge.mean()
    with torch.no_grad():
        stats = {
            "pos_sim": pos.mean().item(),
            "neg_sim": neg.mean().item(),
            "accuracy": (pos > neg).float().mean().item(),
            "active": (hinge > 0).float().mean().item(),
        }
    return loss, stats
