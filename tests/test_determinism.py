"""The embedded default is the same bytes on any machine: CPU kernels and thread counts do not
change the synthetic media, the decoded shard or the eval-set log-mels.

A sample of each is regenerated in subprocesses (tests/determinism_sample.py): once as is,
once with numpy's and ATen's SIMD kernels switched off (``NPY_DISABLE_CPU_FEATURES`` = every
feature this CPU adds to numpy's baseline, ``ATEN_CPU_CAPABILITY=default``,
``MKL_ENABLE_INSTRUCTIONS=SSE4_2``), and once with other thread and worker counts. FFmpeg's
kernels are pinned by the code itself (``dmc.avcpu``), so the test need not vary them.
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


def test_same_bytes_without_simd_kernels(reference, tmp_path):
    features = " ".join(_numpy_dispatch_features())
    env = {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}
    if features:
        env["NPY_DISABLE_CPU_FEATURES"] = features
    _assert_same(reference, _sample(tmp_path, workers=1, threads=1, **env))


def test_same_bytes_with_other_thread_counts(reference, tmp_path):
    env = {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "3"}
    _assert_same(reference, _sample(tmp_path, workers=2, threads=3, **env))


def test_the_sample_covers_every_kind_of_output(reference):
    kinds = {k.rsplit(".", 1)[-1] for k in reference}
    assert {"mp4", "webm", "mkv", "wav", "npy", "csv"} <= kinds
    assert {"decoded/shard-00000/frames.npy", "decoded/shard-00000/logmel.npy", "esc50_logmel.npy",
            "dcase_logmel.npy"} <= set(reference)
