"""Baselines beside DMC on the untouched test corpus (:mod:`dmc.pipeline.heldout`).

* :func:`recalibrate_batchnorm`: the network at random init with its BatchNorm running
  statistics recomputed on the training clips. ``DMC.random_init`` is in eval mode with the
  initial running mean 0 and variance 1, so its BatchNorm layers are close to the identity
  and the untrained network is judged with inactive normalisation; recalibrating changes the
  running statistics (and their batch counters) and nothing else: no weight, no bias.
* the audio-blind saliency map (:func:`dmc.pipeline.heldout.analyse`): the trained (or untrained)
  visual map with uniform cluster weights, i.e. the heat map at agreement temperature 0; it
  reads no audio at all.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> nn.Module:
    """Recompute the running mean and variance of every BatchNorm layer of ``model`` as the
    average of the batch statistics over ``batches`` ((frames (B, 3, H, W) in [-1, 1], log-mel
    (B, 1, T, n_mels)) pairs, e.g. the training clips), by a forward pass of each subnet with
    the BatchNorm layers in training mode and cumulative averaging (momentum None).

    Only the BatchNorm buffers change; the momentum and the modules' train/eval modes are
    restored. Returns ``model`` (changed in place)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return model
    modes = {m: m.training for m in model.modules()}
    momenta = {m: m.momentum for m in bns}
    model.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    seen = 0
    for frames, logmel in batches:
        model.encode_visual(frames)
        model.encode_audio(logmel)
        seen += 1
    for m, mode in modes.items():
        m.train(mode)
    for m in bns:
        m.momentum = momenta[m]
    if not seen:
        raise ValueError("BatchNorm recalibration: no batch of training clips")
    return model
