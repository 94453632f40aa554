"""Counting baselines that use no audio, and a fair tie-break for the hard shares.

Visible-object count ("a perfect detector"): the number of objects drawn in a clip, sounding
or silent, read from the ground truth (distinct ``object_id`` of ``boxes.csv``).  It is mapped to a
predicted number of sources by the same monotone cut points as DMC's score
(:func:`dmc.localization.multisource.fit_cuts`), fitted on the training corpus's train and val
clips only and applied unchanged to the test clips (:func:`visible_count_predictions`).

Best constant: the most common count of the clips it is scored on (an oracle no constant can
beat); the fair constant is the most common count of train + val
(:func:`dmc.localization.multisource.majority_count` either way).

Ties.  :func:`dmc.localization.multisource.hard_shares` gives each vector to its first largest
s_ij, so when the soft assignments are uniform (the no-clustering network) every vector goes to
cluster 0, every clip gets the same score and the count is a constant.  :func:`fair_hard_shares`
breaks ties fairly instead:

* ``fractional``: a vector tied between m clusters gives 1/m to each;
* ``random``: it goes to one of them drawn uniformly (``numpy.random.default_rng(seed)``).

Either way, with uniform assignments the score carries no information about the clip: with
fractional shares every clip gets exactly the same score, with random ones noise.  Such a row
must be reported as degenerate (:func:`tie_share`, :func:`is_degenerate`), not as a counting result.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dmc.localization import multisource as ms

TIE_MODES = ("fractional", "random")


def tied(assign: np.ndarray, atol: float = 0.0) -> np.ndarray:
    """(..., p, k) bool: s_ij is within ``atol`` of the vector's largest s_il."""
    assign = np.asarray(assign, dtype=np.float64)
    return assign >= assign.max(-1, keepdims=True) - atol


def fair_hard_shares(assign: np.ndarray, mode: str = "fractional", seed: int = 0, atol: float = 0.0) -> np.ndarray:
    """Soft assignments (..., p, k) -> hard shares (..., k) with ties broken by ``mode`` (:data:`TIE_MODES`)."""
    top = tied(assign, atol)
    if mode == "fractional":
        win = top / top.sum(-1, keepdims=True)
    elif mode == "random":
        rng = np.random.default_rng(seed)
        key = np.where(top, rng.random(top.shape), -1.0)           # a uniform draw among the tied clusters
        win = (key == key.max(-1, keepdims=True)).astype(np.float64)
    else:
        raise ValueError(f"tie mode {mode!r} is not one of {', '.join(TIE_MODES)}")
    return win.mean(-2)


def tie_share(assign: np.ndarray, atol: float = 0.0) -> float:
    """Share of vectors whose largest s_ij is shared by two clusters or more."""
    return float((tied(assign, atol).sum(-1) > 1).mean())


def is_degenerate(scores, rtol: float = 0.0) -> bool:
    """True when every clip has the same score (the count is then a constant, whatever the cuts)."""
    s = np.asarray(scores, dtype=np.float64)
    return bool(len(s) == 0 or np.ptp(s) <= rtol * max(1.0, float(np.abs(s).max())))


def visible_counts(boxes: pd.DataFrame) -> pd.Series:
    """Objects drawn per clip (distinct ``object_id``, sounding or silent), index: video, sorted."""
    return boxes.groupby("video").object_id.nunique().sort_index()


def visible_count_predictions(fit_visible, fit_labels, test_visible, max_sources: int) -> tuple[np.ndarray, list]:
    """(predicted counts of the test clips, cut points) from cut points fitted on train + val clips."""
    cuts = ms.fit_cuts(np.asarray(fit_visible, dtype=np.float64), np.asarray(fit_labels, dtype=int), max_sources)
    return ms.predict_counts(np.asarray(test_visible, dtype=np.float64), cuts, max_sources), cuts
