"""The embedded default is the same bytes on any machine: CPU kernels and thread counts do not
change the synthetic media, the decoded shard or the eval-set log-mels.

A sample of each is regenerated in subprocesses (tests/determinism_sample.py) and compared file
by file (a differing media file is also compared stream by stream, :mod:`dmc.io.manifest`): once as
is, then under every switch of a CPU kernel or of the environment that can be set from outside:

* numpy's and ATen's SIMD kernels off (``NPY_DISABLE_CPU_FEATURES`` = every feature this CPU adds
  to numpy's baseline, ``ATEN_CPU_CAPABILITY=default``, ``MKL_ENABLE_INSTRUCTIONS=SSE4_2``,
  ``MKL_CBWR=COMPATIBLE``, oneDNN limited to SSE4.1 by ``ONEDNN_MAX_CPU_ISA``/``DNNL_MAX_CPU_ISA``);
* glibc's CPU variants (libm's FMA / AVX2 functions, the AVX2 / AVX-512 string functions) masked
  (``GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX512F,...,-AVX2,-FMA``; the test checks with
  ``ld.so --list-diagnostics`` that the mask took effect);
* libvpx's SIMD off (``VPX_SIMD_CAPS_MASK=0``: VP9 in the WebM clips), OpenBLAS's core type
  (``OPENBLAS_CORETYPE``), libx264's assembly off (``asm=0``, set through a sitecustomize);
* other thread and worker counts; directory listings returned in reverse order (a filesystem
  that lists in another order); the package run from another, deeper path (another clone);
  another time zone and locale.

FFmpeg's own kernels are pinned by the code (``dmc.io.avcpu``): the negative control lifts that pin
and must see the OGG clips change, so the comparison does see a kernel change when there is one.
libopus (the WebM clips' and the ESC-10 set's audio) chooses its kernels from CPUID with no switch;
docs/data.md "Checking a host" has how it was checked by hand.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
KNOBS = ("NPY_DISABLE_CPU_FEATURES", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "OMP_NUM_THREADS",
         "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _numpy_dispatch_features() -> list[str]:
    """SIMD features numpy found on this CPU beyond its compiled baseline (the ones it dispatches to)."""
    try:
        from numpy._core import _multiarray_umath as m
    except ImportError:                      # numpy < 2
        from numpy.core import _multiarray_umath as m
    return [f for f in m.__cpu_dispatch__ if m.__cpu_features__.get(f) and f not in m.__cpu_baseline__]


KNOBS += ("MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "GLIBC_TUNABLES", "VPX_SIMD_CAPS", "VPX_SIMD_CAPS_MASK", "OPENBLAS_CORETYPE", "TZ", "LC_ALL", "LANG")
# glibc's names of the CPU features its ifunc variants test (glibc >= 2.33 spelling)
GLIBC_MASK = "glibc.cpu.hwcaps=" + ",".join(f"-{f}" for f in (
    "AVX512F", "AVX512VL", "AVX512BW", "AVX512DQ", "AVX512CD", "AVX512ER", "AVX512PF", "AVX2", "FMA", "FMA4",
    "AVX", "BMI2", "ERMS", "SSE4_2", "SSE4_1", "SSSE3"))
SITE = {   # sitecustomize.py bodies, run in the subprocess before the sample
    "reversed_listing": """
import glob, os, pathlib
_listdir, _scandir, _iterdir, _iglob = os.listdir, os.scandir, pathlib.Path.iterdir, glob.iglob
class _Rev:
    def __init__(self, it):
        self._it, self._items = it, list(reversed(list(it)))
    def __iter__(self):
        return iter(self._items)
    def __enter__(self):
        return self
    def __exit__(self, *a):
        self._it.close()
    def close(self):
        self._it.close()
os.listdir = lambda p=".": list(reversed(_listdir(p)))
os.scandir = lambda p=".": _Rev(_scandir(p))
pathlib.Path.iterdir = lambda self: iter(reversed(list(_iterdir(self))))
glob.iglob = lambda *a, **k: iter(reversed(list(_iglob(*a, **k))))   # glob.glob lists glob.iglob
""",
    "x264_without_asm": """
import dmc.synth.videos as v
v.VIDEO_OPTIONS["libx264"]["x264-params"] = "asm=0"
""",
    "ffmpeg_simd": """
import dmc.io.avcpu as a
a.set_cpu_flags = lambda flags: None      # the pin of dmc.io.avcpu lifted: FFmpeg's SIMD kernels run
""",
}


def _sample(out: Path, workers: int, threads: int, site: str | None = None, src: Path | None = None,
            **env) -> tuple[Path, dict[str, str]]:
    base = {k: v for k, v in os.environ.items() if k not in KNOBS}
    paths = [str(src or HERE.parent / "src")]
    if site:
        (out.parent / f"site-{out.name}").mkdir()
        (out.parent / f"site-{out.name}" / "sitecustomize.py").write_text(SITE[site])
        paths.insert(0, str(out.parent / f"site-{out.name}"))
    base["PYTHONPATH"] = os.pathsep.join(paths + [p for p in [base.get("PYTHONPATH")] if p])
    run = subprocess.run([sys.executable, str(HERE / "determinism_sample.py"), str(out), str(workers),
                          str(threads)], env={**base, **env}, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return out, json.loads(run.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return _sample(tmp_path_factory.mktemp("ref") / "out", workers=1, threads=1)


def _differing(reference, other) -> list[str]:
    """Files whose bytes differ, each with the parts that differ (streams, arrays)."""
    from dmc.io.manifest import parts_of

    (ref_dir, ref), (other_dir, got) = reference, other
    assert sorted(got) == sorted(ref)
    assert len(ref) >= 20 and any(k.startswith("videos/") for k in ref)
    out = []
    for k in sorted(k for k in ref if got[k] != ref[k]):
        a, b = parts_of(ref_dir / k), parts_of(other_dir / k)
        out.append(f"{k} ({', '.join(p for p in sorted(set(a) | set(b)) if a.get(p) != b.get(p)) or 'bytes'})")
    return out


def _assert_same(reference, other) -> None:
    differ = _differing(reference, other)
    assert not differ, f"bytes differ: {differ}"


@pytest.mark.slow
def test_same_bytes_without_simd_kernels(reference, tmp_path):
    features = " ".join(_numpy_dispatch_features())
    env = {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "MKL_CBWR": "COMPATIBLE",
           "ONEDNN_MAX_CPU_ISA": "SSE41", "DNNL_MAX_CPU_ISA": "SSE41"}
    if features:
        env["NPY_DISABLE_CPU_FEATURES"] = features
    _assert_same(reference, _sample(tmp_path / "out", workers=1, threads=1, **env))


@pytest.mark.slow
def test_same_bytes_with_other_thread_counts(reference, tmp_path):
    env = {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "3"}
    _assert_same(reference, _sample(tmp_path / "out", workers=2, threads=3, **env))


def _glibc_active(env: dict) -> list[str]:
    """The CPU features glibc's loader reports as active under ``env`` (empty where ld.so has no
    --list-diagnostics, glibc < 2.33)."""
    ldso = Path("/lib64/ld-linux-x86-64.so.2")
    if not ldso.exists():
        return []
    run = subprocess.run([str(ldso), "--list-diagnostics"], env=env, capture_output=True, text=True)
    return [line for line in run.stdout.splitlines() if ".active[" in line]


@pytest.mark.slow
def test_same_bytes_with_glibc_cpu_variants_masked(reference, tmp_path):
    """libm's FMA/AVX2 functions and the AVX2/AVX-512 string functions replaced by their baseline
    variants (the codecs' float code calls libm: exp, log, pow, sin, ...)."""
    env = {"GLIBC_TUNABLES": GLIBC_MASK}
    active, masked = _glibc_active(dict(os.environ)), _glibc_active({**os.environ, **env})
    if active:
        assert masked != active, "GLIBC_TUNABLES did not change glibc's active CPU features"
    _assert_same(reference, _sample(tmp_path / "out", workers=1, threads=1, **env))


@pytest.mark.slow
def test_same_bytes_with_codec_and_blas_kernels_switched(reference, tmp_path):
    """libvpx's SIMD off (VP9), OpenBLAS on its oldest x86-64 core type, libx264's assembly off."""
    env = {"VPX_SIMD_CAPS_MASK": "0", "OPENBLAS_CORETYPE": "Prescott"}
    _assert_same(reference, _sample(tmp_path / "out", workers=1, threads=1, site="x264_without_asm", **env))


@pytest.mark.slow
def test_same_bytes_whatever_the_listing_order_path_time_zone_and_locale(reference, tmp_path):
    src = tmp_path / "another" / "deeper" / "clone" / "src"
    shutil.copytree(HERE.parent / "src", src, ignore=shutil.ignore_patterns("__pycache__"))
    env = {"TZ": "Pacific/Kiritimati", "LC_ALL": "C", "LANG": "tr_TR.UTF-8"}
    _assert_same(reference, _sample(tmp_path / "out", workers=2, threads=1, site="reversed_listing", src=src, **env))


@pytest.mark.slow
def test_the_comparison_sees_a_kernel_change(reference, tmp_path):
    """Negative control: with dmc.io.avcpu's pin lifted, FFmpeg's SIMD resampler (44.1 -> 48 kHz
    before the Opus encoder) rounds otherwise and the ESC-10-layout OGG clips change."""
    differ = _differing(reference, _sample(tmp_path / "out", workers=1, threads=1, site="ffmpeg_simd"))
    assert any(d.startswith("esc10/") and ".packets" in d for d in differ), differ


@pytest.mark.slow
def test_the_sample_covers_every_kind_of_output(reference):
    _, reference = reference
    kinds = {k.rsplit(".", 1)[-1] for k in reference}
    assert {"mp4", "webm", "mkv", "wav", "npy", "csv"} <= kinds
    assert {"decoded/shard-00000/frames.npy", "decoded/shard-00000/logmel.npy", "esc50_logmel.npy",
            "dcase_logmel.npy"} <= set(reference)


def test_ffmpeg_portable_forces_the_c_code_and_restores_detection():
    from dmc.io.avcpu import ffmpeg_portable, get_cpu_flags

    detected = get_cpu_flags()
    with ffmpeg_portable():
        assert get_cpu_flags() == 0
    assert get_cpu_flags() == detected


def test_portable_math_matches_numpy():
    import numpy as np

    from dmc.io import portable as P

    x = np.linspace(-2e4, 2e4, 200001)
    assert np.abs(P.sin(x) - np.sin(x)).max() < 1e-7 and np.abs(P.cos(x) - np.cos(x)).max() < 1e-7
    y = np.linspace(-40, 10, 100001)
    assert np.abs(P.exp(y) / np.exp(y) - 1).max() < 2e-7
    z = np.geomspace(1e-6, 1e6, 100001)
    assert np.abs(P.power(z, -0.7) / z ** -0.7 - 1).max() < 2e-7
    assert np.abs(P.hann(101) - np.hanning(101)).max() < 1e-7
    a = np.array([1 + 2j, -3.5 + 0.25j]), np.array([0.5 - 1j, 2 + 2j])
    np.testing.assert_allclose(P.complex_product(*a), a[0] * a[1], rtol=1e-15)


def test_integer_yuv_conversion_round_trips():
    import av
    import numpy as np

    from dmc.synth.videos import rgb_to_yuv420p

    rng = np.random.default_rng(0)
    rgb = np.repeat(np.repeat(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), 2, 0), 2, 1)   # flat 2x2 blocks
    yuv = rgb_to_yuv420p(rgb)
    assert yuv.shape == (72, 64) and yuv.dtype == np.uint8
    back = av.VideoFrame.from_ndarray(yuv, format="yuv420p").to_ndarray(format="rgb24").astype(int)
    assert np.abs(back - rgb).max() <= 4
