"""benchmarks/evaluate.py: the accuracy target's verdict against the tightly converged reference."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "evaluate.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_evaluate", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def esc(acc, C):
    return {"acc_mean": sum(acc) / len(acc), "fold_acc": acc, "fold_C": C}


@pytest.mark.parametrize("new, verdict", [
    (esc([0.80, 0.90], [0.1, 1.0]), "PASS (largest difference 0.00 points"),
    (esc([0.804, 0.90], [0.1, 1.0]), "PASS (largest difference 0.40 points"),
    (esc([0.80, 0.906], [0.1, 1.0]), "FAIL (largest difference 0.60 points"),
    (esc([0.80, 0.90], [0.1, 10.0]), "FAIL (largest difference 0.00 points, same C [True, False])"),
])
def test_esc50_verdict_needs_half_a_point_and_the_same_C_in_every_fold(bench, capsys, new, verdict):
    bench._compare_reference("esc50", new, esc([0.80, 0.90], [0.1, 1.0]), 1.0)
    assert verdict in capsys.readouterr().out


def test_dcase_verdict(bench, capsys):
    ref = {"acc": 0.9, "C": 0.01}
    bench._compare_reference("dcase", {"acc": 0.9, "C": 0.01}, ref, 1.0)
    bench._compare_reference("dcase", {"acc": 0.9, "C": 0.1}, ref, 1.0)
    out = capsys.readouterr().out.splitlines()
    assert "PASS" in out[1] and "FAIL" in out[3]


def test_reference_is_the_protocol_at_a_tighter_tolerance(bench):
    from dmc.evaluation.protocols import SVM_TOL

    assert bench.REF_TOL < SVM_TOL / 1000
