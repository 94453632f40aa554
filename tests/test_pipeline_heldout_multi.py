"""The stage heldout_multi (issue 33): dmc.io.multi_truth, dmc.pipeline.heldout_multi."""

from __future__ import annotations

import json
import shutil
import wave

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import decode_corpus, load_default_params, with_overrides
from dmc.io.ground_truth import GroundTruth
from dmc.io.logmel import LogMel
from dmc.io.multi_truth import pair_objects, stem_logmels
from dmc.localization import multisource_eval as E
from dmc.pipeline import graph
from dmc.pipeline import heldout_multi as HM


def _gt(tmp_path):
    boxes = pd.DataFrame({"video": ["a.mp4"] * 4, "frame": [0, 0, 1, 1], "time_s": [0.0, 0.0, 1.0, 1.0],
                          "object_id": [0, 1, 0, 1], "class": ["drum", "flute", "drum", "flute"],
                          "sounding": [1, 0, 1, 0], "x0": [0, 50, 10, 50], "y0": [0, 20, 0, 20],
                          "x1": [50, 100, 60, 100], "y1": [40, 80, 40, 80]})
    clips = pd.DataFrame({"video": ["a.mp4"], "n_sources": [1]})
    boxes.to_csv(tmp_path / "boxes.csv", index=False)
    clips.to_csv(tmp_path / "clips.csv", index=False)
    return GroundTruth(tmp_path, (100, 80))


def test_pair_objects_by_hand(tmp_path):
    gt = _gt(tmp_path)
    rows = pd.DataFrame({"video": ["a.mp4", "a.mp4"], "frame_time_s": [0.2, 0.9]})
    o = pair_objects(gt, rows, (40, 50))            # (H, W): boxes scaled by 50/100 in x, 40/80 in y
    assert list(o.pair) == [0, 0, 1, 1] and list(o["class"]) == ["drum", "flute", "drum", "flute"]
    np.testing.assert_allclose(o.loc[0, ["x0", "y0", "x1", "y1"]].to_numpy(float), [0, 0, 25, 20])
    np.testing.assert_allclose(o.loc[2, ["x0", "y0", "x1", "y1"]].to_numpy(float), [5, 0, 30, 20])   # frame at 1.0 s
    assert list(o.sounding) == [1, 0, 1, 0]


def _wav(path, samples, rate):
    with wave.open(str(path), "wb") as fh:
        fh.setnchannels(1)
        fh.setsampwidth(2)
        fh.setframerate(rate)
        fh.writeframes(np.asarray(samples, dtype="<i2").tobytes())


def test_stem_logmels_cut_the_pair_segment_and_name_a_missing_stem(tmp_path):
    decode = {**load_default_params()["decode"], "sample_rate": 8000, "segment_seconds": 0.5}
    rng = np.random.default_rng(0)
    samples = rng.integers(-3000, 3000, 8000)                      # 1 s at the decode rate: two segments
    (tmp_path / "s").mkdir()
    _wav(tmp_path / "s" / "drum.wav", samples, 8000)
    objects = pd.DataFrame({"pair": [0, 1, 1], "video": ["a.mp4"] * 3, "object_id": [0, 0, 1],
                            "class": ["drum", "drum", "flute"], "sounding": [1, 1, 1],
                            "x0": 0, "y0": 0, "x1": 1, "y1": 1})
    files = pd.DataFrame({"video": ["a.mp4", "a.mp4"], "object_id": [0, 1], "stem": ["drum.wav", "gone.wav"]})
    table, mels, notes = stem_logmels(objects, [0, 1], files, tmp_path / "s", decode)
    assert list(table.pair) == [0, 1] and list(table.object) == [0, 1]
    wave_f = torch.from_numpy((samples / 32768.0).astype(np.float32))
    want = LogMel.from_params(decode)(torch.stack([wave_f[:4000], wave_f[4000:]])).numpy()
    np.testing.assert_allclose(mels, want, atol=1e-6)                # segment s = samples [s n, (s+1) n)
    assert len(notes) == 1 and "gone.wav" in notes[0]               # named, and the run goes on


def test_ratio_columns_are_those_of_clip_rows():
    pairs = pd.DataFrame({"video": ["a", "a", "b", "b"], "ca_ciou": [0.5, np.nan, 0.1, 0.35],
                          "ca_nsa": [0.9, 0.8, np.nan, 1.0], "ca_nsa_drawn": [1.0, np.nan, 0.5, 0.5],
                          "recall_hits": [1, 0, 2, 1], "recall_pointing_hits": [1, 1, 2, 2], "recall_sources": 2})
    stems = pd.DataFrame({"video": ["a", "a", "b"], "stem_pointing": [1, 0, 1], "stem_ciou": [0.4, 0.1, 0.2],
                          "stem_wrong": [0, 1, 0]})
    c = E.clip_rows(pairs, stems)
    r = E.ratios(c)
    for metric, (num, den) in HM.RATIO_COLUMNS.items():
        assert r[metric] == pytest.approx(c[num].sum() / c[den].sum()), metric
    # by hand: cIoU >= 0.3 in 2 of 3 images with a sounding class; wrong source in 1 of 3 stems
    assert r["ca_ciou30"] == pytest.approx(2 / 3) and r["wrong_source_rate"] == pytest.approx(1 / 3)
    ca = c.reset_index().assign(method="dmc")
    num, den = HM.clip_sums(ca, "dmc", "recall", ["b", "a"])
    np.testing.assert_array_equal(num[:, 0], [3, 1])
    np.testing.assert_array_equal(den, [4, 4])


def test_model_pass_shares_and_heat_by_hand():
    """a_ij sums to 1 over the clusters where the heat is positive; at tau = 0 the heat is the mean of
    the per-cluster maps; fair hard shares sum to 1 per pair."""
    from dmc.model.network import DMC

    p = load_default_params()
    torch.manual_seed(0)
    model = DMC.from_params(p["model"], p["train"])
    rng = np.random.default_rng(0)
    s = p["decode"]["frame_size"]
    frames = rng.integers(0, 255, (3, s, s, 3), dtype=np.uint8)
    T = LogMel.from_params(p["decode"]).num_frames(int(p["decode"]["segment_seconds"] * p["decode"]["sample_rate"]))
    mels = rng.normal(size=(3, T, p["decode"]["n_mels"])).astype(np.float32)
    out = HM.model_pass(model, frames, mels, 1.0, "assignment", 2, "cpu")
    k = out["shares"].shape[1]
    np.testing.assert_allclose(out["shares"].sum(1), 1.0, atol=1e-9)       # assignment maps are > 0
    from dmc.localization.heatmaps import cluster_pairs, frames_to_tensor

    with torch.no_grad():
        pc = cluster_pairs(model.eval(), frames_to_tensor(frames), torch.from_numpy(mels)[:, None])
    m = pc.vis.assign.float().numpy()
    np.testing.assert_allclose(out["blind"].reshape(3, -1), m.sum(-1) / k, atol=1e-6)
    np.testing.assert_allclose(out["shares_a"].sum(-1), 1.0)


def test_only_scoring_steps_read_the_multi_source_corpus_and_the_mapping_is_an_output():
    s = graph.step("heldout_multi")
    assert graph.CLASS_MAPPING in {o.path for o in s.outs}
    assert graph.HELDOUT_MULTI_METRICS in {o.path for o in s.outs if o.kind == "metrics"}
    readers = {st.name for st in graph.STEPS if any(d.startswith("data/synth_multi") or d == graph.DECODED_MULTI
                                                     for d in st.deps)}
    assert readers == {"decode_multi", "heldout_multi"}


@pytest.mark.slow
def test_heldout_multi_end_to_end_chooses_on_training_data_only(tmp_path):
    """Tiny corpora: the mapping, the cut points, the majority and the control's pairing are the same
    whatever the multi-source corpus holds (poisoned), while its scores move; poisoning the TRAINING
    corpus instead moves the mapping or the cut points (positive control: the check can see a choice
    that reads the data it poisons)."""
    from test_multisource import _write_multi_corpus

    from dmc.config import Params
    from dmc.localization.mapping_file import read_mapping
    from dmc.model.network import DMC

    p = with_overrides(load_default_params(), localize__device="cpu")
    train = decode_corpus(tmp_path / "train", 16, seed=3)
    multi = _write_multi_corpus(tmp_path / "multi", p, 4)
    torch.manual_seed(0)
    model = DMC.from_params(p["model"], p["train"])
    torch.save({"model": model.state_dict(), "config": {"model": p["model"], "train": p["train"]}}, tmp_path / "m.pt")

    def poison(root):
        for shard in (root / "decoded").glob("shard-*"):
            frames = np.load(shard / "frames.npy", mmap_mode="r+")
            mel = np.load(shard / "logmel.npy", mmap_mode="r+")
            frames[:] = 255 - frames
            mel[:] = 50.0
            frames.flush()
            mel.flush()

    for name in ("multi_poisoned", "train_poisoned"):
        shutil.copytree(multi if name.startswith("multi") else train, tmp_path / name)
        poison(tmp_path / name)
    out = {}
    for name, tr, mu in (("clean", train, multi), ("multi_poisoned", train, tmp_path / "multi_poisoned"),
                         ("train_poisoned", tmp_path / "train_poisoned", multi)):
        flat = HM.run(Params.from_dict(p), tr / "decoded", mu / "decoded", tmp_path / "m.pt", tr / "ground_truth",
                      mu / "ground_truth", multi / "stems", tmp_path / f"{name}.map.json", tmp_path / name,
                      tmp_path / f"{name}.json", log=lambda *_: None)
        out[name] = (flat, json.loads((tmp_path / name / "details.json").read_text()),
                     read_mapping(tmp_path / f"{name}.map.json"), pd.read_csv(tmp_path / name / "ca_clips.csv"))
    flat, details, mapping, ca = out["clean"]
    assert details["clips"] == 4 and details["stems_scored"] == 2 * details["pairs"]   # two sources per clip
    assert set(ca.method) == set(HM.CA_METHODS) and mapping.fitted_on == "training corpus train + val"
    assert mapping.cluster_to_class == details["cluster_to_class"]["dmc"]
    assert flat["heldout_multi.audio_gap.pointing"] == pytest.approx(
        flat["heldout_multi.dmc.pointing"] - flat["heldout_multi.mismatched.pointing"], abs=2e-4)
    choices = ("cluster_to_class", "multisource_cuts", "visible_count_cuts", "majority_count_train_val",
               "audio_partner")
    for key in choices:
        assert details[key] == out["multi_poisoned"][1][key], key
    assert out["multi_poisoned"][2] == mapping
    assert not ca.equals(out["multi_poisoned"][3])                           # its scores move
    moved = out["train_poisoned"][1]
    assert (moved["cluster_to_class"] != details["cluster_to_class"]
            or moved["multisource_cuts"] != details["multisource_cuts"])    # positive control
    for n in ("table.md", "pairs.csv", "stems.csv", "clips.csv"):
        assert (tmp_path / "clean" / n).is_file()
