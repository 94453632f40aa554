"""Training data: (frame, log-mel segment, video id) items read from memory-mapped shards.

Each shard's ``frames.npy`` / ``logmel.npy`` are opened once per process with
``np.load(mmap_mode="r")`` (lazily, so DataLoader workers open their own maps), and an
item is a slice of those maps: no file is reopened per item.  Frames are scaled to
[-1, 1] (reference code); log-mel patches are used as they are, shape (1, T, n_mels).

Held-out split: by video, never by segment, from a stable hash of the video path, so the
same videos are held out in every run and a video never sits on both sides.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from .shards import shard_arrays


def is_held_out(video: str, val_fraction: float) -> bool:
    return (zlib.crc32(("val:" + video).encode("utf-8")) % 10_000) < val_fraction * 10_000


class ShardDataset(Dataset):
    """Segments listed in ``index.csv`` (optionally a subset of its rows)."""

    def __init__(self, decoded_dir: str | Path, rows: pd.DataFrame | None = None):
        self.root = Path(decoded_dir)
        index = pd.read_csv(self.root / "index.csv", keep_default_na=False) if rows is None else rows
        self.index = index.reset_index(drop=True)
        videos = sorted(self.index.video.unique())
        self.video_ids = torch.tensor(self.index.video.map({v: i for i, v in enumerate(videos)}).to_numpy())
        self.shards = self.index.shard.to_numpy()
        self.rows = self.index.row.to_numpy()
        self._maps: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    @classmethod
    def split(cls, decoded_dir: str | Path, val_fraction: float) -> tuple["ShardDataset", "ShardDataset"]:
        index = pd.read_csv(Path(decoded_dir) / "index.csv", keep_default_na=False)
        held = index.video.map(lambda v: is_held_out(v, val_fraction))
        return cls(decoded_dir, index[~held]), cls(decoded_dir, index[held])

    def _arrays(self, shard: str):
        if shard not in self._maps:
            self._maps[shard] = shard_arrays(self.root / shard)
        return self._maps[shard]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int):
        frames, logmel = self._arrays(self.shards[i])
        frame = torch.from_numpy(np.array(frames[self.rows[i]])).permute(2, 0, 1).float().div_(127.5).sub_(1.0)
        mel = torch.from_numpy(np.array(logmel[self.rows[i]])).unsqueeze(0)
        return frame, mel, self.video_ids[i]

    def __getstate__(self):          # DataLoader workers re-open the maps themselves
        state = self.__dict__.copy()
        state["_maps"] = {}
        return state
