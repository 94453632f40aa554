"""``dmc localize``: sound localization and multi-source detection on the held-out videos
(scores need data.ground_truth), or heat maps of any video (``--video``)."""

from __future__ import annotations

import sys
from pathlib import Path


def add_parsers(sub) -> None:
    c = sub.add_parser("localize", help="sound localization + multi-source detection on the held-out videos "
                                        "(scores need data.ground_truth), or heat maps of any video (--video)")
    c.add_argument("--video", help="a video file or folder: write heat-map overlays only (no scores)")
    c.add_argument("--model", default="models/dmc.pt", help="trained model")
    c.add_argument("--out", default="results/localize_videos", help="(--video) output folder of PNGs")
    c.add_argument("--decoded", default="data/decoded", help="folder with index.csv and shards")
    c.add_argument("--ground-truth", help="boxes.csv / clips.csv folder (default: params data.ground_truth)")
    c.add_argument("--out-dir", default="results/localization", help="table, overlays, per-pair scores")
    c.add_argument("--metrics", default="results/localization_metrics.json", help="flat metrics (DVC)")
    c.set_defaults(func=run)


def run(args, cfg):
    from dmc.model import portable

    pins = portable.pin_step(cfg.train, cfg.localize.device)   # train.portable: before torch's first call
    from dmc.io.shards import list_videos
    from dmc.localization.localize import localize_benchmark, localize_videos
    from dmc.localization.writing import write_localization
    from dmc.model.training import pick_device

    device = pick_device(cfg.localize.device)
    portable.apply(pins, device.type)
    if args.video:
        src = Path(args.video)
        if src.is_dir():
            rel = list_videos(src)
            paths, names = [src / r for r in rel], rel
        elif src.is_file():
            paths, names = [src], [src.name]
        else:
            raise FileNotFoundError(f"{src}: no such video file or folder")
        if not paths:
            raise SystemExit(f"dmc localize: {src}: no video files found")
        done, skipped = localize_videos(paths, args.model, cfg, args.out, device, names)
        print(f"localize: {done} video(s) drawn in {args.out}, {skipped} skipped", file=sys.stderr)
        if done == 0:
            raise SystemExit(f"dmc localize: none of the {len(paths)} video(s) could be processed")
        return
    gt = args.ground_truth or cfg.data.ground_truth   # None (real corpus): no box metrics
    result = localize_benchmark(cfg, args.decoded, args.model, gt, device)
    write_localization(result, args.out_dir, args.metrics)
    print(result.message, file=sys.stderr)
