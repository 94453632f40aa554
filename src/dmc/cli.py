"""The ``dmc`` command: every pipeline step is a subcommand, run by Snakemake or by hand.

Each subcommand reads and validates params.yaml first (``--params``), so a bad value is
refused, naming the key, before any work starts.
"""

from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path

from .names import DATASETS, SWEEPS
from .params import ParamsError, load_params


def _synth(args, p):
    from . import synth

    if args.what == "test":     # the untouched test corpus, from synth.test_seed (dmc.testcorpus)
        from .testcorpus import test_corpus_settings

        kw = test_corpus_settings(p["synth"])
        df = synth.generate_videos(args.out, args.ground_truth, **kw)
        print(f"synth: test corpus of {len(df)} videos (seed {kw['seed']}) in {args.out}, ground truth in "
              f"{args.ground_truth}", file=sys.stderr)
        return
    s = {**p["synth"], **synth.scaled_counts(p["synth"])}
    seed = p["synth"]["seed"]   # the corpus's own seed: `seed` (training) sweeps keep the data fixed
    if args.what == "videos":
        df = synth.generate_videos(args.out, args.ground_truth, n_videos=s["videos"], seconds=s["video_seconds"],
                                   width=s["width"], height=s["height"], fps=s["fps"], audio_rate=s["audio_rate"],
                                   other_containers=s["other_containers"], max_sources=s["max_sources"],
                                   max_distractors=s["max_distractors"], seed=seed, control=s["control"],
                                   variants=s["variants"])
        print(f"synth: {len(df)} videos in {args.out}, ground truth in {args.ground_truth}", file=sys.stderr)
    elif args.what == "esc50":
        synth.generate_esc50(args.out, n_classes=s["esc50_classes"],
                             clips_per_class=args.clips_per_class or s["esc50_clips_per_class"], seed=seed + 1)
        print(f"synth: ESC-50-like set in {args.out}", file=sys.stderr)
    elif args.what == "esc10":
        synth.generate_esc10(args.out, n_classes=min(10, s["esc50_classes"]),
                             clips_per_class=s["esc50_clips_per_class"], seed=seed + 3)
        print(f"synth: ESC-10-release-like set in {args.out}", file=sys.stderr)
    else:
        synth.generate_dcase(args.out, recordings_per_scene=s["dcase_recordings_per_scene"],
                             seconds=s["dcase_seconds"], seed=seed + 2)
        print(f"synth: DCASE-like set in {args.out}", file=sys.stderr)


def _decode(args, p):
    from .shards import shard_name, videos_of_shard, write_shard

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
        _index_and_print(sorted(Path(args.out_dir).glob("shard-" + "[0-9]" * 5)), args.out_dir, d)


def _index_and_print(shard_dirs, out_dir, d):
    from .shards import build_index

    s = build_index(shard_dirs, out_dir, d)
    print(f"decode summary: {s['videos']} videos ({s['ok']} ok, {s['partial']} partial, {s['bad']} skipped), "
          f"{s['audio_seconds_in_segments']:.0f} s of audio in {s['segments']} segments, {s['frames']} frames",
          file=sys.stderr)


def _decode_index(args, p):
    _index_and_print(args.shards, args.out_dir, p["decode"])


def _train(args, p):
    from .training import Trainer

    metrics = args.metrics or Path(args.train_log).with_name("metrics.json")
    last = Trainer(p, args.decoded, args.out, args.train_log, args.checkpoints, metrics).fit()
    print(f"train: done; held-out correspondence accuracy {last['val_acc']:.3f}; model in {args.out}",
          file=sys.stderr)


def _evalset(args, p):
    from .atomic import atomic_file, save_npy
    from .features import evalset_logmel

    logmel, clips = evalset_logmel(args.dataset, args.root or p["data"][args.dataset], p["decode"])
    out = Path(args.out_dir)
    save_npy(out / "logmel.npy", logmel)
    with atomic_file(out / "clips.csv") as tmp:
        clips.to_csv(tmp, index=False)
    print(f"evalset: {args.dataset}: {len(clips)} clips, log-mel {logmel.shape} in {out}", file=sys.stderr)


def _extract(args, p):
    import numpy as np

    from .atomic import save_npy
    from .features import method_features
    from .training import pick_device

    logmel = np.load(args.logmel, mmap_mode="r", allow_pickle=False)
    feats = method_features(args.method, logmel, p, args.model, pick_device(p["features"]["device"]))
    save_npy(args.out, feats)
    print(f"extract: {args.dataset}/{args.method}: features {feats.shape} in {args.out}", file=sys.stderr)


def _evaluate(args, p):
    import numpy as np
    import pandas as pd

    from .evaluation import evaluate_dcase, evaluate_esc50
    from .names import FOLD_DATASETS, METHODS
    from .reporting import write_results

    grid = p["evaluate"]["C_grid"]
    results = {d: {} for d in DATASETS}
    for dataset in results:
        clips = pd.read_csv(Path(args.evalsets) / dataset / "clips.csv", keep_default_na=False)
        for method in METHODS:
            X = np.load(Path(args.features) / dataset / f"{method}.npy", allow_pickle=False)
            if dataset in FOLD_DATASETS:
                results[dataset][method] = evaluate_esc50(X, clips, grid, dataset=dataset)
            else:
                table = clips.drop_duplicates("recording")[["recording", "label", "split"]]
                results[dataset][method] = evaluate_dcase(X, clips.recording, table, grid, id_col="recording")
            r = results[dataset][method]
            acc = r.get("acc_mean", r.get("scene_acc_mean"))
            print(f"evaluate: {dataset:6s} {method:13s} accuracy {acc:.3f}", file=sys.stderr)
    write_results(results, args.out_dir)


def _localize(args, p):
    from .localization import localize_videos, run_benchmark
    from .shards import list_videos
    from .training import pick_device

    device = pick_device(p["localize"]["device"])
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
        done, skipped = localize_videos(paths, args.model, p, args.out, device, names)
        print(f"localize: {done} video(s) drawn in {args.out}, {skipped} skipped", file=sys.stderr)
        if done == 0:
            raise SystemExit(f"dmc localize: none of the {len(paths)} video(s) could be processed")
        return
    gt = args.ground_truth or p["data"]["ground_truth"]   # None (real corpus): no box metrics
    run_benchmark(p, args.decoded, args.model, gt, args.out_dir, args.metrics, device,
                  log=lambda m: print(m, file=sys.stderr))


def _heldout(args, p):
    from .heldout import main_step
    from .training import pick_device

    main_step(args, p, pick_device(p["localize"]["device"]))


def _fetch(args, p):
    from .fetch import fetch

    fetch(args.dataset, args.out, urls=args.url, sha256=args.sha256, expect_files=args.expect_files)


def _sweep(args, p):
    from .experiments import run_sweep

    steps = (args.queue, args.run, args.aggregate)
    queue, run, aggregate = steps if any(steps) else (True, True, True)
    run_sweep(p, args.sweep, queue=queue, run=run, aggregate_to=args.out_dir if aggregate else None,
              jobs=args.jobs, show_json=args.show_json, log=lambda m: print(m, file=sys.stderr))


def _check_params(args, p):
    print(f"{args.params}: ok")


def _dvc_yaml(args, p):
    from .graph import dvc_yaml

    text, path = dvc_yaml(), Path(args.file)
    if args.write:
        from .atomic import atomic_file

        with atomic_file(path) as tmp:
            tmp.write_text(text)
        print(f"dvc-yaml: wrote {path}", file=sys.stderr)
    elif not path.is_file() or path.read_text() != text:
        raise SystemExit(f"dmc dvc-yaml: {path} differs from the pipeline table in src/dmc/graph.py: "
                         "run `dmc dvc-yaml --write`")
    else:
        print(f"{path}: matches src/dmc/graph.py", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="dmc", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    sub = ap.add_subparsers(dest="command", required=True)

    c = sub.add_parser("check-params", help="validate params.yaml and exit")
    c.set_defaults(func=_check_params)

    c = sub.add_parser("fetch", help="download a published evaluation set (pinned URL), unpack, convert to the "
                                     "layout params.yaml expects, verify, then move it into place")
    c.add_argument("dataset", choices=["esc50", "dcase"])
    c.add_argument("--out", required=True, help="output folder (replaced only when verified)")
    c.add_argument("--url", action="append", help="another source (mirror, file://); dcase: give the "
                                                  "development set, then the test set")
    c.add_argument("--sha256", action="append", help="expected SHA-256 of each --url archive")
    c.add_argument("--expect-files", type=int, help="expected number of audio files (default: the release's)")
    c.set_defaults(func=_fetch)

    c = sub.add_parser("dvc-yaml", help="check (default) or --write dvc.yaml, generated from src/dmc/graph.py")
    c.add_argument("--write", action="store_true", help="regenerate the file instead of checking it")
    c.add_argument("--file", default="dvc.yaml")
    c.set_defaults(func=_dvc_yaml)

    c = sub.add_parser("synth", help="generate the embedded synthetic corpus")
    c.add_argument("what", choices=["videos", "esc50", "esc10", "dcase", "test"],
                   help="test: the untouched test corpus (synth.test_seed, synth.test_videos)")
    c.add_argument("--out", required=True, help="output folder")
    c.add_argument("--ground-truth", default="data/synth/ground_truth", help="(videos, test) ground-truth folder")
    c.add_argument("--clips-per-class", type=int, help="(esc50) override, e.g. 40 for an ESC-50-sized set")
    c.set_defaults(func=_synth)

    c = sub.add_parser("decode", help="decode videos into frame + log-mel shards")
    c.add_argument("--shard", type=int, help="decode only this shard (default: all, then index)")
    c.add_argument("--videos", help="video folder (default: params data.videos)")
    c.add_argument("--out", help="with --shard: the shard folder to write")
    c.add_argument("--out-dir", default="data/decoded", help="folder of shards and index")
    c.set_defaults(func=_decode)

    c = sub.add_parser("train", help="train DMC on decoded shards (resumes from the last checkpoint)")
    c.add_argument("--decoded", default="data/decoded", help="folder with index.csv and shards")
    c.add_argument("--out", default="models/dmc.pt", help="trained model")
    c.add_argument("--train-log", default="results/train/log.csv",
                   help="per-epoch loss / accuracy CSV (not --log: torchrun would take that for its --log-dir)")
    c.add_argument("--checkpoints", default="models/checkpoints", help="folder of last.pt")
    c.add_argument("--metrics", help="after training: correspondence and clustering sharpness on val and test "
                                     "(report only; default: metrics.json beside --train-log)")
    c.set_defaults(func=_train)

    c = sub.add_parser("evalset", help="log-mel patches of an evaluation set (ESC-50 clips, DCASE sub-clips)")
    c.add_argument("dataset", choices=list(DATASETS))
    c.add_argument("--root", help="data set folder (default: params data.<dataset>)")
    c.add_argument("--out-dir", required=True)
    c.set_defaults(func=_evalset)

    c = sub.add_parser("extract", help="audio features of an evaluation set for one method")
    c.add_argument("dataset", choices=list(DATASETS))
    c.add_argument("--method", choices=["dmc", "random_init", "logmel_stats"], required=True)
    c.add_argument("--logmel", required=True, help="logmel.npy from `dmc evalset`")
    c.add_argument("--model", default="models/dmc.pt", help="(dmc) trained model")
    c.add_argument("--out", required=True)
    c.set_defaults(func=_extract)

    c = sub.add_parser("evaluate", help="SVM evaluations, metrics.json, tables, confusion matrices")
    c.add_argument("--evalsets", default="data/evalsets")
    c.add_argument("--features", default="data/features")
    c.add_argument("--out-dir", default="results")
    c.set_defaults(func=_evaluate)

    c = sub.add_parser("decode-index", help="merge shard reports into index.csv, report.csv, summary.json")
    c.add_argument("shards", nargs="+", help="shard folders")
    c.add_argument("--out-dir", default="data/decoded")
    c.set_defaults(func=_decode_index)

    c = sub.add_parser("localize", help="sound localization + multi-source detection on the held-out videos "
                                        "(scores need data.ground_truth), or heat maps of any video (--video)")
    c.add_argument("--video", help="a video file or folder: write heat-map overlays only (no scores)")
    c.add_argument("--model", default="models/dmc.pt", help="trained model")
    c.add_argument("--out", default="results/localize_videos", help="(--video) output folder of PNGs")
    c.add_argument("--decoded", default="data/decoded", help="folder with index.csv and shards")
    c.add_argument("--ground-truth", help="boxes.csv / clips.csv folder (default: params data.ground_truth)")
    c.add_argument("--out-dir", default="results/localization", help="table, overlays, per-pair scores")
    c.add_argument("--metrics", default="results/localization_metrics.json", help="flat metrics (DVC)")
    c.set_defaults(func=_localize)

    c = sub.add_parser("heldout", help="score the trained model, the baselines and the audio controls on the "
                                       "untouched test corpus (inference only; see dmc.heldout)")
    c.add_argument("--model", default="models/dmc.pt")
    c.add_argument("--decoded", default="data/decoded", help="the training corpus (cut points, BatchNorm statistics)")
    c.add_argument("--test-decoded", default="data/decoded_test", help="the untouched test corpus, decoded")
    c.add_argument("--ground-truth", help="training corpus ground truth (default: params data.ground_truth)")
    c.add_argument("--test-ground-truth", default="data/synth_test/ground_truth")
    c.add_argument("--esc50", default="data/evalsets/esc50", help="ESC-like log-mel of `dmc evalset` ('': skip)")
    c.add_argument("--out-dir", default="results/heldout")
    c.add_argument("--metrics", default="results/heldout_metrics.json")
    c.set_defaults(func=_heldout)

    c = sub.add_parser("sweep", help="seeds / ablation grid (params sweeps) as DVC experiments: queue, run, "
                                     "aggregate `dvc exp show --json` into results/tables/<sweep>.md|csv")
    c.add_argument("sweep", choices=SWEEPS)
    c.add_argument("--queue", action="store_true", help="queue the runs (dvc exp run --queue -S ...)")
    c.add_argument("--run", action="store_true", help="run the queue and wait (dvc exp run --run-all)")
    c.add_argument("--aggregate", action="store_true", help="write the tables from dvc exp show --json")
    c.add_argument("--jobs", type=int, default=1, help="experiments run at once (default 1)")
    c.add_argument("--show-json", help="aggregate this saved `dvc exp show --json` output instead")
    c.add_argument("--out-dir", default="results/tables",
                   help="tables folder (default: beside the evaluation's tables; DVC tracks those by file)")
    c.set_defaults(func=_sweep)
    return ap


# Failures of the storage rather than of the code (disk full, quota, permissions, a file
# where a folder is needed): one line naming the path instead of a traceback.
_OUTPUT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR,
                  errno.EISDIR, errno.EEXIST}


def _os_error_line(exc: OSError) -> str:
    paths = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    reason = exc.strerror or str(exc)
    if exc.errno == errno.EEXIST and exc.filename is not None and not Path(exc.filename).is_dir():
        reason = "exists and is not a folder"
    return f"{paths}: {reason}" if paths else reason


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        params = load_params(args.params, sweeps=args.command in ("sweep", "check-params"))
    except ParamsError as exc:
        print(f"dmc: invalid parameters: {exc}", file=sys.stderr)
        return 2
    try:
        args.func(args, params)
    except ParamsError as exc:
        print(f"dmc: invalid parameters: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # one clear line for known failures; tracebacks for bugs
        from .errors import DmcError

        if isinstance(exc, (DmcError, FileNotFoundError)):
            print(f"dmc {args.command}: {exc}", file=sys.stderr)
            return 1
        if isinstance(exc, OSError) and exc.errno in _OUTPUT_ERRNOS:
            print(f"dmc {args.command}: {_os_error_line(exc)}", file=sys.stderr)
            return 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
