"""Sound localization and multi-source detection: heat maps, metrics against hand computations,
the multi-source rule, trained vs untrained on the embedded default, and `dmc localize`."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import load_default_params, with_overrides, write_params
from dmc.config import Params
from dmc.io import ground_truth as G
from dmc.localization import heatmaps as H
from dmc.localization import metrics as M
from dmc.localization import localize as L
from dmc.localization import multisource as ms
from dmc.pipeline.cli import main
from dmc.model.network import DMC


def box_map(shape, *boxes):
    """Heat map that is 1 on the given pixel boxes (x0, y0, x1, y1 exclusive) and 0 elsewhere."""
    h = np.zeros(shape, np.float32)
    for x0, y0, x1, y1 in boxes:
        h[y0:y1, x0:x1] = 1
    return h


def save_model(model, params, path):
    cfg = {"model": params["model"], "train": {k: params["train"][k] for k in ("clusters", "dim", "iterations",
                                                                               "temperature")},
           "decode": params["decode"]}
    torch.save({"model": model.state_dict(), "config": cfg, "step": 0}, path)
    return path


# -- heat maps -----------------------------------------------------------------------------
def test_heat_map_shape_range_and_batching():
    p = load_default_params()
    model = L.random_init_model(p)
    g = torch.Generator().manual_seed(0)
    frames = (torch.rand(5, 64, 64, 3, generator=g) * 255).to(torch.uint8).numpy()
    mels = torch.randn(5, 41, 64, generator=g).numpy()
    an = H.analyse_arrays(model, frames, mels, batch_size=2)
    hw = model.visual.output_hw(64, 64)                     # 8 x 8 (tiny) or 16 x 16 (tiny16)
    assert hw == {"tiny": (8, 8), "tiny16": (16, 16)}.get(p["model"]["preset"], hw)
    assert an.coarse.shape == (5, *hw) and an.shares_a.shape == an.shares_v.shape == (5, p["train"]["clusters"])
    np.testing.assert_allclose(an.shares_a.sum(1), 1.0)
    heat = H.upsample(an.coarse, (64, 64))
    assert heat.shape == (5, 64, 64) and heat.dtype == np.float32
    assert heat.min() == 0.0 and heat.max() == 1.0
    np.testing.assert_allclose(heat.min(axis=(1, 2)), 0)
    np.testing.assert_allclose(heat.max(axis=(1, 2)), 1)
    # one batch or many: the same maps (eval mode, no batch coupling)
    whole = H.analyse_arrays(model, frames, mels, batch_size=64)
    np.testing.assert_allclose(whole.coarse, an.coarse, rtol=1e-4, atol=1e-6)
    # the heat map is the formula of the module docstring
    with torch.no_grad():
        f = H.frames_to_tensor(frames[:1])
        out = model(f, torch.from_numpy(mels[:1])[:, None])
        uhat = model.clustering.project(model.encode_visual(f)[0])
        w = torch.softmax(torch.nn.functional.cosine_similarity(out["ca"], out["cv"], dim=-1), -1)
        near = torch.einsum("bpkd,bkd->bpk", uhat, out["ca"] / out["ca"].norm(dim=-1, keepdim=True)).clamp_min(0)
        expected = (near * w[:, None]).sum(-1).reshape(1, *hw).numpy()
    np.testing.assert_allclose(an.coarse[:1], expected, rtol=1e-4, atol=1e-6)


def test_heatmap_candidates_are_the_pipelines_rules():
    """The val study (dmc.studies.heatmap_choice) scores the pipeline's own maps: each (rule, tau)
    candidate equals analyse_batch's map under localize.heatmap_rule = rule at that agreement
    temperature; ``assignment`` at tau = 0 is the plain mean over clusters of the visual
    assignments (1/k)."""
    from dmc.studies import heatmap_choice as C

    p = load_default_params()
    model = L.random_init_model(p).eval()
    g = torch.Generator().manual_seed(1)
    frames = H.frames_to_tensor((torch.rand(3, 64, 64, 3, generator=g) * 255).to(torch.uint8).numpy())
    mels = torch.randn(3, 1, 41, 64, generator=g)
    maps = C.candidate_maps(model, frames, mels, taus=(0.0, 1.0, 5.0))
    assert set(maps) == {(r, t) for r in H.RULES for t in (0.0, 1.0, 5.0)}
    for rule in H.RULES:
        for tau in (1.0, 5.0):
            np.testing.assert_allclose(maps[(rule, tau)], H.analyse_batch(model, frames, mels, tau, rule).coarse,
                                       rtol=1e-5, atol=1e-7)
    assert not np.allclose(maps[("proximity", 1.0)], maps[("assignment_proximity", 1.0)])
    with pytest.raises(ValueError, match="heat-map rule 'nearest'"):
        H.analyse_batch(model, frames, mels, 1.0, "nearest")
    np.testing.assert_allclose(maps[("assignment", 0.0)], 1.0 / p["train"]["clusters"], rtol=1e-5)
    box = np.zeros((3, 64, 64), bool)
    box[:, 20:40, 20:40] = True
    scores = C.score_model(model, ((frames + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy(),
                           mels[:, 0].numpy(), list(box), 0.5)
    assert set(scores) == {(r, t) for r in H.RULES for t in C.TAUS} and all(0 <= s["pointing"] <= 1 and 0 <= s["auc"] <= 1 for s in scores.values())


def test_normalize_and_center_prior():
    assert (H.normalize_maps(np.full((2, 4, 4), 3.0)) == 0).all()
    m = H.normalize_maps(np.arange(16.0).reshape(4, 4))
    assert m[0, 0] == 0 and m[3, 3] == 1
    prior = H.center_prior((64, 64), 0.25)
    assert prior.shape == (64, 64) and prior.min() == 0 and prior.max() == 1
    assert np.unravel_index(np.argmax(prior), prior.shape) == (31, 31)   # 4 centre pixels tie: first
    np.testing.assert_allclose(prior, prior.T)
    np.testing.assert_allclose(prior, prior[::-1, ::-1])


# -- ground truth and metrics ----------------------------------------------------------------
def test_box_scaling_and_masks():
    # a box of the 128x128 written frame in the 64x64 decoded frame: halved
    np.testing.assert_allclose(G.scale_boxes([[34, 11, 67, 43]], (128, 128), (64, 64)), [[17, 5.5, 33.5, 21.5]])
    # non-square source, linear per axis (no cropping)
    np.testing.assert_allclose(G.scale_boxes([[0, 0, 160, 90]], (160, 90), (64, 64)), [[0, 0, 64, 64]])
    # pixels whose centre lies inside: x 17..32 (centres 17.5..32.5 < 33.5), y 5..20
    m = G.box_mask([[17, 5.5, 33.5, 21.5]], (64, 64))
    ys, xs = np.nonzero(m)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (17, 32, 5, 20) and m.sum() == 16 * 16
    # integer boxes: exactly the pixels [x0, x1) x [y0, y1); union of two
    m = G.box_mask([[0, 0, 2, 3], [1, 1, 4, 2]], (5, 5))
    assert m.sum() == 6 + 2 and m[2, 1] and not m[3, 0] and m[1, 3]


def test_ground_truth_takes_the_nearest_frame(tmp_path):
    rows = [("v.mp4", k, k / 10, 0, "bird", 1, 10 + k, 20, 30 + k, 40) for k in range(20)]
    rows += [("v.mp4", k, k / 10, 1, "drum", 0, 60, 60, 90, 90) for k in range(20)]
    pd.DataFrame(rows, columns=["video", "frame", "time_s", "object_id", "class", "sounding", "x0", "y0", "x1",
                                "y1"]).to_csv(tmp_path / "boxes.csv", index=False)
    pd.DataFrame([{"video": "v.mp4", "n_sources": 1}]).to_csv(tmp_path / "clips.csv", index=False)
    gt = G.GroundTruth(tmp_path, (128, 128))
    assert list(gt.at("v.mp4", 0.96).frame) == [10, 10] and list(gt.at("v.mp4", 1.04).frame) == [10, 10]
    boxes, sounding = gt.scaled("v.mp4", 1.0, (64, 64))
    np.testing.assert_allclose(boxes, [[10, 10, 20, 20], [30, 30, 45, 45]])
    assert list(sounding) == [True, False]
    mask = gt.mask("v.mp4", 1.0, (64, 64))            # the sounding object only
    assert mask.sum() == 100 and mask[10:20, 10:20].all()
    assert gt.n_sources("v.mp4") == 1 and gt.n_sources("other.mp4") is None and len(gt.at("other.mp4", 0)) == 0


def test_ciou_pointing_and_auc_by_hand():
    shape = (64, 64)
    gt = G.box_mask([[8, 8, 24, 24]], shape)                     # 16 x 16 = 256 pixels
    assert M.ciou(box_map(shape, (8, 8, 24, 24)), gt) == 1.0     # exactly the box
    assert M.ciou(box_map(shape, (8, 8, 16, 24)), gt) == 0.5     # the left half: 128 / 256
    assert M.ciou(box_map(shape, (8, 8, 24, 24), (40, 40, 56, 56)), gt) == 0.5   # box + as much outside
    assert M.ciou(box_map(shape, (40, 40, 56, 56)), gt) == 0.0
    # threshold: values below it are not predicted
    h = box_map(shape, (8, 8, 24, 24)) * 0.4 + box_map(shape, (8, 8, 16, 24)) * 0.6
    assert M.ciou(h, gt, 0.5) == 0.5 and M.ciou(h, gt, 0.3) == 1.0
    assert np.isnan(M.ciou(h, np.zeros(shape, bool)))
    # pointing game: the argmax pixel
    h = np.zeros(shape)
    h[10, 20] = 1
    assert M.pointing_hit(h, gt)
    h[10, 20], h[30, 5] = 0, 1
    assert not M.pointing_hit(h, gt)
    # success curve and AUC: IoUs {1, 0} -> 1 at t = 0, 0.5 at t = 0.05 .. 1
    np.testing.assert_allclose(M.success_curve([1.0, 0.0]), [1.0] + [0.5] * 20)
    assert M.auc([1.0, 0.0]) == pytest.approx(0.05 * (1 + 0.5) / 2 + 19 * 0.05 * 0.5)   # 0.5125
    assert M.auc([1.0, 1.0]) == pytest.approx(1.0)
    assert M.auc([0.0]) == pytest.approx(0.025)                # success 1 at t = 0 (IoU >= 0), trapezoid
    assert M.auc([0.5]) == pytest.approx(0.5 + 0.025)           # steps at t <= 0.5: 10 full + half
    s = M.summarize([1.0, 0.5, 0.2, float("nan")], [True, False, True, True])
    assert s["ciou50"] == pytest.approx(2 / 3) and s["ciou_mean"] == pytest.approx(1.7 / 3)
    assert s["pointing"] == pytest.approx(2 / 3)                # the pair without ground truth is dropped


# -- multi-source rule -------------------------------------------------------------------------
def test_score_maps_is_summarize_of_ciou_and_pointing():
    shape = (64, 64)
    gt = G.box_mask([[8, 8, 24, 24]], shape)
    heats = [box_map(shape, (8, 8, 24, 24)), box_map(shape, (8, 8, 16, 24)) * 0.6]
    s = M.score_maps(heats, [gt, gt], threshold=0.5)
    assert s == M.summarize([1.0, 0.5], [True, True])
    assert M.score_maps(heats, [gt, gt], threshold=0.7)["ciou50"] == 0.5    # the dimmer map drops out


def test_multisource_rule_by_hand():
    # 4 audio vectors, k = 3: hard winners 0, 0, 1, 2 -> shares 1/2, 1/4, 1/4
    assign = np.array([[[.5, .3, .2], [.4, .35, .25], [.2, .5, .3], [.1, .2, .7]]])
    np.testing.assert_allclose(ms.hard_shares(assign), [[0.5, 0.25, 0.25]])
    np.testing.assert_allclose(ms.effective_number([[1, 0, 0], [1 / 3] * 3, [.5, .5, 0]]), [1, 3, 2])
    one = np.array([1.0, 0, 0, 0])
    spread = np.full(4, 0.25)
    np.testing.assert_allclose(ms.source_score(np.stack([one, spread]), np.stack([one, one])), [1.0, 2.5])
    assert list(ms.clip_scores([1, 3, 2, 2], ["b", "b", "a", "a"])) == [2, 2]
    # cut points fitted on scores that separate the counts perfectly
    scores, labels = [1.0, 1.2, 2.0, 2.1, 3.0, 3.5], [1, 1, 2, 2, 3, 3]
    cuts = ms.fit_cuts(scores, labels, 3)
    assert cuts == pytest.approx([1.6, 2.55])
    assert list(ms.predict_counts(scores, cuts, 3)) == labels
    assert list(ms.predict_counts([0.0, 1.6, 9.0], cuts, 3)) == [1, 2, 3]
    # overlapping scores: the best monotone cuts (5 of 6 right), equal scores always get one count
    cuts = ms.fit_cuts([1, 2, 2, 3, 4, 5], [1, 1, 2, 2, 3, 3], 3)
    assert ms.accuracy([1, 1, 2, 2, 3, 3], ms.predict_counts([1, 2, 2, 3, 4, 5], cuts, 3)) == pytest.approx(5 / 6)
    assert cuts == pytest.approx([2.5, 3.5])                   # ties go to the smaller count
    # a count absent from training: its cut is never reached
    cuts = ms.fit_cuts([1, 2, 3], [1, 1, 2], 3)
    assert cuts[1] == float("inf") and list(ms.predict_counts([1, 2.6, 100], cuts, 3)) == [1, 2, 2]
    assert ms.majority_count([3, 2, 2, 3, 1]) == 2 and ms.majority_count([1, 3, 3]) == 3
    np.testing.assert_array_equal(ms.confusion([1, 2, 3, 3], [1, 3, 3, 2], 3), [[1, 0, 0], [0, 0, 1], [0, 1, 1]])


# -- trained vs untrained on the embedded default -----------------------------------------------
@pytest.fixture(scope="module")
def trained(small_corpus, tmp_path_factory):
    """DMC trained briefly (8 epochs, batch 32) on the 96-video corpus; deterministic on the CPU.
    8, not 4: without a squash (the default) the trained maps overtake the untrained network's,
    which already favour high-activation positions, only after a few more epochs."""
    from dmc.model.training import Trainer

    d = tmp_path_factory.mktemp("loc_model")
    p = with_overrides(load_default_params(), train__epochs=8, train__batch_size=32, train__checkpoint_every=0,
                       train__warmup_steps=0, train__lr=1e-3, train__device="cpu", localize__device="cpu",
                       localize__clips_for_overlays=2)
    Trainer(p, small_corpus / "decoded", d / "m.pt", d / "log.csv", d / "ck").fit()
    return p, d / "m.pt"


@pytest.mark.slow
def test_trained_model_localizes_better_than_random_init(small_corpus, trained):
    """Every (frame, segment) pair of the corpus (localization is never trained on boxes), with
    the heat-map rule, tau and cIoU threshold of params.yaml: the trained maps point at the
    sounding objects more often than the same network untrained and than a random pixel, with a
    higher AUC and more pairs at cIoU >= 0.5. With the 16 x 16 map the untrained network already
    points at most of these pairs, and 8 epochs on 96 videos lift pointing clearly under seed 0
    (the fixture's) but not under every seed, while the AUC and cIoU@0.5 margins held under
    seeds 0-2 (README, "The visual map"): the pointing check guards the pinned seed."""
    from dmc.model.training import load_model

    p, model_path = trained
    index = pd.read_csv(small_corpus / "decoded" / "index.csv")
    frames, mels = L._ShardReader(small_corpus / "decoded")(index)
    gt = G.GroundTruth(small_corpus / "ground_truth", (p["synth"]["width"], p["synth"]["height"]))
    masks = [gt.mask(r.video, r.frame_time_s, frames.shape[1:3]) for r in index.itertuples()]
    scores = {}
    for name, model in (("dmc", load_model(model_path)[0]), ("random_init", L.random_init_model(p))):
        an = H.analyse_arrays(model, frames, mels, p["localize"]["agreement_temperature"],
                              rule=p["localize"]["heatmap_rule"])
        heat = H.upsample(an.coarse, frames.shape[1:3])
        scores[name] = M.score_maps(heat, masks, p["localize"]["ciou_threshold"])
    chance = float(np.mean([g.mean() for g in masks]))             # pointing of a uniformly random pixel
    assert scores["dmc"]["pointing"] >= scores["random_init"]["pointing"] + 0.05, scores
    assert scores["dmc"]["pointing"] >= chance + 0.1, (scores, chance)
    assert scores["dmc"]["auc"] >= scores["random_init"]["auc"] + 0.03, scores
    assert scores["dmc"]["ciou50"] >= scores["random_init"]["ciou50"] + 0.1, scores


def clean_and_poisoned(decoded, p, tmp_path):
    """Yield ("clean", a copy of the shards) and ("poisoned", a copy whose test-split segments
    are overwritten by test_training.poison_test_split)."""
    import shutil

    from test_model_training import poison_test_split

    for name in ("clean", "poisoned"):
        copy = tmp_path / name
        shutil.copytree(decoded, copy)
        if name == "poisoned":
            assert poison_test_split(copy, p) > 0
        yield name, copy


@pytest.mark.slow
def test_heatmap_choice_reads_only_the_val_split(small_corpus, trained, tmp_path):
    """The heat-map study's table is the same whatever the test-split videos hold."""
    from dmc.studies import heatmap_choice as C

    p, model_path = trained
    params = write_params(tmp_path / "params.yaml", p)
    tables = {}
    for name, decoded in clean_and_poisoned(small_corpus / "decoded", p, tmp_path):
        C.main(["--params", str(params), "--models", str(model_path), "--decoded", str(decoded),
                "--ground-truth", str(small_corpus / "ground_truth"), "--out", str(tmp_path / name / "choice")])
        tables[name] = pd.read_csv(tmp_path / name / "choice.csv")
        tables[name, "threshold"] = pd.read_csv(tmp_path / name / "choice_ciou_threshold.csv")
    assert len(tables["clean"]) == len(H.RULES) * len(C.TAUS)
    assert tables["clean"].random_init_pointing.between(0, 1).all()   # the untrained net, beside each rule
    pd.testing.assert_frame_equal(tables["clean"], tables["poisoned"])
    thresholds = tables["clean", "threshold"]
    assert thresholds.threshold.tolist() == list(C.THRESHOLDS)
    assert thresholds[["ciou50", "auc", "center_prior_ciou50", "random_init_auc"]].stack().between(0, 1).all()
    pd.testing.assert_frame_equal(thresholds, tables["poisoned", "threshold"])


def test_threshold_table_sits_beside_the_rule_table():
    from dmc.studies.heatmap_choice import threshold_out

    assert threshold_out("results/tables/heatmap_choice") == Path("results/tables/ciou_threshold")
    assert threshold_out("t/squash/both_heatmap_choice") == Path("t/squash/both_ciou_threshold")
    assert threshold_out("/tmp/x/choice") == Path("/tmp/x/choice_ciou_threshold")


def test_choose_threshold_by_hand():
    """Highest mean cIoU@0.5; ties by AUC, then the lower threshold."""
    from dmc.studies.heatmap_choice import choose_threshold

    t = pd.DataFrame({"threshold": [0.3, 0.4, 0.5], "ciou50": [0.2, 0.4, 0.4], "auc": [0.5, 0.3, 0.35]})
    assert choose_threshold(t) == 0.5
    t.loc[2, "auc"] = 0.3
    assert choose_threshold(t) == 0.4
    t.loc[0, "ciou50"] = 0.41
    assert choose_threshold(t) == 0.3


@pytest.mark.slow
def test_localize_val_metrics_read_only_the_val_split(small_corpus, trained, tmp_path):
    """The localize step's val localization (``localization.val.dmc.*``, what sweeps choose on) is the
    same whatever the test-split videos hold, while its test numbers change."""
    import json

    p, model_path = trained
    flat = {}
    for name, decoded in clean_and_poisoned(small_corpus / "decoded", p, tmp_path):
        L.run_benchmark(Params.from_dict(p), decoded, model_path, small_corpus / "ground_truth", tmp_path / f"{name}_out",
                        tmp_path / f"{name}.json", log=lambda *_: None)
        flat[name] = json.loads((tmp_path / f"{name}.json").read_text())
    val = {k: v for k, v in flat["clean"].items() if k.startswith("localization.val.dmc.")}
    assert sorted(val) == sorted(f"localization.val.dmc.{f}" for f in M.LOC_FIELDS)
    assert all(0 <= v <= 1 for v in val.values())
    assert val == {k: flat["poisoned"][k] for k in val}
    assert any(flat["clean"][k] != flat["poisoned"][k] for k in flat["clean"]
               if k.startswith("localization.dmc.") or k.startswith("correspondence."))


def test_count_candidates_by_hand():
    """The count study (dmc.studies.count_choice) scores the pipeline's own rule among its candidates,
    fits cut points on the fit clips only, and scores the val clips against the majority count."""
    from dmc.studies import count_choice as CC
    from dmc.localization.heatmaps import Analysis

    k = 4
    one, two, four = np.eye(k)[0], np.array([.5, .5, 0, 0]), np.full(k, .25)
    shares_a = np.stack([one, two, four, one])
    shares_v = np.stack([one, one, four, two])
    agreement = np.array([[.9, .6, .2, .1], [.9, .9, .9, .9], [.4, .4, .4, .4], [.85, .7, .7, .7]])
    an = Analysis(np.zeros((4, 2, 2)), shares_a, shares_v, agreement, np.zeros((4, k, 1)), np.zeros((4, k, 1)))
    s = CC.candidate_scores(an)
    assert set(s) == set(CC.CANDIDATES)
    np.testing.assert_allclose(s["effective_av"], ms.source_score(shares_a, shares_v))
    np.testing.assert_allclose(s["effective_a"], [1, 2, 4, 1])
    np.testing.assert_allclose(s["effective_v"], [1, 1, 4, 2])
    # agreeing clusters that hold audio mass: pair 1 has 4 agreeing clusters but audio in 2 only
    np.testing.assert_allclose(s["agreeing_0.5"], [1, 2, 0, 1])
    np.testing.assert_allclose(s["agreeing_0.8"], [1, 2, 0, 1])
    # two pairs per clip; fit clips a (1 source), b (2), val clips c (1), d (2)
    fit = Analysis(*(np.concatenate([x, x]) for x in an))
    videos = ["a", "a", "b", "b", "a", "a", "b", "b"]      # a: pairs 0, 1 (x2), b: pairs 2, 3 (x2)
    acc = CC.score_rules(fit, videos, {"a": 1, "b": 2}, fit, [v.replace("a", "c").replace("b", "d") for v in videos],
                         {"c": 1, "d": 2}, 3)
    # effective_v: a scores 1, b scores 3 -> separable, val identical -> 1.0; majority (tie: 1) -> 0.5
    assert acc["effective_v"] == 1.0 and acc["effective_av"] == 1.0 and acc["majority"] == 0.5
    # agreeing_0.5: a scores 1.5, b 0.5: the only monotone cut that fits puts both in one count
    assert acc["agreeing_0.5"] == 0.5
    table = pd.DataFrame({"rule": ["effective_av", "effective_a", "majority"], "accuracy": [0.5, 0.5, 0.9]})
    assert CC.choose(table) == "effective_av"                 # ties go to the pipeline's rule; majority is no rule
    table.loc[1, "accuracy"] = 0.6
    assert CC.choose(table) == "effective_a"


@pytest.mark.slow
def test_count_choice_reads_only_the_train_and_val_splits(small_corpus, trained, tmp_path):
    """The count study's table is the same whatever the test-split videos hold (their frames,
    log-mels and ground-truth counts)."""
    import shutil

    from dmc.studies import count_choice as CC
    from dmc.model.dataset import split_of
    from test_model_training import poison_test_split

    p, model_path = trained
    params = write_params(tmp_path / "params.yaml", p)
    tables = {}
    for name in ("clean", "poisoned"):
        decoded, gt = tmp_path / name / "decoded", tmp_path / name / "gt"
        shutil.copytree(small_corpus / "decoded", decoded)
        shutil.copytree(small_corpus / "ground_truth", gt)
        if name == "poisoned":
            assert poison_test_split(decoded, p) > 0
            clips = pd.read_csv(gt / "clips.csv")
            test = clips.video.map(lambda v: split_of(v, p)) == "test"
            clips.loc[test, "n_sources"] = 3 - clips.loc[test, "n_sources"].clip(1, 2)
            clips.to_csv(gt / "clips.csv", index=False)
        CC.main(["--params", str(params), "--models", str(model_path), "--decoded", str(decoded),
                 "--ground-truth", str(gt), "--out", str(tmp_path / name / "choice")])
        tables[name] = pd.read_csv(tmp_path / name / "choice.csv")
    assert set(tables["clean"].rule) == {*CC.CANDIDATES, "majority"}
    pd.testing.assert_frame_equal(tables["clean"], tables["poisoned"])


@pytest.mark.slow
def test_localize_pipeline_mode_writes_metrics_table_overlays(small_corpus, trained, tmp_path, capsys):
    p, model_path = trained
    params = write_params(tmp_path / "params.yaml", p)
    out, metrics = tmp_path / "results" / "localization", tmp_path / "results" / "localization_metrics.json"
    assert main(["--params", str(params), "localize", "--decoded", str(small_corpus / "decoded"), "--model",
                 str(model_path), "--ground-truth", str(small_corpus / "ground_truth"), "--out-dir", str(out),
                 "--metrics", str(metrics)]) == 0
    flat = json.loads(metrics.read_text())
    for m in L.LOC_METHODS:
        for f in M.LOC_FIELDS:
            assert 0 <= flat[f"localization.{m}.{f}"] <= 1, (m, f)
    for m in L.MS_METHODS:
        assert 0 <= flat[f"multisource.{m}.acc"] <= 1
    assert flat["localization.n_pairs"] > 0 and flat["multisource.n_clips"] > 0
    assert {"table.md", "table.csv", "pairs.csv", "details.json", "multisource_confusion.csv"} <= {
        f.name for f in out.iterdir()}
    assert len(list((out / "overlays").glob("*.png"))) == 2
    table = pd.read_csv(out / "table.csv")
    assert list(table.method) == ["dmc", "random_init", "center_prior", "majority"]
    conf = pd.read_csv(out / "multisource_confusion.csv")
    assert conf.groupby("method")["count"].sum().eq(flat["multisource.n_clips"]).all()
    assert "localize:" in capsys.readouterr().err


# -- any video -----------------------------------------------------------------------------------
def test_localize_video_mode_and_a_video_without_audio(tmp_path, capsys):
    from media import make_video

    p = with_overrides(load_default_params(), localize__device="cpu", localize__clips_for_overlays=4)
    params = write_params(tmp_path / "params.yaml", p)
    torch.manual_seed(0)
    model = save_model(DMC.from_params(p["model"], p["train"]), p, tmp_path / "m.pt")
    videos = tmp_path / "videos"
    videos.mkdir()
    make_video(videos / "talk.mp4", seconds=4.5, size=(96, 64))
    make_video(videos / "silent.mp4", seconds=3.0, audio=False)
    out = tmp_path / "out"
    assert main(["--params", str(params), "localize", "--video", str(videos), "--model", str(model),
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"{videos / 'silent.mp4'}: skipped: no audio stream" in err, err
    assert "1 video(s) drawn" in err and "1 skipped" in err
    assert [f.name for f in out.iterdir()] == ["talk.mp4.png"]
    # a single file works too; a run where nothing can be processed fails, naming why
    assert main(["--params", str(params), "localize", "--video", str(videos / "talk.mp4"), "--model", str(model),
                 "--out", str(tmp_path / "one")]) == 0
    assert (tmp_path / "one" / "talk.mp4.png").stat().st_size > 0
    with pytest.raises(SystemExit) as exc:
        main(["--params", str(params), "localize", "--video", str(videos / "silent.mp4"), "--model", str(model),
              "--out", str(tmp_path / "none")])
    assert exc.value.code != 0 and "none of the 1 video(s) could be processed" in str(exc.value.code)
    assert "silent.mp4: skipped: no audio stream" in capsys.readouterr().err


# -- a real corpus: no ground truth ----------------------------------------------------------------
def test_correspondence_accuracy_by_hand():
    k, d = 3, 4
    cv = np.random.default_rng(0).normal(size=(6, k, d)).astype(np.float32)
    videos = ["a", "a", "b", "b", "c", "c"]
    blank = np.zeros((6, 1, 1), np.float32)
    same = H.Analysis(blank, blank, blank, blank, centers_a=cv.copy(), centers_v=cv)
    assert L.correspondence_accuracy(same, videos, seed=0) == 1.0     # own audio = the frame's centers
    opposite = H.Analysis(blank, blank, blank, blank, centers_a=-cv, centers_v=cv)
    assert L.correspondence_accuracy(opposite, videos, seed=0) == 0.0  # own audio the least similar
    assert np.isnan(L.correspondence_accuracy(same, ["a"] * 6, seed=0))  # no other video to compare


def test_localize_without_ground_truth_draws_overlays_and_correspondence(small_corpus, tmp_path, capsys):
    p = with_overrides(load_default_params(), localize__device="cpu", localize__clips_for_overlays=2,
                       data__ground_truth=None)
    params = write_params(tmp_path / "params.yaml", p)
    torch.manual_seed(0)
    model = save_model(DMC.from_params(p["model"], p["train"]), p, tmp_path / "m.pt")
    out, metrics = tmp_path / "loc", tmp_path / "loc.json"
    assert main(["--params", str(params), "localize", "--decoded", str(small_corpus / "decoded"), "--model",
                 str(model), "--out-dir", str(out), "--metrics", str(metrics)]) == 0
    flat = json.loads(metrics.read_text())
    assert all(flat[f"localization.{m}.{f}"] is None for m in L.LOC_METHODS for f in M.LOC_FIELDS)
    assert all(flat[f"multisource.{m}.acc"] is None for m in L.MS_METHODS)
    assert flat["localization.n_pairs"] == 0 and flat["correspondence.n_pairs"] > 0
    assert 0 <= flat["correspondence.dmc.acc"] <= 1
    assert {f.name for f in out.iterdir()} == {"table.md", "table.csv", "details.json", "overlays"}
    assert len(list((out / "overlays").glob("*.png"))) == 2
    assert "| dmc | n/a |" in (out / "table.md").read_text()
    assert "not applicable" in capsys.readouterr().err


# -- compute apart from writing ------------------------------------------------------------
def test_localize_benchmark_computes_without_writing(small_corpus, tmp_path, monkeypatch):
    """The step's compute returns its result object and writes nothing; the writer writes it."""
    from dmc.localization.writing import write_localization

    p = with_overrides(load_default_params(), localize__device="cpu", localize__clips_for_overlays=2)
    torch.manual_seed(0)
    model = save_model(DMC.from_params(p["model"], p["train"]), p, tmp_path / "m.pt")
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    before = sorted(tmp_path.rglob("*"))
    r = L.localize_benchmark(Params.from_dict(p), small_corpus / "decoded", model, small_corpus / "ground_truth")
    assert sorted(tmp_path.rglob("*")) == before                    # nothing written
    assert isinstance(r, L.LocalizationResult) and len(r.overlays) == 2
    assert set(r.tables) == {"pairs.csv", "multisource_confusion.csv", "multisource_clips.csv"}
    assert 0 <= r.flat["localization.dmc.pointing"] <= 1 and r.flat["localization.n_pairs"] > 0
    assert list(r.table.method) == [*L.LOC_METHODS, "majority"] and r.message.startswith("localize: ")
    write_localization(r, tmp_path / "out", tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text()) == r.flat
    assert {f.name for f in (tmp_path / "out").iterdir()} == {"table.md", "table.csv", "details.json", "overlays",
                                                             *r.tables}


def test_write_localization_writes_a_hand_made_result(tmp_path):
    from dmc.localization.overlays import Panel
    from dmc.localization.writing import write_localization

    frame = np.zeros((16, 16, 3), np.uint8)
    r = L.LocalizationResult(
        flat={"localization.dmc.pointing": 0.5}, table=pd.DataFrame({"method": ["dmc"], "pointing": [0.5]}),
        markdown="# table\n", tables={"pairs.csv": pd.DataFrame({"video": ["a.mp4"], "dmc_ciou": [0.25]})},
        details={"held_out_videos": 1}, message="localize: hand-made",
        overlays=[L.Overlay("a_seg0.png", [Panel("frame", frame, None, None, None),
                                           Panel("dmc", frame, np.ones((16, 16), np.float32), None, None)], "a")])
    write_localization(r, tmp_path / "out", tmp_path / "metrics.json")
    assert (tmp_path / "metrics.json").read_text() == '{\n  "localization.dmc.pointing": 0.5\n}\n'
    out = tmp_path / "out"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == \
        ["details.json", "overlays/a_seg0.png", "pairs.csv", "table.csv", "table.md"]
    assert (out / "table.md").read_text() == "# table\n"
    assert (out / "table.csv").read_text() == "method,pointing\ndmc,0.5\n"
    assert json.loads((out / "details.json").read_text()) == {"held_out_videos": 1}
    assert (out / "overlays" / "a_seg0.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(tmp_path.rglob("*.tmp-*"))
