"""The best count a perfect object detector can give on the synthetic corpora.

The visible-object count (:mod:`dmc.localization.counting`) maps the number of drawn objects to a
number of sources. How well any such rule can do is fixed by how the generator draws the sounding
and the silent objects: :func:`drawn_count_ceiling` gives that ceiling exactly, from the
distribution. Apart from :mod:`dmc.localization.counting` so that the pipeline's steps do not
depend on it (``python -m dmc.studies.count_ceiling`` reads it).
"""

from __future__ import annotations


def drawn_count_ceiling(max_sources: int, max_distractors: int, n_classes: int) -> tuple[float, dict]:
    """The best accuracy any rule that reads only the number of drawn objects can reach on the
    synthetic generator's clips, and the count that rule gives each drawn number.

    The generator (:func:`dmc.synth.videos.plan_clip`) draws S sounding objects uniformly from
    1..``max_sources`` and D silent ones uniformly from 0..``max_distractors``, independently, each
    of another class, so S' = min(S, C) sound and V = min(S + D, C) are drawn (C = ``n_classes``).
    A rule f(V) is right with probability sum_v P(V = v, S' = f(v)); the best takes, for each v, the
    most probable S' (ties to the smaller count), so no rule on V, the visible-object count's
    monotone cuts included, can do better. Returns (accuracy, {v: best count})."""
    joint: dict[tuple[int, int], float] = {}
    p = 1.0 / (max_sources * (max_distractors + 1))
    for s in range(1, max_sources + 1):
        for d in range(max_distractors + 1):
            key = (min(s + d, n_classes), min(s, n_classes))
            joint[key] = joint.get(key, 0.0) + p
    best = {}
    for v in sorted({v for v, _ in joint}):
        best[v] = max((s for vv, s in joint if vv == v), key=lambda s: (joint[(v, s)], -s))
    return sum(joint[(v, s)] for v, s in best.items()), best
