"""dmc.evaluation.svm: the batched Newton-CG solver gives scikit-learn's LinearSVC, converged."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

import torch

from dmc.evaluation import svm
from dmc.evaluation.svm import fit_ovr, objective, scaler


def toy(n=240, d=12, k=4, seed=0, sep=1.5):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    X = rng.normal(size=(n, d)) + sep * np.eye(k, d)[y] + 3.0   # offset: the scaler matters
    X[:, -1] *= 50.0                                            # and so does the scale
    return X, y


def reference(X, y, C):
    """LinearSVC (liblinear dual CD, bias as a regularised feature) run to a very tight tolerance."""
    Xs = StandardScaler().fit_transform(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ref = LinearSVC(C=C, dual=True, tol=1e-10, max_iter=1_000_000).fit(Xs, y)
    return Xs, ref


@pytest.mark.parametrize("C", [0.001, 0.1, 10.0])
def test_matches_converged_liblinear(C):
    X, y = toy()
    fit = fit_ovr(X, y, np.ones((1, len(X)), bool), [C], 4, tol=1e-8)
    Xs, ref = reference(X, y, C)
    W = fit.W[0, 0].numpy()
    W_ref = np.hstack([ref.coef_, ref.intercept_[:, None]])
    for k in range(4):
        y_pm = np.where(y == k, 1.0, -1.0)
        ours, theirs = objective(Xs, y_pm, W[k], C), objective(Xs, y_pm, W_ref[k], C)
        # the same convex objective: ours is at its minimum up to the tolerance, never worse
        assert ours <= theirs * (1 + 1e-9)
        assert (theirs - ours) / theirs < 1e-6
    np.testing.assert_allclose(W, W_ref, atol=1e-3 * np.abs(W_ref).max())
    # same decisions on the training rows and on new rows
    Xn, _ = toy(seed=1)
    assert (fit.decision(X, 0, 0).argmax(1) == ref.predict(Xs)).all()
    assert (fit.decision(Xn, 0, 0).argmax(1) == ref.predict(StandardScaler().fit(X).transform(Xn))).all()
    assert fit.grad_ratio <= 1e-8


def test_batched_sets_and_C_equal_separate_fits():
    """One call over (2 sets x 3 C x 4 classes) gives each problem's own solution."""
    X, y = toy(n=160)
    masks = np.stack([np.arange(160) % 2 == 0, np.arange(160) >= 40])
    Cs = [10.0, 0.01, 1.0]   # any order: solved along the sorted path, stored in the given order
    fit = fit_ovr(X, y, masks, Cs, 4, tol=1e-9)
    for s in range(2):
        for c, C in enumerate(Cs):
            alone = fit_ovr(X[masks[s]], y[masks[s]], np.ones((1, masks[s].sum()), bool), [C], 4, tol=1e-9)
            np.testing.assert_allclose(fit.W[s, c].numpy(), alone.W[0, 0].numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("method", ["woodbury", "hessian", "cg"])
def test_every_newton_direction_reaches_the_same_minimum(method):
    """Forced to one kind of Newton direction for every step (Woodbury, kept Hessian, CG), the
    solver reaches the minimum that the automatic choice reaches, on 2 sets x 3 C values."""
    X, y = toy(n=160)
    masks = np.stack([np.arange(160) % 2 == 0, np.arange(160) >= 40])
    auto = fit_ovr(X, y, masks, [0.01, 1.0, 10.0], 4, tol=1e-9)
    forced = fit_ovr(X, y, masks, [0.01, 1.0, 10.0], 4, tol=1e-9, method=method)
    np.testing.assert_allclose(forced.W.numpy(), auto.W.numpy(), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="method"):
        fit_ovr(X, y, masks, [1.0], 4, method="newton")


def test_kept_hessians_equal_their_active_rows():
    """The Hessian path's X_A^T X_A, updated by the rows that enter and leave A, equals the
    product over the active rows computed from scratch, step after step."""
    X, y = toy(n=90)
    Xt = torch.as_tensor(X)
    mask = torch.as_tensor(np.stack([np.arange(90) < 60, np.arange(90) >= 30]))
    mean, std = scaler(Xt, mask)
    rows = svm._SetRows(Xt, torch.as_tensor(y), mask, mean, std)
    set_of = torch.tensor([0, 0, 1])
    kept = svm._Hessians(rows, 3, set_of, chunk_bytes=4096)   # small chunks: several per update
    rng = np.random.default_rng(0)
    pid = torch.arange(3)
    for step in range(4):
        active = torch.as_tensor(rng.random((60, 3)) < 0.5)   # rows of each problem's own set
        kept._update(pid, active.double())
        for p in range(3):
            xs = rows.xs[int(set_of[p])][active[:, p]]
            np.testing.assert_allclose(kept.G[p].numpy(), (xs.T @ xs).numpy(), rtol=1e-10, atol=1e-9)


def test_rows_outside_a_set_change_nothing():
    """Rows masked out of every set (test rows) may hold anything: the fit is the same."""
    X, y = toy(n=120)
    mask = np.ones((1, 120), bool)
    mask[0, 100:] = False
    a = fit_ovr(X, y, mask, [1.0], 4, tol=1e-9)
    X2 = X.copy()
    X2[100:] = 1e6
    b = fit_ovr(X2, np.roll(y, 1) * (np.arange(120) >= 100) + y * (np.arange(120) < 100), mask, [1.0], 4, tol=1e-9)
    assert np.array_equal(a.W.numpy(), b.W.numpy())
    assert np.array_equal(a.mean.numpy(), b.mean.numpy()) and np.array_equal(a.scale.numpy(), b.scale.numpy())


def test_scaler_is_standard_scaler_of_the_set_rows():
    X, _ = toy(n=50)
    X[:, 3] = 7.0   # constant feature: left unscaled, as scikit-learn does
    mask = np.arange(50) < 30
    import torch
    mean, std = scaler(torch.as_tensor(X), torch.as_tensor(mask[None]))
    ref = StandardScaler().fit(X[mask])
    np.testing.assert_allclose(mean[0].numpy(), ref.mean_, rtol=1e-12)
    np.testing.assert_allclose(std[0].numpy(), ref.scale_, rtol=1e-10)


def test_refuses_to_return_an_unconverged_fit():
    X, y = toy()
    with pytest.raises(ArithmeticError, match="above tolerance"):
        fit_ovr(X, y, np.ones((1, len(X)), bool), [100.0], 4, tol=1e-12, max_newton=1)


def test_float32_phase_meets_the_tolerance_in_float64(monkeypatch):
    """At a tolerance >= FAST_TOL the iterations run first with float32 products; what comes back
    meets the tolerance with the gradient recomputed here in float64, and its objective is within
    the bound ||g||^2 / 2 (H >= I) of a tightly converged fit."""
    X, y = toy(n=200)
    masks = np.stack([np.arange(200) < 150, np.arange(200) >= 50])
    Cs, tol = [0.01, 1.0, 10.0], 1e-4
    assert tol >= svm.FAST_TOL
    dtypes = []
    real = svm._newton

    def spy(batch, *a, **k):
        dtypes.append(batch.Xs.dtype)
        return real(batch, *a, **k)
    monkeypatch.setattr(svm, "_newton", spy)
    fit = fit_ovr(X, y, masks, Cs, 4, tol=tol)
    assert torch.float32 in dtypes and torch.float64 in dtypes
    monkeypatch.setattr(svm, "_newton", real)
    tight = fit_ovr(X, y, masks, Cs, 4, tol=1e-10)
    for s, rows in enumerate(masks):
        Xs = StandardScaler().fit_transform(X[rows])
        Xa = np.hstack([Xs, np.ones((len(Xs), 1))])
        for c, C in enumerate(Cs):
            for k in range(4):
                y_pm = np.where(y[rows] == k, 1.0, -1.0)
                w = fit.W[s, c, k].numpy()
                z = Xa @ w
                act = y_pm * z < 1
                g = w + 2 * C * Xa[act].T @ (z[act] - y_pm[act])
                g0 = np.linalg.norm(2 * C * Xa.T @ -y_pm)
                assert np.linalg.norm(g) <= tol * g0
                gap = objective(Xs, y_pm, w, C) - objective(Xs, y_pm, tight.W[s, c, k].numpy(), C)
                assert -1e-9 <= gap <= 0.5 * (g @ g) + 1e-9


def test_solves_side_by_side_equal_one_batch():
    """The Cholesky solves split over threads give one batch's answers, and the thread count is
    restored."""
    rng = np.random.default_rng(0)
    B = torch.as_tensor(rng.normal(size=(9, 20, 30)), dtype=torch.float32)
    A = B @ B.transpose(1, 2) + torch.eye(20)
    b = torch.as_tensor(rng.normal(size=(9, 20)), dtype=torch.float64)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        split = svm._spd_solve(A, b)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    whole = svm._spd_solve_part(A, b)
    exact = np.linalg.solve(A.double().numpy(), b.numpy()[:, :, None])[:, :, 0]
    np.testing.assert_allclose(split.numpy(), whole.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(split.numpy(), exact, rtol=1e-3, atol=1e-5)


def test_stalled_problems_are_finished_by_exact_float64_steps(monkeypatch):
    """Woodbury directions that barely descend (as float32 ones do at a very large C with nearly
    dependent active rows) stall the automatic path; the rescue finishes those problems with exact
    float64 Hessian steps and reaches the minimum an unhindered fit reaches. A fit that converges
    never enters the rescue, and the forced Woodbury path (no rescue) still refuses to return."""
    X, y = toy(n=160)
    mask = np.ones((1, len(X)), bool)
    rescued = []
    real_rescue = svm._rescue

    def spy(*a, **k):
        rescued.append(1)
        return real_rescue(*a, **k)
    monkeypatch.setattr(svm, "_rescue", spy)
    clean = fit_ovr(X, y, mask, [10.0], 4, tol=1e-9)
    assert not rescued
    monkeypatch.setattr(svm, "_woodbury", lambda batch, sets, active, g, **k: -1e-3 * g)   # a poor direction
    fixed = fit_ovr(X, y, mask, [10.0], 4, tol=1e-9, max_newton=30)
    assert rescued and fixed.grad_ratio <= 1e-9
    np.testing.assert_allclose(fixed.W.numpy(), clean.W.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ArithmeticError, match="above tolerance"):
        fit_ovr(X, y, mask, [10.0], 4, tol=1e-9, max_newton=30, method="woodbury")
    with pytest.raises(ArithmeticError, match="exact float64"):
        fit_ovr(X, y, mask, [10.0], 4, tol=1e-9, max_newton=1)
