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
    labels = [label for label, _ in H.configs(p)]
    assert labels[0] == H.DEFAULT and K5 in labels and "train.iterations=1" in labels


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
