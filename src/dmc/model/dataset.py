"""Training data: (frame, log-mel segment, video id) items read from memory-mapped shards.

Each shard's ``frames.npy`` / ``logmel.npy`` are opened once per process with
``np.load(mmap_mode="r")`` (lazily, so DataLoader workers open their own maps), and an
item is a slice of those maps: no file is reopened per item.  Frames are scaled to
[-1, 1] (reference code); log-mel patches are used as they are, shape (1, T, n_mels).

Three-way split (:func:`split_of`): by video, never by segment, from a stable hash of the
video path (its path relative to the corpus folder, as index.csv lists it), so every run,
every process and every step puts the same video in the same split, and a video never sits
on two sides.  ``train`` fits the weights; ``val`` gives the per-epoch held-out numbers and
every choice (defaults, cut points, early stopping); ``test`` is only reported.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from dmc.io.shards import shard_arrays


SPLITS = ("train", "val", "test")


def _unit_hash(video: str) -> float:
    """A stable number in [0, 1) for a video path (CRC-32, the same on every platform)."""
    return (zlib.crc32(("val:" + video).encode("utf-8")) % 10_000) / 10_000


def split_of_fractions(video: str, val_fraction: float, test_fraction: float) -> str:
    """'val' for hash < val_fraction, 'test' for the next test_fraction, 'train' for the rest.

    The validation videos are those the two-way split (:func:`is_held_out`) held out, so
    adding a test split leaves the validation videos as they were.
    """
    h = _unit_hash(video)
    if h < val_fraction:
        return "val"
    return "test" if h < val_fraction + test_fraction else "train"


def split_of(video: str, params: dict) -> str:
    """'train', 'val' or 'test' for a video path, from ``train.val_fraction`` and
    ``train.test_fraction`` of ``params`` (the whole params.yaml or its ``train`` section)."""
    t = params.get("train", params)
    return split_of_fractions(str(video), t["val_fraction"], t["test_fraction"])


def is_held_out(video: str, val_fraction: float) -> bool:
    """The validation split alone (hash < val_fraction): two-way callers of the old split."""
    return _unit_hash(video) < val_fraction


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
    def of_split(cls, decoded_dir: str | Path, params: dict, split: str) -> "ShardDataset":
        """The segments of the videos in one split (``train``, ``val`` or ``test``) of :func:`split_of`."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; one of {SPLITS}")
        index = pd.read_csv(Path(decoded_dir) / "index.csv", keep_default_na=False)
        return cls(decoded_dir, index[index.video.map(lambda v: split_of(v, params)) == split])

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
