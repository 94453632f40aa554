"""Batched one-vs-rest linear SVMs (squared hinge, L2), solved by Newton-CG in torch.

The model is scikit-learn's ``StandardScaler -> LinearSVC`` (liblinear, ``loss="squared_hinge"``,
``penalty="l2"``, ``intercept_scaling=1``), fitted to a stated tolerance instead of an
iteration cap. For class k of a training set s, with features standardised on the rows of s
only and a constant 1 appended (liblinear's bias feature, regularised like the weights):

    f(w) = 1/2 ||w||^2 + C * sum_{i in s} max(0, 1 - y_i w.x_i)^2,   y_i = +1 if label_i = k else -1

is convex and once differentiable; its generalised Hessian is ``I + 2C X_A^T X_A`` over the
active rows A = {i : y_i w.x_i < 1} (Keerthi & DeCoste 2005; liblinear's primal solver uses the
same). Each Newton step solves ``H d = -g``, then takes the exact minimiser of f along d (f is a
piecewise quadratic in the step length). While at most ``WOODBURY_ROWS`` rows are active (the usual
case: one-vs-rest problems have few rows inside the margin) the step is exact, by the Woodbury
identity on an m x m system gathered from the set's precomputed Gram matrix; with more active rows
(small C, first iterations) it is preconditioned conjugate gradients. A problem stops when
``||g|| <= tol * ||g(0)||`` (the stopping rule of liblinear's primal solver, with a tighter
default tolerance).

Batching: every problem of one call (training sets x C values x classes) shares one matrix of
raw features; a training set is a row mask, and its standardisation is folded into the weights
(``x~ = (x - mu_s) / sigma_s`` gives ``w.x~ + b = x.(w/sigma_s) + (b - mu_s.(w/sigma_s))``), so every
product with the data is one matrix product over all problems. Rows outside a problem's set get
zero weight; rows the caller does not pass (test rows) are never seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

DTYPE = torch.float64
# Newton directions are exact (Woodbury) for problems with at most this many active rows, by
# preconditioned CG otherwise
WOODBURY_ROWS = 384
# The Woodbury systems are factorised in float32 (half the memory traffic of float64, twice the
# speed); a direction only needs to descend, since the exact line search and the float64 gradient
# decide convergence. A system float32 cannot factorise is redone in float64.
KDTYPE = torch.float32


@dataclass
class FitResult:
    """Weights in standardised space and the scalers, for problems ``(set, C, class)``."""

    W: torch.Tensor          # (S, nC, K, D + 1): weights and bias (last) per problem
    mean: torch.Tensor       # (S, D) scaler of each set (training rows only)
    scale: torch.Tensor      # (S, D)
    iterations: int          # Newton iterations until every problem met the tolerance
    grad_ratio: float        # max over problems of ||g|| / ||g(0)|| at the end

    def decision(self, X: np.ndarray | torch.Tensor, s: int, c: int) -> np.ndarray:
        """Decision values ``(N, K)`` of the problems of set ``s`` and C index ``c`` on rows ``X``."""
        X = torch.as_tensor(np.asarray(X), dtype=DTYPE, device=self.W.device)
        w = self.W[s, c]                                      # (K, D + 1)
        v = w[:, :-1] / self.scale[s]
        b = w[:, -1] - (self.mean[s] * v).sum(1)
        return (X @ v.T + b).cpu().numpy()


def scaler(X: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """StandardScaler fitted on the rows of each set: mean, std (ddof 0; a zero std becomes 1)."""
    m = mask.to(X.dtype)                                      # (S, N)
    n = m.sum(1, keepdim=True).clamp_min(1)
    mean = m @ X / n
    var = (m @ (X * X) / n - mean * mean).clamp_min(0)
    std = var.sqrt()
    # sklearn: features whose variance is ~0 are left unscaled
    std = torch.where(std < 10 * torch.finfo(X.dtype).eps * mean.abs().clamp_min(1), torch.ones_like(std), std)
    return mean, std


class _Batch:
    """The data side of a batch of problems: products with the standardised, bias-augmented rows."""

    def __init__(self, X, mask, labels, C, mean, std, set_of, C_of, class_of):
        self.X, self.mean, self.std = X, mean, std
        self.set_of, self.C, self.class_of = set_of, C[C_of], class_of   # per problem
        self.M = mask[set_of].T.to(X.dtype)                  # (N, P) rows of each problem's set
        self.Y = torch.where(labels[:, None] == class_of[None, :], 1.0, -1.0).to(X.dtype)  # (N, P)

    def subset(self, keep: torch.Tensor) -> "_Batch":
        out = object.__new__(_Batch)
        out.X, out.mean, out.std = self.X, self.mean, self.std
        out.set_of, out.C, out.class_of = self.set_of[keep], self.C[keep], self.class_of[keep]
        out.M, out.Y = self.M[:, keep], self.Y[:, keep]
        return out

    def xv(self, W: torch.Tensor) -> torch.Tensor:
        """Standardised, augmented rows times weights: ``(P, D + 1) -> (N, P)``."""
        v = W[:, :-1] / self.std[self.set_of]
        b = W[:, -1] - (self.mean[self.set_of] * v).sum(1)
        return self.X @ v.T + b

    def xt(self, R: torch.Tensor) -> torch.Tensor:
        """Transposed product: ``(N, P) -> (P, D + 1)`` (R must be zero outside each set)."""
        col = R.sum(0)                                        # (P,)
        g = ((self.X.T @ R).T - self.mean[self.set_of] * col[:, None]) / self.std[self.set_of]
        return torch.cat([g, col[:, None]], dim=1)

    def objective(self, W: torch.Tensor, Z: torch.Tensor) -> torch.Tensor:
        hinge = (1 - self.Y * Z).clamp_min(0) * self.M
        return 0.5 * (W * W).sum(1) + self.C * (hinge * hinge).sum(0)

    def gradient(self, W: torch.Tensor, Z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        active = ((self.Y * Z < 1) & (self.M > 0)).to(W.dtype)
        return W + 2 * self.C[:, None] * self.xt(active * (Z - self.Y)), active

    def hess_vec(self, V: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        return V + 2 * self.C[:, None] * self.xt(active * self.xv(V))


def _pcg(batch: _Batch, active: torch.Tensor, g: torch.Tensor, precond, rtol: torch.Tensor,
         max_iter: int) -> torch.Tensor:
    """Solve H d = -g for every problem by preconditioned CG to relative residual ``rtol``."""
    d = torch.zeros_like(g)
    r = -g
    z = precond(r)
    p = z.clone()
    rz = (r * z).sum(1)
    stop = r.norm(dim=1) * rtol
    for _ in range(max_iter):
        live = r.norm(dim=1) > stop
        if not live.any():
            break
        Hp = batch.hess_vec(p, active)
        alpha = torch.where(live, rz / (p * Hp).sum(1).clamp_min(1e-300), torch.zeros_like(rz))
        d += alpha[:, None] * p
        r -= alpha[:, None] * Hp
        z = precond(r)
        rz_new = (r * z).sum(1)
        beta = torch.where(live, rz_new / rz.clamp_min(1e-300), torch.zeros_like(rz))
        p = z + beta[:, None] * p
        rz = rz_new
    return d


def _line_search(batch: _Batch, W, d, Z, Zd) -> torch.Tensor:
    """Exact minimiser t of f(W + t d) per problem (1-D Newton on a convex piecewise quadratic)."""
    t = torch.ones(W.shape[0], dtype=W.dtype, device=W.device)
    wd, dd = (W * d).sum(1), (d * d).sum(1)
    U = batch.Y * Zd                                          # (N, P)
    m = 1 - batch.Y * Z
    for _ in range(20):
        viol = ((m - t * U) > 0).to(W.dtype) * batch.M
        d1 = wd + t * dd - 2 * batch.C * (viol * (m - t * U) * U).sum(0)
        d2 = dd + 2 * batch.C * (viol * U * U).sum(0)
        step = d1 / d2
        t = t - step
        if (step.abs() <= 1e-12 * t.abs().clamp_min(1)).all():
            break
    return t


def set_spectra(X: torch.Tensor, mask: torch.Tensor, mean: torch.Tensor, std: torch.Tensor):
    """Eigendecomposition of each set's Gram matrix of standardised, bias-augmented rows."""
    out = []
    for s in range(mask.shape[0]):
        xs = _standardised(X[mask[s]], mean[s], std[s])
        out.append(torch.linalg.eigh(xs.T @ xs))
    return out


def _standardised(rows: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(..., D) raw rows -> (..., D + 1) standardised rows with the bias feature 1 appended."""
    xs = (rows - mean) / std
    return torch.cat([xs, torch.ones_like(xs[..., :1])], dim=-1)


def _preconditioner(batch: _Batch, spectra, active: torch.Tensor):
    """M_p = I + 2 C_p a_p G_s: the Hessian with the active rows replaced by the whole set's
    Gram matrix G_s times the share a_p of rows that are active, inverted through one
    eigendecomposition per set. CG is only used while many rows are active (small C, early
    iterations), where this average is close to the Hessian."""
    share = active.sum(0) / batch.M.sum(0).clamp_min(1)      # (P,)
    groups = []
    for s, (lam, Q) in enumerate(spectra):
        idx = torch.nonzero(batch.set_of == s).flatten()
        if len(idx):
            inv = 1.0 / (1 + 2 * (batch.C[idx] * share[idx])[:, None] * lam.clamp_min(0)[None, :])
            groups.append((idx, Q, inv))

    def apply(r: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(r)
        for idx, Q, inv in groups:
            out[idx] = ((r[idx] @ Q) * inv) @ Q.T
        return out
    return apply


class _Kernels:
    """Per-set Gram matrices of the standardised, bias-augmented rows, ``G_s = X~_s X~_s^T`` over the
    rows of set s only (computed once per fit): the Woodbury systems below gather their m x m
    blocks instead of multiplying m x (D + 1) rows for every problem and every Newton step."""

    def __init__(self, X: torch.Tensor, mask: torch.Tensor, mean: torch.Tensor, std: torch.Tensor):
        self.local = torch.full(mask.shape, -1, dtype=torch.long, device=X.device)   # (S, N) row -> index in its set
        self.gram = []
        for s in range(mask.shape[0]):
            rows = torch.nonzero(mask[s]).flatten()
            self.local[s, rows] = torch.arange(len(rows), device=X.device)
            xs = _standardised(X[rows], mean[s], std[s])
            self.gram.append((xs @ xs.T).to(KDTYPE))

    @staticmethod
    def fits(mask: torch.Tensor, budget_bytes: float = 2e9) -> bool:
        sizes = mask.sum(1).double()
        return float((sizes * sizes).sum()) * 8 <= budget_bytes


def _woodbury(batch: _Batch, kernels: _Kernels, active: torch.Tensor, g: torch.Tensor,
              bucket: int = 64) -> torch.Tensor:
    """Newton direction ``d = -(I + 2C X_A^T X_A)^{-1} g`` for problems with few active rows,
    by the Woodbury identity: ``d = -(g - X_A^T (I/(2C) + X_A X_A^T)^{-1} X_A g)``, an m x m system
    whose matrix is gathered from the set's Gram matrix. Problems are solved in buckets of
    similar m (sorted by m), each padded to its largest m with identity rows that carry nothing."""
    counts = active.sum(0).long()
    Xg = batch.xv(g)                                          # (N, P): X~ g on every row
    R = torch.zeros_like(Xg)                                  # (N, P): X_A's coefficients, scattered
    by_count = torch.argsort(counts)
    for lo in range(0, len(by_count), bucket):
        idx = by_count[lo:lo + bucket]
        m = int(counts[idx].max())
        if m == 0:
            continue
        act = active[:, idx].T                                # (B, N)
        order = torch.argsort(act.to(torch.int8), dim=1, descending=True, stable=True)[:, :m]   # (B, m)
        valid = torch.arange(m, device=g.device)[None, :] < counts[idx][:, None]                # (B, m)
        sets = batch.set_of[idx]
        K = torch.empty(len(idx), m, m, dtype=KDTYPE, device=g.device)
        for s in torch.unique(sets).tolist():
            which = torch.nonzero(sets == s).flatten()
            loc = kernels.local[s][order[which]]              # (b, m) positions in set s
            K[which] = kernels.gram[s][loc[:, :, None], loc[:, None, :]]
        pad = ~(valid[:, :, None] & valid[:, None, :])
        K.masked_fill_(pad, 0.0)
        diag = torch.where(valid, (1 / (2 * batch.C[idx]))[:, None], torch.ones_like(K[:, :, 0]))
        K.diagonal(dim1=1, dim2=2).add_(diag)
        rhs = torch.gather(Xg[:, idx].T, 1, order) * valid    # (B, m): X_A g
        Lk, info = torch.linalg.cholesky_ex(K)
        sol = torch.cholesky_solve(rhs.to(KDTYPE)[:, :, None], Lk)[:, :, 0].to(g.dtype)
        bad = info != 0
        if bad.any():   # not positive definite in float32: float64 from the same entries
            K64 = K[bad].double()
            sol[bad] = torch.cholesky_solve(rhs[bad][:, :, None], torch.linalg.cholesky(K64))[:, :, 0]
        sol = sol * valid
        R[:, idx] = torch.zeros(len(idx), R.shape[0], dtype=g.dtype, device=g.device).scatter_(1, order, sol).T
    return -(g - batch.xt(R))


def fit_ovr(X: np.ndarray, labels: np.ndarray, masks: np.ndarray, Cs, n_classes: int,
            tol: float = 1e-6, max_newton: int = 100, max_cg: int = 200,
            device: str | torch.device = "cpu", start: torch.Tensor | None = None) -> FitResult:
    """Fit one-vs-rest squared-hinge SVMs for every (training set, C, class).

    ``X`` (N, D) raw features, ``labels`` (N,) class indices 0..n_classes-1, ``masks`` (S, N)
    bool rows of each training set (its scaler is fitted on them only), ``Cs`` the C values.
    The C values are solved in increasing order, each warm-started from the previous one's
    solution (the regularisation path); ``start`` ``(S, K, D + 1)`` warm-starts the first one
    (e.g. the solution at a neighbouring C). Raises ``ArithmeticError`` if a problem has not met
    ``tol`` after ``max_newton`` Newton iterations (never returns an unconverged fit).
    """
    X = torch.as_tensor(np.asarray(X), dtype=DTYPE, device=device)
    labels_t = torch.as_tensor(np.asarray(labels), device=device)
    mask = torch.as_tensor(np.asarray(masks, dtype=bool), device=device)
    Cs_t = torch.as_tensor(np.asarray(Cs, dtype=np.float64), dtype=DTYPE, device=device)
    S, K, D = mask.shape[0], int(n_classes), X.shape[1]
    mean, std = scaler(X, mask)
    spectra = set_spectra(X, mask, mean, std)
    kernels = _Kernels(X, mask, mean, std) if _Kernels.fits(mask) else None   # else CG only
    W = torch.zeros(S, len(Cs_t), K, D + 1, dtype=DTYPE, device=device)
    set_idx = torch.arange(S, device=device).repeat_interleave(K)
    class_idx = torch.arange(K, device=device).repeat(S)
    total_it, worst = 0, 0.0
    prev = None if start is None else start.reshape(S * K, D + 1).to(device=device, dtype=DTYPE)
    for c in torch.argsort(Cs_t).tolist():
        C_idx = torch.full_like(set_idx, c)
        batch = _Batch(X, mask, labels_t, Cs_t, mean, std, set_idx, C_idx, class_idx)
        w = prev.clone() if prev is not None else torch.zeros(S * K, D + 1, dtype=DTYPE, device=device)
        w, it, ratio = _newton(batch, spectra, kernels, w, tol, max_newton, max_cg)
        W[:, c] = w.view(S, K, D + 1)
        prev = w
        total_it, worst = max(total_it, it), max(worst, ratio)
    return FitResult(W=W, mean=mean, scale=std, iterations=total_it, grad_ratio=worst)


def _newton(batch: _Batch, spectra, kernels, W, tol, max_newton, max_cg):
    g0 = batch.gradient(torch.zeros_like(W), batch.xv(torch.zeros_like(W)))[0].norm(dim=1)
    live = torch.arange(W.shape[0], device=W.device)
    ratio = torch.zeros(W.shape[0], dtype=W.dtype, device=W.device)
    for it in range(1, max_newton + 1):
        b = batch.subset(live)
        w = W[live]
        Z = b.xv(w)
        g, active = b.gradient(w, Z)
        r = g.norm(dim=1) / g0[live].clamp_min(1e-300)
        ratio[live] = r
        todo = r > tol
        if not todo.any():
            return W, it - 1, float(ratio.max())
        live, b, w, Z, g, active, r = (live[todo], b.subset(todo), w[todo], Z[:, todo], g[todo],
                                       active[:, todo], r[todo])
        small = active.sum(0) <= (WOODBURY_ROWS if kernels is not None else -1)
        d = torch.empty_like(g)
        if small.any():
            d[small] = _woodbury(b.subset(small), kernels, active[:, small], g[small])
        if (~small).any():
            big = ~small
            bb = b.subset(big)
            precond = _preconditioner(bb, spectra, active[:, big])
            d[big] = _pcg(bb, active[:, big], g[big], precond, rtol=torch.clamp(r[big].sqrt(), max=0.1),
                          max_iter=max_cg)
        t = _line_search(b, w, d, Z, b.xv(d))
        W[live] = w + t[:, None] * d
    b = batch.subset(live)
    g, _ = b.gradient(W[live], b.xv(W[live]))
    ratio[live] = g.norm(dim=1) / g0[live].clamp_min(1e-300)
    if (ratio > tol).any():
        raise ArithmeticError(f"SVM solver: {int((ratio > tol).sum())} problems above tolerance {tol} "
                              f"after {max_newton} Newton iterations (worst {float(ratio.max()):.2e})")
    return W, max_newton, float(ratio.max())


def objective(X: np.ndarray, y_pm: np.ndarray, w: np.ndarray, C: float) -> float:
    """f(w) of one problem on already standardised rows ``X`` (bias feature appended here):
    the number a converged solver minimises, for checks against a reference."""
    Xa = np.hstack([X, np.ones((len(X), 1))])
    h = np.clip(1 - y_pm * (Xa @ w), 0, None)
    return float(0.5 * w @ w + C * (h * h).sum())
