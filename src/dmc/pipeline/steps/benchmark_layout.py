"""``dmc benchmark-layout``: the untouched test corpus written in VGG-SS's published layout
(:mod:`dmc.localization.benchmarks.synthetic`), scored by ``dmc localize --benchmark vggss``."""

from __future__ import annotations

import sys


def add_parsers(sub) -> None:
    c = sub.add_parser("benchmark-layout", help="write the untouched test corpus in VGG-SS layout "
                                                "(vggss.json, frames/, audio/)")
    c.add_argument("--videos", default="data/synth_test/videos")
    c.add_argument("--ground-truth", default="data/synth_test/ground_truth")
    c.add_argument("--out", default="data/benchmark_layout/vggss")
    c.set_defaults(func=run)


def run(args, cfg):
    from dmc.localization.benchmarks.synthetic import write_vggss_layout

    written, skipped = write_vggss_layout(args.videos, args.ground_truth, args.out, cfg.decode,
                                          (cfg.synth.width, cfg.synth.height), err=sys.stderr)
    print(f"benchmark layout: {written} clip(s) in {args.out}, {skipped} skipped", file=sys.stderr)
