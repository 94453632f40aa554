"""Controls that show whether the audio matters: the audio of another clip.

* **Mismatched audio at localization**: the frame of clip A with the audio of clip B, B drawn
  by a *derangement* of the clips (a permutation without fixed points: never a clip with its
  own audio). Pointing and cIoU are still scored against A's sounding objects: if the heat map
  follows the sound, they fall towards the audio-blind map's level.
* **Counting with shuffled audio**: the count score of clip A from A's frames and B's audio.

The derangement is Sattolo's algorithm (a uniformly drawn single cycle; every element moves),
seeded, so a control is reproducible.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def derangement(n: int, seed: int) -> np.ndarray:
    """A permutation ``p`` of 0..n-1 with ``p[i] != i`` for every i (Sattolo's single cycle),
    from ``default_rng(seed)``; n must be at least 2."""
    if n < 2:
        raise ValueError(f"a derangement needs at least 2 clips, got {n}")
    rng = np.random.default_rng(seed)
    p = np.arange(n)
    for i in range(n - 1, 0, -1):
        j = int(rng.integers(0, i))          # j < i: Sattolo (j <= i would be Fisher-Yates)
        p[i], p[j] = p[j], p[i]
    return p


def mismatched_rows(rows: pd.DataFrame, seed: int) -> tuple[np.ndarray, dict]:
    """For each (video, segment) row: the row whose *audio* replaces its own, from the partner
    video (a derangement of the sorted videos) at the same segment number, or the partner's
    last segment when it has fewer. Returns (row numbers, {video: partner video})."""
    videos = sorted(rows.video.unique())
    perm = derangement(len(videos), seed)
    partner = {v: videos[perm[i]] for i, v in enumerate(videos)}
    where = {(v, int(s)): i for i, (v, s) in enumerate(zip(rows.video, rows.segment))}
    by_video = rows.groupby("video").segment.apply(lambda s: sorted(int(x) for x in s)).to_dict()
    out = np.empty(len(rows), dtype=np.int64)
    for i, (v, s) in enumerate(zip(rows.video, rows.segment)):
        b = partner[v]
        segs = by_video[b]
        out[i] = where[(b, int(s) if int(s) in segs else segs[-1])]
    return out, partner
