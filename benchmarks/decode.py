"""Benchmark: `dmc decode` against a naive extract-to-disk pipeline and the bare decoder.

What is measured
----------------
Five pipelines run on the SAME clips, one after another in this one process (so they
share the machine's load at the time), each ``--repeats`` times; the best wall time of
each is reported.  Torch runs single-threaded.

* **pool**   ``dmc.io.shards.write_shard`` for one shard holding every clip with
  ``--workers`` decode worker processes (dmc.io.pool; default: the cores available): the
  real ``dmc decode`` code path (one demux pass, only the kept frames converted and resized,
  audio resampled in memory, log-mel, one ``.npy`` shard), one FFmpeg thread per worker.
* **ours**   the same with one worker (in this process, one FFmpeg thread): the per-clip
  cost on one core.
* **naive**  a typical "extract frames and wavs to disk, then compute features" pipeline:
  pass 1 decodes every video frame and converts each to an RGB array
  (``frame.to_ndarray(format="rgb24")``), resizes the sampled frames (one per segment,
  nearest the segment centre, the same rule as ours) with PIL and writes one JPEG per
  sampled frame, and writes the audio as one 16-bit mono WAV per clip at the original
  rate; pass 2 reads each WAV back, resamples it to the target rate with torchaudio,
  computes the log-mel with ``dmc.io.logmel.LogMel`` and saves one ``.npy`` per clip.
  It lets FFmpeg pick its codec threading (``thread_type = "AUTO"``), as such scripts do.
* **floor**  PyAV decoding every packet of both streams with no conversion at all (no
  ``to_ndarray``/``reformat``, no resampling, no log-mel, no writes), one FFmpeg thread as
  ours: the least any decoder-based pipeline pays on one core.
* **floor_portable**  the same with FFmpeg's C code instead of its SIMD kernels
  (``dmc.io.avcpu.ffmpeg_portable``), as ours decodes so that the samples are the same on
  every CPU: the floor of a pipeline with ours's guarantee; the gap between the two floors is
  the price of that guarantee.

Also timed directly: the fixed start-up cost of a ``dmc decode`` process (a subprocess
running ``dmc decode --shard 0`` on an empty folder: interpreter start, imports of torch,
pandas, PyAV, torchaudio, params validation, an empty shard written), the bare
interpreter's start, and the start of a pool of ``--workers`` processes (forked, each
running a no-op). From them and the per-clip cost, a model of the decode stage's wall time
and speed-up at 16 cores (``model_16_cores`` in the JSON; the assumptions are written there).

Printed: clips, seconds of video, wall time, CPU time (``os.times``: all threads of the
process and of the pool's workers) and clips/s of each pipeline; the speed-up of ours over naive (wall time)
against a target (PASS/FAIL; the exit status is 0 either way); the time of ours as a
multiple of the decoder floor; bytes and files written by ours and naive.  On a machine
busy with other work the absolute times move a lot between runs; the ratios, measured
side by side, move less (CPU time is the steadier of the two).

Run (from the repository root)::

    .venv/bin/python benchmarks/decode.py [--clips N] [--videos DIR] [--repeats 2] [--workers N] [--json PATH]

Without ``--videos`` it generates ``--clips`` synthetic clips with
``dmc.synth.generate_videos`` at the params.yaml ``synth`` settings and seed into a temporary
folder (removed at the end): by default as many as the embedded default corpus, whose first
clips they are.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import av
import numpy as np
import torch
import torchaudio
from PIL import Image

from dmc.cores import available_cores
from dmc.io.avcpu import ffmpeg_portable
from dmc.io.logmel import LogMel
from dmc.synth import scaled_counts
from dmc.pipeline.params import load_params
from dmc.io.shards import list_videos, write_shard
from dmc.synth import generate_videos

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- corpus

def make_corpus(out: Path, clips: int, synth: dict, seed: int) -> Path:
    videos = out / "videos"
    generate_videos(videos, out / "ground_truth", n_videos=clips, seconds=synth["video_seconds"],
                    width=synth["width"], height=synth["height"], fps=synth["fps"],
                    audio_rate=synth["audio_rate"], other_containers=synth["other_containers"],
                    max_sources=synth["max_sources"], max_distractors=synth["max_distractors"], seed=seed,
                    control=synth["control"], variants=synth["variants"], portable_audio=synth["portable_audio"])
    return videos


def describe_corpus(root: Path, videos: list[str]) -> dict:
    """Seconds of video, containers and codecs of the corpus (untimed; also warms the page cache)."""
    seconds, kinds, sizes = 0.0, Counter(), Counter()
    for rel in videos:
        with av.open(str(root / rel)) as c:
            v, a = c.streams.video[0], c.streams.audio[0]
            if c.duration:
                seconds += c.duration / 1e6
            elif v.duration and v.time_base:
                seconds += float(v.duration * v.time_base)
            kinds[f"{Path(rel).suffix.lstrip('.')} ({v.codec_context.name}+{a.codec_context.name} "
                  f"{a.codec_context.sample_rate} Hz)"] += 1
            sizes[f"{v.codec_context.width}x{v.codec_context.height} @ {float(v.average_rate or 0):g} fps"] += 1
    return {"seconds": seconds, "containers": dict(kinds), "video": dict(sizes),
            "bytes": sum((root / rel).stat().st_size for rel in videos)}


def cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its children that have ended (the pool's workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def tree_size(path: Path) -> tuple[int, int]:
    """(bytes, files) under ``path``."""
    files = [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


# --------------------------------------------------------------------------- pipelines

WORKERS = 1   # of the pool pipeline; set by main()


def run_pool(root: Path, videos: list[str], decode: dict, out: Path) -> None:
    summary = write_shard(out / "shard-00000", root, videos, decode, workers=WORKERS)
    if summary["bad"]:
        print(f"warning: pool found {summary['bad']} unusable clips", file=sys.stderr)


def run_ours(root: Path, videos: list[str], decode: dict, out: Path) -> None:
    summary = write_shard(out / "shard-00000", root, videos, decode, workers=1)
    if summary["bad"]:
        print(f"warning: ours found {summary['bad']} unusable clips", file=sys.stderr)


def _sample_indices(times: list[float], n_segments: int, seg: float, frame_duration: float) -> list[int]:
    """Index of the frame nearest each segment centre (s + 0.5) * seg (ties: the later frame)."""
    t = np.asarray(times) - times[0]
    out = []
    for s in range(n_segments):
        target = (s + 0.5) * seg
        if target > t[-1] + frame_duration:
            break
        d = np.abs(t - target)
        out.append(int(np.flatnonzero(d == d.min())[-1]))
    return out


def _mono(frame: av.AudioFrame) -> np.ndarray:
    x = frame.to_ndarray()
    channels = len(frame.layout.channels)
    x = x.reshape(channels, -1) if frame.format.is_planar else x.reshape(-1, channels).T
    x = x.astype(np.float32)
    if frame.format.name.startswith("s16"):
        x /= 32768.0
    elif frame.format.name.startswith("s32"):
        x /= 2147483648.0
    return x.mean(axis=0)


def run_naive(root: Path, videos: list[str], decode: dict, out: Path) -> None:
    seg, size, sr = decode["segment_seconds"], decode["frame_size"], decode["sample_rate"]
    frames_dir, wav_dir, mel_dir = out / "frames", out / "wav", out / "logmel"
    for d in (frames_dir, wav_dir, mel_dir):
        d.mkdir(parents=True)
    # pass 1: every frame to RGB, sampled frames to JPEG, audio to WAV
    for rel in videos:
        name = rel.replace("/", "__").rsplit(".", 1)[0]
        with av.open(str(root / rel)) as c:
            v, a = c.streams.video[0], c.streams.audio[0]
            v.thread_type = "AUTO"
            rate = float(v.average_rate or 25)
            rgb, times, audio, in_rate = [], [], [], None
            for packet in c.demux(v, a):
                for frame in packet.decode():
                    if packet.stream.type == "video":
                        rgb.append(frame.to_ndarray(format="rgb24"))
                        times.append(frame.time if frame.time is not None else len(times) / rate)
                    else:
                        in_rate = in_rate or frame.sample_rate
                        audio.append(_mono(frame))
        mono = np.concatenate(audio)
        n_segments = int(len(mono) / in_rate // seg)
        for s, i in enumerate(_sample_indices(times, n_segments, seg, 1.0 / rate)):
            Image.fromarray(rgb[i]).resize((size, size), Image.BILINEAR).save(
                frames_dir / f"{name}_{s:04d}.jpg", quality=90)
        with wave.open(str(wav_dir / f"{name}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(in_rate)
            w.writeframes((np.clip(mono, -1, 1) * 32767).astype("<i2").tobytes())
    # pass 2: WAV -> resample -> log-mel per file
    logmel = LogMel.from_params(decode)
    seg_samples = int(round(seg * sr))
    for path in sorted(wav_dir.glob("*.wav")):
        with wave.open(str(path), "rb") as w:
            in_rate = w.getframerate()
            x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
        y = torchaudio.functional.resample(torch.from_numpy(x), in_rate, sr)
        n = y.shape[0] // seg_samples
        with torch.no_grad():
            mel = logmel(y[: n * seg_samples].reshape(n, seg_samples)).numpy()
        np.save(mel_dir / f"{path.stem}.npy", mel)


def run_floor(root: Path, videos: list[str], decode: dict, out: Path) -> None:
    for rel in videos:
        with av.open(str(root / rel)) as c:
            v, a = c.streams.video[0], c.streams.audio[0]
            v.codec_context.thread_count = a.codec_context.thread_count = 1
            for packet in c.demux(v, a):
                for _ in packet.decode():
                    pass


def run_floor_portable(root: Path, videos: list[str], decode: dict, out: Path) -> None:
    with ffmpeg_portable():      # FFmpeg's C code, as ours decodes (dmc.io.avcpu: the same samples on every CPU)
        run_floor(root, videos, decode, out)


PIPELINES = {"pool": run_pool, "ours": run_ours, "naive": run_naive, "floor": run_floor,
             "floor_portable": run_floor_portable}


# --------------------------------------------------------------------------- fixed costs

def startup_costs(params_path: Path, work: Path, workers: int, repeats: int = 3) -> dict:
    """Seconds (best of ``repeats``) of: a bare interpreter; a whole ``dmc decode --shard 0`` of an
    empty folder (the fixed cost every decode process pays); a pool of ``workers`` forked processes
    started and each running a no-op (what dmc.io.pool adds per shard)."""
    empty = work / "empty"
    empty.mkdir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")])))

    def best(cmd):
        times = []
        for i in range(repeats):
            t = time.perf_counter()
            subprocess.run(cmd, check=True, env=env, capture_output=True)
            times.append(time.perf_counter() - t)
            shutil.rmtree(work / "startup-out", ignore_errors=True)
        return min(times)

    interpreter = best([sys.executable, "-c", "pass"])
    process = best([sys.executable, "-m", "dmc.pipeline.cli", "--params", str(params_path), "decode", "--shard", "0",
                    "--videos", str(empty), "--out", str(work / "startup-out"), "--workers", "1"])
    pool = []
    for _ in range(repeats):
        t = time.perf_counter()
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as ex:
            list(ex.map(_noop, range(workers)))
        pool.append(time.perf_counter() - t)
    return {"interpreter_s": round(interpreter, 3), "decode_process_s": round(process, 3),
            "imports_and_setup_s": round(process - interpreter, 3), "pool_start_s": round(min(pool), 3),
            "pool_workers": workers}


def _noop(i):
    return i


def model_16_cores(per_clip_s: float, startup: dict, efficiency: float, clips: int, shards: int,
                   cores: int = 16) -> dict:
    """Wall time of the decode stage (``shards`` jobs, ``clips`` in all) at ``cores`` cores, from the
    measured costs, as the pipeline schedules it (dmc.cores.decode_threads): each job gets
    ``w = ceil(cores / shards)`` workers, ``cores // w`` jobs run at once, so the jobs come in
    ``ceil(shards / (cores // w))`` waves; each wave pays one process start-up and the start of a
    pool of ``w`` (scaled from the pool measured at ``pool_workers``); the clips' work divides over
    the cores at the parallel efficiency measured here. Against one core (every job one after
    another, one worker). ``pool_one_process``: every shard in one ``dmc decode`` process (one
    start-up, a pool of ``cores`` per shard)."""
    s, p1 = startup["decode_process_s"], startup["pool_start_s"] / max(startup["pool_workers"], 1)
    w = max(1, -(-cores // shards))
    waves = -(-shards // max(1, cores // w))
    work = clips * per_clip_s / (cores * efficiency)
    one = shards * s + clips * per_clip_s
    pool = waves * (s + (p1 * w if w > 1 else 0.0)) + work
    single = s + shards * p1 * cores + work
    return {"cores": cores, "clips": clips, "shards": shards, "workers_per_job": w, "waves": waves,
            "per_clip_s": round(per_clip_s, 4), "process_start_s": s, "pool_start_s_per_worker": round(p1, 4),
            "efficiency_assumed": round(efficiency, 3),
            "one_worker_s": round(one, 2), "pool_s": round(pool, 2), "speedup": round(one / pool, 2),
            "pool_one_process_s": round(single, 2), "speedup_one_process": round(one / single, 2),
            "formula": "one = shards*process_start + clips*per_clip; pool = waves*(process_start + "
                       "pool_start_per_worker*w) + clips*per_clip/(cores*efficiency); pool_one_process = "
                       "process_start + shards*pool_start_per_worker*cores + clips*per_clip/(cores*efficiency)"}


# --------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, help="synthetic clips to generate (default: the embedded default's "
                                              "count, synth.videos scaled by synth.size)")
    ap.add_argument("--videos", type=Path, help="use the videos under this folder instead of generating")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each pipeline; the best counts (default 2)")
    ap.add_argument("--params", type=Path, default=REPO / "params.yaml", help="params file (default: params.yaml)")
    ap.add_argument("--target", type=float, default=3.0, help="speed-up of ours over naive to PASS (default 3)")
    ap.add_argument("--workers", type=int, default=available_cores(),
                    help="worker processes of the pool pipeline (default: the cores available)")
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)

    global WORKERS
    WORKERS = args.workers
    torch.set_num_threads(1)
    params = load_params(args.params)
    decode, synth = params["decode"], params["synth"]
    work = Path(tempfile.mkdtemp(prefix="dmc-bench-decode-"))
    try:
        t0 = time.perf_counter()
        if args.videos:
            root = args.videos
            source = f"{root} (given)"
        else:
            args.clips = args.clips or scaled_counts(synth)["videos"]
            root = make_corpus(work / "corpus", args.clips, synth, synth["seed"])
            source = (f"{args.clips} synthetic clips (dmc.synth.generate_videos, params.yaml synth: "
                      f"{synth['width']}x{synth['height']}, {synth['fps']} fps, {synth['video_seconds']:g} s, "
                      f"{synth['audio_rate']} Hz AAC; other_containers={synth['other_containers']} "
                      f"-> WebM/MKV)")
        make_s = time.perf_counter() - t0
        videos = list_videos(root)
        if not videos:
            print(f"no videos under {root}", file=sys.stderr)
            return 2
        corpus = describe_corpus(root, videos)
        startup = startup_costs(args.params, work, args.workers)

        best = {k: float("inf") for k in PIPELINES}
        best_cpu = dict(best)
        written = {}
        for r in range(args.repeats):
            for name, fn in PIPELINES.items():
                out = work / f"out-{name}-{r}"
                out.mkdir()
                t, c = time.perf_counter(), cpu_seconds()
                fn(root, videos, decode, out)
                wall, cpu = time.perf_counter() - t, cpu_seconds() - c
                best[name], best_cpu[name] = min(best[name], wall), min(best_cpu[name], cpu)
                written[name] = tree_size(out)
                shutil.rmtree(out)
                print(f"  repeat {r + 1}/{args.repeats} {name:<5} wall {wall:6.2f} s, cpu {cpu:6.2f} s",
                      file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    n, secs = len(videos), corpus["seconds"]
    pool_speedup = best["ours"] / best["pool"]
    efficiency = pool_speedup / args.workers
    per_clip = best["ours"] / n
    default_clips = scaled_counts(synth)["videos"]
    models = {"embedded_default": model_16_cores(per_clip, startup, efficiency, default_clips, decode["num_shards"]),
              "large": model_16_cores(per_clip, startup, efficiency, scaled_counts(dict(synth, size="large"))["videos"],
                                      decode["num_shards"])}
    speedup = best["naive"] / best["ours"]
    over_floor = best["ours"] / best["floor"]
    ok = speedup >= args.target
    rows = {k: {"seconds": round(best[k], 3), "cpu_seconds": round(best_cpu[k], 3), "clips_per_s": round(n / best[k], 2),
                "video_s_per_s": round(secs / best[k], 1),
                "bytes_written": written[k][0], "files_written": written[k][1]} for k in PIPELINES}

    print()
    print(f"corpus: {source}")
    print(f"        {n} clips, {secs:.1f} s of video, {corpus['bytes'] / 1e6:.1f} MB; "
          + ", ".join(f"{c}: {k}" for k, c in sorted(corpus["containers"].items())))
    print(f"        video " + ", ".join(f"{k} ({c} clips)" for k, c in corpus["video"].items()))
    if not args.videos:
        print(f"        generated in {make_s:.1f} s (not timed below)")
    print(f"decode: segment {decode['segment_seconds']:g} s, frame {decode['frame_size']}x{decode['frame_size']}, "
          f"{decode['sample_rate']} Hz, {decode['n_mels']} mels; torch threads 1; "
          f"best of {args.repeats} repeat(s), run side by side in one process")
    print()
    print(f"{'pipeline':<8} {'clips':>6} {'video s':>8} {'wall s':>8} {'cpu s':>7} {'clips/s':>8} {'video s/s':>10} "
          f"{'MB written':>11} {'files':>6}")
    for k, row in rows.items():
        print(f"{k:<8} {n:>6} {secs:>8.1f} {row['seconds']:>8.2f} {row['cpu_seconds']:>7.2f} {row['clips_per_s']:>8.1f} "
              f"{row['video_s_per_s']:>10.1f} {row['bytes_written'] / 1e6:>11.2f} {row['files_written']:>6}")
    print()
    print(f"pool of {args.workers} workers vs one worker: {pool_speedup:.2f}x (parallel efficiency {efficiency:.2f}; "
          f"pool takes {best['pool'] / best['floor']:.2f}x the one-core decoder floor)")
    print(f"fixed costs: interpreter {startup['interpreter_s']:.2f} s, a dmc decode process of an empty folder "
          f"{startup['decode_process_s']:.2f} s, a pool of {args.workers} started {startup['pool_start_s']:.3f} s")
    for name, m in models.items():
        print(f"model at {m['cores']} cores, {name} ({m['clips']} clips, {m['shards']} shards): one worker {m['one_worker_s']:.1f} s, "
              f"pool {m['pool_s']:.1f} s, {m['speedup']:.1f}x; all shards in one process {m['pool_one_process_s']:.1f} s, "
              f"{m['speedup_one_process']:.1f}x")
    print(f"speed-up ours vs naive: {speedup:.2f}x  (target >= {args.target:g}x: {'PASS' if ok else 'FAIL'})")
    print(f"  (by CPU time of the process, all threads: {best_cpu['naive'] / best_cpu['ours']:.2f}x; wall time counts "
          f"waits for busy cores, CPU time does not)")
    print(f"ours vs decoder floor:  ours takes {over_floor:.2f}x the decoder floor time "
          f"({best['ours'] - best['floor']:.2f} s over pure decoding, "
          f"{100 * (1 - best['floor'] / best['ours']):.0f}% of ours)")
    print(f"naive vs decoder floor: naive takes {best['naive'] / best['floor']:.2f}x the decoder floor time")
    bo, fo = written["ours"]
    bn, fn_ = written["naive"]
    print(f"written: ours {bo / 1e6:.2f} MB in {fo} files, naive {bn / 1e6:.2f} MB in {fn_} files "
          f"({fn_ / max(fo, 1):.0f}x the files, {bn / max(bo, 1):.2f}x the bytes)")

    if args.json:
        figures = {"clips": n, "video_seconds": round(secs, 2), "corpus": {**corpus, "source": source},
                   "decode": decode, "repeats": args.repeats, "pipelines": rows,
                   "speedup_ours_vs_naive": round(speedup, 3), "target": args.target,
                   "pass": ok, "ours_over_floor": round(over_floor, 3),
                   "speedup_cpu_ours_vs_naive": round(best_cpu["naive"] / best_cpu["ours"], 3),
                   "workers": args.workers, "speedup_pool_vs_one_worker": round(pool_speedup, 3),
                   "pool_efficiency": round(efficiency, 3), "pool_over_floor": round(best["pool"] / best["floor"], 3),
                   "ours_over_portable_floor": round(best["ours"] / best["floor_portable"], 3),
                   "per_clip_s": round(per_clip, 4), "startup": startup, "model_16_cores": models}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
