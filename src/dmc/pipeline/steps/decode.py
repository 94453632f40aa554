"""``dmc decode`` and ``dmc decode-index``: videos -> (frame, log-mel) shards, one job per shard,
then the merged index."""

from __future__ import annotations

import sys
from pathlib import Path


def add_parsers(sub) -> None:
    c = sub.add_parser("decode", help="decode videos into frame + log-mel shards")
    c.add_argument("--shard", type=int, help="decode only this shard (default: all, then index)")
    c.add_argument("--videos", help="video folder (default: params data.videos)")
    c.add_argument("--out", help="with --shard: the shard folder to write")
    c.add_argument("--out-dir", default="data/decoded", help="folder of shards and index")
    c.add_argument("--workers", type=int, help="decode worker processes (default: params compute.decode_workers; "
                                               "Snakemake passes its threads)")
    c.set_defaults(func=run)

    c = sub.add_parser("decode-index", help="merge shard reports into index.csv, report.csv, summary.json")
    c.add_argument("shards", nargs="+", help="shard folders")
    c.add_argument("--out-dir", default="data/decoded")
    c.set_defaults(func=run_index)


def run(args, cfg):
    from dmc.io.shards import shard_name, videos_of_shard, write_shard
    from dmc.io.logmel import mkl_reproducible
    from dmc.cores import decode_workers

    mkl_reproducible()   # before torch's first MKL call in this process: the same log-mels on every CPU

    # dmc.io's decoding functions take the section as a dict (tests and benchmarks call them with
    # edited dicts): handed over explicitly
    d = cfg.decode.as_dict()
    n = cfg.decode.num_shards
    root = args.videos or cfg.data.videos
    shards = [args.shard] if args.shard is not None else range(n)
    configured = decode_workers(cfg)   # read even when --workers overrides it (graph.STEPS lists it as read)
    workers = args.workers or configured
    for shard in shards:
        if not 0 <= shard < n:
            raise SystemExit(f"dmc decode: --shard {shard} is outside 0..{n - 1} (decode.num_shards)")
        out = Path(args.out) if args.shard is not None and args.out else Path(args.out_dir) / shard_name(shard)
        s = write_shard(out, root, videos_of_shard(root, shard, n), d, workers)
        print(f"decode: {out.name}: {s['videos']} videos, {s['ok']} ok, {s['partial']} partial, "
              f"{s['bad']} bad, {s['segments']} segments", file=sys.stderr)
    if args.shard is None:
        _index_and_print(sorted(Path(args.out_dir).glob("shard-" + "[0-9]" * 5)), args.out_dir, d)


def _index_and_print(shard_dirs, out_dir, d):
    from dmc.io.shards import build_index

    s = build_index(shard_dirs, out_dir, d)
    print(f"decode summary: {s['videos']} videos ({s['ok']} ok, {s['partial']} partial, {s['bad']} skipped), "
          f"{s['audio_seconds_in_segments']:.0f} s of audio in {s['segments']} segments, {s['frames']} frames",
          file=sys.stderr)


def run_index(args, cfg):
    _index_and_print(args.shards, args.out_dir, cfg.decode.as_dict())   # a dict, as in run
