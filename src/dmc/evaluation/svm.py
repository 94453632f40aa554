"""Batched one-vs-rest linear SVMs (squared hinge, L2), solved by Newton-CG in torch.

The model is scikit-learn's ``StandardScaler -> LinearSVC`` (liblinear, ``loss="squared_hinge"``,
``penalty="l2"``, ``intercept_scaling=1``), fitted to a stated tolerance instead of an
iteration cap. For class k of a training set s, with features standardised on the rows of s
only and a constant 1 appended (liblinear's bias feature, regularised like the weights):

    f(w) = 1/2 ||w||^2 + C * sum_{i in s} max(0, 1 - y_i w.x_i)^2,   y_i = +1 if label_i = k else -1

is convex and once differentiable; its generalised Hessian is ``I + 2C X_A^T X_A`` over the
active rows A = {i : y_i w.x_i < 1} (Keerthi & DeCoste 2005; liblinear's primal solver uses the
same). Each Newton step solves ``H d = -g``, then takes the exact minimiser of f along d (f is a
piecewise quadratic in the step length). The direction of a problem with m active rows:

* m <= ``EXACT_ROWS`` (the usual case for ESC-like sets: one-vs-rest problems have few rows
  inside the margin): exact, by the Woodbury identity, an m x m system gathered from the set's
  precomputed Gram matrix;
* m > D + 1 (even when m <= ``EXACT_ROWS``) for a problem whose conjugate-gradient solves have
  been slow (more than ``CG_SLOW``
  Hessian products; many rows inside the margin at large C, e.g. the near-duplicate DCASE
  sub-clips of one recording), when D + 1 <= ``EXACT_ROWS``: exact, from the Hessian itself,
  (D + 1) x (D + 1), whose ``X_A^T X_A`` is kept per problem along the whole C path and updated
  by the rows that enter or leave A at each step (starting from the whole set's ``X^T X``), so a
  step costs what changed, not m;
* otherwise (many active rows at small C, where the Hessian is close to I): preconditioned
  conjugate gradients.

A problem stops when
``||g|| <= tol * ||g(0)||`` (the stopping rule of liblinear's primal solver, with a tighter
default tolerance), with g computed in float64.

Rescue: at a very large C (the C search extends its grid past an edge, e.g. to 1000) with a few
active rows that are nearly dependent, the Woodbury direction is the difference of two nearly equal
terms, and its float32 factorisation (``KDTYPE``) and products lose most of their digits: the exact
line search then takes tiny steps and the problem can stall (seen on one ESC-like fold under one
thread). Under ``method="auto"`` the problems still above the tolerance after ``max_newton``
float64 iterations start again from where they are with exact float64 directions from the Hessian
itself ((D + 1) x (D + 1), no cancellation; CG where D + 1 is above ``EXACT_ROWS``), for up to
``max_newton`` more iterations. Only problems that the first pass could not finish take this path,
so every fit that converges without it is unchanged; a problem the rescue cannot finish still
raises. At tolerances of at least ``FAST_TOL`` the
iterations first run with float32 products with the rows, then every problem's gradient is
recomputed in float64 and those still above the tolerance go on in float64; below it (tests
against liblinear at 1e-9) float64 throughout.

Batching: every problem of one call (training sets x C values x classes) is solved at once. Each
training set's rows are standardised with its own scaler (fitted on them only) and stacked, set
by set, in one (S, n, D + 1) array (``n`` the largest set); a problem's (n, P) arrays (margins,
labels, active rows) index its own set's rows, and its products with the data are one matrix
product per run of problems on the same set. Rows the caller does not pass (test rows) are
never seen. On a CPU with several threads, the Woodbury systems are gathered and factorised in
as many parts side by side, one thread each (batched small factorisations use one core well and
two poorly).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

DTYPE = torch.float64
# the largest exact system: Woodbury (m x m) for problems with at most this many active rows; the
# kept Hessian ((D + 1) x (D + 1)) only when D + 1 is at most this
EXACT_ROWS = 384
METHODS = ("auto", "woodbury", "hessian", "cg")
# a problem whose CG solve needed more Hessian products than this takes the Hessian path from then
# on (along the whole C path) whenever it has more than D + 1 active rows
CG_SLOW = 15
# The Woodbury systems are factorised in float32 (half the memory traffic of float64, twice the
# speed); a direction only needs to descend, since the exact line search and the float64 gradient
# decide convergence. A system float32 cannot factorise is redone in float64.
KDTYPE = torch.float32
# At tolerances of at least this, the Newton iterations first run with float32 products with the
# rows (half the memory traffic), then every problem's gradient is recomputed with float64 products
# and the problems above the tolerance go on in float64: the tolerance is always met in float64.
# Below it (tests against liblinear at 1e-9), float64 throughout.
FAST_TOL = 1e-6


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
    """The data side of a batch of problems: products with each problem's own set's standardised,
    bias-augmented rows. Row i of a problem's (n, P) arrays is row i of its set (``n`` the largest
    set; rows past a set's end are zero, outside the mask ``M``)."""

    def __init__(self, sets: "_SetRows", C, set_of, C_of, class_of):
        self.Xs, self.Xs32 = sets.Xs, sets.Xs32
        self.set_of, self.C, self.class_of = set_of, C[C_of], class_of   # per problem
        self.M = sets.inside[set_of].T.to(DTYPE)              # (n, P) rows of each problem's set
        self.Y = torch.where(sets.labels[set_of].T == class_of[None, :], 1.0, -1.0).to(DTYPE)
        self._runs = None

    def subset(self, keep: torch.Tensor) -> "_Batch":
        out = object.__new__(_Batch)
        out.Xs, out.Xs32, out._runs = self.Xs, self.Xs32, None
        out.set_of, out.C, out.class_of = self.set_of[keep], self.C[keep], self.class_of[keep]
        out.M, out.Y = self.M[:, keep], self.Y[:, keep]
        return out

    def in_float32(self) -> "_Batch":
        """The same problems with float32 products with the rows (the same masks and labels)."""
        out = object.__new__(_Batch)
        out.__dict__.update(self.__dict__)
        out.Xs = self.Xs32
        return out

    def runs(self) -> list[tuple[int, int, int]]:
        """(set, first, end) of each run of consecutive problems on the same set."""
        if self._runs is None:
            sets, counts = torch.unique_consecutive(self.set_of, return_counts=True)
            ends = counts.cumsum(0).tolist()
            self._runs = [(s, e - c, e) for s, c, e in zip(sets.tolist(), counts.tolist(), ends)]
        return self._runs

    def xv(self, W: torch.Tensor) -> torch.Tensor:
        """Standardised, augmented rows times weights: ``(P, D + 1) -> (n, P)`` (the products in
        the rows' dtype, the result in W's)."""
        V = W.to(self.Xs.dtype)
        return torch.cat([self.Xs[s] @ V[a:b].T for s, a, b in self.runs()], dim=1).to(W.dtype)

    def xt(self, R: torch.Tensor) -> torch.Tensor:
        """Transposed product: ``(n, P) -> (P, D + 1)``."""
        Q = R.to(self.Xs.dtype)
        return torch.cat([Q[:, a:b].T @ self.Xs[s] for s, a, b in self.runs()], dim=0).to(R.dtype)

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
    """Solve H d = -g for every problem by preconditioned CG to relative residual ``rtol``.
    Returns d and the number of Hessian products each problem needed."""
    d = torch.zeros_like(g)
    r = -g
    z = precond(r)
    p = z.clone()
    rz = (r * z).sum(1)
    stop = r.norm(dim=1) * rtol
    used = torch.zeros(g.shape[0], dtype=torch.long, device=g.device)
    for _ in range(max_iter):
        live = r.norm(dim=1) > stop
        if not live.any():
            break
        used += live
        Hp = batch.hess_vec(p, active)
        alpha = torch.where(live, rz / (p * Hp).sum(1).clamp_min(1e-300), torch.zeros_like(rz))
        d += alpha[:, None] * p
        r -= alpha[:, None] * Hp
        z = precond(r)
        rz_new = (r * z).sum(1)
        beta = torch.where(live, rz_new / rz.clamp_min(1e-300), torch.zeros_like(rz))
        p = z + beta[:, None] * p
        rz = rz_new
    return d, used


def _line_search(batch: _Batch, W, d, Z, Zd) -> torch.Tensor:
    """Exact minimiser t of f(W + t d) per problem (1-D Newton on a convex piecewise quadratic)."""
    t = torch.ones(W.shape[0], dtype=W.dtype, device=W.device)
    wd, dd = (W * d).sum(1), (d * d).sum(1)
    U = batch.Y * Zd * batch.M                                # (n, P); 0 outside the set
    m = torch.where(batch.M > 0, 1 - batch.Y * Z, -1.0)       # rows outside the set never violate
    UU = U * U
    for _ in range(20):
        h = (m - t * U).clamp_min(0)                          # the hinges at W + t d
        d1 = wd + t * dd - 2 * batch.C * (h * U).sum(0)
        d2 = dd + 2 * batch.C * torch.where(h > 0, UU, 0.0).sum(0)
        step = d1 / d2
        t = t - step
        if (step.abs() <= 1e-12 * t.abs().clamp_min(1)).all():
            break
    return t


def _standardised(rows: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(..., D) raw rows -> (..., D + 1) standardised rows with the bias feature 1 appended."""
    xs = (rows - mean) / std
    return torch.cat([xs, torch.ones_like(xs[..., :1])], dim=-1)


class _SetRows:
    """Each training set's standardised, bias-augmented rows, computed once per fit: ``Xs`` (S, n,
    D + 1), set s's rows first and zero rows after them (``n`` the largest set), ``inside`` (S, n)
    which rows are real, ``labels`` (S, n) their classes (-1 after the end), ``xs[s]`` the real rows
    alone; and what the Newton directions need from them: ``cov[s] = X~_s^T X~_s`` ((D + 1)^2: the
    Hessian path's start, the CG preconditioner's spectrum) and, when they fit in ``budget_bytes``,
    the Gram matrices ``gram[s] = X~_s X~_s^T`` (float32, (n_s + 1)^2 with a last row and column of
    zeros) that the Woodbury systems are gathered from (else None: no Woodbury)."""

    def __init__(self, X: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, mean: torch.Tensor,
                 std: torch.Tensor, budget_bytes: float = 2e9):
        S, n = mask.shape[0], int(mask.sum(1).max())
        self.Xs = torch.zeros(S, n, X.shape[1] + 1, dtype=X.dtype, device=X.device)
        self.labels = torch.full((S, n), -1, dtype=labels.dtype, device=X.device)
        self.inside = torch.zeros(S, n, dtype=torch.bool, device=X.device)
        self.xs, self.cov = [], []
        for s in range(S):
            rows = torch.nonzero(mask[s]).flatten()
            self.Xs[s, :len(rows)] = _standardised(X[rows], mean[s], std[s])
            self.labels[s, :len(rows)] = labels[rows]
            self.inside[s, :len(rows)] = True
            xs = self.Xs[s, :len(rows)]                       # a view: the set's real rows
            self.xs.append(xs)
            self.cov.append(xs.T @ xs)
        self.Xs32 = self.Xs.to(torch.float32)
        sizes = mask.sum(1).double()
        fits = float((sizes * sizes).sum()) * torch.finfo(KDTYPE).bits / 8 <= budget_bytes
        # Gram matrices with one more row and column of zeros, gathered by padding positions
        self.gram = [torch.nn.functional.pad(xs.to(KDTYPE) @ xs.to(KDTYPE).T, (0, 1, 0, 1)) for xs in self.xs] if fits else None
        self._spectra = None

    def spectra(self):
        """Eigendecomposition of each ``cov[s]`` (for the CG preconditioner), computed once."""
        if self._spectra is None:
            self._spectra = [torch.linalg.eigh(c) for c in self.cov]
        return self._spectra


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


def _spd_solve(A: torch.Tensor, b: torch.Tensor, kdtype: torch.dtype = KDTYPE) -> torch.Tensor:
    """``x = A^-1 b`` for a batch of symmetric positive definite ``A`` (B, m, m) and ``b`` (B, m)
    (float64), by a Cholesky factorisation in ``kdtype``; a system ``kdtype`` cannot factorise is
    redone in float64 from the same entries. The Woodbury and Hessian directions both use it."""
    return _side_by_side(lambda i: _spd_solve_part(A[i], b[i], kdtype), A.shape[0], A.device)


def _spd_solve_part(A: torch.Tensor, b: torch.Tensor, kdtype: torch.dtype = KDTYPE) -> torch.Tensor:
    L, info = torch.linalg.cholesky_ex(A.to(kdtype))
    x = torch.cholesky_solve(b.to(kdtype)[:, :, None], L)[:, :, 0].to(b.dtype)
    bad = info != 0
    if bad.any():
        x[bad] = torch.cholesky_solve(b[bad][:, :, None], torch.linalg.cholesky(A[bad].double()))[:, :, 0]
    return x


_POOLS: dict[int, ThreadPoolExecutor] = {}


def _side_by_side(fn, count: int, device: torch.device) -> torch.Tensor:
    """``fn(index)`` over ``range(count)``, concatenated along dim 0. On a CPU with n > 1 torch
    threads the range is split into n parts run side by side, each on one thread: batches of small
    factorisations and gathers use one core well and two poorly (``benchmarks/evaluate.py``)."""
    n = torch.get_num_threads()
    if torch.device(device).type != "cpu" or n == 1 or count < 2 * n:
        return fn(torch.arange(count))
    if n not in _POOLS:
        _POOLS[n] = ThreadPoolExecutor(n, thread_name_prefix="dmc-svm")

    def one(index):
        torch.set_num_threads(1)     # this worker's own thread count
        return fn(index)
    torch.set_num_threads(1)
    try:
        return torch.cat(list(_POOLS[n].map(one, torch.arange(count).tensor_split(n))))
    finally:
        torch.set_num_threads(n)


def _packed(mask: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Column indices of the True entries of each row of ``mask`` (B, N), in order and packed to
    the left into (B, m) (m >= the largest count; padding points at column 0), and which of the
    (B, m) entries are real."""
    b_i, n_i = torch.nonzero(mask, as_tuple=True)
    order = torch.zeros(mask.shape[0], m, dtype=torch.long, device=mask.device)
    order[b_i, (mask.cumsum(1) - 1)[b_i, n_i]] = n_i
    valid = torch.arange(m, device=mask.device)[None, :] < mask.sum(1)[:, None]
    return order, valid


def _woodbury(batch: _Batch, setrows: _SetRows, active: torch.Tensor, g: torch.Tensor,
              bucket: int = 64) -> torch.Tensor:
    """Newton direction ``d = -(I + 2C X_A^T X_A)^{-1} g`` for problems with few active rows,
    by the Woodbury identity: ``d = -(g - X_A^T (I/(2C) + X_A X_A^T)^{-1} X_A g)``, an m x m system
    whose matrix is gathered from the set's Gram matrix. Problems are solved in buckets of
    similar m (sorted by m), each padded to its largest m with identity rows that carry nothing."""
    counts = active.sum(0).long()
    Xg = batch.xv(g)                                          # (n, P): X~ g on every row of the set
    R = torch.zeros_like(Xg)                                  # (n, P): X_A's coefficients, scattered
    by_count = torch.argsort(counts)
    for lo in range(0, len(by_count), bucket):
        idx = by_count[lo:lo + bucket]
        m = int(counts[idx].max())
        if m == 0:
            continue
        order, valid = _packed(active[:, idx].T > 0, m)      # (B, m): the j-th active row
        sets = batch.set_of[idx].tolist()
        # padding gathers the Gram's zero row (its last)
        pad_row = torch.tensor([len(setrows.xs[s]) for s in sets], device=g.device)[:, None]
        loc = torch.where(valid, order, pad_row)              # (B, m): the rows' places in their set
        diag = torch.where(valid, (1 / (2 * batch.C[idx]))[:, None], torch.ones(1, dtype=g.dtype, device=g.device))
        rhs = torch.gather(Xg[:, idx].T, 1, order) * valid    # (B, m): X_A g

        def solve(part):
            K = torch.empty(len(part), m, m, dtype=KDTYPE, device=g.device)
            for j, i in enumerate(part.tolist()):             # K = G_s[A, A]: rows, then columns
                torch.index_select(setrows.gram[sets[i]].index_select(0, loc[i]), 1, loc[i], out=K[j])
            K.diagonal(dim1=1, dim2=2).add_(diag[part])
            return _spd_solve_part(K, rhs[part])
        sol = _side_by_side(solve, len(idx), g.device) * valid
        # padding points at row 0 with coefficient 0: added, not written over a real entry
        R[:, idx] = torch.zeros(len(idx), R.shape[0], dtype=g.dtype, device=g.device).scatter_add_(1, order, sol).T
    return -(g - batch.xt(R))


class _Hessians:
    """``X_A^T X_A`` of each problem that takes the Hessian path, kept from step to step: ``G[p]`` is
    ``X~_s^T X~_s`` over the rows of ``basis[:, p]``; a step adds the rows that entered the active
    set and subtracts those that left, so its cost is the number of changed rows times (D + 1)^2.
    A problem's first Hessian step starts from its whole set (``cov[s]``, every row) and removes
    the inactive rows."""

    def __init__(self, sets: _SetRows, n_problems: int, set_of: torch.Tensor, chunk_bytes: float = 2e8,
                 kdtype: torch.dtype = KDTYPE):
        d1 = sets.cov[0].shape[0]
        self.sets, self.set_of, self.chunk_bytes, self.kdtype = sets, set_of, chunk_bytes, kdtype
        self.G = torch.empty(n_problems, d1, d1, dtype=DTYPE, device=set_of.device)
        self.basis = torch.zeros(sets.inside.shape[1], n_problems, dtype=torch.int8, device=set_of.device)
        self.started = torch.zeros(n_problems, dtype=torch.bool, device=set_of.device)
        self.slow_cg = torch.zeros(n_problems, dtype=torch.bool, device=set_of.device)   # see _route

    @staticmethod
    def fits(n_problems: int, d1: int, budget_bytes: float = 2e9) -> bool:
        return n_problems * d1 * d1 * 8 <= budget_bytes

    def _update(self, pid: torch.Tensor, active: torch.Tensor) -> None:
        """Bring ``G[pid]`` to the active rows ``active`` (N, len(pid))."""
        fresh = ~self.started[pid]
        for j in torch.nonzero(fresh).flatten().tolist():
            s, p = int(self.set_of[pid[j]]), int(pid[j])
            self.G[p] = self.sets.cov[s]
            self.basis[:, p] = self.sets.inside[s].to(torch.int8)
        self.started[pid] = True
        delta = active.to(torch.int8) - self.basis[:, pid]                    # (N, b): +1 entered, -1 left
        sets = self.set_of[pid]
        for s in torch.unique(sets).tolist():
            which = torch.nonzero(sets == s).flatten()
            local = delta[:len(self.sets.xs[s]), which].T                    # (b, n_s)
            counts = (local != 0).sum(1)
            d1 = self.G.shape[1]
            step = max(1, int(self.chunk_bytes // (8 * d1 * max(1, int(counts.max())))))
            for lo in range(0, len(which), step):
                part = which[lo:lo + step]
                c = int(counts[lo:lo + step].max())
                if c == 0:
                    continue
                order, valid = _packed(local[lo:lo + step] != 0, c)           # (b, c) the changed rows
                sign = torch.gather(local[lo:lo + step], 1, order).to(DTYPE) * valid   # +1, -1; 0 padding
                rows = self.sets.xs[s][order]                                # (b, c, D + 1)
                self.G[pid[part]] += torch.bmm((rows * sign[:, :, None]).transpose(1, 2), rows)
        self.basis[:, pid] = active.to(torch.int8)

    def direction(self, batch: _Batch, pid: torch.Tensor, active: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Exact Newton direction ``d = -(I + 2C X_A^T X_A)^{-1} g`` of problems ``pid``."""
        self._update(pid, active)
        H = 2 * batch.C[:, None, None] * self.G[pid]
        H.diagonal(dim1=1, dim2=2).add_(1.0)
        return -_spd_solve(H, g, self.kdtype)


def fit_ovr(X: np.ndarray, labels: np.ndarray, masks: np.ndarray, Cs, n_classes: int,
            tol: float = 1e-6, max_newton: int = 100, max_cg: int = 200,
            device: str | torch.device = "cpu", start: torch.Tensor | None = None,
            method: str = "auto") -> FitResult:
    """Fit one-vs-rest squared-hinge SVMs for every (training set, C, class).

    ``X`` (N, D) raw features, ``labels`` (N,) class indices 0..n_classes-1, ``masks`` (S, N)
    bool rows of each training set (its scaler is fitted on them only), ``Cs`` the C values.
    The C values are solved in increasing order, each warm-started from the previous one's
    solution (the regularisation path); ``start`` ``(S, K, D + 1)`` warm-starts the first one
    (e.g. the solution at a neighbouring C). ``method`` picks the Newton directions: ``auto``
    (see the module docstring), or ``woodbury``, ``hessian`` or ``cg`` for every step (tests and
    benchmarks). Raises ``ArithmeticError`` if a problem has not met ``tol`` after
    ``max_newton`` Newton iterations, and (``auto``) the rescue's ``max_newton`` more (never returns
    an unconverged fit).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    X = torch.as_tensor(np.asarray(X), dtype=DTYPE, device=device)
    labels_t = torch.as_tensor(np.asarray(labels), device=device)
    mask = torch.as_tensor(np.asarray(masks, dtype=bool), device=device)
    Cs_t = torch.as_tensor(np.asarray(Cs, dtype=np.float64), dtype=DTYPE, device=device)
    S, K, D = mask.shape[0], int(n_classes), X.shape[1]
    mean, std = scaler(X, mask)
    sets = _SetRows(X, labels_t, mask, mean, std)
    W = torch.zeros(S, len(Cs_t), K, D + 1, dtype=DTYPE, device=device)
    set_idx = torch.arange(S, device=device).repeat_interleave(K)
    class_idx = torch.arange(K, device=device).repeat(S)
    # one Hessian store for the whole path: X_A^T X_A does not depend on C, and the active set at
    # the end of one C is where the next one starts
    use_hessian = method == "hessian" or (method == "auto" and D + 1 <= EXACT_ROWS)
    hessians = _Hessians(sets, S * K, set_idx) if use_hessian and _Hessians.fits(S * K, D + 1) else None
    total_it, worst = 0, 0.0
    prev = None if start is None else start.reshape(S * K, D + 1).to(device=device, dtype=DTYPE)
    for c in torch.argsort(Cs_t).tolist():
        C_idx = torch.full_like(set_idx, c)
        w = prev.clone() if prev is not None else torch.zeros(S * K, D + 1, dtype=DTYPE, device=device)
        it = 0
        batch = _Batch(sets, Cs_t, set_idx, C_idx, class_idx)
        g0 = _g0(batch)
        if tol >= FAST_TOL:   # first with float32 products, to tol if they can ...
            w, it, _ = _newton(batch.in_float32(), sets, hessians, w, tol, max_newton, max_cg, method, strict=False, g0=g0)
        # ... then certified (and finished where needed) with float64 products
        w, it64, ratio = _newton(batch, sets, hessians, w, tol, max_newton, max_cg, method, g0=g0,
                                 strict=method != "auto")
        if ratio > tol:      # auto: a few problems stalled (module docstring, "Rescue")
            w, it_r, ratio = _rescue(batch, sets, w, g0, tol, max_newton, max_cg)
            it64 += it_r
        it += it64
        W[:, c] = w.view(S, K, D + 1)
        prev = w
        total_it, worst = max(total_it, it), max(worst, ratio)
    return FitResult(W=W, mean=mean, scale=std, iterations=total_it, grad_ratio=worst)


def _route(counts: torch.Tensor, slow_cg: torch.Tensor, d1: int, sets: _SetRows, hessians,
           method: str) -> torch.Tensor:
    """Direction method per problem: 0 Woodbury, 1 Hessian, 2 CG (see the module docstring).
    ``slow_cg``: problems whose CG solves needed more than ``CG_SLOW`` products; with more than
    D + 1 active rows they take the Hessian path (its factorisation costs about that many products)."""
    woodbury_ok, hessian_ok = sets.gram is not None, hessians is not None
    if method == "woodbury" and woodbury_ok:
        return torch.zeros_like(counts)
    if method == "hessian" and hessian_ok:
        return torch.ones_like(counts)
    route = torch.full_like(counts, 2)
    if method != "auto":
        return route
    if woodbury_ok:
        route[counts <= EXACT_ROWS] = 0
    if hessian_ok:
        route[(counts > d1) & slow_cg] = 1
    return route


def _g0(batch: _Batch) -> torch.Tensor:
    """||g(0)|| of every problem: the scale of the stopping rule."""
    return batch.gradient(torch.zeros_like(batch.C)[:, None], torch.zeros_like(batch.M))[0].norm(dim=1)


def _newton(batch: _Batch, sets: _SetRows, hessians, W, tol, max_newton, max_cg, method="auto", strict=True,
            g0=None):
    """Newton iterations from W until every problem meets ``tol`` (its gradient in the batch's
    products, relative to ``g0``, by default the batch's own ||g(0)||); returns W, the iterations
    and the largest gradient ratio. After ``max_newton`` iterations: ``ArithmeticError`` if
    ``strict``, else W as it is."""
    if g0 is None:
        g0 = _g0(batch)
    live = torch.arange(W.shape[0], device=W.device)
    ratio = torch.zeros(W.shape[0], dtype=W.dtype, device=W.device)
    b, Z = batch, None
    for it in range(1, max_newton + 1):
        w = W[live]
        Z = b.xv(w) if Z is None else Z        # after a step: Z + t Zd, the margins at the new W
        g, active = b.gradient(w, Z)
        r = g.norm(dim=1) / g0[live].clamp_min(1e-300)
        ratio[live] = r
        todo = r > tol
        if not todo.any():
            return W, it - 1, float(ratio.max())
        live, b, w, Z, g, active, r = (live[todo], b.subset(todo), w[todo], Z[:, todo], g[todo],
                                       active[:, todo], r[todo])
        slow = hessians.slow_cg[live] if hessians is not None else torch.zeros(len(live), dtype=torch.bool, device=live.device)
        route = _route(active.sum(0).long(), slow, W.shape[1], sets, hessians, method)
        d = torch.empty_like(g)
        for how in torch.unique(route).tolist():
            sel = route == how
            if how == 0:
                d[sel] = _woodbury(b.subset(sel), sets, active[:, sel], g[sel])
            elif how == 1:
                d[sel] = hessians.direction(b.subset(sel), live[sel], active[:, sel], g[sel])
            else:
                bb = b.subset(sel)
                precond = _preconditioner(bb, sets.spectra(), active[:, sel])
                d[sel], used = _pcg(bb, active[:, sel], g[sel], precond,
                                    rtol=torch.clamp(r[sel].sqrt(), max=0.1), max_iter=max_cg)
                if hessians is not None:
                    hessians.slow_cg[live[sel][used > CG_SLOW]] = True
        Zd = b.xv(d)
        t = _line_search(b, w, d, Z, Zd)
        W[live] = w + t[:, None] * d
        Z = Z + t.to(Z.dtype) * Zd
    g, _ = b.gradient(W[live], b.xv(W[live]))
    ratio[live] = g.norm(dim=1) / g0[live].clamp_min(1e-300)
    if strict and (ratio > tol).any():
        raise _unconverged(ratio, tol, f"after {max_newton} Newton iterations")
    return W, max_newton, float(ratio.max())


def _unconverged(ratio: torch.Tensor, tol: float, after: str) -> ArithmeticError:
    return ArithmeticError(f"SVM solver: {int((ratio > tol).sum())} problems above tolerance {tol} "
                           f"{after} (worst {float(ratio.max()):.2e})")


def _rescue(batch: _Batch, sets: _SetRows, W: torch.Tensor, g0: torch.Tensor, tol: float,
            max_newton: int, max_cg: int):
    """The problems of ``batch`` (float64 products) still above ``tol`` at ``W`` go on from there
    with exact float64 Hessian directions (CG where the Hessian does not fit), for up to
    ``max_newton`` iterations (module docstring, "Rescue"). Returns W, the iterations and the
    largest gradient ratio; raises ``ArithmeticError`` if a problem is still above ``tol``."""
    g, _ = batch.gradient(W, batch.xv(W))
    ratio = g.norm(dim=1) / g0.clamp_min(1e-300)
    stalled = torch.nonzero(ratio > tol).flatten()
    sub = batch.subset(stalled)
    d1 = W.shape[1]
    exact = d1 <= EXACT_ROWS and _Hessians.fits(len(stalled), d1)
    hessians = _Hessians(sets, len(stalled), sub.set_of, kdtype=DTYPE) if exact else None
    w, it, _ = _newton(sub, sets, hessians, W[stalled].clone(), tol, max_newton, max_cg,
                       "hessian" if exact else "cg", strict=False, g0=g0[stalled])
    W = W.clone()
    W[stalled] = w
    g, _ = batch.gradient(W, batch.xv(W))
    ratio = g.norm(dim=1) / g0.clamp_min(1e-300)
    if (ratio > tol).any():
        raise _unconverged(ratio, tol, f"after {max_newton} Newton iterations and as many exact "
                                       f"float64 ones from there")
    return W, it, float(ratio.max())


def objective(X: np.ndarray, y_pm: np.ndarray, w: np.ndarray, C: float) -> float:
    """f(w) of one problem on already standardised rows ``X`` (bias feature appended here):
    the number a converged solver minimises, for checks against a reference."""
    Xa = np.hstack([X, np.ones((len(X), 1))])
    h = np.clip(1 - y_pm * (Xa @ w), 0, None)
    return float(0.5 * w @ w + C * (h * h).sum())
