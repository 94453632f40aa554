"""The hierarchical bootstrap (seeds, then units within each seed) against hand computations."""

import numpy as np
import pytest

from dmc.localization.bootstrap import draw_hierarchical, hierarchical_difference, hierarchical_replicates


def ones(n):
    return np.ones(n)


def test_enumerated_distribution_of_a_tiny_case():
    """Two seeds of two clips, accuracy-like (den 1). A is right on seed 0's first clip only, B never.
    By hand: a drawn seed-0 slot is 1 / 0.5 / 0 with probability 1/4, 1/2, 1/4 (two clip draws), a
    seed-1 slot is 0; each slot is seed 0 with probability 1/2, so a slot is 1: 1/8, 0.5: 1/4,
    0: 5/8; a replicate is the mean of two independent slots: 1: 1/64, 0.75: 4/64, 0.5: 14/64,
    0.25: 20/64, 0: 25/64. The 2.5 % point is 0 (25/64 of the mass) and the 97.5 % point is 0.75
    (59/64 < 0.975 < 63/64)."""
    a = [(np.array([[1.0], [0.0]]), ones(2)), (np.zeros((2, 1)), ones(2))]
    b = [(np.zeros((2, 1)), ones(2)), (np.zeros((2, 1)), ones(2))]
    d = hierarchical_difference(a, b, replicates=20000, seed=0)
    np.testing.assert_allclose(d.per_seed[:, 0], [0.5, 0.0])
    assert d.point[0] == pytest.approx(0.25)
    assert (d.higher[0], d.lower[0]) == (1, 0)            # seed 1 is a tie: in neither count
    values, counts = np.unique(d.replicates[:, 0], return_counts=True)
    np.testing.assert_allclose(values, [0.0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(counts / 20000, np.array([25, 20, 14, 4, 1]) / 64, atol=0.01)
    assert (d.lo[0], d.hi[0]) == (0.0, 0.75)


def test_replicates_of_given_draws_by_hand():
    """Seed 0: one clip, A 1/1, B 0/1. Seed 1: two clips, A (1/2, 3/4), B (1/2, 1/4) as num/den.
    Replicate 0 draws seed 1 twice: clip counts (2, 0): A 2/4, B 2/4 -> 0; (0, 2): A 6/8, B 2/8
    -> 0.5; mean 0.25. Replicate 1 draws seeds 0 and 1: seed 0 -> 1; seed 1 with counts (1, 1):
    A 4/6, B 2/6 -> 1/3; mean 2/3. counts[s] holds one row per slot that drew s, row-major."""
    a = [(np.array([[1.0]]), ones(1)), (np.array([[1.0], [3.0]]), np.array([2.0, 4.0]))]
    b = [(np.array([[0.0]]), ones(1)), (np.array([[1.0], [1.0]]), np.array([2.0, 4.0]))]
    seeds = np.array([[1, 1], [0, 1]])
    counts = {0: np.array([[1.0]]), 1: np.array([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]])}
    np.testing.assert_allclose(hierarchical_replicates(a, b, seeds, counts)[:, 0], [0.25, 2 / 3])


def test_the_same_units_are_drawn_for_both_settings():
    """A is B plus one on every clip (den 1): paired by clip, every replicate is exactly +1; seeds
    may have different numbers of clips. An unpaired draw would scatter around 1."""
    rng = np.random.default_rng(5)
    b = [(rng.integers(0, 3, size=(n, 2)).astype(float), ones(n)) for n in (3, 5, 2)]
    a = [(num + 1.0, den) for num, den in b]
    d = hierarchical_difference(a, b, replicates=500, seed=3)
    np.testing.assert_allclose(d.replicates, 1.0)
    np.testing.assert_allclose(d.lo, [1.0, 1.0])
    np.testing.assert_allclose(d.hi, [1.0, 1.0])
    assert list(d.higher) == [3, 3] and list(d.lower) == [0, 0]


def test_seed_level_only_is_one_unit_per_seed():
    """Per-seed differences +1 and 0 with one unit each: a replicate is the mean of two seeds drawn
    with replacement: 0, 0.5, 1 with probability 1/4, 1/2, 1/4; interval [0, 1]."""
    a = [(np.array([[1.0]]), ones(1)), (np.array([[0.0]]), ones(1))]
    b = [(np.array([[0.0]]), ones(1)), (np.array([[0.0]]), ones(1))]
    d = hierarchical_difference(a, b, replicates=8000, seed=1)
    values, counts = np.unique(d.replicates[:, 0], return_counts=True)
    np.testing.assert_allclose(values, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(counts / 8000, [0.25, 0.5, 0.25], atol=0.02)
    assert (d.lo[0], d.hi[0]) == (0.0, 1.0) and d.point[0] == 0.5


def test_draws_are_deterministic_and_laid_out_as_documented():
    units = [4, 1, 3]
    seeds, counts = draw_hierarchical(units, replicates=50, seed=7)
    again = draw_hierarchical(units, replicates=50, seed=7)
    np.testing.assert_array_equal(seeds, again[0])
    assert all(np.array_equal(counts[s], again[1][s]) for s in range(3))
    assert seeds.shape == (50, 3) and seeds.min() >= 0 and seeds.max() <= 2
    for s, n in enumerate(units):
        assert counts[s].shape == ((seeds == s).sum(), n)
        np.testing.assert_array_equal(counts[s].sum(1), n)        # n draws of the seed's n units
    other = draw_hierarchical(units, replicates=50, seed=8)[0]
    assert not np.array_equal(seeds, other)
    a = [(np.arange(n, dtype=float)[:, None], ones(n)) for n in units]
    b = [(np.zeros((n, 1)), ones(n)) for n in units]
    d1, d2 = hierarchical_difference(a, b, 300, seed=7), hierarchical_difference(a, b, 300, seed=7)
    np.testing.assert_array_equal(d1.replicates, d2.replicates)


def test_unpaired_inputs_are_refused():
    with pytest.raises(ValueError, match="differ in number"):
        hierarchical_difference([(np.zeros((2, 1)), ones(2))], [], 10)
    with pytest.raises(ValueError, match="seed 0: the two runs' units differ"):
        hierarchical_difference([(np.zeros((2, 1)), ones(2))], [(np.zeros((3, 1)), ones(3))], 10)
