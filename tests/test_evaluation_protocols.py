"""Tests of dmc.evaluation.protocols (SVM protocols) and dmc.evaluation.reporting (metrics, tables, figures)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dmc.evaluation import protocols as evaluation
from dmc.evaluation import reporting
from dmc.errors import EvaluationError
from dmc.evaluation.protocols import (aggregate_decisions, evaluate_dcase, evaluate_esc50, group_accuracy, logmel_stats,
                            subclip_starts)

N_CLASSES, PER_CELL = 4, 4  # toy ESC: 5 folds x 4 classes x 4 clips = 80 clips


def toy_esc(seed: int = 0, noise: float = 0.1, random: bool = False):
    """Features = one-hot class (+ noise, + 4 noise dims) or pure noise; meta like read_esc50."""
    rng = np.random.default_rng(seed)
    rows = [(f, t) for f in range(1, 6) for t in range(N_CLASSES) for _ in range(PER_CELL)]
    meta = pd.DataFrame({"filename": [f"{f}-{i}-A-{t}.wav" for i, (f, t) in enumerate(rows)],
                         "fold": [f for f, _ in rows], "target": [t for _, t in rows],
                         "category": [f"class{t}" for _, t in rows],
                         "esc10": [t < 2 for _, t in rows]})
    X = rng.normal(0, noise if not random else 1.0, (len(rows), N_CLASSES + 4))
    if not random:
        X[np.arange(len(rows)), meta["target"]] += 1.0
    return X, meta


def test_esc50_separable_gives_perfect_accuracy():
    X, meta = toy_esc()
    r = evaluate_esc50(X, meta, C_grid=(0.1, 1.0))
    assert r["folds"] == [1, 2, 3, 4, 5] and r["fold_acc"] == [1.0] * 5
    assert r["acc_mean"] == 1.0 and r["acc_std"] == 0.0 and r["fold_n_test"] == [16] * 5
    assert r["y_pred"] == meta["target"].tolist() and r["fold"] == meta["fold"].tolist()
    assert r["class_names"] == ["class0", "class1", "class2", "class3"]
    assert all(c in (0.1, 1.0) for c in r["fold_C"])
    assert r["esc10"]["classes"] == [0, 1] and r["esc10"]["acc_mean"] == 1.0
    assert r["esc10"]["fold_n_test"] == [8] * 5
    json.dumps(r)  # plain Python, storable as it is


def test_esc50_random_features_near_chance():
    X, meta = toy_esc(seed=1, random=True)
    r = evaluate_esc50(X, meta, C_grid=(1.0,))
    assert r["acc_mean"] < 0.5  # chance = 0.25


def test_esc50_results_are_per_fold():
    """Fold 3's labels are shuffled: it alone fails, the others stay perfect."""
    X, meta = toy_esc()
    X = X[:, :N_CLASSES]  # no nuisance dims an SVM could use to fit the wrong labels
    in3 = (meta["fold"] == 3).to_numpy()
    true = meta["target"].to_numpy()
    shuffled = true.copy()
    shuffled[in3] = np.random.default_rng(2).permutation(true[in3])
    agree = float(np.mean(shuffled[in3] == true[in3]))
    assert agree == 0.125
    r = evaluate_esc50(X, meta.drop(columns="esc10").assign(target=shuffled), C_grid=(0.01, 1.0))
    assert r["fold_acc"] == [1.0, 1.0, agree, 1.0, 1.0]  # the model predicts the true class
    assert r["acc_mean"] == pytest.approx((4 + agree) / 5) and r["esc10"] is None


def spy_fit(monkeypatch):
    """Record the row masks of every batched fit."""
    calls = []
    real = evaluation.fit_ovr

    def spy(X, labels, masks, Cs, n_classes, **kw):
        calls.append((np.asarray(X).copy(), np.asarray(masks).copy(), list(Cs)))
        return real(X, labels, masks, Cs, n_classes, **kw)

    monkeypatch.setattr(evaluation, "fit_ovr", spy)
    return calls


def test_esc50_test_fold_never_seen(monkeypatch):
    """Every training set of the C search leaves out two folds (f and the validation fold g);
    the final fit of fold f leaves out f: a test row never reaches a scaler, a fit or C."""
    X, meta = toy_esc()
    folds = meta["fold"].to_numpy()
    calls = spy_fit(monkeypatch)
    evaluate_esc50(X, meta.drop(columns="esc10"), C_grid=(0.1, 1.0))
    inner, finals = calls[0], calls[1:]   # no C at an edge here: no extension fits
    left_out = [set(np.unique(folds[~m])) for m in inner[1]]
    assert sorted(tuple(sorted(x)) for x in left_out) == [(f, g) for f in range(1, 6) for g in range(f + 1, 6)]
    # the final fits, batched per chosen C: each leaves out one fold, every fold once
    assert 1 <= len(finals) <= 2
    assert sorted(tuple(np.unique(folds[~m])) for call in finals for m in call[1]) == [(f,) for f in range(1, 6)]


def test_esc50_test_labels_and_features_change_nothing_of_their_fold():
    """Shuffle fold 2's labels and scale its features: fold 2's C and its model are unchanged
    (its predictions on the same inputs are identical), whatever the other folds get."""
    X, meta = toy_esc(noise=0.6)
    meta = meta.drop(columns="esc10")
    r = evaluate_esc50(X, meta, C_grid=(0.001, 0.1, 10.0))
    in2 = (meta["fold"] == 2).to_numpy()
    shuffled = meta["target"].to_numpy().copy()
    shuffled[in2] = np.random.default_rng(0).permutation(shuffled[in2])
    r2 = evaluate_esc50(X, meta.assign(target=shuffled), C_grid=(0.001, 0.1, 10.0))
    assert r2["fold_C"][1] == r["fold_C"][1]
    assert np.array_equal(np.asarray(r2["y_pred"])[in2], np.asarray(r["y_pred"])[in2])


def test_ties_go_to_the_smallest_C():
    X, meta = toy_esc()           # separable: every C of the grid is perfect in every inner split
    r = evaluate_esc50(X, meta.drop(columns="esc10"), C_grid=(3.0, 1.0, 10.0))
    assert r["fold_C"] == [1.0] * 5 and not any(r["fold_C_edge"])   # a plateau is not an edge


def test_C_search_prefers_what_generalises():
    """Many noise dims, few samples: strong regularisation wins the cross-validation."""
    rng = np.random.default_rng(0)
    rows = [(f, t) for f in range(1, 6) for t in range(2) for _ in range(8)]
    meta = pd.DataFrame({"fold": [f for f, _ in rows], "target": [t for _, t in rows]})
    X = rng.normal(size=(len(rows), 200))
    X[:, 0] += 1.5 * meta["target"].to_numpy()
    r = evaluate_esc50(X, meta, C_grid=(1e-4, 100.0))
    assert r["fold_C"].count(1e-4) >= 4


def test_grid_is_extended_past_an_edge():
    """A C search whose best value is beyond the grid extends it by the grid's own log step
    until the choice is inside (or a bound is reached), and records the edge."""
    best = {"C": 100.0}
    fitted = []

    class Fit:
        W = None

    def fit_inner(Cs, start):
        fitted.append((list(Cs), start is not None))
        import torch
        return type("R", (), {"W": torch.zeros(1, len(Cs), 1, 1)})()

    def score(cache, u, Cs):
        return -np.abs(np.log10(Cs) - np.log10(best["C"]))

    [(grid, C, edge_cfg, edge_after)], _ = evaluation._search(fit_inner, score, [0.01, 0.1, 1.0], 1)
    assert grid == pytest.approx([0.01, 0.1, 1.0, 10.0, 100.0, 1000.0])
    assert C == pytest.approx(100.0) and edge_cfg is True and edge_after is False
    # the configured grid is fitted once along its path, each added value warm-started alone
    assert fitted[0] == ([0.01, 0.1, 1.0], False) and all(len(c) == 1 and w for c, w in fitted[1:])
    best["C"] = 1e9                       # beyond the upper bound: stops there, still at the edge
    [(grid, C, _, edge_after)], _ = evaluation._search(fit_inner, score, [1.0, 10.0], 1)
    assert grid[-1] == pytest.approx(evaluation.C_BOUNDS[1]) and C == grid[-1] and edge_after is True
    best["C"] = 1e-3                      # below: extended downwards
    [(grid, C, _, _)], _ = evaluation._search(fit_inner, score, [0.1, 1.0], 1)
    assert C == pytest.approx(1e-3) and grid[0] == pytest.approx(1e-4)


def test_C_edge_share_in_results():
    X, meta = toy_esc(noise=0.6)
    r = evaluate_esc50(X, meta.drop(columns="esc10"), C_grid=(1e-6, 1e-5))
    assert r["C_grid"] == [1e-6, 1e-5]
    assert r["C_edge_share"] == np.mean(r["fold_C_edge"])
    for g, C in zip(r["fold_C_grid"], r["fold_C"]):
        assert g[:2] == pytest.approx([1e-6, 1e-5]) or g[0] < 1e-6
        assert C in g and min(g) >= evaluation.C_BOUNDS[0] * 0.999


def test_subclip_starts():
    s = subclip_starts(30.0)
    assert len(s) == 60 and s[0] == 0.0 and s[-1] == pytest.approx(25.0)
    np.testing.assert_allclose(np.diff(s), 25 / 59)
    assert 25 / 59 < 5.0  # consecutive 5 s sub-clips overlap
    assert subclip_starts(29.0)[-1] == pytest.approx(24.0)
    np.testing.assert_array_equal(subclip_starts(3.0), [0.0])  # shorter than 5 s: one clip
    np.testing.assert_array_equal(subclip_starts(5.0), [0.0])
    with pytest.raises(ValueError):
        subclip_starts(-1.0)


def test_subclip_starts_on_the_hop_grid():
    """With a step, each start is the nearest multiple of it, never past duration - length."""
    s = subclip_starts(30.0, step_s=0.05)
    assert len(s) == 60 and len(set(np.round(s / 0.05))) == 60
    np.testing.assert_allclose(s / 0.05, np.round(s / 0.05), atol=1e-9)
    assert np.abs(s - subclip_starts(30.0)).max() <= 0.025 + 1e-9
    assert s[0] == 0.0 and s[-1] == pytest.approx(25.0)
    assert subclip_starts(29.97, step_s=0.05)[-1] == pytest.approx(24.95)   # 24.97 rounds down
    with pytest.raises(ValueError):
        subclip_starts(30.0, step_s=0.0)


def test_mean_decision_differs_from_majority_vote():
    # Two sub-clips lean weakly to "a", one strongly to "b": the vote says a, the mean says b.
    decision = np.array([[0.2, 0.1], [0.2, 0.1], [-1.0, 1.0],   # rec1: means (-0.2, 0.4) -> b
                         [1.0, -1.0], [0.5, 0.0], [0.0, 0.4]])  # rec2: means (0.5, -0.2) -> a
    ids = ["rec1", "rec1", "rec1", "rec2", "rec2", "rec2"]
    assert aggregate_decisions(decision, ids, ["a", "b"]) == (["rec1", "rec2"], ["b", "a"])
    # binary SVMs give one column, the score of classes[1]
    assert aggregate_decisions(np.array([0.3, 0.3, -1.0]), ["r"] * 3, ["a", "b"]) == (["r"], ["a"])


def toy_dcase(seed: int = 0, scenes=("bus", "park", "office"), n_sub: int = 6):
    """4 recordings per scene (2 train, 2 test), n_sub sub-clips each, one-hot + noise."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame([{"filename": f"audio/{s}{i:02d}.wav", "label": s,
                           "split": "train" if i <= 2 else "test"}
                          for s in scenes for i in range(1, 5)])
    ids = np.repeat(table["filename"].to_numpy(), n_sub)
    k = np.repeat([list(scenes).index(s) for s in table["label"]], n_sub)
    X = rng.normal(0, 0.2, (len(ids), len(scenes) + 3))
    X[np.arange(len(ids)), k] += 1.0
    return X, ids, table


def test_dcase_protocol(monkeypatch):
    X, ids, table = toy_dcase()
    calls = spy_fit(monkeypatch)
    r = evaluate_dcase(X, ids, table, C_grid=(0.1, 1.0))
    train_ids = ids[np.isin(ids, table.loc[table["split"] == "train", "filename"])]
    for Xfit, masks, _ in calls:
        assert len(Xfit) == len(train_ids)                    # test sub-clips are never fitted
        for m in masks:                                       # no recording straddles a split
            assert all(len(set(m[train_ids == rec])) == 1 for rec in set(train_ids))
    assert r["acc"] == 1.0 and r["scene_acc_mean"] == 1.0
    assert r["classes"] == ["bus", "office", "park"] and r["scene_n_test"] == [2, 2, 2]
    assert r["n_subclips_train"] == 36 and len(r["recordings"]) == 6
    json.dumps(r)


def test_dcase_scene_mean_differs_from_accuracy():
    X, ids, table = toy_dcase(scenes=("bus", "park"))
    table.loc[table["filename"] == "audio/bus03.wav", "label"] = "park"  # 3 park tests, 1 bus
    r = evaluate_dcase(X, ids, table, C_grid=(1.0,))
    assert r["scene_acc"] == [1.0, pytest.approx(2 / 3)]  # bus03 sounds like bus
    assert r["acc"] == 0.75 and r["scene_acc_mean"] == pytest.approx(5 / 6)


def test_dcase_rejects_inconsistent_inputs():
    X, ids, table = toy_dcase()
    with pytest.raises(EvaluationError, match="recordings without sub-clips"):
        evaluate_dcase(X[6:], ids[6:], table)
    with pytest.raises(EvaluationError, match="do not match"):
        evaluate_dcase(X[1:], ids, table)
    orphan = table.copy()
    orphan.loc[orphan["filename"] == "audio/park03.wav", "label"] = "beach"
    with pytest.raises(EvaluationError, match="scene 'beach' .*park03.* has no training recording"):
        evaluate_dcase(X, ids, orphan)


def test_group_accuracy_by_hand():
    # classes 0, 1 form group "a", classes 2, 3 group "b"; predictions chosen so that fold 1 has
    # 2 of 4 clips right but 3 of 4 in the right group, fold 2 has 4 of 4 of both
    result = {"folds": [1, 2], "fold": [1, 1, 1, 1, 2, 2, 2, 2],
              "y_true": [0, 1, 2, 3, 0, 1, 2, 3], "y_pred": [0, 0, 3, 1, 0, 1, 2, 3]}
    g = group_accuracy(result, {0: "a", 1: "a", 2: "b", 3: "b"})
    assert g == {"group_acc_mean": (0.75 + 1.0) / 2, "group_acc_std": 0.125, "group_acc_pooled": 7 / 8}


def test_esc50_scores_groups_when_the_metadata_has_them():
    # noisy features: some clips go wrong; a pair of classes per group makes group accuracy
    # at least the plain accuracy, and with one group per class the two are equal
    X, meta = toy_esc(noise=0.6)
    paired = evaluate_esc50(X, meta.assign(group=[f"g{t // 2}" for t in meta["target"]]), (1.0,))
    single = evaluate_esc50(X, meta.assign(group=meta["category"]), (1.0,))
    assert "group_acc_mean" not in evaluate_esc50(X, meta, (1.0,))
    assert single["group_acc_mean"] == pytest.approx(single["acc_mean"]) and single["acc_mean"] < 1.0
    assert paired["group_acc_mean"] > paired["acc_mean"]
    flat = reporting.flatten_metrics({"esc50": {"dmc": paired}})
    assert flat["esc50.dmc.group_acc_mean"] == round(paired["group_acc_mean"], 4)
    assert reporting.flatten_metrics({"esc50": {"dmc": evaluate_esc50(X, meta, (1.0,))}})[
        "esc50.dmc.group_acc_mean"] is None


def test_logmel_stats():
    logmel = np.stack([np.tile([1.0, 2.0], (4, 1)), np.array([[0.0, 1], [2, 1], [0, 1], [2, 1]])])
    out = logmel_stats(logmel)  # (2, T=4, n_mels=2) -> (2, 4)
    np.testing.assert_allclose(out, [[1, 2, 0, 0], [1, 1, 1, 0]])
    assert logmel_stats(np.zeros((10, 64))).shape == (128,)


# ---------------------------------------------------------------- reporting

METHODS = ("dmc", "random_init", "logmel_stats")
FOLD_FIELDS = ("acc_mean", "acc_std", "fold1", "fold2", "fold3", "fold4", "fold5")
#: the keys of the first release: still there, with the same meaning
FIRST_KEYS = {f"esc50.{m}.{f}" for m in METHODS for f in (*FOLD_FIELDS, "esc10_acc_mean", "esc10_acc_std")} | \
    {f"dcase.{m}.{f}" for m in METHODS for f in ("acc", "scene_acc_mean")}
EXPECTED_KEYS = FIRST_KEYS | {f"{d}.{m}.{f}" for d in ("esc50", "esc10") for m in METHODS
                              for f in (*FOLD_FIELDS, "n_folds", "C_edge_share")} | \
    {f"dcase.{m}.C_edge" for m in METHODS} | {f"esc50.{m}.group_acc_mean" for m in METHODS}
POOLED_FIELDS = ("acc_pooled", "n_scored", "n_listed", "folds_scored", "partial")
EXPECTED_KEYS |= {f"{d}.{m}.{f}" for d in ("esc50", "esc10") for m in METHODS for f in POOLED_FIELDS} | \
    {f"esc50.{m}.esc10_{f}" for m in METHODS for f in POOLED_FIELDS}


@pytest.fixture(scope="module")
def results():
    X, meta = toy_esc()
    Xr, _ = toy_esc(seed=2, random=True)
    Xd, ids, table = toy_dcase()
    return {"esc50": {"dmc": evaluate_esc50(X, meta, (1.0,)),
                      "logmel_stats": evaluate_esc50(Xr, meta, (1.0,))},
            "dcase": {"dmc": evaluate_dcase(Xd, ids, table, (1.0,))}}


def test_metric_keys_are_stable(results):
    assert len(reporting.metric_keys()) == 72 + 45 and set(reporting.metric_keys()) == EXPECTED_KEYS
    assert FIRST_KEYS <= set(reporting.metric_keys())
    flat = reporting.flatten_metrics(results)
    assert list(flat) == reporting.metric_keys()
    assert reporting.flatten_metrics({}).keys() == flat.keys()
    assert flat["esc50.dmc.acc_mean"] == 1.0 and flat["esc50.dmc.fold3"] == 1.0
    assert flat["dcase.dmc.scene_acc_mean"] == 1.0 and flat["dcase.random_init.acc"] is None
    v = flat["esc50.logmel_stats.acc_mean"]
    assert isinstance(v, float) and 0 <= v <= 1 and v == round(v, 4)
    # complete data, equal folds: the pooled accuracy is the mean; counts and folds kept as they are
    assert flat["esc50.logmel_stats.acc_pooled"] == v
    assert (flat["esc50.dmc.n_scored"], flat["esc50.dmc.n_listed"], flat["esc50.dmc.folds_scored"],
            flat["esc50.dmc.partial"]) == (80, 80, "1,2,3,4,5", False)
    assert (flat["esc50.dmc.esc10_n_scored"], flat["esc50.dmc.esc10_partial"]) == (40, False)
    with pytest.raises(ValueError, match="unknown dataset"):
        reporting.flatten_metrics({"esc-50": {}})


def test_write_results_writes_everything(tmp_path, results):
    # results must survive a JSON round trip (steps may store them between stages)
    results = json.loads(json.dumps(results))
    written = reporting.write_results(results, tmp_path)
    expected = {"metrics.json", *(f"tables/{s}.{e}" for s in ("summary", "esc50_folds", "dcase_scenes",
                                                             "dcase_recordings") for e in ("csv", "md")),
                "plots/esc50_dmc_confusion.csv", "plots/esc50_logmel_stats_confusion.csv",
                "plots/dcase_dmc_confusion.csv", "figures/esc50_dmc_confusion.png",
                "figures/esc50_logmel_stats_confusion.png", "figures/dcase_dmc_confusion.png"}
    files = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    assert files == expected == {str(p.relative_to(tmp_path)) for p in written}
    # the evaluate step declares exactly the tables it writes (dmc.pipeline.graph lists them one by one,
    # so that `dvc repro` leaves the sweep tables beside them alone)
    from dmc.pipeline.graph import EVALUATE_TABLES
    assert {f for f in files if f.startswith("tables/")} == {f"tables/{t}" for t in EVALUATE_TABLES}
    assert json.loads((tmp_path / "metrics.json").read_text()) == reporting.flatten_metrics(results)
    summary = pd.read_csv(tmp_path / "tables/summary.csv")
    published = summary[summary["source"] == reporting.PUBLISHED_LABEL].set_index("method")
    assert published.loc["DMC", "esc50_acc_mean"] == 0.826
    assert published.loc["‡DMC", "dcase_scene_acc_mean"] == 0.96
    md = (tmp_path / "tables/summary.md").read_text()
    assert "published (paper), not reproduced" in md and "| 82.6 |" in md and "| 100.0 ± 0.0 (80/80) |" in md
    assert "PARTIAL" not in md
    conf = pd.read_csv(tmp_path / "plots/esc50_dmc_confusion.csv")
    assert list(conf.columns) == ["actual", "predicted"] and len(conf) == 80
    assert set(conf["actual"]) == {"class0", "class1", "class2", "class3"}
    conf_d = pd.read_csv(tmp_path / "plots/dcase_dmc_confusion.csv", dtype=str)
    assert len(conf_d) == 6
    folds = pd.read_csv(tmp_path / "tables/esc50_folds.csv")
    assert len(folds) == 2 * (5 + 5)  # two methods x (ESC-50 + ESC-10 folds)
    assert len(pd.read_csv(tmp_path / "tables/dcase_scenes.csv")) == 3
    # one row per DCASE test recording with each method's prediction, as the confusion pairs
    recs = pd.read_csv(tmp_path / "tables/dcase_recordings.csv", dtype=str)
    assert list(recs.columns) == ["recording", "scene", "pred_dmc"]
    assert list(recs.recording) == results["dcase"]["dmc"]["recordings"]
    assert list(recs.scene) == list(conf_d.actual) and list(recs.pred_dmc) == list(conf_d.predicted)
    assert (tmp_path / "figures/dcase_dmc_confusion.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(tmp_path.rglob("*.tmp-*"))


def test_confusion_matrix_counts():
    names, actual, predicted = reporting.confusion_pairs(
        {"classes": [3, 7], "class_names": ["dog", "rain"], "y_true": [3, 3, 7], "y_pred": [3, 7, 7]})
    assert (actual, predicted) == (["dog", "dog", "rain"], ["dog", "rain", "rain"])
    np.testing.assert_array_equal(reporting.confusion_matrix(names, actual, predicted), [[1, 1], [0, 1]])


def partial_esc(seed=0):
    """Fold 4 complete; a few clips of folds 2, 3, 5; class 3 only in fold 4 (like a partial
    download of ESC-50)."""
    X, meta = toy_esc(seed=seed, noise=0.3)
    keep = (meta["fold"] == 4) | (meta["fold"].isin([2, 3, 5]) & (meta.index % 4 == 0) & (meta["target"] != 3))
    return X[keep.to_numpy()], meta[keep].drop(columns="esc10").reset_index(drop=True)


def test_partial_esc50_evaluates_what_it_can_and_says_why_not(tmp_path):
    X, meta = partial_esc()
    r = evaluate_esc50(X, meta, C_grid=(0.1,))
    assert 4 not in r["folds"] and r["folds"] == [2, 3, 5]
    assert "fold 4" in r["folds_not_evaluated"]["4"] and "class3" in r["folds_not_evaluated"]["4"]
    assert len(r["y_true"]) == int((meta["fold"] != 4).sum())
    # folds 2, 3, 5 hold 3 test clips each, fewer than one per class (4): pooled, not scored alone
    assert r["fold_n_test"] == [3, 3, 3] and r["min_fold_clips"] == 4 and r["folds_below_minimum"] == [2, 3, 5]
    assert r["acc_mean"] is None and r["acc_std"] is None
    assert (r["n_scored"], r["n_listed"], r["partial"]) == (9, 25, True)
    assert r["acc_pooled"] == float(np.mean(np.asarray(r["y_pred"]) == np.asarray(r["y_true"])))
    flat = reporting.flatten_metrics({"esc50": {"dmc": r}})
    assert flat["esc50.dmc.fold4"] is None and flat["esc50.dmc.fold2"] is None
    assert flat["esc50.dmc.n_folds"] == 0 and flat["esc10.dmc.acc_mean"] is None
    assert flat["esc50.dmc.acc_pooled"] == round(r["acc_pooled"], 4) and flat["esc50.dmc.folds_scored"] == "2,3,5"
    reporting.write_results({"esc50": {"dmc": r}}, tmp_path)
    folds = pd.read_csv(tmp_path / "tables/esc50_folds.csv", keep_default_na=False)
    row = folds[folds["fold"] == 4].iloc[0]
    assert row["accuracy"] == "" and "has no training clip" in row["not_evaluated"]
    row = folds[folds["fold"] == 2].iloc[0]
    assert row["accuracy"] == "" and float(row["n_test"]) == 3 and "not scored on its own" in row["not_evaluated"]
    # with a minimum the small folds pass, they are scored on their own again
    r0 = evaluate_esc50(X, meta, C_grid=(0.1,), min_fold_clips_per_class=0.5)
    assert r0["folds_below_minimum"] == [] and r0["acc_mean"] == pytest.approx(float(np.mean(r0["fold_acc"])))
    assert r0["partial"] is True                                  # fold 4 is still not scored


def issue_shaped_esc(seed=0):
    """Like the partial copy of issue 27 (414 of 2000 clips: fold 4 complete, a few clips of the
    other folds), in small: 10 classes, fold 4 complete (4 clips per class, 40 clips), fold 1 has 7
    clips, fold 2 one, fold 3 two, fold 5 none; classes 4, 6 and 9 are only in fold 4, so fold 4
    cannot be evaluated. 50 clips listed, the 10 of folds 1-3 can be scored. ESC-10 subset: the
    classes 0-4 (24 clips listed, 4 of them in fold 1)."""
    rng = np.random.default_rng(seed)
    rows = [(4, t) for t in range(10) for _ in range(4)]
    rows += [(1, t) for t in (0, 1, 2, 3, 5, 5, 5)] + [(2, 7)] + [(3, 8), (3, 8)]
    meta = pd.DataFrame({"filename": [f"{f}-{i}-A-{t}.wav" for i, (f, t) in enumerate(rows)],
                         "fold": [f for f, _ in rows], "target": [t for _, t in rows],
                         "category": [f"class{t}" for _, t in rows], "esc10": [t < 5 for _, t in rows]})
    X = rng.normal(0, 0.4, (len(rows), 14))
    X[np.arange(len(rows)), meta["target"]] += 1.0
    return X, meta


def test_partial_esc50_headline_is_pooled_counted_and_marked(tmp_path):
    """Issue 27's case: the summary row shows the pooled accuracy over the scored clips, how many
    of the listed clips were scored, the folds, and the partial mark; no mean of 1- and 2-clip
    folds. The ESC-10 subset follows the same rule: 4 scorable clips of 5 classes are too few,
    so its cell stays empty and the folds table says why."""
    X, meta = issue_shaped_esc()
    r = evaluate_esc50(X, meta, C_grid=(1.0,))
    assert r["folds_not_evaluated"].keys() == {"4"} and r["folds"] == [1, 2, 3]
    assert r["fold_n_test"] == [7, 1, 2] and r["folds_below_minimum"] == [1, 2, 3] and r["acc_mean"] is None
    assert (r["n_scored"], r["n_listed"], r["partial"]) == (10, 50, True)
    correct = int(np.sum(np.asarray(r["y_pred"]) == np.asarray(r["y_true"])))
    assert r["acc_pooled"] == correct / 10
    assert r["esc10"] is None and r["esc10_not_evaluated"].startswith(
        "esc50 (ESC-10 subset): only 4 of 24 clips can be scored (fold(s) 1), fewer than the minimum 5")
    reporting.write_results({"esc50": {"dmc": r}}, tmp_path)
    md = (tmp_path / "tables/summary.md").read_text().splitlines()
    row = next(line for line in md if line.startswith("| ours (this run) | dmc |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == f"{100 * correct / 10:.1f} (PARTIAL: 10/50 clips scored, folds 1, 2, 3)"
    assert cells[3] == ""
    summary = pd.read_csv(tmp_path / "tables/summary.csv")
    ours = summary[summary["source"] == reporting.OURS].iloc[0]
    assert (ours["esc50_n_scored"], ours["esc50_n_listed"], ours["esc50_folds_scored"]) == (10, 50, "1,2,3")
    assert bool(ours["esc50_partial"]) and np.isnan(ours["esc50_acc_mean"])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["esc50.dmc.n_scored"] == 10 and metrics["esc50.dmc.partial"] is True
    assert metrics["esc50.dmc.acc_mean"] is None and metrics["esc50.dmc.esc10_n_scored"] is None
    folds = reporting.fold_table({"esc50": {"dmc": r}})
    assert folds[folds["subset"] == "ESC-10"]["not_evaluated"].tolist() == [r["esc10_not_evaluated"]]


def test_partial_esc50_with_too_few_scored_clips_stops_with_one_line():
    """Fewer scored clips than one per class: nothing meaningful is left, one line says why."""
    X, meta = issue_shaped_esc()
    keep = (~((meta["fold"] == 1) & (meta["target"] == 5))).to_numpy()    # 7 scorable clips, 10 classes
    with pytest.raises(EvaluationError, match=r"^esc50: only 7 of 47 clips can be scored \(fold\(s\) 1, 2, 3\), "
                                              r"fewer than the minimum 10 .*; fold 4: class"):
        evaluate_esc50(X[keep], meta[keep].reset_index(drop=True), C_grid=(1.0,))


def test_protocol_impossible_stops_with_one_line():
    X, meta = toy_esc()
    one_fold = meta["fold"] == 4
    with pytest.raises(EvaluationError, match=r"^esc50: only fold\(s\) \[4\] present"):
        evaluate_esc50(X[one_fold.to_numpy()], meta[one_fold].reset_index(drop=True))
    # two folds with disjoint classes: no fold has its test classes in training
    two = meta["fold"].isin([1, 2]) & (meta["target"] == meta["fold"] - 1)
    with pytest.raises(EvaluationError, match=r"^esc50: no fold can be evaluated: fold 1: class 'class0'"):
        evaluate_esc50(X[two.to_numpy()], meta[two].reset_index(drop=True), C_grid=(1.0,))
    # a C search needs an inner split with two classes to train on
    X2, meta2 = partial_esc()
    only2 = meta2["fold"].isin([2, 4])
    with pytest.raises(EvaluationError, match=r"fold 2: C cannot be chosen by cross-validation"):
        evaluate_esc50(X2[only2.to_numpy()], meta2[only2].reset_index(drop=True), C_grid=(0.1, 1.0))


def test_evaluate_cli_one_line_error(tmp_path, capsys):
    """`dmc evaluate` on data the protocol cannot use: exit 1, one line naming data set and fold."""
    from dmc.pipeline.cli import main
    from dmc.atomic import save_npy

    X, meta = toy_esc()
    one = meta["fold"] == 4
    ev, ft = tmp_path / "evalsets", tmp_path / "features"
    (ev / "esc50").mkdir(parents=True)
    meta[one].to_csv(ev / "esc50" / "clips.csv", index=False)
    for m in METHODS:
        save_npy(ft / "esc50" / f"{m}.npy", X[one.to_numpy()].astype(np.float32))
    import yaml
    from conftest import load_default_params
    p = load_default_params()   # esc50 is evaluated first: the error comes before esc10 is read
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(p))
    code = main(["--params", str(params), "evaluate", "--evalsets", str(ev), "--features", str(ft),
                 "--out-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1] == "dmc evaluate: esc50: only fold(s) [4] present; the fold protocol needs at least 2 folds"
    assert not (tmp_path / "out" / "metrics.json").exists()


# -- compute apart from writing (the evaluate step) ------------------------------------------
def test_protocols_return_results_without_writing(tmp_path, monkeypatch):
    from dmc.config import Evaluate

    monkeypatch.chdir(tmp_path)
    cfg = Evaluate(C_grid=(1.0,), min_fold_clips_per_class=1)
    X, meta = toy_esc()
    Xd, ids, table = toy_dcase()
    clips = pd.DataFrame({"recording": ids}).merge(table.rename(columns={"filename": "recording"}), on="recording")
    esc = evaluation.esc50_protocol({"dmc": X}, meta, cfg)
    dcase = evaluation.dcase_protocol({"dmc": Xd}, clips, cfg)
    assert not list(tmp_path.iterdir())                                  # nothing written
    assert isinstance(esc, evaluation.Esc50Result) and isinstance(dcase, evaluation.DcaseResult)
    assert esc.methods["dmc"] == evaluate_esc50(X, meta, [1.0]) and esc.accuracy("dmc") == 1.0
    assert dcase.methods["dmc"] == evaluate_dcase(Xd, ids, table, [1.0]) and dcase.accuracy("dmc") == 1.0


def test_write_evaluation_writes_hand_made_results(tmp_path, results):
    esc = evaluation.Esc50Result("esc50", results["esc50"])
    dcase = evaluation.DcaseResult("dcase", results["dcase"])
    written = reporting.write_evaluation([esc, dcase], tmp_path / "new")
    old = reporting.write_results(results, tmp_path / "old")
    assert [p.relative_to(tmp_path / "new") for p in written] == [p.relative_to(tmp_path / "old") for p in old]
    assert {p.relative_to(tmp_path / "new").as_posix() for p in written} >= {"metrics.json", "tables/summary.md",
                                                                             "figures/dcase_dmc_confusion.png"}
    for p in written:                                                    # the same bytes as write_results
        assert p.read_bytes() == (tmp_path / "old" / p.relative_to(tmp_path / "new")).read_bytes()
