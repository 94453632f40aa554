"""Audio-free counting baselines and the fair tie-break (dmc.localization.counting) by hand."""

import numpy as np
import pandas as pd
import pytest

from dmc.localization import counting as C
from dmc.localization.multisource import hard_shares, source_score


def test_uniform_assignments_all_go_to_cluster_0_without_a_fair_break():
    u = np.full((1, 4, 2), 0.5)
    np.testing.assert_array_equal(hard_shares(u), [[1.0, 0.0]])
    np.testing.assert_array_equal(C.fair_hard_shares(u, "fractional"), [[0.5, 0.5]])
    assert C.tie_share(u) == 1.0


def test_fractional_shares_by_hand():
    assign = np.array([[[0.6, 0.4, 0.0], [0.4, 0.4, 0.2], [0.1, 0.1, 0.8]]])
    # vector 0 -> cluster 0; vector 1 tied 0/1 -> 1/2 each; vector 2 -> cluster 2
    np.testing.assert_allclose(C.fair_hard_shares(assign), [[0.5, 1 / 6, 1 / 3]])
    assert C.tie_share(assign) == pytest.approx(1 / 3)


def test_random_tie_break_is_seeded_and_picks_among_the_tied():
    u = np.full((1, 2000, 2), 0.5)
    a, b = C.fair_hard_shares(u, "random", seed=1), C.fair_hard_shares(u, "random", seed=1)
    np.testing.assert_array_equal(a, b)
    assert a.sum() == pytest.approx(1.0) and 0.45 < a[0, 0] < 0.55
    assign = np.array([[[0.2, 0.4, 0.4], [0.9, 0.05, 0.05]]])
    for seed in range(10):
        s = C.fair_hard_shares(assign, "random", seed=seed)
        assert s[0, 0] == 0.5 and s[0, 1] + s[0, 2] == 0.5   # never the untied smaller cluster 0 for vector 0
    with pytest.raises(ValueError):
        C.fair_hard_shares(assign, "first")


def test_uniform_assignments_give_a_degenerate_row():
    u = np.full((3, 5, 4, 2), 0.5)                      # 3 clips x 5 pairs, p = 4, k = 2
    s = source_score(C.fair_hard_shares(u), C.fair_hard_shares(u)).mean(-1)
    np.testing.assert_allclose(s, 2.0)                  # exp(entropy of [1/2, 1/2]) = 2 for every clip
    assert C.is_degenerate(s)
    assert not C.is_degenerate([1.0, 1.5, 1.0])


def test_visible_counts_count_every_drawn_object():
    boxes = pd.DataFrame({"video": ["b", "b", "a", "a", "a", "a"], "object_id": [0, 0, 0, 1, 2, 1],
                          "sounding": [1, 1, 1, 0, 0, 0]})
    assert C.visible_counts(boxes).to_dict() == {"a": 3, "b": 1}


def test_visible_count_cuts_fitted_on_fit_clips_only():
    pred, cuts = C.visible_count_predictions([2, 3, 3, 4, 5], [1, 2, 2, 3, 3], [1, 2, 3, 4, 6], 3)
    assert cuts == [2.5, 3.5]
    np.testing.assert_array_equal(pred, [1, 1, 2, 3, 3])
