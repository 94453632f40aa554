"""Content-free maps scored beside every model: they see neither the image nor the sound.

* ``center_prior``: a centred isotropic Gaussian (:func:`dmc.localization.heatmaps.center_prior`);
  under the median threshold only its ranking counts, so it is the centred disc of half the pixels
  whatever its sigma;
* ``whole_image``: a constant map; min-max normalisation leaves it unchanged and the median
  threshold keeps every pixel (cIoU = the share of the image the ground truth covers);
* ``random``: uniform noise drawn per clip from a seeded generator.

The random-init network (the model's architecture with untrained weights) is the fourth baseline
where a model is given (:mod:`.run`).
"""

from __future__ import annotations

import zlib

import numpy as np

from dmc.localization.benchmarks.protocol import SIZE
from dmc.localization.heatmaps import center_prior as _gaussian

CONTENT_FREE = ("center_prior", "whole_image", "random")


def center_prior(size: int = SIZE, sigma: float = 0.25) -> np.ndarray:
    return _gaussian((size, size), sigma).astype(np.float64)


def whole_image(size: int = SIZE) -> np.ndarray:
    return np.ones((size, size))


def random_map(name: str, seed: int, size: int = SIZE) -> np.ndarray:
    """Uniform noise, the same for a clip name and seed on every machine (crc32 of the name)."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    return rng.random((size, size))

