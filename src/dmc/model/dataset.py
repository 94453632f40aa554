"""Training data: (frame, log-mel segment, video id) items read from memory-mapped shards.

Each shard's ``frames.npy`` / ``logmel.npy`` are opened once per process with
``np.load(mmap_mode="r")`` (lazily, so DataLoader workers open their own maps), and an
item is a slice of those maps: no file is reopened per item.  Frames are scaled to
[-1, 1] (reference code); log-mel patches are used as they are, shape (1, T, n_mels).

Training reads whole batches (:meth:`ShardDataset.__getitems__`, which torch's DataLoader calls
with a batch's indices): one sorted read per shard of the memory-mapped arrays, and the frames
stay uint8 until they reach the device, where :func:`unit_range` scales them (a quarter of the
bytes through the loader's queues and the host-to-device copy).  The scaling is the same
elementwise ``x / 127.5 - 1`` in float32 as per item, so the trained bytes do not change.

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
from torch.utils.data import DataLoader, Dataset

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


def unit_range(frames: torch.Tensor, memory_format=torch.contiguous_format) -> torch.Tensor:
    """uint8 frames (B, H, W, 3) -> float32 (B, 3, H, W) in [-1, 1] (``x / 127.5 - 1``, the
    reference code's scaling), on the frames' device, in ``memory_format`` (CUDA: channels_last)."""
    return frames.permute(0, 3, 1, 2).contiguous(memory_format=memory_format).float().div_(127.5).sub_(1.0)


def as_batch(batch):
    """The DataLoader's ``collate_fn`` for a dataset whose ``__getitems__`` returns a whole batch."""
    return batch


class Batches:
    """A batch sampler whose batches are set before each pass (``.batches = [...]``): one
    DataLoader, and so one set of persistent workers, serves every epoch (the sampler runs in the
    main process; the workers only read the indices they are sent)."""

    def __init__(self, batches=()):
        self.batches = list(batches)

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def batch_loader(dataset: "ShardDataset", sampler: Batches, workers: int, pin_memory: bool = False,
                 prefetch_factor: int = 2) -> DataLoader:
    """The training loader: whole batches (uint8 frames), ``workers`` persistent worker processes
    (0: read in the main process) each keeping ``prefetch_factor`` batches ready, pinned memory
    for a GPU.  :class:`dmc.model.training.Trainer` and ``benchmarks/train.py`` both build it here."""
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=as_batch, num_workers=workers,
                      pin_memory=pin_memory, persistent_workers=workers > 0,
                      prefetch_factor=prefetch_factor if workers > 0 else None)


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
        """One item: float frame (3, H, W) in [-1, 1], log-mel (1, T, n_mels), video id."""
        frames, mel, vids = self.__getitems__([i])
        return unit_range(frames)[0], mel[0], vids[0]

    def __getitems__(self, indices) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A whole batch: uint8 frames (B, H, W, 3), log-mel (B, 1, T, n_mels), video ids (B,),
        in the order of ``indices``; each shard's rows are read at once, in ascending order."""
        idx = np.asarray(indices, dtype=np.int64)
        shards, rows = self.shards[idx], self.rows[idx]
        frames = logmel = None
        for shard in dict.fromkeys(shards.tolist()):
            at = np.flatnonzero(shards == shard)
            at = at[np.argsort(rows[at], kind="stable")]
            f, m = self._arrays(shard)
            part_f, part_m = f[rows[at]], m[rows[at]]
            if frames is None:
                frames = np.empty((len(idx), *part_f.shape[1:]), part_f.dtype)
                logmel = np.empty((len(idx), *part_m.shape[1:]), part_m.dtype)
            frames[at], logmel[at] = part_f, part_m
        return torch.from_numpy(frames), torch.from_numpy(logmel).unsqueeze(1), self.video_ids[idx]

    def __getstate__(self):          # DataLoader workers re-open the maps themselves
        state = self.__dict__.copy()
        state["_maps"] = {}
        return state
