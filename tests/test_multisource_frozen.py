"""dmc.studies.multisource_frozen (issue 33 item 7): the configuration chosen on validation is the one
frozen and scored, its models are the validation study's, and an unknown choice is refused."""

from __future__ import annotations

import json

import pytest
import yaml

from dmc.pipeline.params import ParamsError
from dmc.studies import headline as H
from dmc.studies import multisource_frozen as MF


def _params():
    return yaml.safe_load(open("params.yaml"))


def test_frozen_params_set_the_chosen_key_and_nothing_else():
    params = _params()
    p = MF.frozen_params(params, "train.clusters=16")
    assert p["train"]["clusters"] == 16 != params["train"]["clusters"]
    assert {k: v for k, v in p["train"].items() if k != "clusters"} == \
        {k: v for k, v in params["train"].items() if k != "clusters"}
    # the validation study's base: params.yaml with the class maps ungated, as round 1 scored them
    assert p["sweeps"] == params["sweeps"] and p["localize"] == {**params["localize"], "class_map_gate": "none"}
    # an inference-time choice sets a localize key and leaves the training alone
    q = MF.frozen_params(params, "localize.agreement_temperature=5.0")
    assert q["localize"]["agreement_temperature"] == 5.0 and q["train"] == params["train"]
    with pytest.raises(ParamsError, match="not a configuration"):
        MF.frozen_params(params, "train.clusters=7")
    # a round-2 choice sets both of its keys
    r = MF.frozen_params(params, "train.clusters=16+localize.class_map_gate=heat")
    assert (r["train"]["clusters"], r["localize"]["class_map_gate"]) == (16, "heat")
    assert {k: v for k, v in r["localize"].items() if k != "class_map_gate"} == \
        {k: v for k, v in params["localize"].items() if k != "class_map_gate"}
    with pytest.raises(ParamsError, match="not a configuration"):
        MF.frozen_params(params, "train.clusters=16+localize.class_map_gate=sound")


def test_the_chosen_configuration_is_read_from_the_validation_study(tmp_path):
    f = tmp_path / "choice.json"
    f.write_text(json.dumps({"chosen": "train.clusters=16", "reason": "x"}))
    assert MF.chosen(f) == "train.clusters=16" == MF.chosen(f, round=1)
    f.write_text(json.dumps({"chosen": "k+g", "reason": "y", "round1": {"chosen": "k", "reason": "x"}}))
    assert (MF.chosen(f), MF.chosen(f, round=1)) == ("k+g", "k")


def test_models_are_the_validation_studys_and_a_missing_one_is_refused(tmp_path):
    src, dst = tmp_path / "val", tmp_path / "frozen"
    src.mkdir()
    for s in (0, 1):
        (src / f"train.clusters=16_s{s}.pt").write_bytes(bytes([s]) * 8)
    MF.take_models("train.clusters=16", dst, src, seeds=(0, 1))
    assert [(dst / f"{H.DEFAULT}_s{s}.pt").read_bytes() for s in (0, 1)] == [b"\0" * 8, b"\1" * 8]
    with pytest.raises(FileNotFoundError, match="seed 2"):
        MF.take_models("train.clusters=16", dst, src, seeds=(0, 1, 2))
    # a round-2 choice (an inference-time knob on the round-1 choice) takes the round-1 choice's models
    assert MF.model_label("train.clusters=16+localize.class_map_gate=heat") == "train.clusters=16"
    dst2 = tmp_path / "frozen2"
    MF.take_models("train.clusters=16+localize.class_map_gate=heat", dst2, src, seeds=(1,))
    assert (dst2 / f"{H.DEFAULT}_s1.pt").read_bytes() == b"\1" * 8


def test_the_header_names_the_frozen_configuration():
    text = MF.header("train.clusters=16", "commit abc", "2026-12-07")
    assert text.startswith("> **Study `multisource_frozen`**: ") and "`train.clusters=16`" in text
    # each round's header names its own folder (the study index lists it by that name)
    two = MF.header("train.clusters=16+localize.class_map_gate=heat", "commit abc", "2026-12-07", round=2)
    assert two.startswith("> **Study `multisource_frozen_round2`**: ") and "--round 2" in two


@pytest.mark.parametrize("round", sorted(MF.OUT_BY_ROUND))
def test_the_committed_frozen_tables_are_the_ones_their_committed_per_clip_files_give(round):
    """headline_multi.csv of each round's frozen study recomputed from its committed runs (same bootstrap
    seeds): no number was typed or edited; the frozen configuration is the validation study's choice of
    that round."""
    from pathlib import Path

    import pandas as pd

    from dmc.studies import headline_multi as HMu

    out = Path(MF.OUT_BY_ROUND[round])
    committed = pd.read_csv(out / "headline_multi.csv")
    t = HMu.tables(HMu.load_runs(out / "headline_multi_runs"), H.load_runs(out / "headline_runs"))
    assert len(t) == len(committed)
    for col in ("value", "lo", "hi"):
        assert t[col].to_numpy(dtype=float) == pytest.approx(committed[col].to_numpy(dtype=float), abs=1e-4,
                                                              nan_ok=True), col
    versus = pd.read_csv(out / "versus_default.csv")
    # against the default's runs as they were scored then (the folder's own copy)
    rows = pd.DataFrame(MF.versus_default(HMu.load_runs(out / "headline_multi_runs"),
                                          HMu.load_runs(out / "default_multi_runs")))
    assert list(rows.metric) == list(versus.metric)
    for col in ("value", "lo", "hi", "seeds_positive", "seeds_negative"):
        assert rows[col].to_numpy(dtype=float) == pytest.approx(versus[col].to_numpy(dtype=float), abs=1e-4), col
    if round > 1:
        previous = pd.read_csv(out / "versus_previous.csv")
        rows = pd.DataFrame(MF.versus_default(HMu.load_runs(out / "headline_multi_runs"),
                                              HMu.load_runs(MF.OUT_BY_ROUND[round - 1] / "headline_multi_runs")))
        for col in ("value", "lo", "hi"):
            assert rows[col].to_numpy(dtype=float) == pytest.approx(previous[col].to_numpy(dtype=float), abs=1e-4)
    frozen = yaml.safe_load((out / "params.yaml").read_text())
    study = MF.MV.study_params(_params())
    for part in MF.chosen(round=round).split(MF.MV.JOIN):
        (key, value), = dict(H.configs(study))[part].items()
        section, leaf = key.split(".")
        assert frozen[section][leaf] == value


def test_stamp_opens_every_table_with_the_header_once(tmp_path):
    (tmp_path / "headline.md").write_text("# Headline\n\n| a |\n|---|\n| 1 |\n")
    (tmp_path / "README.md").write_text("> **Study `multisource_frozen`**: q\n\nbody\n")
    line = MF.header("train.clusters=16", "commit abc", "2026-12-07").splitlines()[0]
    MF.stamp(tmp_path, line)
    MF.stamp(tmp_path, line)
    assert (tmp_path / "headline.md").read_text() == f"{line}\n\n# Headline\n\n| a |\n|---|\n| 1 |\n"
    assert (tmp_path / "README.md").read_text() == "> **Study `multisource_frozen`**: q\n\nbody\n"



def test_a_missing_model_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    real = MF.take_models
    monkeypatch.setattr(MF, "chosen", lambda round=2: "train.clusters=16")
    monkeypatch.setattr(MF, "take_models", lambda config, folder, seeds: real(config, folder, tmp_path / "val", seeds))
    assert MF.cli(["--out", str(tmp_path / "out"), "--models-dir", str(tmp_path / "models")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.clusters=16_s0.pt" in err[0] and "make multisource-val" in err[0]
    monkeypatch.setattr(MF, "chosen", lambda round=2: "train.clusters=7")
    assert MF.cli(["--out", str(tmp_path / "out")]) == 2
    assert "not a configuration" in capsys.readouterr().err


def test_versus_default_pairs_seed_with_seed_by_hand(tmp_path):
    """Frozen DMC minus the default's DMC on the same clips: per seed (hits - hits) / images, averaged."""
    from dmc.studies import headline_multi as HMu
    from test_headline_multi import _write

    frozen, default = tmp_path / "frozen", tmp_path / "default"
    ones, zeros = [1] * 8, [0] * 8
    for s, (f, d) in enumerate([([2, 2, 2, 2], [1, 1, 1, 1]), ([3, 3, 1, 1], [1, 1, 1, 1])]):
        _write(frozen, H.DEFAULT, s, {"dmc": f}, ones, zeros)
        _write(default, H.DEFAULT, s, {"dmc": d}, ones, zeros)
    _write(frozen, H.DEFAULT, 2, {"dmc": [0, 0, 0, 0]}, ones, zeros)     # no default run of seed 2: left out
    rows = {r["metric"]: r for r in MF.versus_default(HMu.load_runs(frozen), HMu.load_runs(default), replicates=200)}
    r = rows["ca_ciou30"]
    assert r["seeds"] == "0 1" and r["value"] == pytest.approx(((8 - 4) + (8 - 4)) / 16 / 2)
    assert (r["seeds_positive"], r["seeds_negative"]) == (2, 0) and r["lo"] > 0
    text = MF.versus_markdown(list(rows.values()), "train.clusters=16")
    assert "| class-aware cIoU@0.3 | **+0.250 [" in text and "(2/0)" in text


def test_the_defaults_runs_are_copied_with_the_files_a_comparison_reads(tmp_path):
    from dmc.studies import headline_multi as HMu
    from test_headline_multi import _write

    src = tmp_path / "runs"
    for s in (0, 1):
        _write(src, H.DEFAULT, s, {"dmc": [1, 2, 0, 1]}, [1] * 8, [0] * 8)
    _write(src, "train.iterations=1", 0, {"dmc": [0, 0, 0, 0]}, [1] * 8, [0] * 8)
    dst = MF.snapshot_default(src, tmp_path / "study" / "default_multi_runs")
    assert sorted(p.name for p in dst.iterdir()) == ["default_s0", "default_s1"]      # the default's only
    got, want = HMu.load_runs(dst), HMu.load_runs(src)
    assert set(got) == {(H.DEFAULT, 0), (H.DEFAULT, 1)}
    for key in got:
        assert got[key]["ca_clips"].equals(want[key]["ca_clips"]) and got[key]["details"] == want[key]["details"]
