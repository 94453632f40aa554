"""benchmarks/gpu_check.py on the CPU: its verdicts against hand computations, and the parts that
run on any device (the device run itself is `make gpu-check` on a CUDA machine)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

from conftest import load_default_params

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gc():
    sys.path.insert(0, str(_PATH.parent))
    spec = importlib.util.spec_from_file_location("gpu_check", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_curve_verdict_by_hand(gc):
    fp32 = [4.0] * 10 + [2.0] * 20
    bf16 = [4.04] * 10 + [2.1] * 20          # early: 0.04 / 4 = 1 %; late: 0.1 / 2 = 5 %
    r = gc.compare_curves(fp32, bf16)
    assert r["early_rel_diff"] == pytest.approx(0.01) and r["late_rel_diff"] == pytest.approx(0.05)
    assert r["pass"] and r["finite"]
    late = gc.compare_curves(fp32, [4.0] * 10 + [2.3] * 20)      # 15 % > 10 %
    assert late["late_rel_diff"] == pytest.approx(0.15) and not late["pass"]
    nan = gc.compare_curves(fp32, bf16[:-1] + [math.nan])
    assert not nan["finite"] and not nan["pass"]


def test_clustering_and_features_on_the_cpu_agree_with_themselves(gc):
    p = load_default_params()
    batch = gc.random_batches(p, "tiny", 1, 8, seed=1)[0]
    r = gc.clustering_vs_cpu(p, torch.device("cpu"), batch)
    assert r["pass"] and max(max(v.values()) for v in r["max_abs_diff"].values()) == 0.0
    f = gc.features_vs_cpu(p, torch.device("cpu"), 8)
    assert f["pass"] and f["max_rel_diff"] == 0.0


@pytest.mark.slow
def test_checkpoint_part_interrupts_and_resumes(gc, tmp_path):
    r = gc.checkpoint_across_devices(load_default_params(), torch.device("cpu"), tmp_path)
    assert r["pass"]
    for name in ("cpu_to_cpu",):
        assert r[name]["resumed_at_step"] == 3 and r[name]["final_step"] == r[name]["total_steps"] > 3
