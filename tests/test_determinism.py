"""The embedded default is the same bytes on any machine: CPU kernels and thread counts do not
change the synthetic media, the decoded shard or the eval-set log-mels.

A sample of each is regenerated in subprocesses (tests/determinism_sample.py): once as is,
once with numpy's and ATen's SIMD kernels switched off (``NPY_DISABLE_CPU_FEATURES`` = every
feature this CPU adds to numpy's baseline, ``ATEN_CPU_CAPABILITY=default``,
``MKL_ENABLE_INSTRUCTIONS=SSE4_2``), and once with other thread and worker counts. FFmpeg's
kernels are pinned by the code itself (``dmc.io.avcpu``), so the test need not vary them.
"""

from __future__ import annotations

import json
import os
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


def _sample(out: Path, workers: int, threads: int, **env) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in KNOBS}
    src = str(HERE.parent / "src")
    base["PYTHONPATH"] = os.pathsep.join([src] + [p for p in [base.get("PYTHONPATH")] if p])
    run = subprocess.run([sys.executable, str(HERE / "determinism_sample.py"), str(out), str(workers),
                          str(threads)], env={**base, **env}, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return _sample(tmp_path_factory.mktemp("ref"), workers=1, threads=1)


def _assert_same(reference: dict, other: dict) -> None:
    assert sorted(other) == sorted(reference)
    assert len(reference) >= 20 and any(k.startswith("videos/") for k in reference)
    differ = sorted(k for k in reference if other[k] != reference[k])
    assert not differ, f"bytes differ: {differ}"


@pytest.mark.slow
def test_same_bytes_without_simd_kernels(reference, tmp_path):
    features = " ".join(_numpy_dispatch_features())
    env = {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}
    if features:
        env["NPY_DISABLE_CPU_FEATURES"] = features
    _assert_same(reference, _sample(tmp_path, workers=1, threads=1, **env))


@pytest.mark.slow
def test_same_bytes_with_other_thread_counts(reference, tmp_path):
    env = {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "3"}
    _assert_same(reference, _sample(tmp_path, workers=2, threads=3, **env))


@pytest.mark.slow
def test_the_sample_covers_every_kind_of_output(reference):
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
