"""``dmc evalset``: log-mel patches of an evaluation set (ESC-50 clips, DCASE sub-clips)."""

from __future__ import annotations

import sys
from pathlib import Path

from dmc.names import DATASETS


def add_parsers(sub) -> None:
    c = sub.add_parser("evalset", help="log-mel patches of an evaluation set (ESC-50 clips, DCASE sub-clips)")
    c.add_argument("dataset", choices=list(DATASETS))
    c.add_argument("--root", help="data set folder (default: params data.<dataset>)")
    c.add_argument("--out-dir", required=True)
    c.set_defaults(func=run)


def run(args, cfg):
    from dmc.atomic import atomic_file, save_npy
    from dmc.evaluation.features import evalset_logmel
    from dmc.io.logmel import mkl_reproducible

    mkl_reproducible()   # before torch's first MKL call in this process: the same log-mels on every CPU

    # evalset_logmel takes the decode section as a dict, as dmc.io's front end (LogMel.from_params) does
    logmel, clips = evalset_logmel(args.dataset, args.root or getattr(cfg.data, args.dataset), cfg.decode.as_dict())
    out = Path(args.out_dir)
    save_npy(out / "logmel.npy", logmel)
    with atomic_file(out / "clips.csv") as tmp:
        clips.to_csv(tmp, index=False)
    print(f"evalset: {args.dataset}: {len(clips)} clips, log-mel {logmel.shape} in {out}", file=sys.stderr)
