"""`dmc verify` of the results (src/dmc/io/results_manifest.py): the trained model, the metrics files and
the training log without its timing columns, with the model's training mode named."""

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from conftest import ROOT, load_default_params, with_overrides, write_params
from dmc.io import manifest as M
from dmc.io import verify_all as V
from dmc.model.network import DMC

PORTABLE = {"mode": "portable", "device": "cpu", "threads": 2, "cpu_capability": "DEFAULT"}


def _write_model(path: Path, params: dict, training: dict | None, bump: float = 0.0) -> None:
    torch.manual_seed(0)
    model = DMC.from_params(params["model"], params["train"])
    state = model.state_dict()
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first].view(-1)[0] += bump
    blob = {"model": state, "config": {}, "step": 3}
    if training is not None:
        blob["training"] = training
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(blob, path)


def _write_log(path: Path, seconds: float = 1.5, val_acc: float = 0.75) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["epoch", "step", "val_acc", "seconds", "samples_per_s"])
        w.writerow([0, 0, 0.5, 0.0, 0.0])
        w.writerow([1, 4, val_acc, seconds, round(32 / seconds, 1)])


@pytest.fixture
def run(tmp_path):
    """A repository holding one run's results and their manifest (written from them)."""
    params = load_default_params()
    root = tmp_path / "repo"
    _write_model(root / "models" / "dmc.pt", params, PORTABLE)
    (root / "results" / "train").mkdir(parents=True)
    _write_log(root / "results" / "train" / "log.csv")
    metrics = {"results/train/metrics.json": {"correspondence.val.acc": 0.75, "training.portable": 1},
               "results/metrics.json": {"esc50.dmc.acc_mean": 0.9133, "dcase.dmc.scene_acc_mean": 0.95},
               "results/localization_metrics.json": {"localization.dmc.ciou50": 0.2308},
               "results/heldout_metrics.json": {"heldout.dmc.pointing": 0.7953}}
    for rel, values in metrics.items():
        (root / rel).write_text(json.dumps(values, indent=2) + "\n")
    V.write_all(root, params, names=[M.RESULTS])
    return root, params


def test_the_same_results_match_and_the_mode_is_named(run):
    root, params = run
    notes, diffs = V.verify(root, params, names=[M.RESULTS])
    assert diffs == []
    assert notes[0] == "models/dmc.pt: trained in portable mode (2 threads); the manifest's model in portable mode (2 threads)"
    assert notes[-1] == "results: 6 files, 0 differ"


def test_the_timing_columns_of_the_log_are_left_out(run):
    root, params = run
    before = (root / "results/train/log.csv").read_bytes()
    _write_log(root / "results/train/log.csv", seconds=3.25)
    assert (root / "results/train/log.csv").read_bytes() != before
    notes, diffs = V.verify(root, params, names=[M.RESULTS])
    assert diffs == [] and "1 training log(s) differ in the timing columns only" in notes[-1]
    _write_log(root / "results/train/log.csv", seconds=3.25, val_acc=0.7501)
    (d,) = V.verify(root, params, names=[M.RESULTS])[1]
    assert (d.path, d.kind) == ("results/train/log.csv", "log")


def test_a_metric_is_named_with_both_values(run):
    root, params = run
    path = root / "results/metrics.json"
    path.write_text(json.dumps({"esc50.dmc.acc_mean": 0.8533, "dcase.dmc.scene_acc_mean": 0.95}, indent=2) + "\n")
    (d,) = V.verify(root, params, names=[M.RESULTS])[1]
    assert d.kind == "metrics"
    assert d.detail == "1 of 2 values differ: esc50.dmc.acc_mean 0.8533 against 0.9133"


def test_a_weight_is_counted_measured_and_the_modes_told(run, tmp_path):
    root, params = run
    pristine = tmp_path / "pristine"
    shutil.copytree(root, pristine)
    _write_model(root / "models" / "dmc.pt", params, {"mode": "fast", "device": "cpu", "threads": 2}, bump=0.5)
    notes, diffs = V.verify(root, params, names=[M.RESULTS], reference=pristine)
    assert notes[0] == "models/dmc.pt: trained in fast mode; the manifest's model in portable mode (2 threads)"
    (d,) = diffs
    n = len(DMC.from_params(params["model"], params["train"]).state_dict())
    assert d.kind == "model"
    assert d.detail == (f"1 of {n} weight tensors differ; trained in fast mode, the manifest's in portable mode "
                        "(2 threads); largest absolute weight difference 0.5")


def test_a_model_without_a_mode_is_said_so(run):
    root, params = run
    _write_model(root / "models" / "dmc.pt", params, None)
    notes, diffs = V.verify(root, params, names=[M.RESULTS])
    assert notes[0].startswith("models/dmc.pt: trained in mode not recorded;")
    assert [d.detail for d in diffs] == ["weights equal, record differs; trained in mode not recorded, the "
                                         "manifest's in portable mode (2 threads)"]


def test_other_params_are_not_compared_but_devices_are_no_params_of_a_result(run):
    root, params = run
    (root / "results/heldout_metrics.json").write_text("{}\n")
    notes, diffs = V.verify(root, with_overrides(params, train__lr=0.01), names=[M.RESULTS])
    assert diffs == [] and notes[-1] == "results: not compared: params differ from the manifest's (train.lr)"
    _, diffs = V.verify(root, with_overrides(params, train__device="cpu", localize__device="cpu",
                                             train__num_workers=3), names=[M.RESULTS])
    assert [d.path for d in diffs] == ["results/heldout_metrics.json"]


def test_a_missing_manifest_is_a_note_and_a_missing_file_a_difference(run, tmp_path):
    root, params = run
    notes, diffs = V.verify(root, params, tmp_path / "none", names=[M.RESULTS])
    assert diffs == [] and "not written (dmc verify --write --only results)" in notes[0]
    (root / "results/localization_metrics.json").unlink()
    (d,) = V.verify(root, params, names=[M.RESULTS])[1]
    assert (d.path, d.kind) == ("results/localization_metrics.json", "missing")
    with pytest.raises(M.ManifestError, match="localization_metrics.json: not found"):
        V.write_all(root, params, names=[M.RESULTS])


def test_cli_verify_only_results_names_the_mode_and_exits_1(run, capsys):
    from dmc.pipeline.cli import main

    root, params = run
    write_params(root / "params.yaml", params)
    args = ["--params", str(root / "params.yaml"), "verify", "--root", str(root), "--only", "results",
            "--manifest-dir", str(root / "results" / "manifest")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "verify: models/dmc.pt: trained in portable mode (2 threads)" in out and "every file matches" in out
    (root / "results/localization_metrics.json").write_text('{"localization.dmc.ciou50": 0.2692}\n')
    assert main(args) == 1
    out = capsys.readouterr().out
    assert ("verify: results/localization_metrics.json: metrics: 1 of 1 values differ: localization.dmc.ciou50 "
            "0.2692 against 0.2308") in out


def test_the_committed_results_manifest_is_the_committed_run():
    """results/manifest/results.tsv holds the model of dvc.lock and the committed metrics files (written
    by `dmc verify --write --only results` after `dvc repro`), trained in the mode params.yaml names."""
    _, entries = M.read_manifest(ROOT / M.MANIFEST_DIR / "results.tsv")
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())
    md5 = {o["path"]: o["md5"] for st in lock["stages"].values() for o in st.get("outs", [])}
    (model,) = [e for e in entries if e.path == "models/dmc.pt"]
    assert model.md5 == md5["models/dmc.pt"]
    assert model.parts["training"] == ("portable" if load_default_params()["train"]["portable"] else "fast")
    committed = {e.path: e for e in entries}
    for rel in ("results/metrics.json", "results/localization_metrics.json", "results/heldout_metrics.json",
                "results/train/metrics.json"):
        assert M.file_hashes(ROOT / rel)[1] == committed[rel].sha256, f"{rel}: committed file and manifest differ"


def test_every_ignored_result_key_is_one_no_step_making_a_result_file_depends_on():
    """A key in RESULT_IGNORED (verify compares the results though it differs) must not be a parameter of
    any pipeline step whose outputs hold one of RESULT_FILES (or a folder above one)."""
    from dmc.io.manifest import RESULT_FILES, RESULT_IGNORED
    from dmc.pipeline.graph import STEPS

    makers = [s for s in STEPS if any(f == o.path or f.startswith(o.path.rstrip("/") + "/")
                                      for o in s.outs for f in RESULT_FILES)]
    assert {f for s in makers for o in s.outs for f in RESULT_FILES if f == o.path or f.startswith(o.path + "/")} \
        == set(RESULT_FILES)
    for step in makers:
        for key in RESULT_IGNORED:
            assert not any(key == p or key.startswith(p + ".") for p in step.params), (step.name, key)
