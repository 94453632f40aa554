"""Tests of dmc.evaluation (SVM protocols) and dmc.reporting (metrics, tables, figures)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dmc import evaluation, reporting
from dmc.evaluation import (aggregate_decisions, choose_C, evaluate_dcase, evaluate_esc50,
                            logmel_stats, subclip_starts)

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


def test_esc50_test_fold_never_seen(monkeypatch):
    """Spy on choose_C and the final fit: the held-out fold's rows never reach either."""
    X, meta = toy_esc()
    fold_of_row = {X[i].tobytes(): f for i, f in enumerate(meta["fold"])}
    calls, fits = [], []
    real_choose, real_make = evaluation.choose_C, evaluation.make_svm

    def spy_choose(Xs, y, groups=None, grid=evaluation.C_GRID):
        calls.append(({fold_of_row[row.tobytes()] for row in Xs}, set(np.unique(groups))))
        return real_choose(Xs, y, groups=groups, grid=grid)

    def spy_make(C, **kw):
        model = real_make(C, **kw)
        fit = model.fit
        model.fit = lambda Xs, y: (fits.append({fold_of_row[r.tobytes()] for r in Xs}), fit(Xs, y))[1]
        return model

    monkeypatch.setattr(evaluation, "choose_C", spy_choose)
    monkeypatch.setattr(evaluation, "make_svm", spy_make)
    evaluate_esc50(X, meta.drop(columns="esc10"), C_grid=(0.1, 1.0))
    assert len(calls) == len(fits) == 5
    for f, ((seen, groups), fitted) in enumerate(zip(calls, fits), start=1):
        assert seen == groups == fitted == {1, 2, 3, 4, 5} - {f}


def test_choose_C_single_value_skips_cv_and_ties_go_small(monkeypatch):
    X, meta = toy_esc()
    y, g = meta["target"].to_numpy(), meta["fold"].to_numpy()
    assert choose_C(X, y, g, grid=(3.0, 1.0)) == 1.0  # separable: all tie -> smallest C
    assert choose_C(X, y, None, grid=(3.0, 1.0)) == 1.0
    monkeypatch.setattr(evaluation, "cross_val_score", lambda *a, **k: pytest.fail("CV ran"))
    assert choose_C(X, y, g, grid=(7.0,)) == 7.0


def test_choose_C_prefers_what_generalises():
    """Many noise dims, few samples: strong regularisation wins the cross-validation."""
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 40)
    X = rng.normal(size=(80, 200))
    X[:, 0] += 1.5 * y
    assert choose_C(X, y, np.tile(np.arange(4), 20), grid=(1e-4, 100.0)) == 1e-4


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
    groups_seen = []
    real_choose = evaluation.choose_C
    monkeypatch.setattr(evaluation, "choose_C", lambda Xs, y, groups=None, grid=():
                        groups_seen.append(set(groups)) or real_choose(Xs, y, groups, grid))
    r = evaluate_dcase(X, ids, table, C_grid=(0.1, 1.0))
    assert groups_seen == [set(table.loc[table["split"] == "train", "filename"])]
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
    with pytest.raises(ValueError, match="recordings without sub-clips"):
        evaluate_dcase(X[6:], ids[6:], table)
    with pytest.raises(ValueError, match="do not match"):
        evaluate_dcase(X[1:], ids, table)


def test_logmel_stats():
    logmel = np.stack([np.tile([1.0, 2.0], (4, 1)), np.array([[0.0, 1], [2, 1], [0, 1], [2, 1]])])
    out = logmel_stats(logmel)  # (2, T=4, n_mels=2) -> (2, 4)
    np.testing.assert_allclose(out, [[1, 2, 0, 0], [1, 1, 1, 0]])
    assert logmel_stats(np.zeros((10, 64))).shape == (128,)


# ---------------------------------------------------------------- reporting

EXPECTED_KEYS = {
    f"esc50.{m}.{f}" for m in ("dmc", "random_init", "logmel_stats")
    for f in ("acc_mean", "acc_std", "fold1", "fold2", "fold3", "fold4", "fold5",
              "esc10_acc_mean", "esc10_acc_std")
} | {f"dcase.{m}.{f}" for m in ("dmc", "random_init", "logmel_stats") for f in ("acc", "scene_acc_mean")}


@pytest.fixture(scope="module")
def results():
    X, meta = toy_esc()
    Xr, _ = toy_esc(seed=2, random=True)
    Xd, ids, table = toy_dcase()
    return {"esc50": {"dmc": evaluate_esc50(X, meta, (1.0,)),
                      "logmel_stats": evaluate_esc50(Xr, meta, (1.0,))},
            "dcase": {"dmc": evaluate_dcase(Xd, ids, table, (1.0,))}}


def test_metric_keys_are_stable(results):
    assert len(reporting.metric_keys()) == 33 and set(reporting.metric_keys()) == EXPECTED_KEYS
    flat = reporting.flatten_metrics(results)
    assert list(flat) == reporting.metric_keys()
    assert reporting.flatten_metrics({}).keys() == flat.keys()
    assert flat["esc50.dmc.acc_mean"] == 1.0 and flat["esc50.dmc.fold3"] == 1.0
    assert flat["dcase.dmc.scene_acc_mean"] == 1.0 and flat["dcase.random_init.acc"] is None
    v = flat["esc50.logmel_stats.acc_mean"]
    assert isinstance(v, float) and 0 <= v <= 1 and v == round(v, 4)
    with pytest.raises(ValueError, match="unknown dataset"):
        reporting.flatten_metrics({"esc-50": {}})


def test_write_results_writes_everything(tmp_path, results):
    # results must survive a JSON round trip (steps may store them between stages)
    results = json.loads(json.dumps(results))
    written = reporting.write_results(results, tmp_path)
    expected = {"metrics.json", *(f"tables/{s}.{e}" for s in ("summary", "esc50_folds", "dcase_scenes")
                                  for e in ("csv", "md")),
                "plots/esc50_dmc_confusion.csv", "plots/esc50_logmel_stats_confusion.csv",
                "plots/dcase_dmc_confusion.csv", "figures/esc50_dmc_confusion.png",
                "figures/esc50_logmel_stats_confusion.png", "figures/dcase_dmc_confusion.png"}
    files = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    assert files == expected == {str(p.relative_to(tmp_path)) for p in written}
    assert json.loads((tmp_path / "metrics.json").read_text()) == reporting.flatten_metrics(results)
    summary = pd.read_csv(tmp_path / "tables/summary.csv")
    published = summary[summary["source"] == reporting.PUBLISHED_LABEL].set_index("method")
    assert published.loc["DMC", "esc50_acc_mean"] == 0.826
    assert published.loc["‡DMC", "dcase_scene_acc_mean"] == 0.96
    md = (tmp_path / "tables/summary.md").read_text()
    assert "published (paper), not reproduced" in md and "| 82.6 |" in md and "100.0 ± 0.0" in md
    conf = pd.read_csv(tmp_path / "plots/esc50_dmc_confusion.csv")
    assert list(conf.columns) == ["actual", "predicted"] and len(conf) == 80
    assert set(conf["actual"]) == {"class0", "class1", "class2", "class3"}
    assert len(pd.read_csv(tmp_path / "plots/dcase_dmc_confusion.csv")) == 6
    folds = pd.read_csv(tmp_path / "tables/esc50_folds.csv")
    assert len(folds) == 2 * (5 + 5)  # two methods x (ESC-50 + ESC-10 folds)
    assert len(pd.read_csv(tmp_path / "tables/dcase_scenes.csv")) == 3
    assert (tmp_path / "figures/dcase_dmc_confusion.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(tmp_path.rglob("*.tmp-*"))


def test_confusion_matrix_counts():
    names, actual, predicted = reporting.confusion_pairs(
        {"classes": [3, 7], "class_names": ["dog", "rain"], "y_true": [3, 3, 7], "y_pred": [3, 7, 7]})
    assert (actual, predicted) == (["dog", "dog", "rain"], ["dog", "rain", "rain"])
    np.testing.assert_array_equal(reporting.confusion_matrix(names, actual, predicted), [[1, 1], [0, 1]])
