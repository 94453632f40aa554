"""Sharpness of the soft assignments (dmc.model.diagnostics) against hand computations."""

import math

import pytest
import torch

from dmc.model.diagnostics import SharpnessMeter, sharpness, sharpness_per_clip


def test_hand_computed_example():
    # one clip, p = 2 vectors, k = 2 clusters: one hard row, one uniform row
    s = torch.tensor([[[1.0, 0.0], [0.5, 0.5]]])
    got = sharpness(s)
    assert got["max_assign"] == pytest.approx((1.0 + 0.5) / 2)
    # row entropies 0 and log 2, each over log 2 -> mean 0.5
    assert got["entropy"] == pytest.approx(0.5)
    # mass per cluster m = (0.75, 0.25): exp(-(0.75 ln 0.75 + 0.25 ln 0.25)) = 1.7548
    assert got["clusters_used"] == pytest.approx(math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25))))
    assert got["clusters_used"] == pytest.approx(1.75476, abs=1e-5)


@pytest.mark.parametrize("k", [2, 5, 10])
def test_limits_uniform_hard_and_collapsed(k):
    p = 6
    uniform = torch.full((3, p, k), 1.0 / k)
    assert sharpness(uniform) == pytest.approx({"max_assign": 1 / k, "entropy": 1.0, "clusters_used": k})
    # hard, vectors dealt round-robin over the clusters (k = 10 > p = 6: 6 clusters hold one each)
    hard = torch.nn.functional.one_hot(torch.arange(p) % k, k).float()[None]
    h = sharpness(hard)
    assert h["max_assign"] == pytest.approx(1.0) and h["entropy"] == pytest.approx(0.0)
    counts = torch.bincount(torch.arange(p) % k).double() / p        # clusters that hold vectors
    assert h["clusters_used"] == pytest.approx(math.exp(-(counts * counts.log()).sum().item()))
    if p % k == 0 or k > p:                                        # equal shares: exactly min(k, p) clusters
        assert h["clusters_used"] == pytest.approx(min(k, p))
    collapsed = torch.zeros(2, p, k)
    collapsed[..., 0] = 1.0
    assert sharpness(collapsed) == pytest.approx({"max_assign": 1.0, "entropy": 0.0, "clusters_used": 1.0})


def test_meter_weights_clips_equally_over_batches():
    a = torch.softmax(torch.randn(3, 7, 4, generator=torch.Generator().manual_seed(0)), -1)
    b = torch.softmax(3 * torch.randn(5, 7, 4, generator=torch.Generator().manual_seed(1)), -1)
    meter = SharpnessMeter()
    meter.update(a)
    meter.update(b)
    whole = sharpness(torch.cat([a, b]))
    assert meter.means() == pytest.approx(whole)
    assert meter.count == 8


def test_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\(B, p, k\)"):
        sharpness_per_clip(torch.ones(4, 3))
