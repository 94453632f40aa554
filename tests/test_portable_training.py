"""Portable CPU training (train.portable, dmc.model.portable): the same model bytes under two emulated
instruction sets and two core counts, and the fast mode different (the positive control).

Each run is ``dmc train`` in a subprocess (so the pins are set before torch's first call, as in the
pipeline) on the same small decoded set of fixed random frames and log-mels, with the default
network (tiny16) for one epoch of a few Adam steps. This host's CPU is emulated as another by
environment variables read at the libraries' first call:

* **ISA "native"**: whatever this CPU has (AVX2 and FMA at least on the machines this runs on);
* **ISA "baseline"**: ATen's DEFAULT kernels, MKL limited to SSE4.2, oneDNN to SSE4.1, and
  glibc's CPU variants (libm's FMA functions, AVX2 string functions) masked by ``GLIBC_TUNABLES``;
* **core counts**: the process pinned to one core (``sched_setaffinity``) against both cores,
  with two DataLoader workers against none.

The fast mode (train.portable false) is run the same ways: its weights must differ under the
other instruction set and under another thread count, or the emulation would prove nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import load_default_params, with_overrides, write_params
from test_determinism import GLIBC_MASK, KNOBS

HERE = Path(__file__).resolve().parent
BASELINE_ISA = {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
                "ONEDNN_MAX_CPU_ISA": "SSE41", "DNNL_MAX_CPU_ISA": "SSE41", "GLIBC_TUNABLES": GLIBC_MASK}
CLEARED = KNOBS + ("MKL_DYNAMIC", "OMP_DYNAMIC", "ONEDNN_VERBOSE", "DNNL_VERBOSE")
VIDEOS, SEGMENTS = 16, 4          # 64 segments, 9 videos in the train split: 4 Adam steps of 8
# small inputs (the network takes any size): 32 x 32 frames, 1 s of log-mel (21 x 64); at these sizes
# the fast mode's weights also depend on the thread count (at 64 x 64 frames on this AMD host they did not)
DECODE = {"frame_size": 32, "segment_seconds": 1.0}


def make_decoded(root: Path, frame: int, frames_t: int, n_mels: int) -> Path:
    """A decoded folder (index.csv + one shard) of fixed random frames and log-mels."""
    rng = np.random.default_rng(0)
    n = VIDEOS * SEGMENTS
    shard = root / "shard-00000"
    shard.mkdir(parents=True)
    np.save(shard / "frames.npy", rng.integers(0, 256, (n, frame, frame, 3), dtype=np.uint8))
    np.save(shard / "logmel.npy", rng.standard_normal((n, frames_t, n_mels)).astype(np.float32))
    seg = pd.DataFrame({"video": [f"v{i // SEGMENTS:03d}.mp4" for i in range(n)],
                        "segment": [i % SEGMENTS for i in range(n)]})
    seg.to_csv(shard / "segments.csv", index=False)
    seg.insert(0, "row", np.arange(n))
    seg.insert(0, "shard", shard.name)
    seg.to_csv(root / "index.csv", index=False)
    return root


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("portable")
    d = {**load_default_params()["decode"], **DECODE}
    frames_t = 1 + int(d["segment_seconds"] * d["sample_rate"]) // int(d["hop_seconds"] * d["sample_rate"])
    return root, make_decoded(root / "decoded", d["frame_size"], frames_t, d["n_mels"]), {}


def train(setup, name: str, portable: bool, threads: int = 2, workers: int = 0, one_core: bool = False,
          verbose_onednn: bool = False, **env) -> dict:
    """``dmc train`` in a subprocess; the model file's SHA-256, its weights' SHA-256 and its record
    (a run already made under ``name`` in this module is reused)."""
    root, decoded, done = setup
    if name in done:
        return done[name]
    out = root / name
    out.mkdir()
    p = with_overrides(load_default_params(), train__epochs=1, train__batch_size=8, train__warmup_steps=0,
                       train__checkpoint_every=0, train__device="cpu", train__portable=portable,
                       train__portable_threads=threads, train__num_workers=workers,
                       **{f"decode__{k}": v for k, v in DECODE.items()})
    assert p["model"]["preset"] == "tiny16"
    write_params(out / "params.yaml", p)
    base = {k: v for k, v in os.environ.items() if k not in CLEARED}
    base["PYTHONPATH"] = os.pathsep.join([str(HERE.parent / "src")] + [v for v in [base.get("PYTHONPATH")] if v])
    if not portable:   # the fast mode's thread count is torch's default: the cores it may use
        base.pop("OMP_NUM_THREADS", None)
    if verbose_onednn:
        env["ONEDNN_VERBOSE"] = "1"
    run = subprocess.run([sys.executable, "-m", "dmc.pipeline.cli", "--params", str(out / "params.yaml"), "train",
                          "--decoded", str(decoded), "--out", str(out / "dmc.pt"), "--train-log", str(out / "log.csv"),
                          "--checkpoints", str(out / "ck")], env={**base, **env}, cwd=out, capture_output=True,
                         text=True, timeout=300, preexec_fn=(lambda: os.sched_setaffinity(0, {0})) if one_core else None)
    assert run.returncode == 0, run.stderr[-3000:]
    state = torch.load(out / "dmc.pt", map_location="cpu", weights_only=True)
    weights = hashlib.sha256()
    for key, tensor in state["model"].items():
        weights.update(key.encode() + tensor.numpy().tobytes())
    done[name] = {"file": hashlib.sha256((out / "dmc.pt").read_bytes()).hexdigest(), "weights": weights.hexdigest(),
                  "training": state["training"], "steps": state["step"],
                  "onednn_calls": run.stdout.count("primitive,exec"),
                  "metrics": json.loads((out / "metrics.json").read_text())}
    return done[name]


def train_all(setup, runs: dict[str, dict]) -> dict[str, dict]:
    """:func:`train` of every ``name: keyword arguments`` in ``runs``, two subprocesses at a time
    (their bytes do not depend on the load: that is what is tested)."""
    with ThreadPoolExecutor(2) as pool:
        futures = {name: pool.submit(train, setup, name, **kw) for name, kw in runs.items()}
    return {name: f.result() for name, f in futures.items()}


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores to emulate two core counts")
def test_portable_training_is_the_same_on_two_isas_and_two_core_counts_and_fast_training_is_not(setup):
    r = train_all(setup, {
        "portable": dict(portable=True),
        "portable_baseline_isa": dict(portable=True, verbose_onednn=True, **BASELINE_ISA),
        "portable_one_core": dict(portable=True, workers=2, one_core=True),
        # positive control: the fast mode (oneDNN, ATen's AVX2 kernels, every core) on the same axes
        "fast": dict(portable=False, verbose_onednn=True),
        "fast_baseline_isa": dict(portable=False, **BASELINE_ISA),
        "fast_one_core": dict(portable=False, one_core=True)})
    ref = r["portable"]
    assert ref["steps"] == 4
    assert ref["training"]["mode"] == "portable" and ref["training"]["cpu_capability"] == "DEFAULT"
    assert ref["training"]["threads"] == 2 and not ref["training"]["onednn"] and not ref["training"]["nnpack"]
    assert ref["training"]["mkl_cbwr"] == "COMPATIBLE" and "missing_pins" not in ref["training"]
    assert ref["metrics"]["training.portable"] == 1 and ref["metrics"]["training.threads"] == 2

    assert r["portable_baseline_isa"]["onednn_calls"] == 0       # no oneDNN kernel ran at all
    assert r["portable_baseline_isa"]["file"] == ref["file"]      # the whole model file: weights and record
    assert r["portable_one_core"]["file"] == ref["file"]
    assert r["portable_baseline_isa"]["metrics"] == r["portable_one_core"]["metrics"] == ref["metrics"]

    fast = r["fast"]
    assert fast["training"]["mode"] == "fast" and fast["training"]["onednn"]
    assert fast["training"]["cpu_capability"] != "DEFAULT"         # this CPU has vector kernels to lose
    assert fast["onednn_calls"] > 0                  # the verbose count sees oneDNN when it runs
    assert fast["weights"] != ref["weights"]
    assert r["fast_baseline_isa"]["weights"] != fast["weights"]
    assert r["fast_one_core"]["training"]["threads"] == 1 and fast["training"]["threads"] == 2
    assert r["fast_one_core"]["weights"] != fast["weights"]


def test_the_thread_count_is_part_of_the_portable_run(setup):
    """Another portable_threads splits the work otherwise: other bytes (so it is a param, and the
    same count on any core count gives the same bytes)."""
    two = train(setup, "portable", True, threads=2)
    one = train(setup, "threads1", True, threads=1)
    assert one["training"]["threads"] == 1 and two["training"]["threads"] == 2
    assert one["weights"] != two["weights"]


def test_the_environment_and_the_missing_pins_are_named():
    from dmc.model import portable

    assert portable.environment(3) == {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE",
                                       "MKL_DYNAMIC": "FALSE", "OMP_DYNAMIC": "FALSE", "OMP_NUM_THREADS": "3",
                                       "MKL_NUM_THREADS": "3"}
    full = {"mode": "portable", "threads": 3, "interop_threads": 1, "cpu_capability": "DEFAULT", "onednn": False,
            "nnpack": False, "mkl_cbwr": "COMPATIBLE", "mkl_dynamic": "FALSE", "omp_dynamic": "FALSE",
            "deterministic": True, "float32_matmul_precision": "highest"}
    assert portable.missing_pins(full, {"portable_threads": 3}) == []
    assert portable.missing_pins({**full, "cpu_capability": "AVX2", "threads": 2}, {"portable_threads": 3}) == [
        "threads=2 (wanted 3)", "cpu_capability='AVX2' (wanted 'DEFAULT')"]
    assert portable.missing_pins({"mode": "fast"}, {"portable_threads": 3}) == []
    assert portable.describe(full) == ("portable mode (3 threads, ATen DEFAULT, oneDNN off, MKL_CBWR=COMPATIBLE, "
                                       "torch None)")
    assert portable.describe(None).startswith("mode not recorded")


def test_dmc_train_refuses_a_portable_run_whose_pins_did_not_take(setup, monkeypatch, tmp_path, capsys):
    """In this test process torch already chose its AVX2 kernels: `dmc train` must stop, naming the pin,
    rather than record a portable model that is not."""
    from dmc.model import portable
    from dmc.pipeline.cli import main

    if torch.backends.cpu.get_cpu_capability() == "DEFAULT":
        pytest.skip("this CPU has no vector kernels: every process runs ATen's DEFAULT ones")
    for key, value in portable.environment(2).items():
        monkeypatch.setenv(key, value)          # restored after the test: the run sets them too
    p = with_overrides(load_default_params(), train__device="cpu", train__portable=True,
                       train__epochs=1, train__batch_size=8)
    write_params(tmp_path / "params.yaml", p)
    try:
        code = main(["--params", str(tmp_path / "params.yaml"), "train", "--decoded", str(setup[1]),
                     "--out", str(tmp_path / "m.pt"), "--train-log", str(tmp_path / "log.csv"),
                     "--checkpoints", str(tmp_path / "ck")])
    finally:
        torch.backends.mkldnn.enabled = True
        torch.backends.nnpack.set_flags(True)
    assert code == 1 and not (tmp_path / "m.pt").exists()
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("dmc train: train.portable: pins not in force") and "cpu_capability=" in err
