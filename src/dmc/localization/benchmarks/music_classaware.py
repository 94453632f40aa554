"""Class-aware scores of DSOL's MUSIC files: one map per instrument class for every frame, scored by
:mod:`dmc.localization.classaware` (DSOL ``music-exp/eval_duet.py`` / ``tools.py``; no metric code here).

Per frame: every boxed object sounds (:mod:`.music`), so a class sounds when it has a box; its
cIoU binarises its class map at > r x max with DSOL's r of the file (:data:`.music.RELATIVE`:
solo as ``tools.py``, duet as ``eval_duet.py``, for every frame of the file as DSOL does), and the
classes without a box (of DSOL's 11) enter NSA (share of the map <= ``classaware.NSA_THRESHOLD``).

Class maps of each source:

* a DMC model: the share maps of its clusters (:func:`dmc.localization.multisource_eval.cluster_share_maps`)
  summed per class by the cluster -> class mapping file beside the model
  (:mod:`dmc.localization.mapping_file`, learned on training data); the random-init network gets the
  same mapping (its clusters have no training of their own to map);
* a content-free baseline (centre prior, whole image, random map): it does not know the classes,
  so **the same map stands for every class** (as it is drawn, values in [0, 1]); its NSA is then
  the share of that map at or below the NSA threshold, whatever the classes. As every silent
  class has that same map, it is scored with the frame's sounding classes and one silent class
  (:func:`content_free_scene`): the same numbers as with all 11, to the last bit of a mean (a test checks),
  several times faster
  on the 12,000 frames of a file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dmc.localization import classaware
from dmc.localization.benchmarks import baselines
from dmc.localization.benchmarks.layout import Benchmark, BenchmarkError
from dmc.localization.benchmarks.music import CLASSES, RELATIVE


def content_free_maps(name: str, method: str, seed: int, sigma: float) -> np.ndarray:
    """(C, 224, 224): the baseline's one map repeated for each of DSOL's classes."""
    one = {"center_prior": lambda: baselines.center_prior(sigma=sigma), "whole_image": baselines.whole_image,
           "random": lambda: baselines.random_map(name, seed)}[method]()
    return np.broadcast_to(one, (len(CLASSES), *one.shape))


def content_free_scene(entry, method: str, seed: int, sigma: float) -> tuple[np.ndarray, tuple[int, ...]]:
    """(maps, box classes) of a content-free baseline for :func:`classaware.score_image`, the classes
    renumbered: the frame's sounding classes 0..n-1, then one silent class (when DSOL has one left)."""
    present = sorted(set(entry.box_classes))
    n = len(present) + (len(present) < len(CLASSES))
    one = content_free_maps(entry.name, method, seed, sigma)[0]
    return np.broadcast_to(one, (n, *one.shape)), tuple(present.index(c) for c in entry.box_classes)


def score(bench: Benchmark, seed: int, sigma: float = 0.25, models: dict[str, list[np.ndarray]] | None = None,
          content_free: tuple[str, ...] = baselines.CONTENT_FREE) -> tuple[pd.DataFrame, dict]:
    """(per frame: name, method, relative, ciou, nsa, nsa_drawn; the table: method -> classaware.summarize).
    ``models``: method -> one (C, h, w) class-map array per entry, classes in :data:`.music.CLASSES` order."""
    r = RELATIVE[bench.name]
    rows, scores = [], {m: [] for m in [*(models or {}), *content_free]}
    for i, e in enumerate(bench.entries):
        scenes = {m: content_free_scene(e, m, seed, sigma) for m in content_free}
        scenes.update({m: (cm[i], e.box_classes) for m, cm in (models or {}).items()})
        for m in scores:
            maps, classes = scenes[m]
            s = classaware.score_image(maps, e.boxes, classes, np.ones(len(classes), bool), r)
            scores[m].append(s)
            rows.append({"name": e.name, "method": m, "relative": r, "ciou": s.ciou, "nsa": s.nsa,
                         "nsa_drawn": s.nsa_drawn, "n_sounding_classes": s.n_sounding})
    cols = ["name", "method", "relative", "ciou", "nsa", "nsa_drawn", "n_sounding_classes"]
    return pd.DataFrame(rows, columns=cols), {m: classaware.summarize(s) for m, s in scores.items()}


def mapping_for(model_path):
    """The model's mapping file (:class:`~dmc.localization.mapping_file.ClassMapping`), read before any work;
    refused when it lacks one of DSOL's classes."""
    from dmc.localization.mapping_file import mapping_path, read_mapping

    path = mapping_path(model_path)
    mapping = read_mapping(path)
    missing = [c for c in CLASSES if c not in mapping.classes]
    if missing:
        raise BenchmarkError(f"{path}: classes {missing} of DSOL's MUSIC files are not in the mapping "
                             f"(it maps to {mapping.classes})")
    return mapping


def model_class_maps(bench: Benchmark, cfg, model_path, device, gate: str | None = None) -> dict[str, list[np.ndarray]]:
    """{"dmc", "random_init"}: (C, h, w) class maps per entry (entries that decode; call after
    :func:`.run.model_maps`, which names and drops the others); ``gate``: the class maps' gate
    (default ``localize.class_map_gate``)."""
    import torch

    from dmc.io.logmel import LogMel
    from dmc.localization.benchmarks.media import load_pair
    from dmc.localization.classmaps import class_maps
    from dmc.localization.multisource_eval import cluster_share_maps
    from dmc.model.network import DMC
    from dmc.model.training import load_model

    mapping = mapping_for(model_path)
    order = [mapping.classes.index(c) for c in CLASSES]
    if not bench.entries:
        return {"dmc": [], "random_init": []}
    frames, waves = zip(*(load_pair(e, cfg.decode) for e in bench.entries))
    with torch.no_grad():
        mels = LogMel.from_params(cfg.decode.as_dict())(torch.from_numpy(np.stack(waves))).numpy()
    lp, out = cfg.localize, {}
    for method, model in (("dmc", load_model(model_path)[0]), ("random_init", DMC.random_init(cfg.as_dict()))):
        shares, _ = cluster_share_maps(model, np.stack(frames), mels, lp.agreement_temperature, lp.heatmap_rule,
                                       lp.batch_size, device, lp.class_map_gate if gate is None else gate)
        if shares.shape[1] != len(mapping.cluster_to_class):
            raise BenchmarkError(f"{model_path}: {method} has {shares.shape[1]} clusters, its mapping file "
                                 f"{len(mapping.cluster_to_class)}")
        out[method] = list(class_maps(shares, mapping.cluster_to_class, len(mapping.classes))[:, order])
    return out
