"""``dmc extract``: audio features of an evaluation set for one method."""

from __future__ import annotations

import sys

from dmc.names import DATASETS


def add_parsers(sub) -> None:
    c = sub.add_parser("extract", help="audio features of an evaluation set for one method")
    c.add_argument("dataset", choices=list(DATASETS))
    c.add_argument("--method", choices=["dmc", "random_init", "logmel_stats"], required=True)
    c.add_argument("--logmel", required=True, help="logmel.npy from `dmc evalset`")
    c.add_argument("--model", default="models/dmc.pt", help="(dmc) trained model")
    c.add_argument("--out", required=True)
    c.set_defaults(func=run)


def run(args, cfg):
    from dmc.model import portable

    pins = portable.pin_step(cfg.train, cfg.features.device)   # train.portable: before torch's first call
    import numpy as np

    from dmc.atomic import save_npy
    from dmc.evaluation.features import method_features
    from dmc.model.training import pick_device

    device = pick_device(cfg.features.device)
    portable.apply(pins, device.type)
    logmel = np.load(args.logmel, mmap_mode="r", allow_pickle=False)
    feats = method_features(args.method, logmel, cfg, args.model, device)
    save_npy(args.out, feats)
    print(f"extract: {args.dataset}/{args.method}: features {feats.shape} in {args.out}", file=sys.stderr)
