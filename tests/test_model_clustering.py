"""Multimodal clustering (supplement eq. 1-12) checked against an independent NumPy version."""

import numpy as np
import pytest
import torch

from dmc.model.clustering import Clusters, MultimodalClustering, squash

torch.set_num_threads(2)


# ---- independent NumPy re-computation of the equations -------------------------------------

def np_squash(x):
    n = np.sqrt((x ** 2).sum(-1, keepdims=True))
    return x * np.tanh(10 * n) / n


def np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_cluster(u, W, k, d, iterations, z, squash="both", init="uniform"):
    """u (p, C), W (k*d, C) -> list of (s, c) after each iteration."""
    sq_in = np_squash if squash in ("both", "input") else (lambda x: x)   # "none": neither
    sq_out = np_squash if squash in ("both", "projected") else (lambda x: x)
    uh = np.stack([sq_out(sq_in(u) @ W[j * d:(j + 1) * d].T) for j in range(k)], axis=1)
    p = u.shape[0]
    logits = np.zeros((p, k))
    if init == "spread":                                # center j: vector floor((j + 1/2) p / k) in space j
        for j in range(k):
            c0 = uh[int((j + 0.5) * p / k), j]
            for i in range(p):
                logits[i, j] = z * (uh[i, j] @ (c0 / np.linalg.norm(c0)))
    out = []
    for it in range(iterations):
        s = np_softmax(logits)                          # s_ij over clusters j
        c = np.zeros((k, d))
        for j in range(k):
            for i in range(p):
                c[j] += s[i, j] * uh[i, j]              # eq. 12: weighted sum
        out.append((s, c))
        dist = np.zeros((p, k))
        for i in range(p):
            for j in range(k):
                dist[i, j] = -uh[i, j] @ (c[j] / np.linalg.norm(c[j]))
        logits = -z * dist
    return out


U = np.array(
    [[1.0, 0.2, -0.3], [0.1, 0.9, 0.4], [-0.5, 0.3, 0.8], [0.05, -0.02, 0.01]]
)  # p=4, C=3 (last vector small: squash in its near-linear range)
W = np.array(
    [[0.5, -0.2, 0.1], [0.0, 0.3, 0.2],    # W_1 (d=2 rows)
     [-0.1, 0.4, 0.6], [0.7, 0.0, -0.3]]   # W_2
)


def make(k, d, iterations, z, weight, **kw):
    m = MultimodalClustering(weight.shape[1], clusters=k, dim=d, iterations=iterations, temperature=z, **kw)
    m = m.double()
    with torch.no_grad():
        m.proj.weight.copy_(torch.tensor(weight, dtype=torch.float64))
    return m


def test_squash_matches_formula_and_is_safe_at_zero():
    x = torch.tensor([[3.0, 4.0], [0.01, 0.0], [0.0, 0.0]], requires_grad=True)
    y = squash(x)
    np.testing.assert_allclose(y[0].detach().numpy(), np.array([3, 4]) / 5 * np.tanh(50), rtol=1e-6)
    np.testing.assert_allclose(y[1].detach().numpy(), [np.tanh(0.1), 0.0], rtol=1e-5)
    assert torch.all(y[2] == 0)
    y.sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("iterations", [1, 2, 3])
@pytest.mark.parametrize("z", [1.0, 5.0])
def test_matches_numpy(iterations, z):
    m = make(2, 2, iterations, z, W)
    with torch.no_grad():
        out = m(torch.tensor(U)[None])
        uh = m.project(torch.tensor(U)[None])[0].numpy()
    assert isinstance(out, Clusters)
    s_ref, c_ref = np_cluster(U, W, 2, 2, iterations, z)[-1]
    np.testing.assert_allclose(out.assign[0].numpy(), s_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out.centers[0].numpy(), c_ref, rtol=1e-10, atol=1e-12)
    # dist is w.r.t. the returned centers
    dist_ref = -np.einsum("pkd,kd->pk", uh, c_ref / np.linalg.norm(c_ref, axis=1, keepdims=True))
    np.testing.assert_allclose(out.dist[0].numpy(), dist_ref, rtol=1e-10, atol=1e-12)


def test_first_iteration_is_uniform_and_centers_depend_on_assignments():
    m = make(2, 2, 3, 5.0, W)
    out1 = make(2, 2, 1, 5.0, W)(torch.tensor(U)[None])
    np.testing.assert_allclose(out1.assign.numpy(), 0.5)
    out3 = m(torch.tensor(U)[None])
    # centers are weighted sums with the final s (eq. 12), not plain sums (reference-code bug)
    uh = m.project(torch.tensor(U)[None])
    plain = uh.sum(1)
    weighted = torch.einsum("bpk,bpkd->bkd", out3.assign, uh)
    torch.testing.assert_close(out3.centers, weighted)
    assert not torch.allclose(out3.centers / out3.centers.norm(dim=-1, keepdim=True),
                              plain / plain.norm(dim=-1, keepdim=True), atol=1e-3)
    torch.testing.assert_close(out3.assign.sum(-1), torch.ones(1, 4, dtype=torch.float64))


def test_batch_items_are_independent_and_permutation_invariant():
    torch.manual_seed(0)
    m = MultimodalClustering(8, clusters=3, dim=4, iterations=3, temperature=2.0)
    u = torch.randn(2, 6, 8)
    out = m(u)
    solo = m(u[1:])
    torch.testing.assert_close(out.centers[1:], solo.centers)
    perm = torch.randperm(6)
    outp = m(u[:, perm])
    torch.testing.assert_close(outp.centers, out.centers, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(outp.assign, out.assign[:, perm])


def test_recovers_separated_groups():
    """Two groups of vectors in different directions; space j sees group j's coordinates."""
    g = torch.Generator().manual_seed(0)
    n = 12
    theta = 0.3 * (torch.rand(n, generator=g) - 0.5)
    big_a = torch.stack([theta.cos(), theta.sin()], 1)
    big_b = torch.stack([theta.sin(), theta.cos()], 1)
    small = 0.02 * torch.randn(n, 2, generator=g)
    group_a = torch.cat([big_a, small], 1)                          # (n, 4)
    group_b = torch.cat([small.flip(0), big_b], 1)
    u = torch.cat([group_a, group_b])[torch.randperm(2 * n, generator=g)]
    labels = (u[:, 2:].norm(dim=1) > u[:, :2].norm(dim=1)).long()   # 0: group a, 1: group b
    m = MultimodalClustering(4, clusters=2, dim=2, iterations=3, temperature=10.0)
    with torch.no_grad():                       # W_1 = [I 0], W_2 = [0 I]: identity-like
        m.proj.weight.copy_(torch.eye(4))
    out = m(u[None])
    assert torch.equal(out.assign[0].argmax(1), labels)
    assert out.assign[0].max(1).values.min() > 0.9
    # centers point along their group's (projected) mean direction
    cos = torch.nn.functional.cosine_similarity(out.centers[0, 0], torch.tensor([1.0, 0.0]), dim=0)
    assert cos > 0.99
    # a low z gives softer assignments than a high one
    m.temperature = 1.0
    soft = m(u[None])
    assert soft.assign[0].max(1).values.mean() < out.assign[0].max(1).values.mean()


@pytest.mark.parametrize("squash_at", ["both", "projected", "input", "none"])
@pytest.mark.parametrize("init", ["uniform", "spread"])
def test_squash_placement_and_first_centers_match_numpy(squash_at, init):
    """train.squash / train.cluster_init (make structure) against the NumPy equations; the
    squashes bound ||u^_ij|| by 1 when the projections are squashed."""
    m = make(2, 2, 3, 5.0, W, squash=squash_at, init=init).requires_grad_(False)
    out = m(torch.tensor(U[None] * 4.0))
    s, c = np_cluster(U * 4.0, W, 2, 2, 3, 5.0, squash_at, init)[-1]
    np.testing.assert_allclose(out.assign[0].numpy(), s, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out.centers[0].numpy(), c, rtol=1e-10, atol=1e-12)
    big = make(2, 2, 1, 5.0, W * 4, squash=squash_at).requires_grad_(False)   # projections of norm > 1
    norms = big.project(torch.tensor(U[None] * 4.0)).norm(dim=-1)
    assert (norms <= 1 + 1e-12).all() == (squash_at in ("both", "projected"))
    if init == "spread":            # the first assignments are not uniform any more
        one = make(2, 2, 1, 5.0, W, squash=squash_at, init=init).requires_grad_(False)(torch.tensor(U[None] * 4.0))
        assert not np.allclose(one.assign[0].numpy(), 0.5)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError):
        MultimodalClustering(4, squash="twice")
    with pytest.raises(ValueError):
        MultimodalClustering(4, init="random")
    with pytest.raises(ValueError):
        MultimodalClustering(4, iterations=0)
    with pytest.raises(ValueError):
        MultimodalClustering(4, temperature=0.0)
    with pytest.raises(ValueError):
        MultimodalClustering(4)(torch.zeros(1, 3, 5))
