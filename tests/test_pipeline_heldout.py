"""The untouched test corpus, the baselines and controls beside DMC, and the clip bootstrap
(issue 26): dmc.localization.bootstrap, dmc.localization.controls, dmc.model.baselines, dmc.pipeline.testcorpus, dmc.pipeline.heldout, dmc.headline."""

import copy
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import load_default_params, tree_hashes, with_overrides
from dmc.config import Params
from dmc.localization import bootstrap as B
from dmc.pipeline import graph


# -- the bootstrap, against a hand computation ------------------------------------------------------
def test_draw_counts_are_resamples_with_replacement_and_seeded():
    c = B.draw_counts(7, replicates=50, seed=3)
    assert c.shape == (50, 7) and (c.sum(1) == 7).all() and (c >= 0).all()
    np.testing.assert_array_equal(c, B.draw_counts(7, replicates=50, seed=3))
    assert not np.array_equal(c, B.draw_counts(7, replicates=50, seed=4))
    # the same draws as numpy's own resampling of the clip indices
    idx = np.random.default_rng(3).integers(0, 7, size=(50, 7))
    np.testing.assert_array_equal(c, np.stack([np.bincount(r, minlength=7) for r in idx]))


def test_ratio_and_interval_by_hand():
    # three clips: pointing hits 2 of 4, 0 of 1, 3 of 3 pairs
    num, den = np.array([[2.0], [0.0], [3.0]]), np.array([4.0, 1.0, 3.0])
    assert B.ratio(num, den)[0] == pytest.approx(5 / 8)
    # replicate 1 draws clip 0 twice and clip 2 once: (2+2+3) / (4+4+3); replicate 2: clip 1 three times
    counts = np.array([[2.0, 0.0, 1.0], [0.0, 3.0, 0.0]])
    np.testing.assert_allclose(B.ratio(num, den, counts)[:, 0], [7 / 11, 0.0])
    # percentile interval of 0, 1, ..., 100 at 95 %: 2.5 and 97.5 (linear interpolation)
    assert B.interval(np.arange(101.0)) == pytest.approx((2.5, 97.5))
    assert B.interval(np.array([np.nan, 1.0, 1.0])) == (1.0, 1.0)


def test_paired_difference_by_hand():
    """Two seeds, two methods, three clips: the point is the mean over seeds of the differences, a
    replicate evaluates both methods on the same drawn clips."""
    den = np.ones(3)
    a = [(np.array([[1.0], [1.0], [0.0]]), den), (np.array([[1.0], [0.0], [0.0]]), den)]
    b = [(np.array([[0.0], [1.0], [0.0]]), den), (np.array([[0.0], [0.0], [0.0]]), den)]
    counts = np.array([[3.0, 0.0, 0.0], [0.0, 0.0, 3.0], [1.0, 1.0, 1.0]])
    point, reps, per_seed = B.paired_difference(a, b, counts)
    np.testing.assert_allclose(per_seed[:, 0], [1 / 3, 1 / 3])
    assert point[0] == pytest.approx(1 / 3)
    # clip 0 only: both seeds differ by 1; clip 2 only: 0; every clip once: 1/3
    np.testing.assert_allclose(reps[:, 0], [1.0, 0.0, 1 / 3])
    p, r = B.seed_mean(a, counts)
    assert p[0] == pytest.approx((2 / 3 + 1 / 3) / 2)
    np.testing.assert_allclose(r[:, 0], [1.0, 0.0, 0.5])
    with pytest.raises(ValueError):
        B.paired_difference(a, b[:1], counts)


def test_loc_clip_sums_reproduce_the_pair_metrics():
    """Per-clip sums give back summarize()'s pointing, cIoU@0.5, AUC and mean cIoU, nan pairs dropped."""
    from dmc.localization.metrics import summarize

    rng = np.random.default_rng(0)
    ious = rng.uniform(0, 1, 40)
    ious[[3, 17]] = np.nan
    hits = rng.integers(0, 2, 40)
    pairs = pd.DataFrame({"video": [f"v{i % 9}" for i in range(40)], "m_ciou": ious, "m_pointing": hits})
    num, den = B.loc_clip_sums(pairs, "m", sorted(pairs.video.unique()))
    assert den.sum() == 38
    got = dict(zip(B.LOC_METRICS, B.ratio(num, den)))
    want = summarize(ious, hits)
    for k in B.LOC_METRICS:
        assert got[k] == pytest.approx(want[k]), k


# -- the controls' pairing ---------------------------------------------------------------------------
@pytest.mark.parametrize("n", [2, 3, 5, 26, 320])
def test_derangement_never_pairs_a_clip_with_itself(n):
    from dmc.localization.controls import derangement

    for seed in range(20):
        p = derangement(n, seed)
        assert sorted(p) == list(range(n)) and (p != np.arange(n)).all()
    np.testing.assert_array_equal(derangement(n, 7), derangement(n, 7))
    with pytest.raises(ValueError):
        derangement(1, 0)


def test_mismatched_rows_take_the_audio_of_another_video():
    from dmc.localization.controls import mismatched_rows

    rows = pd.DataFrame({"video": ["a"] * 4 + ["b"] * 2 + ["c"] * 4, "segment": [0, 1, 2, 3, 0, 1, 0, 1, 2, 3]})
    for seed in range(10):
        idx, partner = mismatched_rows(rows, seed)
        assert all(partner[v] != v for v in partner) and sorted(partner.values()) == ["a", "b", "c"]
        src = rows.iloc[idx].reset_index(drop=True)
        assert (src.video != rows.video).all()
        assert (src.video == rows.video.map(partner)).all()
        # the same segment where the partner has it, its last one otherwise
        assert (src.segment == np.minimum(rows.segment, rows.video.map(partner).map({"a": 3, "b": 1, "c": 3}))).all()


# -- the BatchNorm recalibration --------------------------------------------------------------------
def test_batchnorm_recalibration_changes_running_statistics_only():
    from dmc.model.baselines import recalibrate_batchnorm
    from dmc.model.network import DMC

    p = load_default_params()
    assert p["model"]["batch_norm"]
    model = DMC.random_init(p)
    before = copy.deepcopy(model.state_dict())
    params_before = {k: v.clone() for k, v in model.named_parameters()}
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all((m.running_mean == 0).all() and (m.running_var == 1).all() for m in bns)
    momenta = [m.momentum for m in bns]
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(2, 8, 3, 64, 64, generator=g) * 2 - 1
    mels = torch.randn(2, 8, 1, 40, 64, generator=g) * 3 + 2
    recalibrate_batchnorm(model, zip(frames, mels))
    after = model.state_dict()
    stats = {k for k in after if k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    for k in after:
        if k in stats:
            assert not torch.equal(after[k], before[k]), f"{k} did not change"
        else:
            assert torch.equal(after[k], before[k]), f"{k} changed"
    assert all(torch.equal(v, params_before[k]) for k, v in model.named_parameters())
    assert not model.training and not any(m.training for m in model.modules())
    assert [m.momentum for m in bns] == momenta
    # the first visual BatchNorm's mean is the average of its input's batch means (equal batches)
    first = next(m for m in model.visual.modules() if isinstance(m, torch.nn.BatchNorm2d))
    conv = next(m for m in model.visual.modules() if isinstance(m, torch.nn.Conv2d))
    with torch.no_grad():
        want = torch.stack([conv(f).mean(dim=(0, 2, 3)) for f in frames]).mean(0)
    torch.testing.assert_close(first.running_mean, want, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError):
        recalibrate_batchnorm(DMC.random_init(p), [])


# -- the test corpus: its own seed, never read by a choice ------------------------------------------
def test_test_corpus_seed_must_not_be_one_of_the_training_corpus():
    from dmc.pipeline.params import ParamsError
    from dmc.pipeline.testcorpus import test_corpus_settings

    s = load_default_params()["synth"]
    kw = test_corpus_settings(s)
    assert kw["seed"] == s["test_seed"] != s["seed"] and kw["n_videos"] == s["test_videos"] >= 300
    assert test_corpus_settings({**s, "size": "tiny"})["n_videos"] == round(s["test_videos"] / 4)
    for bad in range(s["seed"], s["seed"] + 4):
        with pytest.raises(ParamsError, match="synth.test_seed"):
            test_corpus_settings({**s, "test_seed": bad})


def test_only_the_test_corpus_steps_read_it():
    """No step that trains or chooses lists the test corpus among its inputs."""
    # the VGG-SS layout (graph.BENCHMARK_LAYOUT) is the test corpus rewritten: reading it reads the corpus
    readers = {s.name for s in graph.STEPS
               if any("synth_test" in d or "decoded_test" in d or d == graph.BENCHMARK_LAYOUT for d in s.deps)}
    # benchmark_layout writes the test corpus in VGG-SS layout and benchmark scores it through the
    # published protocol (issue 34): scoring only, like heldout
    assert readers == {"decode_test", "heldout", "benchmark_layout", "benchmark"}
    # the heldout step's code (which reads the test corpus) is imported by the scoring steps only
    users = {s.name for s in graph.STEPS if "src/dmc/pipeline/heldout.py" in graph.code_deps(s.name)}
    assert users == {"heldout", "heldout_multi"}


def _write_test_corpus(root, p, n_videos):
    from dmc.io.shards import build_index, videos_of_shard, write_shard
    from dmc.synth import generate_videos
    from dmc.pipeline.testcorpus import test_corpus_settings

    kw = test_corpus_settings({**p["synth"], "test_videos": n_videos, "size": "small"})
    generate_videos(root / "videos", root / "ground_truth", **kw)
    write_shard(root / "decoded" / "shard-00000", root / "videos", videos_of_shard(root / "videos", 0, 1), p["decode"])
    build_index([root / "decoded" / "shard-00000"], root / "decoded", p["decode"])
    return root


@pytest.mark.slow
def test_heldout_end_to_end_reads_the_test_corpus_for_scores_only(small_corpus, tmp_path):
    """On the tiny corpus: the test corpus comes from its own seed (same seed, same bytes; not the
    training corpus's videos); the run's choices (count cut points, majority, BatchNorm statistics)
    are the same whatever the test corpus holds (poisoned), while its scores change (the positive
    control)."""
    from dmc.pipeline import heldout as H
    from dmc.model.network import DMC

    p = with_overrides(load_default_params(), localize__device="cpu")
    a = _write_test_corpus(tmp_path / "a", p, 6)
    b = _write_test_corpus(tmp_path / "b", p, 6)
    ha = {k: v for k, v in tree_hashes(a / "videos").items()}
    assert ha == tree_hashes(b / "videos")                                   # its own seed: reproducible
    assert not set(ha.values()) & set(tree_hashes(small_corpus / "videos").values())
    other = _write_test_corpus(tmp_path / "c", with_overrides(p, synth__test_seed=p["synth"]["test_seed"] + 1), 6)
    assert set(tree_hashes(other / "videos").values()) != set(ha.values())

    torch.manual_seed(0)
    model = DMC.from_params(p["model"], p["train"])
    model_path = tmp_path / "m.pt"
    torch.save({"model": model.state_dict(), "config": {"model": p["model"], "train": p["train"]}}, model_path)
    poisoned = tmp_path / "poisoned"
    shutil.copytree(a, poisoned)
    for shard in (poisoned / "decoded").glob("shard-*"):       # every test-corpus segment overwritten
        frames = np.load(shard / "frames.npy", mmap_mode="r+")
        mel = np.load(shard / "logmel.npy", mmap_mode="r+")
        frames[:] = 255 - frames
        mel[:] = 50.0
        frames.flush()
        mel.flush()
    out = {}
    for name, root in (("clean", a), ("poisoned", poisoned)):
        flat = H.run(Params.from_dict(p), small_corpus / "decoded", root / "decoded", model_path, small_corpus / "ground_truth",
                     root / "ground_truth", None, tmp_path / name, tmp_path / f"{name}.json", log=lambda *_: None)
        out[name] = (flat, json.loads((tmp_path / name / "details.json").read_text()),
                     pd.read_csv(tmp_path / name / "pairs.csv"), pd.read_csv(tmp_path / name / "clips.csv"))
    flat, details, pairs, clips = out["clean"]
    assert details["clips"] == 6 and len(clips) == 6 and set(pairs.video) == set(clips.video)
    assert (pairs.audio_from != pairs.video).all()                          # the control never pairs a clip with itself
    assert all(0 <= flat[f"heldout.{m}.pointing"] <= 1 for m in H.LOC_METHODS)
    assert flat["heldout.count.best_constant.acc"] >= max(flat[f"heldout.count.{m}.acc"] for m in ("majority",))
    assert (tmp_path / "clean" / "table.md").read_text().count("[") >= len(H.LOC_METHODS) * 4
    # the audio-blind maps read no audio: the mismatched control changes DMC's map, not the blind one
    for key in ("multisource_cuts", "majority_count_train_val", "audio_partner"):
        assert details[key] == out["poisoned"][1][key], key
    assert not pairs[[c for c in pairs if c.endswith("_ciou")]].equals(
        out["poisoned"][2][[c for c in pairs if c.endswith("_ciou")]])     # positive control: scores move


# -- the headline's tables ---------------------------------------------------------------------------
def _fake_run(rng, seed, config, videos, esc_n=20):
    from dmc.pipeline import heldout as H

    pairs = pd.DataFrame({"video": np.repeat(videos, 2), "segment": np.tile([0, 1], len(videos))})
    for m in H.LOC_METHODS:
        pairs[f"{m}_ciou"] = rng.uniform(0, 1, len(pairs)).round(4)
        pairs[f"{m}_pointing"] = rng.integers(0, 2, len(pairs))
    clips = pd.DataFrame({"video": videos, "n_sources": rng.integers(1, 4, len(videos))})
    for m in H.COUNT_METHODS:
        clips[f"pred_{m}"] = rng.integers(1, 4, len(videos))
    esc = pd.DataFrame({"clip": np.arange(esc_n), "fold": np.arange(esc_n) % 5 + 1, "target": rng.integers(0, 3, esc_n)})
    for m in H.ESC_METHODS:
        esc[f"pred_{m}"] = rng.integers(0, 3, esc_n)
    details = {"config": config, "seed": seed, "clips": len(videos), "pairs_with_sounding_region": len(pairs)}
    return {"pairs": pairs, "clips": clips, "esc": esc, "details": details}


def test_headline_tables_are_seed_means_with_paired_differences():
    from dmc.studies import headline as HL
    from dmc.localization.metrics import summarize

    rng = np.random.default_rng(0)
    videos = [f"clip_{i:03d}" for i in range(12)]
    runs = {(c, s): _fake_run(rng, s, c, videos) for c in (HL.DEFAULT, "train.iterations=1") for s in (0, 1)}
    levels, diffs = HL.tables(runs, replicates=200)
    row = levels[(levels.row == "DMC") & (levels.metric == "pointing")].iloc[0]
    want = np.mean([summarize(runs[(HL.DEFAULT, s)]["pairs"].dmc_ciou, runs[(HL.DEFAULT, s)]["pairs"].dmc_pointing)
                    ["pointing"] for s in (0, 1)])
    assert row["mean"] == pytest.approx(want) and row.lo <= row["mean"] <= row.hi and row.n_seeds == 2
    d = diffs[(diffs.baseline == "no clustering (train.iterations=1)") & (diffs.metric == "acc")
              & (diffs.kind == "count")].iloc[0]
    acc = {c: np.mean([(runs[(c, s)]["clips"].pred_dmc == runs[(c, s)]["clips"].n_sources).mean() for s in (0, 1)])
           for c in (HL.DEFAULT, "train.iterations=1")}
    assert d["diff"] == pytest.approx(acc[HL.DEFAULT] - acc["train.iterations=1"])
    assert d.lo <= d["diff"] <= d.hi and d.seeds_positive + d.seeds_negative <= 2
    assert set(diffs.kind) == {"loc", "count", "esc"}
    # the same draws give the same table; the markdown names every row and the targets
    pd.testing.assert_frame_equal(levels, HL.tables(runs, replicates=200)[0])
    text = HL.markdown(levels, diffs, runs, "abc1234")
    assert "abc1234" in text and "## Targets of issue 26" in text
    for label, _, _ in HL.LOC_ROWS + HL.COUNT_ROWS:
        assert f"| {label} |" in text


def test_headline_takes_model_files_by_configuration(tmp_path):
    from dmc.studies import headline as HL
    from dmc.model.network import DMC

    p = load_default_params()
    for name, iters in (("default_s0", p["train"]["iterations"]), ("train.iterations=1_s3", 1), ("other_s1", 3)):
        m = DMC.from_params(p["model"], {**p["train"], "iterations": iters})
        torch.save({"model": m.state_dict(), "config": {"model": p["model"], "train": {**p["train"], "iterations": iters}}},
                   tmp_path / f"{name}.pt")
    runs = HL.runs_of_dir(p, tmp_path, log=lambda *_: None)
    assert [(r.config, r.seed) for r in runs] == [(HL.DEFAULT, 0), ("train.iterations=1", 3)]
    torch.save({"model": {}, "config": {"model": p["model"], "train": {**p["train"], "iterations": 2}}},
               tmp_path / "default_s1.pt")
    with pytest.raises(ValueError, match="iterations"):
        HL.runs_of_dir(p, tmp_path, log=lambda *_: None)


def test_headline_intervals_are_hierarchical_and_degenerate_counts_are_not_results():
    """Item 6 of issue 33: lo / hi are the hierarchical bootstrap's (seeds, then clips), the clip
    bootstrap's are kept as clip_lo / clip_hi; a count row degenerate in some seed is reported as such."""
    from dmc.studies import headline as HL

    rng = np.random.default_rng(1)
    videos = [f"clip_{i:03d}" for i in range(10)]
    runs = {(c, s): _fake_run(rng, s, c, videos) for c in (HL.DEFAULT, "train.iterations=1") for s in (0, 1, 2)}
    runs[("train.iterations=1", 1)]["details"]["count_degenerate"] = {"dmc": True}
    levels, diffs = HL.tables(runs, replicates=150)
    d = diffs[(diffs.baseline == "random init, BatchNorm recalibrated") & (diffs.kind == "loc")
              & (diffs.metric == "pointing")].iloc[0]
    a = [B.loc_clip_sums(runs[(HL.DEFAULT, s)]["pairs"], "dmc", videos) for s in (0, 1, 2)]
    b = [B.loc_clip_sums(runs[(HL.DEFAULT, s)]["pairs"], "random_init_bn", videos) for s in (0, 1, 2)]
    h = B.hierarchical_difference(a, b, 150, HL.HIER_SEED["loc"])
    assert (d.lo, d.hi) == pytest.approx((h.lo[0], h.hi[0]))
    _, reps, _ = B.paired_difference(a, b, B.draw_counts(len(videos), 150, HL.BOOT_SEED["loc"]))
    assert (d.clip_lo, d.clip_hi) == pytest.approx(B.interval(reps[:, 0]))
    assert d.reading == ("DMC higher" if h.lo[0] > 0 else "DMC lower" if h.hi[0] < 0 else "no difference resolved")
    nc = levels[(levels.kind == "count") & (levels.row == "no clustering (train.iterations=1)")].iloc[0]
    assert nc.degenerate and not levels[(levels.kind == "count") & (levels.row == "DMC")].iloc[0].degenerate
    text = HL.markdown(levels, diffs, runs, None)
    count_rows = [x for x in text.splitlines() if x.startswith("| no clustering (train.iterations=1) | 3 | degenerate")]
    assert len(count_rows) == 2                        # its level and its difference
    assert "## Clip-bootstrap intervals (seeds held fixed)" in text
    assert "| visible-object count" in text


def test_headline_audio_dependence_gap_by_hand(tmp_path):
    """Item 5 of issue 33: own - mismatched audio for DMC and no clustering, and the difference of the gaps,
    from made-up per-clip files (2 configurations x 3 seeds; 4 clips x 2 pairs, the last pair without a
    sounding region), against hand computations."""
    from dmc.studies import headline as HL
    from dmc.studies import headline_multi as HMu

    nc_cfg = "train.iterations=1"
    videos = ["v0", "v1", "v2", "v3"]
    own = [1] * 8                     # the 8th pair has no sounding region: its hit must not count
    mm_hits = {(HL.DEFAULT, 0): [0] * 8, (HL.DEFAULT, 1): [1, 1, 1, 0, 0, 0, 0, 0], (HL.DEFAULT, 2): [1] * 7 + [0],
               (nc_cfg, 0): [1] * 4 + [0] * 4, (nc_cfg, 1): [1] * 5 + [0] * 3, (nc_cfg, 2): [1] * 6 + [0] * 2}
    # cIoU 0.72 with its own audio (AUC of the trapezoids over 0, 0.05, ..., 1: 0.70 + 0.025); mismatched
    # 0.22 for DMC (0.225), 0.62 for no clustering (0.625)
    mm_ciou = {HL.DEFAULT: 0.22, nc_cfg: 0.62}
    rng = np.random.default_rng(3)
    for (config, seed), hits in mm_hits.items():
        run = _fake_run(rng, seed, config, videos)
        p = run["pairs"]
        p["dmc_pointing"], p["mismatched_pointing"] = own, hits
        p["dmc_ciou"], p["mismatched_ciou"] = 0.72, mm_ciou[config]
        p.loc[7, ["dmc_ciou", "mismatched_ciou"]] = np.nan
        d = tmp_path / "runs" / f"{config}_s{seed}"
        d.mkdir(parents=True)
        p.to_csv(d / "pairs.csv", index=False)
        run["clips"].to_csv(d / "clips.csv", index=False)
        run["esc"].to_csv(d / "esc50_clips.csv", index=False)
        (d / "details.json").write_text(json.dumps(run["details"]))
    runs = HL.load_runs(tmp_path / "runs")
    g = HL.audio_gaps(runs, replicates=300).set_index(["row", "metric"])
    dmc, nc = (label for label, _ in HL.GAP_ROWS)
    # pointing: 7 pairs with a sounding region; DMC's gaps by seed 7/7, 4/7, 0/7; no clustering's 3/7, 2/7, 1/7
    assert g.loc[(dmc, "pointing"), "diff"] == pytest.approx((7 + 4 + 0) / 21)
    assert g.loc[(nc, "pointing"), "diff"] == pytest.approx((3 + 2 + 1) / 21)
    x = g.loc[(HL.GAP_DIFF, "pointing")]
    assert x["diff"] == pytest.approx((4 + 2 - 1) / 21)
    assert (x.seeds_positive, x.seeds_negative, x.n_seeds) == (2, 1, 3)
    assert (g.loc[(dmc, "pointing"), "seeds_positive"], g.loc[(dmc, "pointing"), "seeds_negative"]) == (2, 0)
    a = [HMu.gap_sums(runs[(HL.DEFAULT, s)]["pairs"], "pointing", videos) for s in range(3)]
    b = [HMu.gap_sums(runs[(nc_cfg, s)]["pairs"], "pointing", videos) for s in range(3)]
    h = B.hierarchical_difference(a, b, 300, HMu.BOOT_SEED)
    assert (x.lo, x.hi) == pytest.approx((h.lo[0], h.hi[0])) and x.lo < x["diff"] < x.hi
    # cIoU@0.5: DMC 1 - 0, no clustering 1 - 1; AUC: 0.725 - 0.225, 0.725 - 0.625; the same in every clip
    # and seed, so the interval collapses on the value
    for row, metric, want in ((dmc, "ciou50", 1.0), (nc, "ciou50", 0.0), (HL.GAP_DIFF, "ciou50", 1.0),
                              (dmc, "auc", 0.5), (nc, "auc", 0.1), (HL.GAP_DIFF, "auc", 0.4)):
        y = g.loc[(row, metric)]
        assert (y["diff"], y.lo, y.hi) == pytest.approx((want, want, want)), (row, metric)
    assert g.loc[(HL.GAP_DIFF, "auc"), "seeds_positive"] == 3
    # both files carry it: the section after the six included tables, and the targets row
    HL.write(runs, tmp_path, None, None, replicates=100)
    text = (tmp_path / "headline.md").read_text()
    assert text.index("## Audio dependence (own audio − mismatched audio)") > text.index("## ESC-like")
    line = next(s for s in text.splitlines() if s.startswith(f"| {HL.GAP_DIFF} | 3 |"))
    assert f"+{5 / 21:.3f} [" in line and "(2/1)" in line and "**+1.000 [+1.000, +1.000]** (3/0)" in line
    target = next(s for s in text.splitlines() if s.startswith("| audio-dependence gap DMC − no clustering"))
    assert target.endswith("| yes |") and "AUC +0.400 [+0.400, +0.400]" in target
    csv = pd.read_csv(tmp_path / "headline.csv")
    assert len(csv[csv.table == "audio gap"]) == 3 * len(HL.GAP_METRICS)
