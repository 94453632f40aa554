"""DSOL's class-aware metrics (dmc.localization.classaware, dmc.localization.classmaps) against
hand computations on tiny made-up maps and boxes."""

import numpy as np
import pytest
import sklearn.metrics

from dmc.localization import classaware as ca
from dmc.localization.classmaps import class_maps, cluster_shares, gate_by_heat, gated_shares


def test_resize_is_bilinear_with_half_pixel_centres():
    # cv2 INTER_LINEAR, 2 -> 4: source x = (dst + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25, clamped to [0, 1]
    out = ca.resize_map(np.array([[0.0, 1.0], [0.0, 1.0]]), size=4)
    assert out.shape == (4, 4)
    np.testing.assert_allclose(out, np.tile([0.0, 0.25, 0.75, 1.0], (4, 1)))


def test_gt_map_truncates_like_dsol():
    # (x, y, w, h) = (0.1, 0.25, 0.5, 0.3) * 10 -> rows int(2.5):int(5.5) = 2..4, cols int(1):int(6) = 1..5
    g = ca.gt_map([[0.1, 0.25, 0.5, 0.3]], size=10)
    expect = np.zeros((10, 10))
    expect[2:5, 1:6] = 1
    np.testing.assert_array_equal(g, expect)


def test_xyxy_to_xywh():
    np.testing.assert_allclose(ca.xyxy_to_xywh([[10, 20, 30, 60]], (100, 80)), [[0.1, 0.25, 0.2, 0.5]])


PRED = np.array([[1.0, 0.6, 0.0, 0.0],
                 [0.4, 0.5, 0.0, 0.0],
                 [0.0, 0.0, 0.0, 0.0],
                 [0.0, 0.0, 0.0, 0.9]])


def test_class_ciou_binarises_strictly_above_relative_max():
    gt = np.zeros((4, 4))
    gt[:2, :2] = 1
    # > 0.5: (0,0), (0,1), (3,3); 0.5 itself is out. inside 2, outside 1 -> 2 / (4 + 1)
    assert ca.class_ciou(PRED, gt, 0.5) == pytest.approx(0.4)
    # > 0.4 adds (1,1): 3 / (4 + 1)
    assert ca.class_ciou(PRED, gt, 0.4) == pytest.approx(0.6)


def test_silent_share_counts_values_at_or_below_02():
    assert ca.silent_share(np.array([[0.1, 0.2], [0.3, 0.5]])) == 0.5
    # PRED: 11 of 16 pixels <= 0.2
    assert ca.silent_share(PRED) == pytest.approx(11 / 16)


def test_score_image_means_over_sounding_and_silent_classes():
    maps = np.zeros((4, 4, 4))
    maps[0] = PRED                       # class 0 sounds, box rows 0-1 cols 0-1: cIoU 0.4 (above)
    maps[2][2:, 2:] = 1.0                # class 2 sounds, box rows 2-3 cols 2-3, map exactly there: 1
    maps[1] = 0.25                       # class 1 drawn, silent: 0 of 16 pixels <= 0.2
    maps[3][0, 0] = 1.0                  # class 3 absent: 15 of 16 pixels <= 0.2
    boxes = [[0, 0, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5], [0, 0.5, 0.5, 0.5]]
    s = ca.score_image(maps, boxes, box_classes=[0, 2, 1], sounding=[True, True, False], relative=0.5, size=4)
    assert s.ciou == pytest.approx((0.4 + 1.0) / 2)
    assert s.nsa == pytest.approx((0 + 15 / 16) / 2)
    assert (s.n_sounding, s.n_silent) == (2, 2)
    assert s.nsa_drawn == 0 and s.n_drawn_silent == 1        # class 1 only: drawn and silent


def test_score_image_without_sounding_class_has_no_ciou():
    s = ca.score_image(np.zeros((2, 4, 4)), [[0, 0, 0.5, 0.5]], [1], [False], size=4)
    assert np.isnan(s.ciou) and s.nsa == 1.0 and s.nsa_drawn == 1.0


def test_threshold_of_ciou30_is_dsols_float():
    assert ca.SUCCESS_THRESHOLDS[6] == 0.05 * 6 > 0.3
    assert ca.SUCCESS_THRESHOLDS[2] == 0.1 and ca.SUCCESS_THRESHOLDS[10] == 0.5


def test_success_rates_ciou30_and_auc_by_hand():
    cious = [0.3, 0.5, 0.1, float("nan")]          # nan (no sounding class) dropped: 3 images
    rates = ca.success_rates(cious)
    expect = np.array([1, 1, 1] + [2 / 3] * 3 + [1 / 3] * 5 + [0] * 10)   # 0.3 misses 0.30000000000000004
    np.testing.assert_allclose(rates, expect)
    assert ca.ciou_at_30(cious) == pytest.approx(1 / 3)
    # trapezoids of width 0.05: 0.05 * (sum(rates) - (rates[0] + rates[20]) / 2) = 0.05 * (20/3 - 1/2)
    assert ca.auc(cious) == pytest.approx(37 / 120)
    assert ca.auc(cious) == pytest.approx(sklearn.metrics.auc(ca.SUCCESS_THRESHOLDS, rates))   # DSOL's call
    summary = ca.summarize([ca.ImageScore(c, n, 1, 1, d) for c, n, d in
                            zip(cious, [0.5, 1.0, float("nan"), 0.0], [1.0, float("nan"), float("nan"), 0.0])])
    assert summary == pytest.approx({"ciou30": 1 / 3, "auc": 37 / 120, "nsa": 0.5, "nsa_drawn": 0.5, "n_images": 3})


def test_cluster_shares_by_hand():
    m = np.array([[1.0, 3.0], [0.0, 0.0]])            # p = 2 positions, k = 2 clusters
    out = cluster_shares(m, np.array([0.25, 0.75]))   # w m = [.25, 2.25] -> [.1, .9]; zero heat -> 0
    np.testing.assert_allclose(out, [[0.1, 0.9], [0.0, 0.0]])


def test_gate_by_heat_by_hand():
    # 3 positions, 2 clusters; heat [1, 3, 2] -> min-max [0, 1, 0.5]
    a = np.array([[0.2, 0.8], [0.5, 0.5], [1.0, 0.0]])
    np.testing.assert_allclose(gate_by_heat(a, np.array([1.0, 3.0, 2.0])), [[0, 0], [0.5, 0.5], [0.5, 0]])
    # a constant heat map: all zeros (nothing stands out as sounding)
    np.testing.assert_array_equal(gate_by_heat(a, np.full(3, 2.0)), np.zeros((3, 2)))


def test_gated_shares_by_hand():
    m = np.array([[1.0, 3.0], [0.0, 1.0], [0.0, 0.0]])   # p = 3, k = 2
    w = np.array([0.25, 0.75])
    # w m = [[.25, 2.25], [0, .75], [0, 0]]: shares [[.1, .9], [0, 1], [0, 0]]; heat [2.5, .75, 0] -> [1, .3, 0]
    np.testing.assert_allclose(gated_shares(m, w, "none"), cluster_shares(m, w))
    g = gated_shares(m, w, "heat")
    np.testing.assert_allclose(g, [[0.1, 0.9], [0.0, 0.3], [0.0, 0.0]])
    # the gated maps sum over the clusters to the min-max normalised heat map
    np.testing.assert_allclose(g.sum(-1), [1.0, 0.3, 0.0])
    # a silent cluster (small w) at its own object: share 1 ungated, small gated
    m2 = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    w2 = np.array([0.9, 0.1])
    assert cluster_shares(m2, w2)[1, 1] == 1.0 and gated_shares(m2, w2, "heat")[1, 1] == pytest.approx(0.1 / 0.9)
    with pytest.raises(ValueError, match="gate"):
        gated_shares(m, w, "sound")


def test_class_maps_sum_each_class_clusters():
    cm = np.arange(3 * 2 * 2, dtype=float).reshape(3, 2, 2)
    out = class_maps(cm, [1, 0, 1], 3)
    np.testing.assert_array_equal(out[0], cm[1])
    np.testing.assert_array_equal(out[1], cm[0] + cm[2])
    np.testing.assert_array_equal(out[2], np.zeros((2, 2)))
    with pytest.raises(ValueError):
        class_maps(cm, [0, 1], 3)


def test_scene_relative_follows_the_dsol_file_of_the_scene():
    assert ca.scene_relative(1, 1) == 0.1 and ca.scene_relative(1, 3) == 0.1     # tools.py (Solo)
    assert ca.scene_relative(2, 2) == 0.2                                       # eval_duet.py
    assert ca.scene_relative(2, 4) == 0.5 and ca.scene_relative(3, 3) == 0.5    # eval.py (Synthetic)
