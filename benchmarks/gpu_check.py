"""The GPU path, checked and measured (issue 11/29): one script for the device machine.

``python benchmarks/gpu_check.py PART --out DIR`` writes ``DIR/<part>.json``; the parts:

* ``matmul``: the measured bf16 matrix-product rate (8192^3, mean of 10 after 3 warm-ups), the
  denominator of the MFU figures;
* ``correctness``: 100 training steps of the tiny and paper presets on CUDA, bf16 autocast
  against fp32 (TF32 off) from the same seed and batches; one batch's clustering (centers,
  assignments) on CUDA (fp32 and bf16) against the CPU in fp32; the audio features of
  ``dmc extract`` (:func:`dmc.evaluation.features.embed_logmel`) on CUDA against the CPU; a checkpoint
  written on CUDA resumed on the CPU, and one written on the CPU resumed on CUDA;
* ``throughput``: ``benchmarks/train.py``'s rows (samples/s, step time, loader wait share, peak
  memory, bf16 MFU against the measured matmul rate) with ``torch.compile`` off and on, and one
  torch-profiler table of the paper preset's top kernels;
* ``corpus_hashes``: per-file and per-stream hashes of the embedded default's videos and ESC-10
  set made in this process's environment (issue 27: which files and which codec differ between
  hosts).

Every part runs on the CPU too (``--tiny``: small sizes), which is how the tests check the
script itself; ``benchmarks/gpu_check.sh`` runs all of them, the whole pipeline on the GPU,
decode scaling and the DDP smoke run, and gathers ``gpu.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train import bench, make_shard, sizes  # noqa: E402  (benchmarks/train.py)

from dmc.evaluation.features import embed_logmel  # noqa: E402
from dmc.model.loss import max_margin_loss, mismatch_indices  # noqa: E402
from dmc.model.network import DMC  # noqa: E402
from dmc.pipeline.params import load_params, set_dotted  # noqa: E402
from dmc.model.training import Trainer, step_generator  # noqa: E402

# Tolerances of the correctness part, stated once (README "GPU"): bf16 keeps 8 bits of mantissa,
# so per-step losses drift apart as the weights do; early steps track closely, late means agree.
TOL = {"early_loss_rel": 0.02,     # mean |bf16 - fp32| over the first 10 steps / fp32's first loss
       "late_loss_rel": 0.10,      # |mean of the last 20 steps| relative difference
       "cluster_fp32_abs": 1e-3,   # centers / assignments, CUDA fp32 vs CPU fp32 (max abs)
       "cluster_bf16_abs": 5e-2,   # the same under bf16 autocast
       "features_cos": 0.999}      # smallest cosine of a clip's features, CUDA vs CPU


def device_or_cpu() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def random_batches(p: dict, preset: str, n_batches: int, batch: int, seed: int = 0):
    size, frames_t = sizes(p, preset)
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_batches):
        frames = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
        mel = torch.randn(batch, 1, frames_t, p["decode"]["n_mels"], generator=g)
        vids = torch.arange(batch) // 2                      # two segments per video
        out.append((frames, mel, vids))
    return out


def set_tf32(on: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def train_curve(p, preset, device, amp: bool, steps: int, batches) -> list[float]:
    """Losses of ``steps`` Adam steps cycling over ``batches``, from seed 0."""
    torch.manual_seed(0)
    model = DMC.from_params(dict(p["model"], preset=preset), p["train"]).to(device)
    cuda = device.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    ctx = torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp and cuda)
    losses = []
    for s in range(steps):
        frames, mel, vids = batches[s % len(batches)]
        frames = frames.to(device)
        if cuda:
            frames = frames.contiguous(memory_format=torch.channels_last)
        with ctx:
            out = model(frames, mel.to(device))
        neg = mismatch_indices(vids, generator=step_generator(0, s)).to(device)
        loss, _ = max_margin_loss(out["ca"].float(), out["cv"].float(), neg, p["train"]["margin"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def compare_curves(fp32: list[float], bf16: list[float]) -> dict:
    a, b = np.asarray(fp32), np.asarray(bf16)
    early = float(np.abs(a[:10] - b[:10]).mean() / max(abs(a[0]), 1e-9))
    late_a, late_b = a[-20:].mean(), b[-20:].mean()
    late = float(abs(late_b - late_a) / max(abs(late_a), 1e-9))
    finite = bool(np.isfinite(a).all() and np.isfinite(b).all())
    return {"finite": finite, "first_loss_fp32": float(a[0]), "last20_fp32": float(late_a),
            "last20_bf16": float(late_b), "early_rel_diff": early, "late_rel_diff": late,
            "pass": finite and early <= TOL["early_loss_rel"] and late <= TOL["late_loss_rel"],
            "fp32": [round(x, 5) for x in a.tolist()], "bf16": [round(x, 5) for x in b.tolist()]}


def clustering_vs_cpu(p, device, batch) -> dict:
    torch.manual_seed(0)
    model = DMC.from_params(p["model"], p["train"]).eval()
    frames, mel, _ = batch
    keys = ("ca", "cv", "assign_a", "assign_v")
    with torch.no_grad():
        ref = {k: model(frames, mel)[k] for k in keys}
        model = model.to(device)
        res = {}
        for name, amp in (("fp32", False), ("bf16", True)):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
                out = model(frames.to(device), mel.to(device))
            res[name] = {k: float((out[k].float().cpu() - ref[k]).abs().max()) for k in keys}
    worst = {n: max(v.values()) for n, v in res.items()}
    return {"max_abs_diff": res, "pass": worst["fp32"] <= TOL["cluster_fp32_abs"]
            and worst["bf16"] <= TOL["cluster_bf16_abs"]}


def features_vs_cpu(p, device, n_clips: int) -> dict:
    """What `dmc extract` computes (random-init audio net, pooled conv features), CUDA vs CPU,
    with PyTorch's default TF32 setting for convolutions (as `dmc extract` runs)."""
    torch.manual_seed(0)
    net = DMC.from_params(p["model"], p["train"]).audio.eval()
    _, frames_t = sizes(p, "tiny")
    logmel = np.random.default_rng(0).standard_normal((n_clips, 101, p["decode"]["n_mels"])).astype(np.float32)
    layer, pooling = net.num_pools + 1, p["features"]["pooling"]
    cpu = embed_logmel(net, logmel, layer, pooling, 64, "cpu", desc="cpu")
    dev = embed_logmel(net, logmel, layer, pooling, 64, device, desc=str(device))
    cos = (cpu * dev).sum(1) / (np.linalg.norm(cpu, axis=1) * np.linalg.norm(dev, axis=1) + 1e-12)
    rel = float(np.abs(cpu - dev).max() / (np.abs(cpu).max() + 1e-12))
    return {"clips": n_clips, "max_rel_diff": rel, "min_cosine": float(cos.min()),
            "pass": float(cos.min()) >= TOL["features_cos"]}


class _Stop(Exception):
    pass


def _trainer(p, decoded, out, stop_at=None) -> Trainer:
    tr = Trainer(p, decoded, out / "m.pt", out / "log.csv", out / "ck")
    if stop_at:
        save = tr.save_checkpoint

        def save_then_stop():
            save()
            if tr.step >= stop_at:
                raise _Stop
        tr.save_checkpoint = save_then_stop
    return tr


def checkpoint_across_devices(p, device, root: Path) -> dict:
    """A run interrupted after its first checkpoint on one device and resumed on the other:
    the resumed weights equal the checkpoint's, and the run completes."""
    decoded = make_shard(root / "decoded", 400, p["decode"]["frame_size"], sizes(p, "tiny")[1], p["decode"]["n_mels"])
    base = set_dotted(set_dotted(set_dotted(p, "train.epochs", 1), "train.batch_size", 16), "train.checkpoint_every", 3)
    result = {}
    for i, (first, second) in enumerate(((device, torch.device("cpu")), (torch.device("cpu"), device))):
        name = f"{first.type}_to_{second.type}"
        out = root / f"{i}_{name}"
        p1 = set_dotted(base, "train.device", first.type)
        try:
            _trainer(p1, decoded, out, stop_at=3).fit()
        except _Stop:
            pass
        torch.use_deterministic_algorithms(False)             # the CPU trainer turns it on, process-wide
        saved = torch.load(out / "ck" / "last.pt", map_location="cpu", weights_only=True)
        tr = _trainer(set_dotted(base, "train.device", second.type), decoded, out)
        resumed = tr.try_resume()
        same = all(torch.equal(v.cpu(), saved["model"][k]) for k, v in tr.model.state_dict().items())
        last = tr.fit()
        torch.use_deterministic_algorithms(False)
        result[name] = {"resumed": resumed, "resumed_at_step": saved["step"], "weights_equal_checkpoint": same,
                        "final_step": tr.step, "total_steps": tr.total_steps,
                        "final_train_loss_finite": bool(np.isfinite(last["train_loss"]))}
    result["pass"] = all(r["resumed"] and r["weights_equal_checkpoint"] and r["final_step"] == r["total_steps"]
                         and r["final_train_loss_finite"] for r in result.values())
    return result


def part_matmul(args) -> dict:
    dev = device_or_cpu()
    n = 1024 if args.tiny else 8192
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    a, b = (torch.randn(n, n, device=dev, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    sync()
    t = time.perf_counter()
    for _ in range(10):
        a @ b
    sync()
    dt = (time.perf_counter() - t) / 10
    return {"n": n, "dtype": str(dtype), "seconds": dt, "tflops": 2 * n ** 3 / dt / 1e12}


def part_correctness(args) -> dict:
    p, dev = load_params(args.params), device_or_cpu()
    steps = 12 if args.tiny else 100
    presets = ["tiny"] if args.tiny else ["tiny", "paper"]
    res = {"tolerances": TOL, "steps": steps, "curves": {}}
    for preset in presets:
        batch = 16 if preset == "paper" else 32
        batches = random_batches(p, preset, 10, batch)
        set_tf32(False)                                  # fp32 reference: true fp32 convs and matmuls
        t = time.perf_counter()
        fp32 = train_curve(p, preset, dev, False, steps, batches)
        t_fp32 = time.perf_counter() - t
        set_tf32(True)
        t = time.perf_counter()
        bf16 = train_curve(p, preset, dev, True, steps, batches)
        t_bf16 = time.perf_counter() - t
        res["curves"][preset] = {"batch": batch, **compare_curves(fp32, bf16),
                                 "seconds_fp32": t_fp32, "seconds_bf16": t_bf16}
        print(f"correctness: {preset}: {res['curves'][preset]['pass']}", file=sys.stderr)
    set_tf32(False)
    res["clustering"] = clustering_vs_cpu(p, dev, random_batches(p, "tiny", 1, 32, seed=1)[0])
    set_tf32(True)                                       # PyTorch's default for convolutions
    res["features"] = features_vs_cpu(p, dev, 64 if args.tiny else 256)
    with tempfile.TemporaryDirectory() as tmp:
        res["checkpoint"] = checkpoint_across_devices(p, dev, Path(tmp))
    res["pass"] = all(c["pass"] for c in res["curves"].values()) and all(
        res[k]["pass"] for k in ("clustering", "features", "checkpoint"))
    return res


def part_throughput(args) -> dict:
    """Rows of benchmarks/train.py, eager (``--compile off``, with the profile of the paper
    preset) or compiled (``--compile on``); the JSON is rewritten after every row."""
    p, dev = load_params(args.params), device_or_cpu()
    res = {"peak_tflops_measured": args.peak_tflops, "workers": args.workers, "rows": []}
    presets = ["tiny", "paper"] if args.compile == "off" else args.compile_presets
    presets = ["tiny"] if args.tiny else presets
    for preset in presets:
        batch = 4 if (args.tiny and preset == "paper") else 32
        t = time.perf_counter()
        r = bench(preset, p, dev, batch, 3 if args.tiny else args.steps, args.workers, args.peak_tflops,
                  args.compile == "on")
        r["wall_s"] = time.perf_counter() - t
        res["rows"].append(r)
        print(f"throughput: {r}", file=sys.stderr)
        write_json(Path(args.out), args.label or f"throughput_compile_{args.compile}", res)
    if dev.type == "cuda" and args.compile == "off":
        res["profile_paper"] = profile_paper(p, dev, args.tiny)
    return res


def profile_paper(p, dev, tiny: bool) -> list[dict]:
    """The paper preset's top kernels by CUDA time over a few bf16 training steps."""
    from torch.profiler import ProfilerActivity, profile

    batches = random_batches(p, "paper", 2, 32)
    model = DMC.from_params(dict(p["model"], preset="paper"), p["train"]).to(dev).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step(s):
        frames, mel, vids = batches[s % 2]
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(frames.to(dev).contiguous(memory_format=torch.channels_last), mel.to(dev))
        loss, _ = max_margin_loss(out["ca"].float(), out["cv"].float(), mismatch_indices(vids).to(dev), 5.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    for s in range(3):
        step(s)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for s in range(5):
            step(s)
        torch.cuda.synchronize()
    events = sorted(prof.key_averages(), key=lambda e: e.self_device_time_total, reverse=True)
    total = sum(e.self_device_time_total for e in events) or 1
    return [{"kernel": e.key[:120], "calls": e.count, "cuda_ms": e.self_device_time_total / 1e3,
             "share": e.self_device_time_total / total} for e in events[:15]]


def _stream_hashes(path: Path) -> dict:
    import av

    h = {"video": hashlib.sha256(), "audio": hashlib.sha256()}
    seen = set()
    with av.open(str(path)) as c:
        for frame in c.decode(*c.streams):
            kind = "video" if isinstance(frame, av.VideoFrame) else "audio"
            seen.add(kind)
            h[kind].update(frame.to_ndarray().tobytes())
    return {k: h[k].hexdigest()[:16] for k in seen}


def part_corpus_hashes(args) -> dict:
    """Make the embedded default's videos (``--size``) and ESC-10 set here, hash every file
    and every decoded stream."""
    from dmc import synth

    p = load_params(args.params)
    s = {**p["synth"], "size": args.size}
    s.update(synth.scaled_counts(s))
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        synth.generate_videos(root / "videos", root / "gt", n_videos=s["videos"], seconds=s["video_seconds"],
                              width=s["width"], height=s["height"], fps=s["fps"], audio_rate=s["audio_rate"],
                              other_containers=s["other_containers"], max_sources=s["max_sources"],
                              max_distractors=s["max_distractors"], seed=s["seed"], control=s["control"],
                              variants=s["variants"])
        synth.generate_esc10(root / "esc10", n_classes=min(10, s["esc50_classes"]),
                             clips_per_class=s["esc50_clips_per_class"], seed=s["seed"] + 3)
        seconds = time.perf_counter() - t
        for f in sorted(x for x in root.rglob("*") if x.is_file()):
            rel = str(f.relative_to(root))
            row = {"size": f.stat().st_size, "sha256": hashlib.sha256(f.read_bytes()).hexdigest()[:16]}
            if f.suffix in (".mp4", ".mkv", ".webm", ".ogg"):
                row.update(_stream_hashes(f))
            rows[rel] = row
    env = {k: os.environ[k] for k in ("VPX_SIMD_CAPS_MASK", "GLIBC_TUNABLES", "NPY_DISABLE_CPU_FEATURES",
                                      "ATEN_CPU_CAPABILITY", "OPENBLAS_CORETYPE") if k in os.environ}
    return {"size": args.size, "label": args.label, "env": env, "seconds": seconds, "files": rows}


def write_json(out: Path, name: str, obj) -> None:
    tmp = out / f".{name}.json.tmp"
    tmp.write_text(json.dumps(obj, indent=1, default=str) + "\n")
    tmp.rename(out / f"{name}.json")


def _encode(codec: str, fmt: str, signal: np.ndarray, rate: int, out_rate: int, portable: bool,
            options: dict | None = None) -> bytes:
    """``signal`` (mono float32 at ``rate``) encoded with ``codec`` in a ``fmt`` container, in memory."""
    import io

    import av

    from dmc.io.avcpu import ffmpeg_portable

    buf = io.BytesIO()
    ctx = ffmpeg_portable() if portable else __import__("contextlib").nullcontext()
    with ctx, av.open(buf, "w", format=fmt, options={"fflags": "+bitexact"}) as c:
        st = c.add_stream(codec, rate=out_rate)
        st.layout = "mono"
        st.codec_context.thread_count = 1
        st.codec_context.options = {"strict": "-2", "flags": "+bitexact", **(options or {})}
        frame = av.AudioFrame.from_ndarray(signal[None], format="fltp", layout="mono")
        frame.sample_rate = rate
        for packet in [*st.encode(frame), *st.encode(None)]:
            c.mux(packet)
    return buf.getvalue()


def part_codec_hashes(args) -> dict:
    """One fixed signal (integer arithmetic only, so identical on every host) through each audio
    encoder and through the resampler alone: which stage's bytes depend on the host (issue 27)."""
    import av

    from dmc.io.avcpu import ffmpeg_portable

    n = np.arange(44100 * 2, dtype=np.int64)
    signal = (((n * 7919) % 2003) - 1001).astype(np.float32) / 4000.0       # a deterministic buzz
    signal48 = (((np.arange(48000 * 2) * 7919) % 2003) - 1001).astype(np.float32) / 4000.0
    h = lambda b: hashlib.sha256(b).hexdigest()[:16]   # noqa: E731
    res = {}
    cases = {"opus_native_48k_in": ("opus", "ogg", signal48, 48000, 48000, {}),
             "opus_native_44k_in": ("opus", "ogg", signal, 44100, 48000, {}),
             "libopus_48k_in": ("libopus", "ogg", signal48, 48000, 48000, {}),
             "libopus_48k_in_fec_off": ("libopus", "ogg", signal48, 48000, 48000, {"apply_phase_inv": "0"}),
             "aac_44k": ("aac", "adts", signal, 44100, 44100, {"aac_coder": "fast"}),
             "flac_44k": ("flac", "flac", signal, 44100, 44100, {}),
             "flac_48k_from_44k": ("flac", "flac", signal, 44100, 48000, {}),
             "vorbis_native_44k": ("vorbis", "ogg", signal, 44100, 44100, {})}
    for name, (codec, fmt, sig, rate, out_rate, opts) in cases.items():
        for portable in (True, False):
            key = f"{name}{'' if portable else '_detected_cpu'}"
            try:
                res[key] = h(_encode(codec, fmt, sig, rate, out_rate, portable, opts))
            except Exception as exc:   # an encoder this build lacks is itself a finding
                res[key] = f"error: {exc!r}"[:200]
    for portable in (True, False):
        ctx = ffmpeg_portable() if portable else __import__("contextlib").nullcontext()
        with ctx:
            frame = av.AudioFrame.from_ndarray(signal[None], format="fltp", layout="mono")
            frame.sample_rate = 44100
            rs = av.AudioResampler(format="fltp", layout="mono", rate=48000)
            out = [f.to_ndarray() for f in [*rs.resample(frame), *rs.resample(None)]]
        res[f"resampler_44k_to_48k{'' if portable else '_detected_cpu'}"] = h(np.concatenate(out, axis=1).tobytes())
    res["libm"] = h(np.array([float(np.float32(x)) for x in (
        __import__("math").exp(0.3), __import__("math").sin(1.1), __import__("math").pow(2.1, 0.7))]).tobytes())
    return res


def machine() -> dict:
    info = {"date": time.strftime("%Y-%m-%d"), "python": platform.python_version(), "torch": torch.__version__,
            "cpu_count": os.cpu_count(), "processor": platform.processor()}
    try:
        info["cpu_model"] = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                                 if line.startswith("model name"))
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
        info["avx512f"], info["avx2"] = "avx512f" in flags, "avx2" in flags
    except (OSError, StopIteration):
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    try:
        info["glibc"] = subprocess.run(["ldd", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        pass
    return info


PARTS = {"matmul": part_matmul, "correctness": part_correctness, "throughput": part_throughput,
         "corpus_hashes": part_corpus_hashes, "codec_hashes": part_codec_hashes,
         "machine": lambda args: machine()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=sorted(PARTS))
    ap.add_argument("--out", required=True, help="folder for <part>.json (or <label>.json)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--tiny", action="store_true", help="small sizes: a quick run of the script on the CPU")
    ap.add_argument("--steps", type=int, default=20, help="(throughput) timed steps per row")
    ap.add_argument("--workers", type=int, default=8, help="(throughput) DataLoader workers")
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="(throughput) bf16 rate for MFU (default: matmul.json beside --out, else 989)")
    ap.add_argument("--size", default="small", help="(corpus_hashes) synth.size of the corpus")
    ap.add_argument("--label", help="name of the output file (default: the part's)")
    ap.add_argument("--compile", choices=["off", "on"], default="off", help="(throughput) torch.compile")
    ap.add_argument("--compile-presets", nargs="+", default=["paper", "tiny"], help="(throughput, --compile on)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.peak_tflops is None:
        mm = out / "matmul.json"
        args.peak_tflops = json.loads(mm.read_text())["tflops"] if mm.exists() else 989.0
    t = time.perf_counter()
    res = PARTS[args.part](args)
    if isinstance(res, dict):
        res["part_seconds"] = time.perf_counter() - t
    name = args.label or (f"throughput_compile_{args.compile}" if args.part == "throughput" else args.part)
    write_json(out, name, res)
    print(f"gpu_check: {args.part} done in {time.perf_counter() - t:.1f} s -> {out / (name + '.json')}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
