"""Linear-SVM evaluation protocols for audio features (ESC-50 / ESC-10 and DCASE scenes).

Features come in as arrays; how they were computed is not this module's business. Every
classifier is ``StandardScaler -> LinearSVC`` fitted on training rows only, and its ``C`` is
chosen by cross-validation inside the training rows only (:func:`choose_C`), so a test row
never influences either the scaler, the weights or ``C``.

Results are plain Python (lists, floats, ints, str) so they can be written to JSON as they
are and read back by :mod:`dmc.reporting`. Accuracies are fractions in 0..1.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import (LeaveOneGroupOut, StratifiedGroupKFold, StratifiedKFold,
                                     cross_val_score)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

C_GRID = (0.01, 0.1, 1.0, 10.0)
N_JOBS = -1   # cross-validation folds of the C search run in parallel on all cores


def make_svm(C: float, max_iter: int = 1000, dual: bool | str = True) -> Pipeline:
    """Linear SVM (one-vs-rest, squared hinge) on standardised features.

    ``max_iter`` is scikit-learn's default (1000): on ESC-50-sized data the weakly
    regularised fits (C >= 1) otherwise run to 10,000 coordinate-descent passes without
    converging: the ESC-50-sized C search took 366 s with 10,000 and 180 s with 1000
    (benchmarks/evaluate.py, same accuracy 0.890 and the same C on every fold).

    ``dual=True`` by default rather than ``"auto"``: both solve the same problem, but for
    ESC-50-sized data (1600 x 512, 50 classes) ``"auto"`` picks the primal solver, which
    took 90 s per fit at C=1 against 11 s for the dual one (2 shared CPU cores).
    """
    return Pipeline([("scale", StandardScaler()),
                     ("svm", LinearSVC(C=C, dual=dual, max_iter=max_iter, random_state=0))])


def choose_C(X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None,
             grid: Sequence[float] = C_GRID, n_splits: int = 5) -> float:
    """Pick ``C`` from ``grid`` by cross-validated accuracy on the given (training) rows.

    With ``groups`` no group straddles a split: leave-one-group-out when there are at most
    ``n_splits`` groups (ESC-50: the training folds), else ``StratifiedGroupKFold``
    (DCASE: recordings). Without groups, a shuffled ``StratifiedKFold`` (seed 0). Ties go to
    the smallest ``C`` (strongest regularisation). A one-value grid is returned as is.
    """
    grid = [float(c) for c in grid]
    if len(grid) == 1:
        return grid[0]
    if not grid:
        raise ValueError("empty C grid")
    y = np.asarray(y)
    if groups is not None:
        n_groups = len(np.unique(groups))
        if n_groups < 2:
            raise ValueError("choosing C by grouped CV needs at least 2 groups in the training data")
        cv = LeaveOneGroupOut() if n_groups <= n_splits else StratifiedGroupKFold(n_splits)
    else:
        k = min(n_splits, int(np.unique(y, return_counts=True)[1].min()))
        if k < 2:
            raise ValueError("choosing C by CV needs at least 2 training rows per class")
        cv = StratifiedKFold(k, shuffle=True, random_state=0)
    scores = [cross_val_score(make_svm(c), X, y, groups=groups, cv=cv, n_jobs=N_JOBS,
                              error_score="raise").mean() for c in grid]
    order = sorted(range(len(grid)), key=lambda i: (-scores[i], grid[i]))
    return grid[order[0]]


def _per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray, classes: list) -> list:
    """Accuracy within each class (None for a class without test items)."""
    out = []
    for c in classes:
        mask = y_true == c
        out.append(float(np.mean(y_pred[mask] == c)) if mask.any() else None)
    return out


def _fold_protocol(X: np.ndarray, y: np.ndarray, folds: np.ndarray,
                   C_grid: Sequence[float]) -> dict:
    """Train on all folds but f (C chosen on them, grouped by fold), test on f, for each f."""
    fold_ids = sorted(int(f) for f in np.unique(folds))
    if len(fold_ids) < 2:
        raise ValueError(f"need at least 2 folds, found {fold_ids}")
    y_pred = np.empty_like(y)
    acc, n_test, chosen = [], [], []
    for f in fold_ids:
        test, train = folds == f, folds != f
        C = choose_C(X[train], y[train], groups=folds[train], grid=C_grid)
        model = make_svm(C).fit(X[train], y[train])
        y_pred[test] = model.predict(X[test])
        acc.append(float(np.mean(y_pred[test] == y[test])))
        n_test.append(int(test.sum()))
        chosen.append(C)
    classes = sorted(np.unique(y).tolist())
    return {"folds": fold_ids, "fold_acc": acc, "fold_n_test": n_test, "fold_C": chosen,
            "acc_mean": float(np.mean(acc)), "acc_std": float(np.std(acc)),
            "classes": classes, "class_acc": _per_class_accuracy(y, y_pred, classes),
            "y_true": y.tolist(), "y_pred": y_pred.tolist(), "fold": folds.tolist()}


def evaluate_esc50(features: np.ndarray, meta: pd.DataFrame,
                   C_grid: Sequence[float] = C_GRID) -> dict:
    """ESC-50 protocol on the predefined folds of ``meta`` (never re-split).

    ``features[i]`` belongs to ``meta.iloc[i]`` (as from :func:`dmc.datasets.read_esc50`).
    For each fold f: C chosen by leave-one-fold-out CV on the other folds (ESC-50 keeps all
    clips of one source recording in one fold, so grouping by fold keeps them together),
    fit on the other folds, test on f. Returns per-fold accuracy / size / C, ``acc_mean``,
    ``acc_std`` (population std over folds, ddof=0), per-clip ``y_true``/``y_pred``/``fold``
    (each prediction made by the model that did not see the clip), ``classes`` (targets),
    ``class_names`` and ``esc10``: the same for the rows with ``esc10`` True, or None.
    """
    X = np.asarray(features, dtype=np.float64)
    if X.ndim != 2 or len(X) != len(meta):
        raise ValueError(f"features {X.shape} do not match {len(meta)} metadata rows")
    y = meta["target"].to_numpy(dtype=np.int64)
    folds = meta["fold"].to_numpy(dtype=np.int64)
    names = dict(zip(meta["target"].astype(int),
                     meta.get("category", meta["target"]).astype(str)))
    result = _fold_protocol(X, y, folds, C_grid)
    result["class_names"] = [names[c] for c in result["classes"]]
    result["esc10"] = None
    if "esc10" in meta.columns:
        if meta["esc10"].dtype != bool:  # "False" would count as True
            raise ValueError(f"esc10 column must be boolean, got {meta['esc10'].dtype}")
        sub = meta["esc10"].to_numpy()
    if "esc10" in meta.columns and sub.any():
        result["esc10"] = _fold_protocol(X[sub], y[sub], folds[sub], C_grid)
        result["esc10"]["class_names"] = [names[c] for c in result["esc10"]["classes"]]
    return result


def subclip_starts(duration_s: float, n: int = 60, length_s: float = 5.0) -> np.ndarray:
    """Start times (s) of the DCASE sub-clips of one recording.

    SoundNet / L3 protocol, as the DMC supplement states: "60 subclips of 5s long are
    excerpted for each sample". The ``n`` starts are evenly spaced from 0 to
    ``duration_s - length_s`` inclusive, so the sub-clips overlap and cover the whole
    recording: for 30 s, ``linspace(0, 25, 60)``, a step of 25/59 s. A recording no longer
    than ``length_s`` gives a single sub-clip at 0 (the caller pads it).
    """
    if n < 1 or length_s <= 0 or not np.isfinite(duration_s) or duration_s < 0:
        raise ValueError(f"bad sub-clip request: duration {duration_s}, n {n}, length {length_s}")
    if duration_s <= length_s or n == 1:
        return np.zeros(1)
    return np.linspace(0.0, duration_s - length_s, n)


def aggregate_decisions(decision: np.ndarray, recording_ids: np.ndarray,
                        classes: Sequence) -> tuple[list, list]:
    """Label each recording by the argmax of its sub-clips' averaged decision values.

    ``decision`` is ``(M, n_classes)`` (or ``(M,)`` for a binary SVM, the score of
    ``classes[1]``). Returns (recording ids in order of first appearance, labels).
    """
    decision = np.asarray(decision, dtype=np.float64)
    if decision.ndim == 1:
        decision = np.stack([-decision, decision], axis=1)
    ids = pd.unique(pd.Series(np.asarray(recording_ids, dtype=object)))
    mean = pd.DataFrame(decision).groupby(np.asarray(recording_ids, dtype=object), sort=False).mean()
    mean = mean.loc[ids].to_numpy()
    return list(ids), [classes[i] for i in mean.argmax(axis=1)]


def evaluate_dcase(features: np.ndarray, recording_ids: Sequence, table: pd.DataFrame,
                   C_grid: Sequence[float] = C_GRID, id_col: str = "filename",
                   label_col: str = "label", split_col: str = "split") -> dict:
    """DCASE scene protocol: sub-clip SVM, recording label by averaged decision values.

    ``features[i]`` is sub-clip i of recording ``recording_ids[i]``; ``table`` has one row per
    recording (id, label, split as from :func:`dmc.datasets.read_dcase`). The SVM is trained
    on every sub-clip of the training recordings (C chosen by CV on them, grouped by
    recording); each test recording gets the argmax of its sub-clips' mean decision values.
    Returns ``acc`` (over test recordings), ``scene_acc`` per class, ``scene_acc_mean``
    (mean accuracy of the scenes, the paper's "mAP"), ``C``, and per-recording
    ``recordings``/``y_true``/``y_pred``.
    """
    X = np.asarray(features, dtype=np.float64)
    rec = np.asarray(recording_ids, dtype=object).astype(str)
    if X.ndim != 2 or len(X) != len(rec):
        raise ValueError(f"features {X.shape} do not match {len(rec)} recording ids")
    tab = table.assign(**{id_col: table[id_col].astype(str)}).set_index(id_col)
    if tab.index.duplicated().any():
        raise ValueError(f"recording ids repeated in the table: {list(tab.index[tab.index.duplicated()])}")
    unknown = sorted(set(rec) - set(tab.index))
    absent = sorted(set(tab.index) - set(rec))
    if unknown or absent:
        raise ValueError(f"sub-clips of unknown recordings {unknown[:5]}; recordings without "
                         f"sub-clips {absent[:5]}")
    labels = tab.loc[rec, label_col].astype(str).to_numpy()
    split = tab.loc[rec, split_col].astype(str).to_numpy()
    train, test = split == "train", split == "test"
    if not train.any() or not test.any():
        raise ValueError("need both training and test recordings")
    C = choose_C(X[train], labels[train], groups=rec[train], grid=C_grid)
    model = make_svm(C).fit(X[train], labels[train])
    classes = [str(c) for c in model.classes_]
    ids, y_pred = aggregate_decisions(model.decision_function(X[test]), rec[test], classes)
    y_true = tab.loc[ids, label_col].astype(str).to_numpy()
    y_pred_a = np.asarray(y_pred, dtype=object)
    scene_acc = _per_class_accuracy(y_true, y_pred_a, classes)
    present = [a for a in scene_acc if a is not None]
    return {"C": C, "acc": float(np.mean(y_true == y_pred_a)),
            "scene_acc_mean": float(np.mean(present)), "classes": classes,
            "scene_acc": scene_acc, "scene_n_test": [int(np.sum(y_true == c)) for c in classes],
            "n_train_recordings": int(len(set(rec[train]))), "n_subclips_train": int(train.sum()),
            "recordings": [str(i) for i in ids], "y_true": y_true.tolist(), "y_pred": list(y_pred)}


def logmel_stats(logmel: np.ndarray) -> np.ndarray:
    """Baseline features: per-band mean and std over time, ``(..., T, n_mels) -> (..., 2*n_mels)``."""
    logmel = np.asarray(logmel, dtype=np.float64)
    if logmel.ndim < 2 or logmel.shape[-2] == 0:
        raise ValueError(f"expected (..., T, n_mels) with T >= 1, got {logmel.shape}")
    return np.concatenate([logmel.mean(axis=-2), logmel.std(axis=-2)], axis=-1).astype(np.float32)
