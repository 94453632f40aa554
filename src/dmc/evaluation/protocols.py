"""Linear-SVM evaluation protocols for audio features (ESC-50 / ESC-10 and DCASE scenes).

Features come in as arrays; how they were computed is not this module's business. Every
classifier is a one-vs-rest linear SVM (squared hinge, L2: scikit-learn's ``LinearSVC``) on
features standardised with the training rows only, solved to a stated tolerance by
:mod:`dmc.evaluation.svm`; its ``C`` is chosen by cross-validation inside the training rows only, so a
test row never influences the scaler, the weights or ``C``.

All the fits of one protocol are batched (:func:`dmc.evaluation.svm.fit_ovr`): for ESC-50 the training sets
of the C search are every "all folds but f and g" (the inner cross-validation of outer folds f
and g share it), each for every C of the grid and every class; the final fits ("all folds but
f") are batched per chosen C, each warm-started from the mean of its inner fits at that C.
C for outer fold f is the one with the best mean accuracy on the folds g != f, each predicted
by the set that leaves out f and g; ties go to the smallest C. When fold f's best C is at an
end of its grid and strictly better than its neighbour, fold f's grid is extended by
one step of its own log spacing at that end (within ``C_BOUNDS``, each new value warm-started
from the fit at that end) until the choice is inside the grid or at a bound; ``fold_C_edge`` in
the results records which folds chose an edge of the configured grid. Each fold's search and
final fit depend only on the data outside that fold.

Data that cannot satisfy the protocol (see :func:`esc50_fold_plan`): fewer than two folds, or no
fold whose training folds hold every class of its test fold, stops with an
:class:`~dmc.errors.EvaluationError` naming the data set, fold and class; a fold whose test
classes are not all in its training folds is skipped and reported as not evaluated; an inner
split whose training part has fewer than two classes is left out of the C search.

Partial data (a fold not evaluated, or folds with few clips): the headline is the **pooled**
accuracy, correct / scored over the clips of every evaluated fold (``acc_pooled``, with
``n_scored`` of ``n_listed`` clips and ``folds_scored``), and a fold with fewer test clips than
``min_fold_clips_per_class`` x the number of classes (``min_fold_clips``) is not scored on its own:
its clips count in the pooled accuracy, but it has no fold accuracy in ``acc_mean`` / ``acc_std``
(the per-fold spread) and is listed in ``folds_below_minimum``. ``partial`` is true when a listed
clip was not scored or a fold was below the minimum. Fewer scored clips than the minimum stops
with an :class:`~dmc.errors.EvaluationError` (nothing meaningful is left); for the ESC-10 subset
of an ESC-50 set, the subset alone is left out (``esc10`` None, ``esc10_not_evaluated`` says why).
With complete data and equal folds, ``acc_pooled`` equals ``acc_mean``.

Results are plain Python (lists, floats, ints, str) so they can be written to JSON as they
are and read back by :mod:`dmc.evaluation.reporting`. Accuracies are fractions in 0..1.

The ``evaluate`` step computes apart from writing: :func:`esc50_protocol` and :func:`dcase_protocol`
run a protocol for every feature method of one data set and return an :class:`Esc50Result` /
:class:`DcaseResult` (nothing is written); :func:`dmc.evaluation.reporting.write_evaluation` writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import LeaveOneGroupOut, StratifiedGroupKFold

from dmc.config import Evaluate
from dmc.errors import EvaluationError
from dmc.evaluation.svm import fit_ovr

C_GRID = (0.0001, 0.001, 0.01, 0.1, 1.0, 10.0)
C_BOUNDS = (1e-6, 1e3)   # the grid is never extended beyond these
SVM_TOL = 1e-4           # ||grad|| <= SVM_TOL * ||grad at 0|| for every SVM (dmc.evaluation.svm)
MIN_FOLD_CLIPS_PER_CLASS = 1.0   # a fold needs this many test clips per class to be scored on its own


def _pick(scores: np.ndarray, grid: list[float]) -> tuple[int, str | None]:
    """Index of the best C (ties: the smallest) and the edge it sits at, if it is strictly
    better than its neighbour there (a plateau reaching inside the grid is not an edge)."""
    best = int(np.flatnonzero(scores == scores.max())[0])
    if len(grid) > 1 and best == 0 and scores[0] > scores[1]:
        return best, "low"
    if len(grid) > 1 and best == len(grid) - 1:
        return best, "high"
    return best, None


def _extend(grid: list[float], edge: str) -> list[float] | None:
    """The grid with one more value beyond ``edge`` (same log step), or None at a bound."""
    if len(grid) < 2:
        return None
    if edge == "low":
        new = grid[0] * grid[0] / grid[1]
        return [new, *grid] if new >= C_BOUNDS[0] * (1 - 1e-9) else None
    new = grid[-1] * grid[-1] / grid[-2]
    return [*grid, new] if new <= C_BOUNDS[1] * (1 + 1e-9) else None


class _PathCache:
    """Fits of the same training sets at C values added over time: the configured grid is fitted
    along its path once; a value added beyond an end is warm-started from the fit at that end. So
    the fit at a given C depends on the sets and C only, never on which fold asked for it."""

    def __init__(self, fit):
        self.fit = fit               # fit(Cs, start) -> FitResult with W (S, nC, K, D1)
        self.W: dict[float, object] = {}
        self.result = None

    def ensure(self, grid: list[float]) -> None:
        new = [c for c in grid if c not in self.W]
        if not new:
            return
        if not self.W:
            r = self.fit(new, None)
            self.result = r
            for i, c in enumerate(new):
                self.W[c] = r.W[:, i]
            return
        lo, hi = min(self.W), max(self.W)
        for side, values in (("high", sorted(c for c in new if c > hi)),
                             ("low", sorted((c for c in new if c < lo), reverse=True))):
            for c in values:
                edge = max(self.W) if side == "high" else min(self.W)
                r = self.fit([c], self.W[edge])
                self.W[c] = r.W[:, 0]
        if any(lo < c < hi for c in new):
            raise ValueError("the C grid only grows at its ends")

    def decision(self, X: np.ndarray, s: int, C: float) -> np.ndarray:
        """Decision values of set ``s``'s classifiers at ``C`` on rows ``X``."""
        return replace(self.result, W=self.W[C][:, None]).decision(X, s, 0)


def _search(fit_inner, score_fn, grid: list[float], n_outer: int):
    """C search of each outer unit (ESC fold, DCASE split) on its own grid: score the grid's
    values on the unit's inner sets, extend the unit's grid while its best C sits at an edge.
    Returns per unit: (grid searched, chosen C, edge on the configured grid, edge at the end), and
    the fits of the inner sets (a :class:`_PathCache`, None without a search)."""
    cache = _PathCache(fit_inner) if len(grid) > 1 else None
    out = []
    for u in range(n_outer):
        g, first = list(grid), None
        while True:
            if cache is not None:
                cache.ensure(g)
            i, edge = _pick(score_fn(cache, u, g), g)
            first = (edge is not None) if first is None else first
            grown = _extend(g, edge) if edge else None
            if grown is None:
                out.append((g, g[i], first, edge is not None))
                break
            g = grown
    return out, cache


def _inner_start(cache: _PathCache | None, C: float, sets: list[list[int]]):
    """Warm start of final fits at ``C``: for each final fit, the mean of its inner sets' fits at
    ``C`` ``(len(sets), K, D + 1)``; None without a search. The minimiser does not depend on the
    start (the objective is strictly convex and solved to the tolerance); a start near it saves
    most of the Newton steps of a path from 0."""
    if cache is None:
        return None
    return torch.stack([cache.W[C][idx].mean(0) for idx in sets])


def _accuracy(decision: np.ndarray, y_idx: np.ndarray) -> float:
    return float(np.mean(decision.argmax(1) == y_idx)) if len(y_idx) else float("nan")


def esc50_fold_plan(y: np.ndarray, folds: np.ndarray, names: dict | None = None,
                    dataset: str = "esc50") -> dict:
    """Which outer folds can be evaluated and which inner splits can choose their C.

    Returns ``{"folds": [...], "evaluated": {f: True | reason}, "inner": {f: [g, ...]}}``.
    Raises :class:`EvaluationError` when fewer than two folds exist or no fold is evaluable.
    """
    names = names or {}
    fold_ids = sorted(int(f) for f in np.unique(folds))
    if len(fold_ids) < 2:
        raise EvaluationError(f"{dataset}: only fold(s) {fold_ids} present; the fold protocol "
                              f"needs at least 2 folds")
    evaluated, inner = {}, {}
    for f in fold_ids:
        train_classes = set(np.unique(y[folds != f]).tolist())
        missing = sorted(set(np.unique(y[folds == f]).tolist()) - train_classes)
        if missing:
            c = missing[0]
            evaluated[f] = (f"class {names.get(c, c)!r} (target {c}) of test fold {f} has no "
                            f"training clip in the other folds" +
                            (f" (and {len(missing) - 1} more classes)" if len(missing) > 1 else ""))
            continue
        evaluated[f] = True
        inner[f] = [g for g in fold_ids if g != f
                    and len(np.unique(y[(folds != f) & (folds != g)])) >= 2]
    if not any(v is True for v in evaluated.values()):
        f0 = fold_ids[0]
        raise EvaluationError(f"{dataset}: no fold can be evaluated: fold {f0}: {evaluated[f0]}")
    return {"folds": fold_ids, "evaluated": evaluated, "inner": inner}


def _fold_protocol(X: np.ndarray, y: np.ndarray, folds: np.ndarray, C_grid: Sequence[float],
                   names: dict | None = None, dataset: str = "esc50", tol: float = SVM_TOL,
                   min_per_class: float = MIN_FOLD_CLIPS_PER_CLASS) -> dict:
    """Train on all folds but f (C chosen on them, leave-one-fold-out), test on f, for each f."""
    plan = esc50_fold_plan(y, folds, names, dataset)
    fold_ids = plan["folds"]
    outer = [f for f in fold_ids if plan["evaluated"][f] is True]
    grid = sorted(float(c) for c in C_grid)
    if not grid:
        raise EvaluationError(f"{dataset}: empty C grid")
    for f in outer:
        if len(grid) > 1 and not plan["inner"][f]:
            raise EvaluationError(f"{dataset}: fold {f}: C cannot be chosen by cross-validation: "
                                  f"no inner split of the other folds has two classes to train on "
                                  f"(use a one-value evaluate.C_grid)")
    classes = sorted(np.unique(y).tolist())
    min_clips = int(np.ceil(min_per_class * len(classes)))
    n_scored = int(np.isin(folds, outer).sum())
    if n_scored < max(1, min_clips):
        why = "; ".join(f"fold {f}: {r}" for f, r in plan["evaluated"].items() if r is not True)
        raise EvaluationError(f"{dataset}: only {n_scored} of {len(y)} clips can be scored (fold(s) "
                              f"{', '.join(map(str, outer))}), fewer than the minimum {min_clips} "
                              f"(evaluate.min_fold_clips_per_class {min_per_class:g} x {len(classes)} classes)"
                              + (f"; {why}" if why else ""))
    y_idx = np.searchsorted(classes, y)
    pairs = sorted({tuple(sorted((f, g))) for f in outer for g in plan["inner"][f]})
    set_of_pair = {pr: i for i, pr in enumerate(pairs)}

    def fit_inner(Cs, start):   # "all folds but f and g" serves the C search of both f and g
        return fit_ovr(X, y_idx, np.stack([~np.isin(folds, pr) for pr in pairs]), Cs, len(classes),
                       tol=tol, start=start)

    def score(cache, u, Cs):
        f = outer[u]
        if len(Cs) == 1:
            return np.zeros(1)
        acc = np.zeros(len(Cs))
        for g in plan["inner"][f]:
            rows = folds == g
            s = set_of_pair[tuple(sorted((f, g)))]
            acc += [_accuracy(cache.decision(X[rows], s, C), y_idx[rows]) for C in Cs]
        return acc / len(plan["inner"][f])

    searched, cache = _search(fit_inner, score, grid, len(outer))
    # final fits ("all folds but f" for every f): one batch per chosen C, each fold warm-started
    # from its own inner fits at that C
    y_pred = np.full(len(y), None, dtype=object)
    acc, n_test, fold_C = [], [], []
    decisions = {}
    for C in sorted({C for _, C, _, _ in searched}):
        units = [u for u, (_, c, _, _) in enumerate(searched) if c == C]
        inner_sets = [[set_of_pair[tuple(sorted((outer[u], g)))] for g in plan["inner"][outer[u]]] for u in units]
        final = fit_ovr(X, y_idx, np.stack([folds != outer[u] for u in units]), [C], len(classes), tol=tol,
                        start=_inner_start(cache, C, inner_sets))
        for j, u in enumerate(units):
            decisions[u] = final.decision(X[folds == outer[u]], j, 0)
    for u, ((g, C, _, _), f) in enumerate(zip(searched, outer)):
        rows = folds == f
        pred = np.asarray(classes, dtype=object)[decisions[u].argmax(1)]
        y_pred[rows] = pred
        acc.append(float(np.mean(pred == y[rows])))
        n_test.append(int(rows.sum()))
        fold_C.append(C)
    edge_cfg = [e for _, _, e, _ in searched]
    skipped = {f: r for f, r in plan["evaluated"].items() if r is not True}
    evaluated = ~np.isin(folds, list(skipped))
    own = [a for a, n in zip(acc, n_test) if n >= min_clips]      # folds scored on their own
    below = [f for f, n in zip(outer, n_test) if n < min_clips]
    correct = int(np.sum(y_pred[evaluated] == y[evaluated]))
    return {"folds": outer, "fold_acc": acc, "fold_n_test": n_test, "fold_C": fold_C,
            "fold_C_edge": edge_cfg, "C_grid": grid, "fold_C_grid": [g for g, _, _, _ in searched],
            "C_edge_share": float(np.mean(edge_cfg)), "C_edge_after_extension": [e for *_, e in searched],
            "folds_not_evaluated": {str(f): r for f, r in skipped.items()},
            "acc_mean": float(np.mean(own)) if own else None, "acc_std": float(np.std(own)) if own else None,
            "acc_pooled": correct / n_scored, "n_scored": n_scored, "n_listed": int(len(y)),
            "folds_scored": list(outer), "folds_below_minimum": below, "min_fold_clips": min_clips,
            "partial": bool(n_scored < len(y) or below),
            "classes": classes, "class_acc": _per_class_accuracy(y[evaluated], y_pred[evaluated], classes),
            "y_true": y[evaluated].tolist(), "y_pred": y_pred[evaluated].tolist(),
            "fold": folds[evaluated].tolist(), "svm_tol": tol}


def group_accuracy(result: dict, group_of: dict) -> dict:
    """Accuracy of a fold protocol's predictions once each class is replaced by its group.

    A prediction counts as right when it names any class of the true class's group (on the
    synthetic set: the right sound family, whatever the variant). ``group_acc_mean``/``_std``
    are over the evaluated folds, as ``acc_mean``/``acc_std``.
    """
    true = np.array([group_of[int(c)] for c in result["y_true"]], dtype=object)
    pred = np.array([group_of[int(c)] for c in result["y_pred"]], dtype=object)
    fold = np.asarray(result["fold"])
    below = set(result.get("folds_below_minimum", ()))
    acc = [float(np.mean(true[fold == f] == pred[fold == f])) for f in result["folds"] if f not in below]
    return {"group_acc_mean": float(np.mean(acc)) if acc else None, "group_acc_std": float(np.std(acc)) if acc else None,
            "group_acc_pooled": float(np.mean(true == pred)) if len(true) else None}


def _per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray, classes: list) -> list:
    """Accuracy within each class (None for a class without test items)."""
    out = []
    for c in classes:
        mask = y_true == c
        out.append(float(np.mean(y_pred[mask] == c)) if mask.any() else None)
    return out


def evaluate_esc50(features: np.ndarray, meta: pd.DataFrame,
                   C_grid: Sequence[float] = C_GRID, dataset: str = "esc50", tol: float = SVM_TOL,
                   min_fold_clips_per_class: float = MIN_FOLD_CLIPS_PER_CLASS) -> dict:
    """ESC-50 protocol on the predefined folds of ``meta`` (never re-split).

    ``features[i]`` belongs to ``meta.iloc[i]`` (as from :func:`dmc.io.evalsets.read_esc50`).
    For each fold f: C chosen by leave-one-fold-out CV on the other folds (ESC-50 keeps all
    clips of one source recording in one fold, so grouping by fold keeps them together),
    fit on the other folds, test on f. Returns per-fold accuracy / size / C (and whether C sat
    at an edge of the configured grid), ``acc_mean``, ``acc_std`` (population std over the
    evaluated folds, ddof=0), per-clip ``y_true``/``y_pred``/``fold`` (each prediction made by
    the model that did not see the clip), ``classes`` (targets), ``class_names``,
    ``folds_not_evaluated`` ({fold: reason}) and ``esc10``: the same for the rows with
    ``esc10`` True, or None. With a ``group`` column (``meta/groups.csv``), also
    ``group_acc_mean``/``group_acc_std`` (:func:`group_accuracy`). Partial data: the pooled keys and
    the minimum per fold of the module docstring (``min_fold_clips_per_class``).
    """
    X = np.asarray(features, dtype=np.float64)
    if X.ndim != 2 or len(X) != len(meta):
        raise EvaluationError(f"{dataset}: features {X.shape} do not match {len(meta)} metadata rows")
    if not np.isfinite(X).all():
        raise EvaluationError(f"{dataset}: features contain NaN or infinite values")
    y = meta["target"].to_numpy(dtype=np.int64)
    folds = meta["fold"].to_numpy(dtype=np.int64)
    names = dict(zip(meta["target"].astype(int),
                     meta.get("category", meta["target"]).astype(str)))
    result = _fold_protocol(X, y, folds, C_grid, names, dataset, tol, min_fold_clips_per_class)
    result["class_names"] = [names[c] for c in result["classes"]]
    if "group" in meta.columns:
        result.update(group_accuracy(result, dict(zip(meta["target"].astype(int), meta["group"].astype(str)))))
    result["esc10"] = None
    if "esc10" in meta.columns:
        if meta["esc10"].dtype != bool:  # "False" would count as True
            raise EvaluationError(f"{dataset}: esc10 column must be boolean, got {meta['esc10'].dtype}")
        sub = meta["esc10"].to_numpy()
        if sub.any():
            try:
                result["esc10"] = _fold_protocol(X[sub], y[sub], folds[sub], C_grid, names,
                                                 f"{dataset} (ESC-10 subset)", tol, min_fold_clips_per_class)
            except EvaluationError as exc:    # the subset alone has too little: left out, with why
                result["esc10_not_evaluated"] = str(exc)
            else:
                result["esc10"]["class_names"] = [names[c] for c in result["esc10"]["classes"]]
    return result


def subclip_starts(duration_s: float, n: int = 60, length_s: float = 5.0, step_s: float | None = None) -> np.ndarray:
    """Start times (s) of the DCASE sub-clips of one recording.

    SoundNet / L3 protocol, as the DMC supplement states: "60 subclips of 5s long are
    excerpted for each sample". The ``n`` starts are evenly spaced from 0 to
    ``duration_s - length_s`` inclusive, so the sub-clips overlap and cover the whole
    recording: for 30 s, ``linspace(0, 25, 60)``, a step of 25/59 s. A recording no longer
    than ``length_s`` gives a single sub-clip at 0 (the caller pads it).

    ``step_s`` (the feature pipeline passes the log-mel hop, 0.05 s) rounds each start to a
    multiple of it, never past ``duration_s - length_s`` (a choice the paper leaves open): the
    sub-clips' spectrogram frames then fall on the recording's own frame grid, and
    :func:`dmc.evaluation.features.subclip_logmel` computes them from one STFT of the recording.
    """
    if n < 1 or length_s <= 0 or not np.isfinite(duration_s) or duration_s < 0:
        raise ValueError(f"bad sub-clip request: duration {duration_s}, n {n}, length {length_s}")
    if step_s is not None and not step_s > 0:
        raise ValueError(f"bad sub-clip step {step_s}")
    if duration_s <= length_s or n == 1:
        return np.zeros(1)
    starts = np.linspace(0.0, duration_s - length_s, n)
    if step_s is None:
        return starts
    last = np.floor((duration_s - length_s) / step_s + 1e-9)
    return np.minimum(np.round(starts / step_s), last) * step_s


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
                   label_col: str = "label", split_col: str = "split", tol: float = SVM_TOL,
                   dataset: str = "dcase") -> dict:
    """DCASE scene protocol: sub-clip SVM, recording label by averaged decision values.

    ``features[i]`` is sub-clip i of recording ``recording_ids[i]``; ``table`` has one row per
    recording (id, label, split as from :func:`dmc.io.evalsets.read_dcase`). The SVM is trained
    on every sub-clip of the training recordings (C chosen by CV on them, grouped by
    recording: leave-one-recording-out with at most 5 recordings, else stratified 5-fold by
    recording); each test recording gets the argmax of its sub-clips' mean decision values.
    A scene of the test recordings without training recordings, or fewer than two training
    scenes, stops with :class:`EvaluationError`. Returns ``acc`` (over test recordings),
    ``scene_acc`` per class, ``scene_acc_mean`` (mean accuracy of the scenes, the paper's
    "mAP"), ``C`` (and ``C_edge``), and per-recording ``recordings``/``y_true``/``y_pred``.
    """
    X = np.asarray(features, dtype=np.float64)
    rec = np.asarray(recording_ids, dtype=object).astype(str)
    if X.ndim != 2 or len(X) != len(rec):
        raise EvaluationError(f"{dataset}: features {X.shape} do not match {len(rec)} recording ids")
    if not np.isfinite(X).all():
        raise EvaluationError(f"{dataset}: features contain NaN or infinite values")
    tab = table.assign(**{id_col: table[id_col].astype(str)}).set_index(id_col)
    if tab.index.duplicated().any():
        raise EvaluationError(f"{dataset}: recording ids repeated in the table: "
                              f"{list(tab.index[tab.index.duplicated()])}")
    unknown = sorted(set(rec) - set(tab.index))
    absent = sorted(set(tab.index) - set(rec))
    if unknown or absent:
        raise EvaluationError(f"{dataset}: sub-clips of unknown recordings {unknown[:5]}; recordings "
                              f"without sub-clips {absent[:5]}")
    labels = tab.loc[rec, label_col].astype(str).to_numpy()
    split = tab.loc[rec, split_col].astype(str).to_numpy()
    train, test = split == "train", split == "test"
    if not train.any() or not test.any():
        raise EvaluationError(f"{dataset}: need both training and test recordings")
    classes = sorted(set(labels[train]))
    if len(classes) < 2:
        raise EvaluationError(f"{dataset}: the training recordings have only scene(s) {classes}; "
                              f"need at least 2")
    orphan = sorted(set(labels[test]) - set(classes))
    if orphan:
        first = sorted(set(rec[test & (labels == orphan[0])]))[0]
        raise EvaluationError(f"{dataset}: scene {orphan[0]!r} (test recording {first}) has no "
                              f"training recording")
    Xtr, ytr, gtr = X[train], np.searchsorted(classes, labels[train]), rec[train]
    grid = sorted(float(c) for c in C_grid)
    inner = []
    if len(grid) > 1:
        n_groups = len(np.unique(gtr))
        if n_groups < 2:
            raise EvaluationError(f"{dataset}: C cannot be chosen by cross-validation with "
                                  f"{n_groups} training recording (use a one-value evaluate.C_grid)")
        cv = LeaveOneGroupOut() if n_groups <= 5 else StratifiedGroupKFold(5)
        inner = [(tr, va) for tr, va in cv.split(Xtr, ytr, gtr) if len(np.unique(ytr[tr])) >= 2]
        if not inner:
            raise EvaluationError(f"{dataset}: no cross-validation split of the training recordings "
                                  f"has two scenes to train on")
    def fit_inner(Cs, start):
        masks = np.stack([np.isin(np.arange(len(Xtr)), tr) for tr, _ in inner])
        return fit_ovr(Xtr, ytr, masks, Cs, len(classes), tol=tol, start=start)

    def score(cache, u, Cs):
        if len(Cs) == 1:
            return np.zeros(1)
        return np.mean([[_accuracy(cache.decision(Xtr[va], i, C), ytr[va]) for C in Cs]
                        for i, (_, va) in enumerate(inner)], axis=0)

    [(searched, C, edge_cfg, _)], cache = _search(fit_inner, score, grid, 1)
    final = fit_ovr(Xtr, ytr, np.ones((1, len(Xtr)), bool), [C], len(classes), tol=tol,
                    start=_inner_start(cache, C, [list(range(len(inner)))]))
    decision = final.decision(X[test], 0, 0)
    ids, y_pred = aggregate_decisions(decision, rec[test], classes)
    y_true = tab.loc[ids, label_col].astype(str).to_numpy()
    y_pred_a = np.asarray(y_pred, dtype=object)
    scene_acc = _per_class_accuracy(y_true, y_pred_a, classes)
    present = [a for a in scene_acc if a is not None]
    return {"C": C, "C_edge": bool(edge_cfg), "C_grid": grid, "C_grid_searched": searched, "acc": float(np.mean(y_true == y_pred_a)),
            "scene_acc_mean": float(np.mean(present)), "classes": classes,
            "scene_acc": scene_acc, "scene_n_test": [int(np.sum(y_true == c)) for c in classes],
            "n_train_recordings": int(len(set(rec[train]))), "n_subclips_train": int(train.sum()),
            "recordings": [str(i) for i in ids], "y_true": y_true.tolist(), "y_pred": list(y_pred),
            "svm_tol": tol}


@dataclass(frozen=True)
class Esc50Result:
    """The fold protocol of one ESC-like set (``esc50``, or ``esc10``: the ESC-10 release) for each
    feature method: ``methods[method]`` is :func:`evaluate_esc50`'s result."""
    dataset: str
    methods: dict

    def accuracy(self, method: str) -> float:
        return self.methods[method]["acc_pooled"]


@dataclass(frozen=True)
class DcaseResult:
    """The DCASE scene protocol for each feature method: ``methods[method]`` is :func:`evaluate_dcase`'s
    result."""
    dataset: str
    methods: dict

    def accuracy(self, method: str) -> float:
        return self.methods[method]["scene_acc_mean"]


def esc50_protocol(features: Mapping[str, np.ndarray], clips: pd.DataFrame, cfg: Evaluate,
                   dataset: str = "esc50") -> Esc50Result:
    """:func:`evaluate_esc50` of each method's features (``{method: (clips, D)}``) on the clips of
    ``dmc evalset`` (``clips.csv``), with ``cfg``'s C grid and fold minimum; writes nothing."""
    return Esc50Result(dataset, {
        method: evaluate_esc50(X, clips, cfg.C_grid, dataset=dataset,
                               min_fold_clips_per_class=cfg.min_fold_clips_per_class)
        for method, X in features.items()})


def dcase_protocol(features: Mapping[str, np.ndarray], clips: pd.DataFrame, cfg: Evaluate,
                   dataset: str = "dcase") -> DcaseResult:
    """:func:`evaluate_dcase` of each method's sub-clip features on the sub-clips of ``dmc evalset``
    (``clips.csv``: recording, label, split per sub-clip), with ``cfg``'s C grid; writes nothing."""
    table = clips.drop_duplicates("recording")[["recording", "label", "split"]]
    return DcaseResult(dataset, {method: evaluate_dcase(X, clips.recording, table, cfg.C_grid, id_col="recording")
                                 for method, X in features.items()})


def logmel_stats(logmel: np.ndarray) -> np.ndarray:
    """Baseline features: per-band mean and std over time, ``(..., T, n_mels) -> (..., 2*n_mels)``."""
    logmel = np.asarray(logmel, dtype=np.float64)
    if logmel.ndim < 2 or logmel.shape[-2] == 0:
        raise ValueError(f"expected (..., T, n_mels) with T >= 1, got {logmel.shape}")
    return np.concatenate([logmel.mean(axis=-2), logmel.std(axis=-2)], axis=-1).astype(np.float32)
