"""The ``dmc`` command: every pipeline step is a subcommand, run by Snakemake or by hand.

Each subcommand reads and validates params.yaml first (``--params``), so a bad value is
refused, naming the key, before any work starts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .params import ParamsError, load_params


def _synth(args, p):
    from . import synth

    s = synth.scaled_counts(p["synth"])
    seed = p["seed"]
    if args.what == "videos":
        df = synth.generate_videos(args.out, args.ground_truth, n_videos=s["videos"], seconds=s["video_seconds"],
                                   width=s["width"], height=s["height"], fps=s["fps"], audio_rate=s["audio_rate"],
                                   other_containers=s["other_containers"], max_sources=s["max_sources"],
                                   max_distractors=s["max_distractors"], seed=seed)
        print(f"synth: {len(df)} videos in {args.out}, ground truth in {args.ground_truth}", file=sys.stderr)
    elif args.what == "esc50":
        synth.generate_esc50(args.out, n_classes=s["esc50_classes"],
                             clips_per_class=args.clips_per_class or s["esc50_clips_per_class"], seed=seed + 1)
        print(f"synth: ESC-50-like set in {args.out}", file=sys.stderr)
    else:
        synth.generate_dcase(args.out, recordings_per_scene=s["dcase_recordings_per_scene"],
                             seconds=s["dcase_seconds"], seed=seed + 2)
        print(f"synth: DCASE-like set in {args.out}", file=sys.stderr)


def _decode(args, p):
    from .shards import build_index, shard_name, videos_of_shard, write_shard

    d = p["decode"]
    root = args.videos or p["data"]["videos"]
    shards = [args.shard] if args.shard is not None else range(d["num_shards"])
    for shard in shards:
        if not 0 <= shard < d["num_shards"]:
            raise SystemExit(f"dmc decode: --shard {shard} is outside 0..{d['num_shards'] - 1} (decode.num_shards)")
        out = Path(args.out) if args.shard is not None and args.out else Path(args.out_dir) / shard_name(shard)
        s = write_shard(out, root, videos_of_shard(root, shard, d["num_shards"]), d)
        print(f"decode: {out.name}: {s['videos']} videos, {s['ok']} ok, {s['partial']} partial, "
              f"{s['bad']} bad, {s['segments']} segments", file=sys.stderr)
    if args.shard is None:
        _index_and_print(sorted(Path(args.out_dir).glob("shard-*[0-9]")), args.out_dir, d)


def _index_and_print(shard_dirs, out_dir, d):
    from .shards import build_index

    s = build_index(shard_dirs, out_dir, d)
    print(f"decode summary: {s['videos']} videos ({s['ok']} ok, {s['partial']} partial, {s['bad']} skipped), "
          f"{s['audio_seconds_in_segments']:.0f} s of audio in {s['segments']} segments, {s['frames']} frames",
          file=sys.stderr)


def _decode_index(args, p):
    _index_and_print(args.shards, args.out_dir, p["decode"])


def _check_params(args, p):
    print(f"{args.params}: ok")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="dmc", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    sub = ap.add_subparsers(dest="command", required=True)

    c = sub.add_parser("check-params", help="validate params.yaml and exit")
    c.set_defaults(func=_check_params)

    c = sub.add_parser("synth", help="generate the embedded synthetic corpus")
    c.add_argument("what", choices=["videos", "esc50", "dcase"])
    c.add_argument("--out", required=True, help="output folder")
    c.add_argument("--ground-truth", default="data/synth/ground_truth", help="(videos) ground-truth folder")
    c.add_argument("--clips-per-class", type=int, help="(esc50) override, e.g. 40 for an ESC-50-sized set")
    c.set_defaults(func=_synth)

    c = sub.add_parser("decode", help="decode videos into frame + log-mel shards")
    c.add_argument("--shard", type=int, help="decode only this shard (default: all, then index)")
    c.add_argument("--videos", help="video folder (default: params data.videos)")
    c.add_argument("--out", help="with --shard: the shard folder to write")
    c.add_argument("--out-dir", default="data/decoded", help="folder of shards and index")
    c.set_defaults(func=_decode)

    c = sub.add_parser("decode-index", help="merge shard reports into index.csv, report.csv, summary.json")
    c.add_argument("shards", nargs="+", help="shard folders")
    c.add_argument("--out-dir", default="data/decoded")
    c.set_defaults(func=_decode_index)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        params = load_params(args.params)
    except ParamsError as exc:
        print(f"dmc: invalid parameters: {exc}", file=sys.stderr)
        return 2
    try:
        args.func(args, params)
    except ParamsError as exc:
        print(f"dmc: invalid parameters: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # one clear line for known failures; tracebacks for bugs
        from .shards import TooManyBadVideos

        if isinstance(exc, (TooManyBadVideos, FileNotFoundError)):
            print(f"dmc {args.command}: {exc}", file=sys.stderr)
            return 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
