"""dmc.studies.multisource_val (issue 33 item 7): the validation corpus's seed is its own, and the
study's table (levels and paired differences from the default) on made-up per-clip files, checked
against hand computations."""

from __future__ import annotations

import pytest
import yaml

from dmc.pipeline.params import ParamsError
from dmc.studies import headline as H
from dmc.studies import headline_multi as HMu
from dmc.studies import multisource_val as MV
from test_headline_multi import _write

K5 = "train.clusters=5"


def _params():
    return yaml.safe_load(open("params.yaml"))


def test_the_validation_corpus_has_its_own_seed(monkeypatch):
    params = _params()
    kw = MV.val_settings(params)
    assert kw["seed"] == MV.VAL_SEED
    assert MV.VAL_SEED not in {params["synth"]["multi_seed"], params["synth"]["test_seed"]}
    # the same generator settings as the untouched multi-source corpus, but the seed
    from dmc.pipeline.multicorpus import multi_corpus_settings
    test_kw = multi_corpus_settings(params["synth"])
    assert {k: v for k, v in kw.items() if k != "seed"} == {k: v for k, v in test_kw.items() if k != "seed"}
    for clash in (params["synth"]["multi_seed"], params["synth"]["test_seed"], params["synth"]["seed"] + 1):
        monkeypatch.setattr(MV, "VAL_SEED", clash)
        with pytest.raises(ParamsError, match="seed"):
            MV.val_settings(params)


def test_study_labels_its_grid_one_key_at_a_time():
    p = MV.study_params(_params())
    # the study's default keeps round 1's ungated class maps whatever params.yaml's gate
    assert p["localize"]["class_map_gate"] == "none"
    assert {k: v for k, v in p["localize"].items() if k != "class_map_gate"} == \
        {k: v for k, v in _params()["localize"].items() if k != "class_map_gate"}
    labels = [label for label, _ in H.configs(p)]
    assert labels[0] == H.DEFAULT and K5 in labels and "train.iterations=1" in labels
    # a key both found (k = 5) and trained (k = 16) keeps both values, once each
    assert "train.clusters=16" in labels and len(labels) == len(set(labels))


def test_table_levels_and_differences_by_hand(tmp_path):
    default = {0: [2, 2, 1, 1], 1: [3, 1, 1, 1], 2: [0, 0, 1, 1]}
    k5 = {0: [0, 0, 0, 0], 1: [0, 0, 0, 0]}                 # two seeds only: pairs with the default's 0, 1
    for s in range(3):
        _write(tmp_path, H.DEFAULT, s, {"dmc": default[s]}, [1] * 8, [0] * 8)
    for s in range(2):
        _write(tmp_path, K5, s, {"dmc": k5[s]}, [1] * 8, [0] * 8, degenerate=(s == 1))
    t = MV.table(HMu.load_runs(tmp_path), replicates=200)
    lv = t[(t.config == H.DEFAULT) & (t.kind == "level") & (t.metric == "ca_ciou30")].iloc[0]
    assert lv.value == pytest.approx((6 + 6 + 2) / 48) and lv.seeds == "0 1 2"
    d = t[(t.config == K5) & (t.kind == "minus default") & (t.metric == "ca_ciou30")].iloc[0]
    assert d.seeds == "0 1" and d.value == pytest.approx(((0 - 6) + (0 - 6)) / 16 / 2)
    # below the default in every clip of both seeds: every resample is below 0
    assert (d.seeds_positive, d.seeds_negative) == (0, 2) and d.hi < 0
    # counting: pred_dmc [2, 2, 1, 2] against 2 sources per clip: 3/4 in every run, difference 0
    c = t[(t.config == K5) & (t.kind == "minus default") & (t.metric == "count_acc")].iloc[0]
    assert c.value == pytest.approx(0) and bool(c.degenerate)
    text = MV.markdown(t, "commit abc", "2026-12-07")
    assert text.startswith("> **Study `multisource_val`**: ")
    row = next(x for x in text.splitlines() if x.startswith(f"| {K5} − default"))
    assert "**" in row and "(degenerate)" in row       # the class-aware difference excludes 0


def test_baselines_stand_beside_the_default_by_hand(tmp_path):
    """The audio-blind map, the visible-object count and the best constant: levels from the default's
    runs and the default minus each, on the same clips."""
    default = {0: [2, 2, 1, 1], 1: [3, 1, 1, 1], 2: [0, 0, 1, 1]}
    for s in range(3):      # audio_blind: 1 image of 4 at cIoU >= 0.3 in every clip (the helper's default)
        _write(tmp_path, H.DEFAULT, s, {"dmc": default[s]}, [1] * 8, [0] * 8)
    t = MV.table(HMu.load_runs(tmp_path), replicates=200)

    def get(config, kind, metric):
        return t[(t.config == config) & (t.kind == kind) & (t.metric == metric)].iloc[0]

    assert get("audio-blind map", "level", "ca_ciou30").value == pytest.approx(4 / 16)
    d = get("audio-blind map", "default minus", "ca_ciou30")
    assert d.value == pytest.approx(((6 - 4) + (6 - 4) + (2 - 4)) / 16 / 3)
    assert (d.seeds_positive, d.seeds_negative) == (2, 1)
    # counting: 2 sources per clip; DMC [2, 2, 1, 2] -> 3/4, visible count [2, 1, 1, 1] -> 1/4, constant 2 -> 1
    assert get("visible-object count", "level", "count_acc").value == pytest.approx(0.25)
    assert get("visible-object count", "default minus", "count_acc").value == pytest.approx(0.5)
    assert get("best constant", "default minus", "count_acc").value == pytest.approx(-0.25)
    assert not len(t[(t.config == "best constant") & (t.metric == "ca_ciou30")])   # no map: no map metric
    text = MV.markdown(t, "commit abc", "2026-12-07")
    assert "| baseline: audio-blind map (seeds 0 1 2) |" in text
    row = next(x for x in text.splitlines() if x.startswith("| default − best constant"))
    assert row.count("—") == len(MV.METRICS) and "-0.250 [" in row and "(0/3)" in row


def _diff_rows(config, **cis):
    rows = [{"config": config, "kind": "minus default", "metric": m, "value": 0.0, "lo": -0.1, "hi": 0.1}
            for m in MV.METRICS]
    for m, (lo, hi) in cis.items():
        next(r for r in rows if r["metric"] == m).update(lo=lo, hi=hi, value=(lo + hi) / 2)
    return rows


def test_choice_rule_on_planted_differences():
    import pandas as pd

    def t(*blocks, levels):
        rows = [r for b in blocks for r in b]
        rows += [{"config": c, "kind": "level", "metric": "ca_ciou30", "value": v, "lo": v, "hi": v}
                 for c, v in levels.items()]
        return pd.DataFrame(rows)

    # nothing resolved better on a missed target: the default stays
    assert MV.choose(t(_diff_rows("a", ca_ciou30=(0.1, 0.2)), levels={"default": 0.1, "a": 0.3}))[0] == H.DEFAULT
    # better stem pointing but resolved worse wrong-source rate (higher is worse): refused
    assert MV.choose(t(_diff_rows("a", stem_pointing=(0.01, 0.2), wrong_source_rate=(0.01, 0.1)),
                       levels={"default": 0.1, "a": 0.3}))[0] == H.DEFAULT
    # two eligible: the larger class-aware cIoU@0.3 level wins; a resolved lower wrong-source rate is fine
    chosen, why = MV.choose(t(_diff_rows("a", nsa=(0.01, 0.05)),
                              _diff_rows("b", stem_pointing=(0.02, 0.3), wrong_source_rate=(-0.1, -0.01)),
                              levels={"default": 0.1, "a": 0.2, "b": 0.25}))
    assert chosen == "b" and why.startswith("b:")


def test_the_committed_study_is_the_one_its_committed_per_clip_files_give():
    """study.csv and choice.json recomputed from the committed runs (same bootstrap seed): no number of
    the committed study was typed or edited."""
    import json
    from pathlib import Path

    import pandas as pd

    out = Path(MV.OUT)
    committed = pd.read_csv(out / "study.csv")
    t = MV.table(HMu.load_runs(out / "runs"))
    assert len(t) == len(committed) and list(t.config) == list(committed.config)
    for col in ("value", "lo", "hi", "seeds_positive", "seeds_negative"):
        assert t[col].to_numpy() == pytest.approx(committed[col].to_numpy(), abs=1e-12), col
    assert json.loads((out / "choice.json").read_text()) == MV.choices(t)


def test_inference_configurations_score_the_defaults_models_with_their_value():
    """An inference-time knob (localize.*) trains nothing: its runs are the default's runs (the same
    model file or cache MD5) under the configuration's label, and the scoring params carry its value."""
    p = MV.study_params(_params())
    default = [H.Run(H.DEFAULT, s, f"exp{s}", "rev", f"md5{s}") for s in (0, 1)]
    other = [H.Run(K5, 0, "k5", "rev", "md5k5")]
    labels = [label for label, _ in MV.inference_labels()]
    assert labels and all(label.startswith("localize.") for label in labels)
    runs = MV.inference_runs(default + other)
    assert {(r.config, r.seed) for r in runs} == {(label, s) for label in labels for s in (0, 1)}
    assert all(r.model_md5 == f"md5{r.seed}" and r.name == f"exp{r.seed}" for r in runs)
    (key, value), = dict(MV.inference_labels())[labels[0]].items()
    section, leaf = key.split(".")
    assert H.run_params(p, runs[0])[section][leaf] == value != _params()[section][leaf]
    assert H.run_params(p, runs[0])["train"] == _params()["train"]
    # a run already there (say, scored from a model file) is not made twice
    assert len(MV.inference_runs(default + runs[:1])) == len(runs) - 1


K16 = "train.clusters=16"
GATE = "localize.class_map_gate=heat"


def test_round2_configurations_are_a_knob_on_the_choice_and_on_the_default():
    assert MV.round2_labels(K16) == [GATE, f"{K16}+{GATE}"]
    assert MV.round2_labels(H.DEFAULT) == [GATE]
    assert MV.base_of(f"{K16}+{GATE}") == K16 and MV.base_of(GATE) == H.DEFAULT == MV.base_of(K16)
    runs = [H.Run(H.DEFAULT, 0, "d0", "", "md5d0", "d0.pt"), H.Run(K16, 0, "k0", "", "md5k0", "k0.pt"),
            H.Run(K5, 0, "f0", "", "md5f0", "f0.pt")]
    got = {(r.config, r.model_md5) for r in MV.round2_runs(runs, K16)}
    assert got == {(GATE, "md5d0"), (f"{K16}+{GATE}", "md5k0")}          # the same models, relabelled
    # both keys of a joined label are set, nothing else
    p = MV.study_params(_params())
    q = MV.config_params(p, H.Run(f"{K16}+{GATE}", 3, "", "", ""))
    assert (q["train"]["clusters"], q["localize"]["class_map_gate"], q["seed"]) == (16, "heat", 3)
    assert {k: v for k, v in q["localize"].items() if k != "class_map_gate"} == \
        {k: v for k, v in _params()["localize"].items() if k != "class_map_gate"}


def test_round2_differences_are_from_the_round1_choice_by_hand(tmp_path):
    """A round-2 configuration is paired with the configuration it is built on, not with the default."""
    for s in range(2):
        _write(tmp_path, H.DEFAULT, s, {"dmc": [0, 0, 0, 0]}, [1] * 8, [0] * 8)
        _write(tmp_path, K16, s, {"dmc": [2, 2, 2, 2]}, [1] * 8, [0] * 8)
        _write(tmp_path, f"{K16}+{GATE}", s, {"dmc": [3, 3, 3, 3]}, [1] * 8, [0] * 8)
    t = MV.table(HMu.load_runs(tmp_path), replicates=200)
    d = t[(t.config == f"{K16}+{GATE}") & (t.metric == "ca_ciou30")].set_index("kind")
    assert set(d.index) == {"level", "minus base"} and d.loc["minus base", "base"] == K16
    assert d.loc["minus base", "value"] == pytest.approx((12 - 8) / 16)
    text = MV.markdown(t, "commit abc", "2026-12-07")
    assert any(x.startswith(f"| {K16}+{GATE} − {K16} (seeds 0 1) |") for x in text.splitlines())


def test_round2_choice_rule_on_planted_differences():
    import pandas as pd

    def rows(config, kind, **cis):
        out = [dict(r, kind=kind) for r in _diff_rows(config, **cis)]
        return out

    levels = {"default": 0.1, K16: 0.3, f"{K16}+{GATE}": 0.5, GATE: 0.9}
    lv = [{"config": c, "kind": "level", "metric": "ca_ciou30", "value": v, "lo": v, "hi": v} for c, v in levels.items()]
    base = rows(K16, "minus default", stem_pointing=(0.01, 0.1))
    # the knob on the choice: NSA resolved better, nothing resolved worse -> replaces the choice
    t = pd.DataFrame(base + rows(f"{K16}+{GATE}", "minus base", nsa=(0.05, 0.1)) + rows(GATE, "minus default") + lv)
    assert MV.choose(t)[0] == K16                      # round 1 never sees a round-2 configuration
    assert MV.choose_round2(t, K16)[0] == f"{K16}+{GATE}"
    c = MV.choices(t)
    assert c["chosen"] == f"{K16}+{GATE}" and c["round1"]["chosen"] == K16
    # ... but not when it is resolved worse on a map metric; and the knob on the default (a higher
    # level) is not a candidate to replace the round-1 choice
    t = pd.DataFrame(base + rows(f"{K16}+{GATE}", "minus base", nsa=(0.05, 0.1), recall=(-0.2, -0.1))
                     + rows(GATE, "minus default", nsa=(0.05, 0.1)) + lv)
    chosen, why = MV.choose_round2(t, K16)
    assert chosen == K16 and "stays" in why
