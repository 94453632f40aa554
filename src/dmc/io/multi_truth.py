"""The multi-source corpus's ground truth and stems as the tables :mod:`dmc.localization.multisource_eval` reads.

* :func:`pair_objects`: one row per object drawn in each (frame, audio segment) pair's frame (the
  frame of ``boxes.csv`` nearest the pair's frame time, as :class:`dmc.io.ground_truth.GroundTruth`
  picks it): ``pair``, ``video``, ``object_id``, ``class``, ``sounding`` and the box ``x0, y0, x1, y1``
  scaled to the decoded frame (decoding resizes without cropping: :func:`dmc.io.ground_truth.scale_boxes`).
  The table's index (0..n-1) is the object's row label that a stem names.
* :func:`stem_logmels`: for each pair, each sounding object's stem (``objects.csv`` column ``stem``, a
  FLAC file under the stems folder: that source alone) cut to the pair's audio segment and turned into
  a log-mel by the decoder's own steps: channels averaged (:func:`dmc.io.audio.to_mono`), resampled
  to ``decode.sample_rate`` (:func:`dmc.io.audio.resample`), segment s = samples
  [s n, (s + 1) n) with n = ``segment_seconds * sample_rate`` (:func:`dmc.io.decoding.decode_video`),
  :class:`dmc.io.logmel.LogMel` of ``decode``.  A stem that cannot be read or is shorter than the
  segment is left out and named in the returned notes (one broken file never stops the run).

Works for the training corpus's ground truth too (``boxes.csv`` has the same columns), which is
what the cluster -> class mapping is learned on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from dmc.io.audio import AudioReadError, read_audio, resample, to_mono
from dmc.io.ground_truth import GroundTruth, scale_boxes
from dmc.io.logmel import LogMel

BOX = ["x0", "y0", "x1", "y1"]
OBJECT_COLUMNS = ["pair", "video", "object_id", "class", "sounding", *BOX]


def pair_objects(gt: GroundTruth, rows: pd.DataFrame, size: tuple[int, int]) -> pd.DataFrame:
    """Objects of each pair (row i of ``rows``: ``video``, ``frame_time_s``) in the (H, W) = ``size`` frame."""
    parts = []
    for i, r in enumerate(rows.itertuples(index=False)):
        b = gt.at(r.video, float(r.frame_time_s))
        if not len(b):
            continue
        xy = scale_boxes(b[BOX].to_numpy(), gt.src_size, (size[1], size[0]))
        parts.append(pd.DataFrame({"pair": i, "video": r.video, "object_id": b.object_id.to_numpy(),
                                   "class": b["class"].astype(str).to_numpy(),
                                   "sounding": b.sounding.to_numpy(dtype=int),
                                   **{c: xy[:, j] for j, c in enumerate(BOX)}}))
    if not parts:
        return pd.DataFrame(columns=OBJECT_COLUMNS)
    return pd.concat(parts, ignore_index=True)[OBJECT_COLUMNS]


def stem_logmels(objects: pd.DataFrame, segments, stem_files: pd.DataFrame, stems_root: str | Path,
                 decode: dict) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """(stems table: ``pair``, ``object`` (row label of ``objects``), ``video``, ``stem``; log-mel (M, T,
    n_mels); notes) for every sounding object of every pair whose stem is listed in ``stem_files``
    (``objects.csv``: ``video, object_id, stem``).  ``segments[i]``: the audio segment number of pair i."""
    stems_root = Path(stems_root)
    where = {(str(v), int(o)): s for v, o, s in zip(stem_files.video, stem_files.object_id, stem_files.stem) if s}
    rate, seg = int(decode["sample_rate"]), float(decode["segment_seconds"])
    n = int(round(seg * rate))
    waves, notes, rows, cuts = {}, [], [], []
    for label, o in objects[objects.sounding.astype(int) == 1].iterrows():
        key = (str(o.video), int(o.object_id))
        rel = where.get(key)
        if rel is None:
            notes.append(f"{o.video}: object {o.object_id} has no stem in objects.csv")
            continue
        if rel not in waves:
            try:
                audio, sr = read_audio(stems_root / rel)
                waves[rel] = resample(to_mono(audio), sr, rate)
            except AudioReadError as e:
                waves[rel] = None
                notes.append(f"{stems_root / rel}: {e}")
        w = waves[rel]
        s = int(segments[int(o.pair)])
        if w is None or w.shape[0] < (s + 1) * n:
            if w is not None:
                notes.append(f"{stems_root / rel}: shorter than segment {s}")
            continue
        rows.append({"pair": int(o.pair), "object": label, "video": o.video, "stem": rel})
        cuts.append(w[s * n:(s + 1) * n])
    table = pd.DataFrame(rows, columns=["pair", "object", "video", "stem"])
    if not cuts:
        return table, np.zeros((0, 0, int(decode["n_mels"])), np.float32), notes
    mels = LogMel.from_params(decode)(torch.from_numpy(np.stack(cuts).astype(np.float32))).numpy()
    return table, mels, sorted(set(notes))
