"""Ground truth of the synthetic corpus: boxes of the objects in each frame, sounding or not.

Boxes are in pixels of the written frame (``synth.width`` x ``synth.height``, x1/y1
exclusive); frames were resized to ``decode.frame_size`` without cropping, so boxes are
scaled linearly (:func:`scale_boxes`); a frame pixel belongs to a box when its centre lies
inside the scaled box (:func:`box_mask`).  The ground truth of a (frame, audio segment)
pair is the union of the SOUNDING objects' boxes in the frame nearest the pair's frame time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def scale_boxes(boxes, src_size: tuple[int, int], dst_size: tuple[int, int]) -> np.ndarray:
    """Boxes (n, 4) x0, y0, x1, y1 in a (W, H) = ``src_size`` frame -> the ``dst_size`` frame (floats)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    sx, sy = dst_size[0] / src_size[0], dst_size[1] / src_size[1]
    return b * np.array([sx, sy, sx, sy])


def box_mask(boxes, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool mask of the pixels whose centre lies in any box [x0, x1) x [y0, y1)."""
    H, W = shape
    cy, cx = np.arange(H) + 0.5, np.arange(W) + 0.5
    mask = np.zeros((H, W), dtype=bool)
    for x0, y0, x1, y1 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        mask |= ((cy >= y0) & (cy < y1))[:, None] & ((cx >= x0) & (cx < x1))[None, :]
    return mask


class GroundTruth:
    """boxes.csv / clips.csv of the synthetic corpus; boxes of the frame nearest a time."""

    def __init__(self, root: str | Path, src_size: tuple[int, int]):
        root = Path(root)
        for name in ("boxes.csv", "clips.csv"):
            if not (root / name).is_file():
                raise FileNotFoundError(f"{root / name}: ground truth not found (params.yaml data.ground_truth)")
        self.boxes = pd.read_csv(root / "boxes.csv", keep_default_na=False)
        self.clips = pd.read_csv(root / "clips.csv", keep_default_na=False).set_index("video")
        self.src_size = tuple(src_size)
        self._by_video = {v: g for v, g in self.boxes.groupby("video")}

    def n_sources(self, video: str) -> int | None:
        return int(self.clips.n_sources[video]) if video in self.clips.index else None

    def at(self, video: str, time_s: float) -> pd.DataFrame:
        """Boxes of ``video`` in the frame whose time_s is nearest ``time_s`` (empty if unknown)."""
        g = self._by_video.get(video)
        if g is None:
            return self.boxes.iloc[:0]
        times = np.unique(g.time_s.to_numpy(dtype=np.float64))
        t = times[np.argmin(np.abs(times - time_s))]
        return g[g.time_s.to_numpy(dtype=np.float64) == t]

    def scaled(self, video: str, time_s: float, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """(boxes (n, 4) in the (H, W) = ``size`` frame, sounding flags (n,))."""
        b = self.at(video, time_s)
        boxes = scale_boxes(b[["x0", "y0", "x1", "y1"]].to_numpy(), self.src_size, (size[1], size[0]))
        return boxes, b.sounding.to_numpy(dtype=int).astype(bool)

    def mask(self, video: str, time_s: float, size: tuple[int, int]) -> np.ndarray:
        boxes, sounding = self.scaled(video, time_s, size)
        return box_mask(boxes[sounding], size)
