"""``dmc localize``: sound localization and multi-source detection on the held-out videos
(scores need data.ground_truth), heat maps of any video (``--video``), or a published benchmark
scored with its official protocol (``--benchmark``, :mod:`dmc.localization.benchmarks`)."""

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
    b = c.add_argument_group("published benchmarks (docs/benchmarks-localization.md)")
    b.add_argument("--benchmark", choices=("auto", "flickr", "vggss", "music-solo", "music-duet"),
                   help="score a published benchmark with its official protocol (auto: the kind from the "
                        "folder's files; --root defaults to params data.localization_benchmark)")
    b.add_argument("--root", help="the benchmark folder (frames/, audio/ or videos/; flickr: Annotations/); "
                                  "without it: boxes only, content-free baselines")
    b.add_argument("--annotations", help="vggss.json / solotest.json / duettest.json / the Annotations folder")
    b.add_argument("--test-list", help="CSV of the ids to score (first column), e.g. flickr_test.csv")
    b.add_argument("--threshold", type=float, help="fixed threshold on the normalised map (default: its median)")
    b.add_argument("--content-free", action="store_true", help="score the content-free baselines only (no model)")
    b.add_argument("--extended", action="store_true", help="SLAVC's extended set: add one mismatched-audio "
                                                           "negative per clip, report AP and max-F1 (needs a model)")
    b.add_argument("--benchmark-out", default="results/benchmarks", help="table, JSON and per-clip cIoU")
    b.add_argument("--benchmark-metrics", help="also write the JSON here (the pipeline stage's metrics)")
    c.set_defaults(func=run)


def run_published(args, cfg) -> None:
    from dmc.localization.benchmarks import run as bench_run
    from dmc.model.training import pick_device

    kind, root = args.benchmark, args.root
    if kind == "auto":
        root = root or cfg.data.localization_benchmark
        if root is None:
            bench_run.write_not_applicable(args.benchmark_out, args.benchmark_metrics)
            print("localize: data.localization_benchmark is null: no benchmark scored", file=sys.stderr)
            return
        kind = bench_run.kind_of(root)
    bench = bench_run.load(kind, root, args.annotations, args.test_list)
    models = negatives = None
    if root and not args.content_free:
        if not Path(args.model).is_file():
            raise FileNotFoundError(f"{args.model}: no trained model (give --model, or --content-free)")
        if kind.startswith("music"):     # the mapping file is refused before any decoding
            from dmc.localization.benchmarks.music_classaware import mapping_for

            mapping_for(args.model)
        models, negatives = bench_run.model_maps(bench, cfg, args.model, pick_device(cfg.localize.device),
                                                 extended=args.extended)
    elif args.extended:
        from dmc.localization.benchmarks.layout import BenchmarkError

        raise BenchmarkError("--extended needs --root with media and a model (not --content-free)")
    res = bench_run.score(bench, cfg.seed, args.threshold, cfg.localize.center_sigma, models, negatives=negatives)
    gate = cfg.localize.class_map_gate      # the class maps' gate: a parameter of the step, used by class-aware kinds
    if kind.startswith("music"):
        from dmc.localization.benchmarks.music_classaware import model_class_maps

        class_models = (model_class_maps(bench, cfg, args.model, pick_device(cfg.localize.device), gate)
                        if models is not None else None)
        bench_run.add_classaware(res, cfg.seed, cfg.localize.center_sigma, class_models)
    bench_run.write(res, args.benchmark_out, args.benchmark_metrics, str(args.annotations or root))
    for line in bench.problems:
        print(f"dmc localize: not scored: {line}", file=sys.stderr)
    print(f"localize: {bench.report_line()}; table in {args.benchmark_out}/{bench.name}.md", file=sys.stderr)


def run(args, cfg):
    from dmc.model import portable

    pins = portable.pin_step(cfg.train, cfg.localize.device)   # train.portable: before torch's first call
    from dmc.io.shards import list_videos
    from dmc.localization.localize import localize_benchmark, localize_videos
    from dmc.localization.writing import write_localization
    from dmc.model.training import pick_device

    if args.benchmark:
        return run_published(args, cfg)
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
