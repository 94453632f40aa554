"""dmc.svm: the batched Newton-CG solver gives scikit-learn's LinearSVC, converged."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from dmc.svm import fit_ovr, objective, scaler


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
