"""Training loop for DMC (plain PyTorch, in the spirit of nanoGPT / DINO).

* Device: ``train.device`` = auto (CUDA when present, else CPU), cpu or cuda.  On CUDA:
  bf16 autocast (``train.amp``), channels_last, pinned-memory loaders, optional
  ``torch.compile`` (``train.compile``); on CPU: deterministic algorithms, and with
  ``train.portable`` the pins of :mod:`dmc.model.portable` (oneDNN off, ATen's DEFAULT kernels,
  MKL_CBWR=COMPATIBLE, ``train.portable_threads`` threads): the same weights on any x86-64 CPU
  and core count.  The mode and the settings in force are stored with the model (``training``).
* Distributed: the same command works under ``torchrun --nproc_per_node N`` (DDP; nccl on
  GPU, gloo on CPU).  ``train.batch_size`` is per process; every process sees a disjoint
  slice of each epoch's permutation; only rank 0 logs and writes files.
* Data order is a pure function of (seed, epoch) and each step's mismatched audio of
  (seed, step), so a run resumed from a checkpoint replays exactly what an uninterrupted
  run would have done: on the CPU the final weights are identical.
* Checkpoints (model, optimizer, scheduler, RNG state, step, log) are written atomically
  every ``train.checkpoint_every`` steps and at the end, to ``<checkpoint_dir>/last.pt``;
  ``dmc train`` resumes from it when its fingerprint (params + data index) matches, and
  starts afresh otherwise.  Everything is loaded with ``weights_only=True``.
* Splits (:func:`dmc.model.dataset.split_of`): the weights are fitted on ``train``; each epoch's
  held-out numbers (correspondence and how sharp the clustering is, per modality, see
  :mod:`dmc.model.diagnostics`) come from ``val``.  The trainer never opens ``test``: after
  training, :func:`heldout_report` scores the final model on val and test for the report.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from dmc.atomic import atomic_file
from dmc.model import portable
from dmc.model.dataset import Batches, ShardDataset, batch_loader, unit_range
from dmc.model.diagnostics import NAMES as SHARPNESS, SharpnessMeter
from dmc.model.loss import max_margin_loss, mismatch_indices
from dmc.model.network import DMC, STRUCTURE_DEFAULTS

MODALITIES = ("audio", "visual")
SHARPNESS_FIELDS = [f"val_{m}_{name}" for m in MODALITIES for name in SHARPNESS]
LOG_FIELDS = ["epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc", "val_pos_sim",
              "val_neg_sim", *SHARPNESS_FIELDS, "seconds", "samples_per_s"]


def pick_device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is available")
    return torch.device(setting)


def fingerprint(params: dict, decoded_dir: Path) -> str:
    """What a checkpoint must match to be resumed: the params that shape training + the data: the
    index and the bytes of every shard array (the index alone misses a corpus whose clips and
    segments are the same but whose audio or pictures changed, e.g. another codec)."""
    keys = {k: v for k, v in params["train"].items() if k not in ("num_workers", "checkpoint_every", "device")}
    blob = json.dumps([params["seed"], params["model"], keys, params["decode"]], sort_keys=True)
    blob += (decoded_dir / "index.csv").read_text()
    h = hashlib.sha256(blob.encode())
    for array in sorted(decoded_dir.glob("shard-*/*.npy")):
        h.update(f"{array.parent.name}/{array.name}".encode())
        with open(array, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def epoch_batches(n: int, batch: int, seed: int, epoch: int, rank: int, world: int) -> list[list[int]]:
    """This process's batches for ``epoch``: a seeded permutation, split across processes."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    perm = torch.randperm(n, generator=g)[rank::world].tolist()
    return [perm[i:i + batch] for i in range(0, len(perm) - batch + 1, batch)]   # drop_last


def step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
    return 1.0


class Trainer:
    def __init__(self, params: dict, decoded_dir: str | Path, out_model: str | Path, log_csv: str | Path,
                 checkpoint_dir: str | Path, metrics_json: str | Path | None = None):
        self.p, self.t = params, params["train"]
        self.decoded_dir, self.out_model = Path(decoded_dir), Path(out_model)
        self.metrics_json = Path(metrics_json) if metrics_json else None
        self.log_csv, self.ckpt = Path(log_csv), Path(checkpoint_dir) / "last.pt"
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        # under torchrun (it sets TORCHELASTIC_RUN_ID) the process group is used even for one
        # process, so `torchrun --nproc_per_node 1` exercises DDP and nccl/gloo on one device
        self.distributed = self.world > 1 or "TORCHELASTIC_RUN_ID" in os.environ
        self.device = pick_device(self.t["device"])
        if self.distributed:
            if self.device.type == "cuda":
                self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
                torch.cuda.set_device(self.device)
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
            if self.rank == 0:
                print(f"train: DDP over a {dist.get_backend()} process group of {self.world} process(es)",
                      file=sys.stderr)
        self.is_main = self.rank == 0
        cuda = self.device.type == "cuda"
        if cuda:
            torch.backends.cudnn.benchmark = True
        else:
            torch.use_deterministic_algorithms(True)
        # train.portable on the CPU: oneDNN off, fixed threads, ... (dmc.model.portable); the mode and
        # the settings in force go into the model file, the checkpoint and the metrics
        portable.apply(self.t, self.device.type)
        self.training = portable.settings(self.t, self.device.type)
        self.missing_pins = portable.missing_pins(self.training, self.t)
        if self.missing_pins:
            self.training["missing_pins"] = self.missing_pins
            if self.is_main:
                print("train: train.portable asked for, but torch ran before its pins in this process: "
                      + "; ".join(self.missing_pins), file=sys.stderr)
        torch.manual_seed(params["seed"])

        # train and val only: what training reads and chooses never depends on the test videos
        self.train_set = ShardDataset.of_split(self.decoded_dir, params, "train")
        self.val_set = ShardDataset.of_split(self.decoded_dir, params, "val")
        if len(self.train_set) < self.t["batch_size"] * self.world:
            raise ValueError(f"train.batch_size: {self.t['batch_size']} x {self.world} processes exceeds the "
                             f"{len(self.train_set)} training segments in {self.decoded_dir}")
        self.model = DMC.from_params(params["model"], self.t).to(self.device)
        if cuda:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.net = self.model
        if self.t["compile"]:
            self.net = torch.compile(self.net)
        if self.distributed:
            self.net = torch.nn.parallel.DistributedDataParallel(self.net)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=self.t["lr"], weight_decay=self.t["weight_decay"])
        self.steps_per_epoch = len(epoch_batches(len(self.train_set), self.t["batch_size"], 0, 0,
                                                 self.rank, self.world))
        self.total_steps = self.steps_per_epoch * self.t["epochs"]
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: lr_factor(
            s, self.total_steps, self.t["warmup_steps"], self.t["schedule"]))
        self.amp = torch.autocast("cuda", dtype=torch.bfloat16) if cuda and self.t["amp"] else contextlib.nullcontext()
        self.step, self.log = 0, []
        self.fp = fingerprint(params, self.decoded_dir)
        self._loaders: dict[int, tuple] = {}

    # -- data ---------------------------------------------------------------------------
    def loader(self, dataset, batches):
        """``dataset``'s loader set to yield ``batches``: built once per dataset (its persistent
        workers serve every epoch and every validation pass), whole uint8 batches (dmc.model.dataset)."""
        if id(dataset) not in self._loaders:
            sampler = Batches()
            self._loaders[id(dataset)] = (batch_loader(dataset, sampler, self.t["num_workers"],
                                                       pin_memory=self.device.type == "cuda"), sampler)
        loader, sampler = self._loaders[id(dataset)]
        sampler.batches = list(batches)
        return loader

    def close_loaders(self) -> None:
        """Stop the persistent loader workers (at the end of :meth:`fit`)."""
        self._loaders.clear()

    def to_device(self, frames, mel):
        """uint8 frames to the device, scaled there (dmc.model.dataset.unit_range); log-mel as it is."""
        fmt = torch.channels_last if self.device.type == "cuda" else torch.contiguous_format
        frames = unit_range(frames.to(self.device, non_blocking=True), memory_format=fmt)
        return frames, mel.to(self.device, non_blocking=True)

    def batch_loss(self, frames, mel, vids, gen, net=None):
        """(loss, stats, model outputs) of one batch; negatives drawn with ``gen``."""
        neg = mismatch_indices(vids, generator=gen).to(self.device)
        frames, mel = self.to_device(frames, mel)
        with self.amp:
            out = (net or self.net)(frames, mel)
        loss, stats = max_margin_loss(out["ca"].float(), out["cv"].float(), neg, self.t["margin"])
        return loss, stats, out

    # -- checkpoints ----------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        if not self.is_main:
            return
        state = {"fingerprint": self.fp, "step": self.step, "model": self.model.state_dict(),
                 "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                 "torch_rng": torch.get_rng_state(), "log": self.log, "training": self.training,
                 "epoch_sums": list(self.epoch_sums)}   # this epoch's loss/accuracy sums so far
        with atomic_file(self.ckpt) as tmp:
            torch.save(state, tmp)

    def try_resume(self) -> bool:
        if not self.ckpt.exists():
            return False
        # loaded on the CPU whatever the device: the RNG state must stay a CPU ByteTensor (mapped to
        # CUDA it made every resume on a GPU fail), and load_state_dict moves the rest where it belongs
        state = torch.load(self.ckpt, map_location="cpu", weights_only=True)
        if state.get("fingerprint") != self.fp:
            if self.is_main:
                print(f"train: {self.ckpt} is from other params or data; starting afresh", file=sys.stderr)
            return False
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        self.step, self.log = state["step"], state["log"]
        self.epoch_sums = tuple(state.get("epoch_sums", (0.0, 0.0)))
        if self.is_main:
            print(f"train: resumed from {self.ckpt} at step {self.step}", file=sys.stderr)
        return True

    # -- evaluation -----------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, dataset: ShardDataset) -> dict:
        """Audiovisual correspondence (is S(own audio) > S(audio of another video)?) and the
        sharpness of the clustering per modality (``audio_max_assign``, ...) on ``dataset``."""
        was_training = self.model.training
        self.model.eval()
        n = len(dataset)
        batches = [list(range(i, min(i + 64, n))) for i in range(0, n, 64)]
        sums = {"loss": 0.0, "accuracy": 0.0, "pos_sim": 0.0, "neg_sim": 0.0}
        meters = {m: SharpnessMeter() for m in MODALITIES}
        count = 0
        for b, (frames, mel, vids) in enumerate(self.loader(dataset, batches)):
            if len(set(vids.tolist())) < 2:
                continue
            loss, stats, out = self.batch_loss(frames, mel, vids, step_generator(self.p["seed"] + 7, b),
                                               net=self.model)
            for k in sums:
                sums[k] += (loss.item() if k == "loss" else stats[k]) * len(vids)
            meters["audio"].update(out["assign_a"].float())
            meters["visual"].update(out["assign_v"].float())
            count += len(vids)
        self.model.train(was_training)
        result = {k: v / max(count, 1) for k, v in sums.items()}
        for m, meter in meters.items():
            result.update({f"{m}_{name}": v for name, v in meter.means().items()})
        result["segments"], result["videos"] = count, int(dataset.index.video.nunique())
        return result

    def validate(self) -> dict:
        """:meth:`evaluate` on the validation split."""
        return self.evaluate(self.val_set)

    def write_log(self) -> None:
        if not self.is_main:
            return
        with atomic_file(self.log_csv) as tmp, open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=LOG_FIELDS)
            w.writeheader()
            w.writerows(self.log)

    def log_epoch(self, epoch, train_loss, train_acc, seconds, samples):
        v = self.validate()
        row = {"epoch": epoch, "step": self.step, "train_loss": round(train_loss, 5), "train_acc": round(train_acc, 4),
               "val_loss": round(v["loss"], 5), "val_acc": round(v["accuracy"], 4),
               "val_pos_sim": round(v["pos_sim"], 4), "val_neg_sim": round(v["neg_sim"], 4),
               **{f"val_{k}": round(v[k], 4) for k in (f"{m}_{n}" for m in MODALITIES for n in SHARPNESS)},
               "seconds": round(seconds, 2), "samples_per_s": round(samples / seconds, 1) if seconds else 0.0}
        self.log.append(row)
        if self.is_main:
            print("train: " + "  ".join(f"{k}={v}" for k, v in row.items()), file=sys.stderr)

    # -- main loop ------------------------------------------------------------------------
    def fit(self) -> dict:
        self.epoch_sums = (0.0, 0.0)   # resumed mid-epoch: the epoch's means still cover all its steps
        if not self.try_resume():
            self.log_epoch(0, float("nan"), float("nan"), 0.0, 0)   # correspondence at initialisation
        seed, every = self.p["seed"], self.t["checkpoint_every"]
        while self.step < self.total_steps:
            epoch, skip = divmod(self.step, self.steps_per_epoch)
            batches = epoch_batches(len(self.train_set), self.t["batch_size"], seed, epoch, self.rank, self.world)
            loss_sum, acc_sum = self.epoch_sums if skip else (0.0, 0.0)
            done, t0 = 0, time.perf_counter()
            bar = tqdm(self.loader(self.train_set, batches[skip:]), total=len(batches) - skip,
                       desc=f"epoch {epoch + 1}/{self.t['epochs']}", disable=None if self.is_main else True,
                       file=sys.stderr, mininterval=2, leave=False)
            for frames, mel, vids in bar:
                loss, stats, _ = self.batch_loss(frames, mel, vids, step_generator(seed, self.step))
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                self.sched.step()
                self.step += 1
                done += len(vids)
                loss_sum += loss.item()
                acc_sum += stats["accuracy"]
                self.epoch_sums = (loss_sum, acc_sum)
                bar.set_postfix(loss=f"{loss.item():.3f}", sps=f"{done / (time.perf_counter() - t0):.0f}")
                if every and self.step % every == 0:
                    self.save_checkpoint()
            n = len(batches)
            self.log_epoch(epoch + 1, loss_sum / max(n, 1), acc_sum / max(n, 1),
                           time.perf_counter() - t0, done * self.world)
            self.epoch_sums = (0.0, 0.0)
            self.save_checkpoint()
            self.write_log()
        self.write_log()
        self.save_model()
        if self.metrics_json and self.is_main:
            heldout_report(self, self.metrics_json)
        self.close_loaders()
        if self.distributed:
            dist.barrier()
            dist.destroy_process_group()
        return self.log[-1]

    def save_model(self) -> None:
        if not self.is_main:
            return
        train = {k: self.t[k] for k in ("clusters", "dim", "iterations", "temperature")}
        train.update({k: self.t[k] for k, v in STRUCTURE_DEFAULTS.items() if self.t.get(k, v) != v})
        cfg = {"model": self.p["model"], "train": train, "decode": self.p["decode"]}
        with atomic_file(self.out_model) as tmp:
            torch.save({"model": self.model.state_dict(), "config": cfg, "step": self.step,
                        "training": self.training}, tmp)


def heldout_report(trainer: Trainer, out_json: str | Path) -> dict:
    """Score the trained model on val and test; write flat metrics (DVC) to ``out_json``.

    Runs after training has finished and the model is saved: the test numbers are reported
    only, nothing is chosen from them.  Keys: ``correspondence.<split>.acc`` (and ``.loss``,
    ``.videos``, ``.segments``) and ``clustering.<split>.<modality>.<statistic>``.
    """
    out = {}
    for split in ("val", "test"):
        ds = trainer.val_set if split == "val" else ShardDataset.of_split(trainer.decoded_dir, trainer.p, "test")
        if not len(ds):
            continue
        r = trainer.evaluate(ds)
        out.update({f"correspondence.{split}.acc": round(r["accuracy"], 4),
                    f"correspondence.{split}.loss": round(r["loss"], 5),
                    f"correspondence.{split}.videos": r["videos"],
                    f"correspondence.{split}.segments": r["segments"]})
        out.update({f"clustering.{split}.{m}.{n}": round(r[f"{m}_{n}"], 4) for m in MODALITIES for n in SHARPNESS})
    # the training mode (1: portable, the same bytes on any CPU; 0: fast) and its intra-op threads
    out["training.portable"] = int(trainer.training["mode"] == "portable")
    if "threads" in trainer.training:
        out["training.threads"] = trainer.training["threads"]
    with atomic_file(out_json) as tmp:
        Path(tmp).write_text(json.dumps(out, indent=2) + "\n")
    return out


def load_model(path: str | Path, map_location="cpu") -> tuple[DMC, dict]:
    """A trained DMC and its config from ``dmc train``'s output (no arbitrary unpickling)."""
    state = torch.load(path, map_location=map_location, weights_only=True)
    model = DMC.from_params(state["config"]["model"], state["config"]["train"])
    model.load_state_dict(state["model"])
    return model.eval(), state["config"]
