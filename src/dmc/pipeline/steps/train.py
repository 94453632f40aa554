"""``dmc train``: DMC on the decoded shards (resumes from the last checkpoint)."""

from __future__ import annotations

import sys
from pathlib import Path

from dmc.errors import DmcError


def add_parsers(sub) -> None:
    c = sub.add_parser("train", help="train DMC on decoded shards (resumes from the last checkpoint)")
    c.add_argument("--decoded", default="data/decoded", help="folder with index.csv and shards")
    c.add_argument("--out", default="models/dmc.pt", help="trained model")
    c.add_argument("--train-log", default="results/train/log.csv",
                   help="per-epoch loss / accuracy CSV (not --log: torchrun would take that for its --log-dir)")
    c.add_argument("--checkpoints", default="models/checkpoints", help="folder of last.pt")
    c.add_argument("--metrics", help="after training: correspondence and clustering sharpness on val and test "
                                     "(report only; default: metrics.json beside --train-log)")
    c.set_defaults(func=run)


class TrainError(DmcError):
    """Training cannot run as params.yaml asks (a portable run whose pins did not take)."""


def run(args, cfg):
    from dmc.model.portable import pin_environment

    params = cfg.as_dict()
    # train.portable: the environment of the portable mode before torch's first call in this process
    # (ATen's kernels and MKL's code path are chosen once, at their first use)
    pin_environment(params["train"])
    from dmc.model.training import Trainer

    metrics = args.metrics or Path(args.train_log).with_name("metrics.json")
    # the Trainer takes the params dict: it hashes it for the checkpoint's fingerprint and stores
    # its sections in the model file, whose bytes stay those of params.yaml's dict
    trainer = Trainer(params, args.decoded, args.out, args.train_log, args.checkpoints, metrics)
    if trainer.missing_pins:
        raise TrainError("train.portable: pins not in force in this process (" + "; ".join(trainer.missing_pins)
                         + "); the weights would depend on this host")
    last = trainer.fit()
    print(f"train: done; held-out correspondence accuracy {last['val_acc']:.3f}; model in {args.out}",
          file=sys.stderr)
