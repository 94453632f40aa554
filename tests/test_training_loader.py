"""The lean training loader (issue 35, item 3; dmc.model.dataset): whole uint8 batches read from the
memory-mapped shards, scaled on the device, persistent workers; and the trained bytes it gives
are those of the per-item float loader it replaced (kept here as the reference)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from conftest import load_default_params, with_overrides
from dmc.model.dataset import ShardDataset, unit_range
from dmc.model.training import Trainer

SEGMENTS = 4


def make_decoded(root: Path, shards: int = 2, videos_per_shard: int = 8, frame: int = 32, frames_t: int = 21,
                 n_mels: int = 64) -> Path:
    """index.csv + ``shards`` shards of fixed random uint8 frames and float32 log-mels."""
    rng = np.random.default_rng(3)
    index = []
    for s in range(shards):
        d = root / f"shard-{s:05d}"
        d.mkdir(parents=True)
        n = videos_per_shard * SEGMENTS
        np.save(d / "frames.npy", rng.integers(0, 256, (n, frame, frame, 3), dtype=np.uint8))
        np.save(d / "logmel.npy", rng.standard_normal((n, frames_t, n_mels)).astype(np.float32))
        seg = pd.DataFrame({"video": [f"s{s}v{i // SEGMENTS:03d}.mp4" for i in range(n)],
                            "segment": [i % SEGMENTS for i in range(n)]})
        seg.to_csv(d / "segments.csv", index=False)
        index.append(seg.assign(shard=d.name, row=np.arange(n))[["shard", "row", "video", "segment"]])
    pd.concat(index).to_csv(root / "index.csv", index=False)
    return root


def test_a_batch_is_the_rows_asked_for_in_their_order_across_shards(tmp_path):
    root = make_decoded(tmp_path)
    ds = ShardDataset(root)
    order = [40, 3, 33, 0, 63, 17, 32]                 # both shards, unsorted
    frames, mel, vids = ds.__getitems__(order)
    assert frames.dtype == torch.uint8 and frames.shape == (7, 32, 32, 3)
    assert mel.shape == (7, 1, 21, 64) and vids.shape == (7,)
    for k, i in enumerate(order):
        shard, row = ds.index.shard[i], ds.index.row[i]
        want_f = np.load(root / shard / "frames.npy")[row]
        want_m = np.load(root / shard / "logmel.npy")[row]
        assert np.array_equal(frames[k].numpy(), want_f)
        assert np.array_equal(mel[k, 0].numpy(), want_m)
        assert vids[k] == sorted(ds.index.video.unique()).index(ds.index.video[i])


def test_unit_range_is_the_reference_scaling_by_hand():
    x = torch.tensor([0, 1, 127, 128, 254, 255], dtype=torch.uint8).reshape(1, 1, 2, 3)   # (B, H, W, 3)
    y = unit_range(x)
    assert y.shape == (1, 3, 1, 2) and y.is_contiguous() and y.dtype == torch.float32
    by_hand = torch.tensor([0, 1, 127, 128, 254, 255], dtype=torch.float32) / 127.5 - 1
    assert torch.equal(y.permute(0, 2, 3, 1).reshape(-1), by_hand)
    assert unit_range(x, memory_format=torch.channels_last).is_contiguous(memory_format=torch.channels_last)


def test_an_item_is_the_reference_float_item(tmp_path):
    root = make_decoded(tmp_path)
    ds = ShardDataset(root)
    frame, mel, vid = ds[37]
    raw = np.load(root / "shard-00001" / "frames.npy")[5]
    assert torch.equal(frame, torch.from_numpy(raw).permute(2, 0, 1).float() / 127.5 - 1)
    assert mel.shape == (1, 21, 64) and vid.ndim == 0


# -- the per-item float loader this replaced: the reference for the trained bytes -------------------------
class PerItem(torch.utils.data.Dataset):
    def __init__(self, ds: ShardDataset):
        self.ds = ds

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        frames, logmel = self.ds._arrays(self.ds.shards[i])
        frame = torch.from_numpy(np.array(frames[self.ds.rows[i]])).permute(2, 0, 1).float().div_(127.5).sub_(1.0)
        return frame, torch.from_numpy(np.array(logmel[self.ds.rows[i]])).unsqueeze(0), self.ds.video_ids[i]


class ReferenceTrainer(Trainer):
    def loader(self, dataset, batches):
        return DataLoader(PerItem(dataset), batch_sampler=batches, num_workers=self.t["num_workers"])

    def to_device(self, frames, mel):
        return frames.to(self.device), mel.to(self.device)


def train(cls, root: Path, out: Path, workers: int = 0):
    p = with_overrides(load_default_params(), train__epochs=2, train__batch_size=8, train__checkpoint_every=0,
                       train__warmup_steps=0, train__lr=1e-3, train__device="cpu", train__num_workers=workers,
                       decode__frame_size=32, decode__segment_seconds=1.0)
    trainer = cls(p, root, out / "m.pt", out / "log.csv", out / "ck")
    trainer.fit()
    return torch.load(out / "m.pt", weights_only=True)["model"], pd.read_csv(out / "log.csv"), trainer


@pytest.mark.parametrize("workers", [0, 2])
def test_the_lean_loader_trains_the_same_bytes_as_the_per_item_loader(tmp_path, workers):
    root = make_decoded(tmp_path / "decoded")
    ref, ref_log, _ = train(ReferenceTrainer, root, tmp_path / "ref")
    lean, lean_log, trainer = train(Trainer, root, tmp_path / "lean", workers)
    assert ref.keys() == lean.keys() and all(torch.equal(ref[k], lean[k]) for k in ref)
    cols = [c for c in ref_log.columns if c not in ("seconds", "samples_per_s")]
    pd.testing.assert_frame_equal(ref_log[cols], lean_log[cols])
    assert trainer._loaders == {}                      # workers stopped at the end of fit
    # positive control: the reference differs when its data differ (one byte of every frame changed)
    f = np.load(root / "shard-00000" / "frames.npy")
    f[:, 0, 0, 0] ^= 0xFF
    np.save(root / "shard-00000" / "frames.npy", f)
    other, _, _ = train(ReferenceTrainer, root, tmp_path / "other")
    assert not all(torch.equal(ref[k], other[k]) for k in ref)


def test_one_loader_with_persistent_workers_serves_every_pass(tmp_path):
    root = make_decoded(tmp_path / "decoded")
    p = with_overrides(load_default_params(), train__batch_size=8, train__device="cpu", train__num_workers=1,
                       decode__frame_size=32, decode__segment_seconds=1.0)
    trainer = Trainer(p, root, tmp_path / "m.pt", tmp_path / "log.csv", tmp_path / "ck")
    ds = trainer.train_set
    first = trainer.loader(ds, [[0, 1], [2, 3]])
    got = [v.tolist() for _, _, v in first]
    assert got == [ds.video_ids[[0, 1]].tolist(), ds.video_ids[[2, 3]].tolist()]
    worker_pids = {w.pid for w in first._iterator._workers}
    second = trainer.loader(ds, [[5, 4, 3]])
    assert second is first
    assert [v.tolist() for _, _, v in second] == [ds.video_ids[[5, 4, 3]].tolist()]
    assert {w.pid for w in second._iterator._workers} == worker_pids       # the same processes
    trainer.close_loaders()
