"""The headline's multi-source table (dmc.studies.headline_multi) on made-up per-clip files:
two configurations x three seeds, checked against hand computations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dmc.localization import bootstrap as B
from dmc.pipeline import heldout_multi as HM
from dmc.studies import headline_multi as HMu

VIDEOS = ["v0", "v1", "v2", "v3"]
NC = HMu.NO_CLUSTERING


def _ca_clips(rng, hit30):
    """Per clip rows of every method; ``hit30[method]``: images at cIoU >= 0.3 per clip (of 4)."""
    rows = []
    for m in HM.CA_METHODS:
        for i, v in enumerate(VIDEOS):
            rows.append({"video": v, "method": m, "ca_images": 4, "ca_hit30": hit30.get(m, [1, 1, 1, 1])[i],
                         "ca_auc_num": 1.0, "ca_ciou_sum": 1.0, "nsa_images": 2, "nsa_sum": 1.9,
                         "nsa_drawn_images": 2, "nsa_drawn_sum": 1.8, "recall_hits": 1, "recall_pointing_hits": 1,
                         "recall_sources": 8, "stem_n": 8, "stem_pointing": 7, "stem_ciou_sum": 2.0,
                         "stem_ciou30": 3, "stem_wrong": 1})
    return pd.DataFrame(rows)


def _pairs(own_hits, mm_hits):
    """Two pairs per clip; pointing hits of dmc and mismatched per pair."""
    p = pd.DataFrame({"video": np.repeat(VIDEOS, 2), "segment": np.tile([0, 1], len(VIDEOS))})
    for m, hits in (("dmc", own_hits), ("mismatched", mm_hits)):
        p[f"{m}_pointing"] = hits
        p[f"{m}_ciou"] = 0.5
    return p


def _write(root, config, seed, hit30, own, mm, degenerate=False):
    d = root / f"{config}_s{seed}"
    d.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    _ca_clips(rng, hit30).to_csv(d / "ca_clips.csv", index=False)
    _pairs(own, mm).to_csv(d / "pairs.csv", index=False)
    pd.DataFrame({"video": VIDEOS, "n_sources": 2, "pred_dmc": [2, 2, 1, 2], "pred_visible_count": [2, 1, 1, 1],
                  "pred_best_constant": 2}).to_csv(d / "clips.csv", index=False)
    (d / "details.json").write_text(json.dumps({"config": config, "seed": seed, "clips": 4, "pairs": 8,
                                                "stems_scored": 16, "count_degenerate": {"dmc": degenerate}}))


@pytest.fixture
def runs(tmp_path):
    # DMC's class-aware hits per clip by seed; no clustering's: DMC above in seeds 0 and 1, below in seed 2
    dmc = {0: [2, 2, 1, 1], 1: [3, 1, 1, 1], 2: [0, 0, 1, 1]}
    nc = {0: [1, 1, 1, 1], 1: [1, 1, 1, 1], 2: [1, 1, 1, 1]}
    ones, zeros = [1] * 8, [0] * 8
    for s in range(3):
        _write(tmp_path, HMu.DEFAULT, s, {"dmc": dmc[s]}, ones, zeros)                # gap 1 in every clip
        _write(tmp_path, NC, s, {"dmc": nc[s]}, ones, [1, 0] * 4, degenerate=True)   # gap 0.5 in every clip
    return HMu.load_runs(tmp_path)


def test_levels_differences_and_seed_counts_by_hand(runs):
    t = HMu.tables(runs, None, replicates=300)
    lv = t[(t.kind == "level") & (t.row == "DMC") & (t.metric == "ca_ciou30")].iloc[0]
    # per seed: 6/16, 6/16, 2/16 -> mean 14/48
    assert lv.value == pytest.approx((6 + 6 + 2) / 48) and lv.n_seeds == 3
    d = t[(t.kind == "DMC minus") & (t.row == HMu.CA_ROWS[1][0]) & (t.metric == "ca_ciou30")].iloc[0]
    assert d.value == pytest.approx(((6 - 4) + (6 - 4) + (2 - 4)) / 16 / 3)
    assert (d.seeds_positive, d.seeds_negative) == (2, 1)
    # the interval is the hierarchical bootstrap's, with the module's seed
    a = [HM.clip_sums(runs[(HMu.DEFAULT, s)]["ca_clips"], "dmc", "ca_ciou30", VIDEOS) for s in range(3)]
    b = [HM.clip_sums(runs[(NC, s)]["ca_clips"], "dmc", "ca_ciou30", VIDEOS) for s in range(3)]
    h = B.hierarchical_difference(a, b, 300, HMu.BOOT_SEED)
    assert (d.lo, d.hi) == pytest.approx((h.lo[0], h.hi[0]))
    # stem pointing 7/8 and wrong-source 1/8 in every clip and seed: the interval collapses on the value
    sp = t[(t.kind == "level") & (t.row == "DMC") & (t.metric == "stem_pointing")].iloc[0]
    assert (sp.value, sp.lo, sp.hi) == pytest.approx((7 / 8, 7 / 8, 7 / 8))


def test_audio_gap_counting_and_targets(runs):
    t = HMu.tables(runs, runs, replicates=200)      # the made-up runs stand in for the test corpus too
    g = t[(t.corpus == "multi") & (t.kind == "audio gap DMC minus")].iloc[0]
    assert g.value == pytest.approx(1 - 0.5) and g.seeds_positive == 3
    assert g.lo == pytest.approx(0.5) and g.hi == pytest.approx(0.5)     # the same gap in every clip and seed
    c = t[(t.corpus == "test") & (t.kind == "count DMC minus") & (t.row == "visible_count")].iloc[0]
    assert c.value == pytest.approx(3 / 4 - 1 / 4)
    count = t[t.kind == "count DMC minus"]
    assert set(count.row) == {"visible_count", "best_constant", NC}
    assert count.set_index("row").degenerate.fillna(False).to_dict() == {"visible_count": False,
                                                                        "best_constant": False, NC: True}
    text = HMu.markdown(t, runs)
    line = next(x for x in text.splitlines() if x.startswith(f"| multi | count DMC minus | {NC}"))
    assert "(degenerate)" in line and "not a counting result" in line and "**" not in line
    assert "## Targets of issue 33" in text and text.count("| yes |") + text.count("| no |") >= 5
    # stem pointing 0.875 >= 0.8 and wrong-source 0.125 <= 0.15: met; NSA (drawn) 0.9 >= 0.9: met
    assert "| stem-conditioned pointing on two-source clips | ≥ 0.8, wrong-source rate ≤ 0.15 |" in text
    line = next(x for x in text.splitlines() if x.startswith("| stem-conditioned"))
    assert line.endswith("| yes |")
    line = next(x for x in text.splitlines() if x.startswith("| DMC − no clustering, class-aware"))
    assert line.endswith("| no |")                   # DMC below in one seed: the interval holds 0


def test_write_makes_both_files(runs, tmp_path):
    HMu.write(runs, None, tmp_path, replicates=100)
    t = pd.read_csv(tmp_path / "headline_multi.csv")
    assert {"corpus", "kind", "row", "metric", "value", "lo", "hi", "seeds_positive", "seeds_negative"} <= set(t)
    assert (tmp_path / "headline_multi.md").read_text().startswith("# Headline on the multi-source test corpus")


def test_headline_scores_each_run_on_the_multi_corpus_once(tmp_path, monkeypatch):
    """score_multi: the mapping beside a model file (--models-dir), or in the runs folder for a model of
    the DVC cache; a run already scored with the same model MD5 is not scored again."""
    import argparse

    from conftest import load_default_params
    from dmc.pipeline import heldout_multi
    from dmc.studies import headline as HL

    calls = []

    def fake_run(cfg, decoded, multi, model, gt, mgt, stems, mapping, out, metrics, device, log):
        calls.append((cfg.seed, Path(model).name, Path(mapping)))
        out.mkdir(parents=True)
        (out / "details.json").write_text(json.dumps({"class_map_gate": cfg.localize.class_map_gate}))

    monkeypatch.setattr(heldout_multi, "run", fake_run)
    p = load_default_params()
    runs = [HL.Run(HL.DEFAULT, 0, "a", "", "md5a", str(tmp_path / "default_s0.pt")),
            HL.Run(NC, 2, "b", "", "md5b")]
    args = argparse.Namespace(multi_runs_dir=str(tmp_path / "multi_runs"), decoded="d", multi_decoded="m",
                              multi_ground_truth="g", stems="s", rescore=False)
    HL.score_multi(p, runs, args, "cpu", log=lambda *_: None)
    assert calls[0] == (0, "default_s0.pt", tmp_path / "default_s0.class_mapping.json")
    assert calls[1][0] == 2 and calls[1][2] == tmp_path / "multi_runs" / f"{NC}_s2.class_mapping.json"
    det = json.loads((tmp_path / "multi_runs" / "default_s0" / "details.json").read_text())
    assert (det["config"], det["seed"], det["model_md5"]) == (HL.DEFAULT, 0, "md5a")
    HL.score_multi(p, runs, args, "cpu", log=lambda *_: None)
    assert len(calls) == 2                                            # already scored: not again


def test_a_runs_own_pipeline_scoring_is_reused_only_for_its_model_and_this_code(tmp_path, monkeypatch):
    """step_outputs: the files of results/heldout at a run's commit are taken when that commit's dvc.lock
    says its heldout stage scored this very model with this checkout's code; not for another model's
    MD5, not when the code changed since, not for a model file (no commit)."""
    import hashlib
    import subprocess

    import yaml

    from dmc.studies import headline as HL

    def git(*a):
        subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)

    monkeypatch.chdir(tmp_path)
    git("init", "-q")
    git("config", "user.email", "t@t")
    git("config", "user.name", "t")
    code = tmp_path / "src" / "step.py"
    code.parent.mkdir()
    code.write_text("x = 1\n")
    (tmp_path / "results" / "heldout").mkdir(parents=True)
    (tmp_path / "results" / "heldout" / "details.json").write_text('{"clips": 3}\n')
    (tmp_path / "results" / "heldout" / "pairs.csv").write_text("a,b\n1,2\n")
    lock = {"stages": {"heldout": {"deps": [{"path": "models/dmc.pt", "md5": "m0"},
                                            {"path": "src/step.py", "md5": hashlib.md5(b"x = 1\n").hexdigest()}],
                                   "params": {"params.yaml": {"seed": 0, "localize.class_map_gate": "none"}}}}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    git("add", "-A")
    git("commit", "-qm", "run")
    rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    run = HL.Run(HL.DEFAULT, 0, "HEAD", rev, "m0")
    out = tmp_path / "runs" / "default_s0"
    assert HL.step_outputs(run, "heldout", "results/heldout", out, log=lambda *_: None)
    assert (out / "details.json").read_text() == '{"clips": 3}\n' and (out / "pairs.csv").read_text() == "a,b\n1,2\n"
    other = tmp_path / "runs" / "other"
    assert not HL.step_outputs(HL.Run(HL.DEFAULT, 0, "HEAD", rev, "m1"), "heldout", "results/heldout", other)
    assert not HL.step_outputs(HL.Run(HL.DEFAULT, 0, "f.pt", "", "m0", "f.pt"), "heldout", "results/heldout", other)
    assert not HL.step_outputs(run, "heldout_multi", "results/heldout_multi", other)      # no such stage
    # scored with the params the run wants (as dvc.lock records them), or not taken
    same = {"seed": 0, "localize": {"class_map_gate": "none", "ciou_threshold": 0.3}}
    assert HL.step_outputs(run, "heldout", "results/heldout", tmp_path / "runs" / "same", lambda *_: None, same)
    gated = {"seed": 0, "localize": {"class_map_gate": "heat", "ciou_threshold": 0.3}}
    assert not HL.step_outputs(run, "heldout", "results/heldout", other, want=gated)
    code.write_text("x = 2\n")                          # the scoring code changed since the run
    git("commit", "-qam", "new code")
    assert not HL.step_outputs(run, "heldout", "results/heldout", other)
    assert not other.exists()


def test_a_multi_source_scoring_is_reused_only_with_the_same_model_and_gate(tmp_path):
    """make headline after a change of localize.class_map_gate scores the runs again (same model)."""
    import json

    import yaml

    from dmc.studies import headline as HL

    params = yaml.safe_load(open("params.yaml"))
    params["localize"]["class_map_gate"] = "none"
    done = tmp_path / "details.json"
    run = HL.Run(HL.DEFAULT, 0, "f.pt", "", "m0", "f.pt")
    assert not HL.scored_alike(done, run, params)                          # not scored yet
    done.write_text(json.dumps({"model_md5": "m0"}))                       # made before the gate existed
    assert HL.scored_alike(done, run, params)
    assert not HL.scored_alike(done, HL.Run(HL.DEFAULT, 0, "g.pt", "", "m1", "g.pt"), params)
    params["localize"]["class_map_gate"] = "heat"
    assert not HL.scored_alike(done, run, params)
    done.write_text(json.dumps({"model_md5": "m0", "class_map_gate": "heat"}))
    assert HL.scored_alike(done, run, params)
