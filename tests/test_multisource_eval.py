"""Per-pair, per-stem and per-clip tables of dmc.localization.multisource_eval on hand-made maps,
and the share maps of a (random-init) network against the heat maps of dmc.localization.heatmaps."""

import numpy as np
import pandas as pd
import pytest
import torch

from dmc.localization import classaware as ca
from dmc.localization import multisource_eval as me
from dmc.localization.heatmaps import analyse_arrays
from dmc.localization.localize import random_init_model
from dmc.localization.mapping_file import ClassMapping
from conftest import load_default_params

CLASSES = ["flute", "bird", "drum"]


def quadrant_shares():
    """k = 3 share maps on a 4 x 4 grid: cluster 0 is 1 on the top-left quadrant, cluster 1 is 0.5
    everywhere, cluster 2 is 1 on the bottom-right quadrant."""
    s = np.zeros((3, 4, 4))
    s[0, :2, :2] = 1.0
    s[1] = 0.5
    s[2, 2:, 2:] = 1.0
    return s


def objects_table():
    return pd.DataFrame({"pair": [0, 0, 1], "class": ["flute", "bird", "bird"], "sounding": [1, 0, 1],
                         "x0": [0, 2, 2], "y0": [0, 2, 2], "x1": [2, 4, 4], "y1": [2, 4, 4]})


def test_learn_mapping_on_planted_share_maps():
    shares = np.stack([quadrant_shares(), quadrant_shares()])
    m = me.learn_mapping(shares, objects_table(), (4, 4), CLASSES)
    # flute sounds on cluster 0's quadrant, bird on cluster 2's; drum never sounds and gets the rest
    assert m.cluster_to_class == [0, 2, 1]
    assert np.array(m.contingency).tolist() == [[4, 0, 0], [0, 0, 4], [0, 0, 0]]


def ramp():
    """A 4-cell row 1, 1, 0, 0 resized to 224 by hand: source s = (x + 0.5) * 4 / 224 - 0.5,
    value 1 up to s = 1, 2 - s between the centres of cells 1 and 2, 0 after."""
    s = (np.arange(224) + 0.5) * 4 / 224 - 0.5
    return np.clip(2 - s, 0, 1)


def test_pair_table_by_hand():
    shares = quadrant_shares()[None]
    mapping = ClassMapping(CLASSES, [0, 1, 2])
    t = me.pair_table(shares, objects_table()[lambda d: d.pair == 0], ["v"], mapping, (4, 4), relative=0.5)
    row = t.iloc[0]
    # flute's map is cluster 0's quadrant: a(x) a(y) after resizing; > 0.5 (x max = 1) lies inside the
    # box's 112 x 112 pixels, so cIoU = |pred| / |box|
    a = ramp()
    assert row.ca_ciou == pytest.approx((np.outer(a, a) > 0.5).sum() / 112 ** 2)
    assert 0.9 < row.ca_ciou < 1
    # silent classes: bird's map is 0.5 everywhere (no pixel <= 0.2); drum's is the mirrored quadrant
    assert row.ca_nsa == pytest.approx((0 + np.mean(np.outer(a[::-1], a[::-1]) <= 0.2)) / 2)
    assert (row.n_sounding_classes, row.n_silent_classes) == (1, 2)
    assert (row.recall_hits, row.recall_pointing_hits, row.recall_sources) == (1, 1, 1)
    # by scene: one sounding object is a Solo scene, r = 0.1: a(x) a(y) > 0.1 reaches past the box
    t = me.pair_table(shares, objects_table()[lambda d: d.pair == 0], ["v"], mapping, (4, 4))
    pred = np.outer(a, a) > 0.1
    assert t.relative.iloc[0] == 0.1
    assert t.ca_ciou.iloc[0] == pytest.approx(112 ** 2 / (112 ** 2 + pred.sum() - pred[:112, :112].sum()))


def test_stem_table_by_hand():
    objects = pd.DataFrame({"pair": [0, 0], "class": ["flute", "bird"], "sounding": [1, 1],
                            "x0": [0, 2], "y0": [0, 2], "x1": [2, 4], "y1": [2, 4]})
    heat = np.zeros((2, 4, 4))
    heat[0, 0, 0] = 1.0                      # stem of object 0 peaks in its own box
    heat[1, 0, 0] = 1.0                      # stem of object 1 peaks in object 0's box: wrong source
    t = me.stem_table(heat, pd.DataFrame({"pair": [0, 0], "object": [0, 1]}), objects, ["v"], (4, 4), 0.5)
    assert t.stem_pointing.tolist() == [1, 0] and t.stem_wrong.tolist() == [0, 1]
    assert t.stem_ciou.tolist() == pytest.approx([0.25, 0.0])        # one pixel of a 4-pixel box
    with pytest.raises(ValueError, match="not a sounding object"):
        me.stem_table(heat[:1], pd.DataFrame({"pair": [0], "object": [7]}), objects, ["v"], (4, 4), 0.5)


def test_clip_rows_are_ratios_of_sums():
    pairs = pd.DataFrame({"video": ["a", "a", "b", "b"], "ca_ciou": [0.3, 0.5, 0.1, np.nan],
                          "ca_nsa": [0.5, 1.0, np.nan, 0.0], "ca_nsa_drawn": [np.nan, 1.0, np.nan, 0.25],
                          "recall_hits": [1, 2, 0, 0],
                          "recall_pointing_hits": [2, 2, 1, 0], "recall_sources": [2, 2, 2, 1]})
    stems = pd.DataFrame({"video": ["a", "b", "b"], "stem_pointing": [1, 0, 1], "stem_ciou": [0.5, 0.0, 0.3],
                          "stem_wrong": [0, 1, 0]})
    clips = me.clip_rows(pairs, stems)
    assert clips.index.tolist() == ["a", "b"]
    assert clips.loc["a", "ca_images"] == 2 and clips.loc["b", "ca_images"] == 1
    assert clips.loc["a", "ca_hit30"] == 1                 # 0.3 misses DSOL's 0.30000000000000004
    r = me.ratios(clips)
    assert r["ca_ciou30"] == pytest.approx(1 / 3) and r["ca_auc"] == pytest.approx(37 / 120)   # as classaware
    assert r["ca_ciou_mean"] == pytest.approx(0.3)
    assert r["nsa"] == pytest.approx(0.5) and r["nsa_drawn"] == pytest.approx(0.625)
    assert r["recall"] == pytest.approx(3 / 7) and r["recall_pointing"] == pytest.approx(5 / 7)
    assert r["stem_pointing"] == pytest.approx(2 / 3) and r["wrong_source_rate"] == pytest.approx(1 / 3)
    assert r["stem_ciou30"] == pytest.approx(1 / 3)        # 0.5 only
    assert me.ratios(clips.loc[["b"]])["recall"] == 0.0


def test_share_maps_of_a_network_sum_to_one_and_give_its_heat_map():
    p = load_default_params()
    model = random_init_model(p)
    g = torch.Generator().manual_seed(0)
    frames = (torch.rand(3, 64, 64, 3, generator=g) * 255).to(torch.uint8).numpy()
    mels = torch.randn(3, 41, 64, generator=g).numpy()
    tau, rule = 5.0, "assignment_proximity"
    shares, heat = me.cluster_share_maps(model, frames, mels, tau, rule, bs=2)
    hw = model.visual.output_hw(64, 64)
    assert shares.shape == (3, p["train"]["clusters"], *hw) and heat.shape == (3, *hw)
    total = shares.sum(1)
    np.testing.assert_allclose(total[heat > 0], 1.0, rtol=1e-6)
    np.testing.assert_allclose(heat, analyse_arrays(model, frames, mels, tau, rule=rule).coarse, rtol=1e-4, atol=1e-6)


def test_score_model_end_to_end_on_a_random_init_network():
    p = load_default_params()
    model = random_init_model(p)
    g = torch.Generator().manual_seed(1)
    frames = (torch.rand(2, 64, 64, 3, generator=g) * 255).to(torch.uint8).numpy()
    mels = torch.randn(4, 41, 64, generator=g).numpy()
    objects = pd.DataFrame({"pair": [0, 0, 0, 1], "class": ["flute", "bird", "drum", "bird"], "sounding": [1, 1, 0, 1],
                            "x0": [0, 32, 0, 10], "y0": [0, 32, 40, 10],
                            "x1": [24, 60, 20, 40], "y1": [24, 60, 60, 40]})
    k = p["train"]["clusters"]
    mapping = ClassMapping(CLASSES, [j % 3 for j in range(k)])
    stems = pd.DataFrame({"pair": [0, 0], "object": [0, 1]})
    pairs, stem, clips = me.score_model(model, frames, mels[:2], objects, ["a", "b"], mapping, 5.0,
                                        "assignment_proximity", 0.3, stem_mels=mels[2:], stems=stems)
    assert pairs.n_sounding_classes.tolist() == [2, 1] and pairs.recall_sources.tolist() == [2, 1]
    assert pairs.n_drawn_silent_classes.tolist() == [1, 0]
    assert ((pairs.ca_ciou >= 0) & (pairs.ca_ciou <= 1)).all() and ((pairs.ca_nsa >= 0) & (pairs.ca_nsa <= 1)).all()
    assert len(stem) == 2 and set(stem.stem_wrong) <= {0, 1}
    assert (stem.stem_pointing & stem.stem_wrong).sum() == 0          # never both
    assert clips.loc["a", "stem_n"] == 2 and clips.loc["b", "stem_n"] == 0
    assert clips.loc["a", "recall_sources"] == 2
