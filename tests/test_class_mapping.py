"""The cluster -> class mapping (dmc.localization.class_mapping) on planted cases, and its file."""

import itertools
import json

import numpy as np
import pytest

from dmc.localization import class_mapping as cm
from dmc.localization.mapping_file import (ClassMapping, MappingFileError, mapping_path, read_mapping,
                                           write_mapping)


def planted(rng):
    """Positions of 3 classes whose hard cluster (of k = 5) is planted: class 0 -> cluster 3 (90 %,
    else 1), class 1 -> cluster 0 (60 %) or 4 (40 %), class 2 -> cluster 2 (80 %, else 1)."""
    plan = {0: ([3, 1], [0.9, 0.1]), 1: ([0, 4], [0.6, 0.4]), 2: ([2, 1], [0.8, 0.2])}
    labels = rng.integers(-1, 3, size=(40, 30))          # -1: background, its mass is ignored
    winners = rng.integers(0, 5, size=labels.shape)
    for c, (clusters, p) in plan.items():
        where = labels == c
        winners[where] = rng.choice(clusters, size=where.sum(), p=p)
    return np.eye(5)[winners], labels


def brute_force(L):
    """DSOL's objective by enumeration: every cluster to one class, every class >= 1 cluster."""
    C, k = L.shape
    best = max((m for m in itertools.product(range(C), repeat=k) if set(m) == set(range(C))),
               key=lambda m: sum(L[c, j] for j, c in enumerate(m)))
    return np.array(best)


def test_planted_mapping_is_recovered():
    mass, labels = planted(np.random.default_rng(0))
    owner, M = cm.learn(mass, labels, 3)
    # cluster 3 -> class 0, clusters 0 and 4 -> class 1, cluster 2 -> class 2; cluster 1 holds
    # 10 % of class 0 and 20 % of class 2, so it joins class 2
    np.testing.assert_array_equal(owner, [1, 2, 2, 0, 1])
    assert M.shape == (3, 5) and M.sum() == (labels >= 0).sum()
    L = cm.row_shares(M)
    assert cm.objective(L, owner) == pytest.approx(cm.objective(L, brute_force(L)))


def test_every_class_gets_a_cluster_where_argmax_would_not():
    L = np.array([[0.9, 0.6], [0.1, 0.4]])           # argmax per cluster: both to class 0
    np.testing.assert_array_equal(L.argmax(0), [0, 0])
    np.testing.assert_array_equal(cm.match(L), [0, 1])   # 0.9 + 0.4 > 0.6 + 0.1


def test_match_equals_enumeration_on_random_tables():
    rng = np.random.default_rng(3)
    for _ in range(20):
        L = cm.row_shares(rng.random((3, 5)))
        assert cm.objective(L, cm.match(L)) == pytest.approx(cm.objective(L, brute_force(L)))


def test_fewer_clusters_than_classes_is_one_to_one():
    L = np.array([[0.5, 0.5], [0.8, 0.1], [0.1, 0.9]])
    np.testing.assert_array_equal(cm.match(L), [1, 2])   # class 0 gets no cluster


def test_contingency_and_row_shares_by_hand():
    mass = np.array([[[1.0, 0.0], [0.25, 0.75], [5.0, 5.0]]])   # 1 pair, 3 positions, k = 2
    M = cm.contingency(mass, np.array([[0, 0, -1]]), 2)
    np.testing.assert_allclose(M, [[1.25, 0.75], [0.0, 0.0]])
    np.testing.assert_allclose(cm.row_shares(M), [[0.625, 0.375], [0.0, 0.0]])


def test_position_labels():
    # 2 x 2 grid on a 4 x 4 frame: cell centres (1, 1), (3, 1), (1, 3), (3, 3) as (x, y)
    boxes = [[0, 0, 2, 2], [0, 0, 4, 2], [2, 2, 4, 4]]
    out = cm.position_labels(boxes, [5, 1, 2], [True, True, False], (2, 2), (4, 4))
    np.testing.assert_array_equal(out, [-1, 1, -1, -1])   # (0,0) in boxes of classes 5 and 1; silent box ignored


def test_mapping_file_round_trip_and_errors(tmp_path):
    model = tmp_path / "model.pt"
    model.write_bytes(b"")
    path = mapping_path(model)
    assert path == tmp_path / "model.class_mapping.json"
    other = tmp_path / "headline" / "default_s3.pt"
    assert mapping_path(other) == tmp_path / "headline" / "default_s3.class_mapping.json"
    m = ClassMapping(["flute", "bird"], [1, 0, -1], [[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]], "train", "hungarian")
    write_mapping(path, m)
    assert read_mapping(path) == m
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.class_mapping.json", "model.pt"]   # no temp file left
    body = json.loads(path.read_text())
    body["cluster_to_class"] = [1, 0, 7]
    path.write_text(json.dumps(body))
    with pytest.raises(MappingFileError, match="class_mapping.json.*outside"):
        read_mapping(path)
    path.write_text("{not json")
    with pytest.raises(MappingFileError, match="class_mapping.json"):
        read_mapping(path)
    with pytest.raises(MappingFileError, match="not found"):
        read_mapping(tmp_path / "missing.json")
