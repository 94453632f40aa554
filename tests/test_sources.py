"""Stem-conditioned scores and distinct-source recall (dmc.localization.sources) by hand."""

import numpy as np
import pytest

from dmc.localization.sources import distinct_source_recall, stem_scores

A = [0, 0, 2, 2]      # x0, y0, x1, y1: rows 0-1, cols 0-1 of a 4 x 4 map
B = [2, 2, 4, 4]      # rows 2-3, cols 2-3


def test_stem_map_on_its_own_source():
    heat = np.zeros((4, 4))
    heat[0, 0], heat[0, 1], heat[3, 3] = 1.0, 0.6, 0.7
    s = stem_scores(heat, A, [B], threshold=0.5)
    # argmax (0, 0) in A; >= 0.5: (0,0), (0,1) inside A, (3,3) outside -> 2 / (4 + 1)
    assert s.pointing and not s.wrong_source
    assert s.ciou == pytest.approx(0.4)


def test_stem_map_on_the_other_source_is_a_wrong_source():
    heat = np.zeros((4, 4))
    heat[2, 3] = 1.0
    s = stem_scores(heat, A, [B], threshold=0.5)
    assert not s.pointing and s.wrong_source and s.ciou == 0.0
    # peak in neither box: a miss, not a wrong source
    heat = np.zeros((4, 4))
    heat[0, 3] = 1.0
    s = stem_scores(heat, A, [B], threshold=0.5)
    assert not s.pointing and not s.wrong_source
    # no other source: never a wrong source
    assert not stem_scores(heat, A, np.zeros((0, 4)), threshold=0.5).wrong_source


def test_distinct_source_recall_matches_one_to_one():
    maps = np.zeros((3, 4, 4))
    maps[0][2:, 2:] = 1.0            # exactly B: IoU 1
    maps[1][:2, :3] = 1.0            # A plus 2 pixels: IoU 4 / 6
    maps[2][:] = 0.3                 # constant: nothing above 0.5 x max, IoU 0 with both
    r = distinct_source_recall(maps, [A, B], relative=0.5, iou_hit=0.3)
    assert sorted(r.match) == [(0, 1, pytest.approx(4 / 6)), (1, 0, 1.0)]
    assert (r.hits, r.pointing_hits, r.sources) == (2, 2, 2)
    assert distinct_source_recall(maps, [A, B], iou_hit=0.7).hits == 1


def test_one_cluster_cannot_explain_two_sources():
    maps = np.zeros((2, 4, 4))
    maps[0][:2, :2] = 1.0
    maps[0][2:, 2:] = 1.0            # covers A and B: IoU 4 / 8 with each
    maps[1][0, 3] = 1.0              # one pixel in neither box
    r = distinct_source_recall(maps, [A, B], iou_hit=0.3)
    assert sorted(v for _, _, v in r.match) == [0.0, 0.5]
    assert (r.hits, r.pointing_hits, r.sources) == (1, 1, 2)


def test_more_sources_than_clusters_leaves_misses():
    maps = np.zeros((1, 4, 4))
    maps[0][:2, :2] = 1.0
    r = distinct_source_recall(maps, [A, B])
    assert (r.hits, r.sources, len(r.match)) == (1, 2, 1)
    assert distinct_source_recall(maps, np.zeros((0, 4))).sources == 0
