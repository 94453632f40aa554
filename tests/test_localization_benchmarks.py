"""The published localization benchmarks (src/dmc/localization/benchmarks): every protocol rule
against numbers computed by hand on small made-up maps and boxes, the readers on broken folders,
and the published content-free baseline from the full public vggss.json."""

from __future__ import annotations

import json
import math
import wave
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import binary_dilation, binary_erosion
from sklearn.metrics import auc as sk_auc

from dmc.io.ground_truth import box_mask
from dmc.localization import metrics
from dmc.localization.benchmarks import baselines, protocol, run
from dmc.localization.benchmarks.flickr import read_flickr
from dmc.localization.benchmarks.music import box_pixels, read_music
from dmc.localization.benchmarks.vggss import read_vggss

ROOT = Path(__file__).resolve().parents[1]
VGGSS = ROOT / "tests" / "data" / "benchmarks" / "vggss.json"


def _box(x1, y1, x2, y2, size=protocol.SIZE):
    m = np.zeros((size, size))
    m[y1:y2, x1:x2] = 1
    return m


# -- the predicted map ---------------------------------------------------------------------------
def test_median_threshold_keeps_the_top_half_ties_included():
    pred = np.arange(16, dtype=float).reshape(4, 4)
    assert protocol.median_threshold(pred) == 8.0          # sorted index 16 // 2 = 8
    assert protocol.binarize(pred).sum() == 8               # 8..15 (EZ-VSL: >=)
    assert protocol.binarize(pred, strict=True).sum() == 7  # 9..15 (LVS: >)
    assert protocol.binarize(pred, threshold=12.5).sum() == 3


def test_min_max_leaves_a_constant_map_and_whole_image_keeps_every_pixel():
    np.testing.assert_array_equal(protocol.min_max(np.full((3, 3), 7.0)), np.full((3, 3), 7.0))
    np.testing.assert_allclose(protocol.min_max(np.array([[2.0, 4.0], [6.0, 10.0]])), [[0, 0.25], [0.5, 1]])
    pred = protocol.prepare(baselines.whole_image())
    assert pred.sum() == 224 * 224
    gt = _box(0, 0, 112, 112)                                # a quarter of the image
    assert protocol.ciou(pred, gt) == pytest.approx(0.25)


def test_upsample_goes_to_224_with_corners_kept():
    up = protocol.upsample(np.array([[0.0, 1.0], [2.0, 3.0]]))
    assert up.shape == (224, 224)
    assert (up[0, 0], up[0, -1], up[-1, 0], up[-1, -1]) == (0.0, 1.0, 2.0, 3.0)


def test_centre_prior_under_the_median_is_a_centred_half():
    pred = protocol.prepare(baselines.center_prior())
    assert abs(pred.mean() - 0.5) < 0.001
    assert pred[112, 112] == 1 and pred[0, 0] == 0
    np.testing.assert_array_equal(pred, pred[::-1, ::-1])  # symmetric about the centre


# -- ground truth -------------------------------------------------------------------------------------
def test_flickr_consensus_of_three_annotators_by_hand():
    # two annotators agree on a 10 x 10 box (consensus 1), the third draws one shifted by 5 px:
    # its 75 pixels outside the agreed box count 1/2; the agreed box stays 1 (clipped)
    gt = protocol.flickr_consensus([(0, 0, 10, 10), (0, 0, 10, 10), (5, 5, 15, 15)])
    assert gt.max() == 1.0
    assert gt.sum() == pytest.approx(100 + 75 * 0.5)
    assert gt[12, 12] == 0.5 and gt[2, 2] == 1.0
    pred = _box(0, 0, 10, 10)
    assert protocol.ciou(pred, gt) == pytest.approx(100 / 137.5)
    # a single annotator's box alone counts 1/2 everywhere
    assert protocol.flickr_consensus([(0, 0, 10, 10)]).max() == 0.5


def test_flickr_boxes_rescale_256_to_224():
    assert protocol.flickr_pixels((0, 100, 256, 255)) == (0, 87, 224, 223)   # int(224 * v / 256)


def test_vggss_corrupt_box_is_clipped_and_boxes_unite():
    assert protocol.vggss_pixels([-2.88e16, 0.5, 0.5, 1.0]) == (0, 112, 112, 224)
    gt = protocol.union_map([(0, 0, 10, 10), (5, 5, 15, 15)])
    assert set(np.unique(gt)) == {0.0, 1.0} and gt.sum() == 175


def test_ciou_by_hand_and_empty_ground_truth_as_the_official_code():
    pred, gt = _box(0, 0, 10, 10), _box(0, 0, 20, 10)
    assert protocol.ciou(pred, gt) == pytest.approx(100 / 200)
    pred2 = _box(0, 0, 20, 20)                               # 200 px inside, 200 outside
    assert protocol.ciou(pred2, gt) == pytest.approx(200 / (200 + 200))
    assert protocol.ciou(pred, np.zeros_like(gt)) == 0.0     # 0 / (0 + 100)
    assert math.isnan(protocol.ciou(np.zeros_like(gt), np.zeros_like(gt)))


def test_music_normbox_as_dsol_eval():
    # x, y, w, h normalised -> int(x), int(y), int(x + w), int(y + h) at 224
    assert box_pixels([0.25, 0.5, 0.5, 0.25]) == (56, 112, 168, 168)


# -- summaries ---------------------------------------------------------------------------------------
def test_success_auc_by_hand_and_as_sklearn():
    ious = [0.0, 0.5, 1.0]
    # success rate 1 at t = 0, 2/3 for t in 0.05..0.5, 1/3 for 0.55..1: trapezoids
    hand = (1 + 2 / 3) / 2 * 0.05 + 9 * 0.05 * 2 / 3 + (2 / 3 + 1 / 3) / 2 * 0.05 + 9 * 0.05 / 3
    s = protocol.summarize(ious)
    assert s["auc"] == pytest.approx(hand)
    rates = [np.mean(np.array(ious) >= 0.05 * i) for i in range(21)]
    assert s["auc"] == pytest.approx(sk_auc([0.05 * i for i in range(21)], rates))
    assert s["ciou50"] == pytest.approx(2 / 3) and s["ciou_mean"] == pytest.approx(0.5) and s["n"] == 3


def test_ap_and_max_f1_of_an_extended_set_by_hand():
    # three clips with objects and one mismatched-audio negative (no box)
    n_boxes, ious, conf = [1, 1, 1, 0], [0.6, 0.2, 0.7, float("nan")], [0.9, 0.8, 0.3, 0.5]
    # thresholds 0.8, 0.5, 0.3: (p, r) = (1/2, 1/2), (1/3, 1/2), (1/2, 1); monotone p = 1/2, 1/2, 1/2
    assert protocol.precision_recall(n_boxes, ious, conf, 0.5) == pytest.approx((1 / 3, 1 / 2))
    assert protocol.average_precision(n_boxes, ious, conf) == pytest.approx(0.5 * 0 + 0.5 * 0.5)
    # F1 at 0.3, 0.5, 0.8, 0.9: 2/3, 0.4, 0.5, 0.5
    assert protocol.max_f1(n_boxes, ious, conf) == pytest.approx(2 / 3)


def test_confidence_is_the_mean_of_the_top_quarter():
    assert protocol.confidence(np.arange(8, dtype=float)) == pytest.approx((6 + 7) / 2)


def test_benchmark_path_agrees_with_the_internal_metric_where_definitions_coincide():
    rng = np.random.default_rng(0)
    boxes = [(10, 20, 90, 120), (100, 5, 200, 60)]
    gt_internal = box_mask(boxes, (224, 224))               # the synthetic corpus's rule (pixel centres)
    gt_bench = protocol.union_map(boxes)                     # VGG-SS's rule
    np.testing.assert_array_equal(gt_internal, gt_bench.astype(bool))
    ious_internal, ious_bench = [], []
    for _ in range(20):
        heat = protocol.min_max(rng.random((224, 224)) + np.linspace(0, 2, 224)[None])
        ious_internal.append(metrics.ciou(heat, gt_internal, 0.3))
        ious_bench.append(protocol.ciou(protocol.prepare(heat, threshold=0.3), gt_bench))
    np.testing.assert_allclose(ious_bench, ious_internal)
    internal = metrics.summarize(ious_internal, [True] * 20)
    bench = protocol.summarize(ious_bench)
    for key in ("ciou50", "auc", "ciou_mean"):
        assert bench[key] == pytest.approx(internal[key])


# -- readers and the run ----------------------------------------------------------------------------------
def _wav(path: Path, seconds=1.0, rate=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    data = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.tobytes())


def _jpg(path: Path):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(path)


def _vggss_folder(tmp_path: Path) -> Path:
    root = tmp_path / "vggss"
    entries = [{"file": "good", "class": "dog", "bbox": [[0.25, 0.25, 0.75, 0.75]]},
               {"file": "nomedia", "class": "dog", "bbox": [[0.0, 0.0, 0.5, 0.5]]},
               {"file": "badbox", "class": "cat", "bbox": "oops"},
               {"file": "badimage", "class": "cat", "bbox": [[0.1, 0.1, 0.9, 0.9]]},
               {"file": "clipped", "class": "cat", "bbox": [[-2.9e16, 0.0, 0.5, 1.0]]}]
    root.mkdir()
    (root / "vggss.json").write_text(json.dumps(entries))
    for name in ("good", "badbox", "clipped", "badimage"):
        _wav(root / "audio" / f"{name}.wav")
    for name in ("good", "badbox", "clipped"):
        _jpg(root / "frames" / f"{name}.jpg")
    (root / "frames" / "badimage.jpg").write_bytes(b"not a jpeg")
    return root


def test_vggss_folder_with_broken_entries_scores_the_rest(tmp_path):
    bench = run.load("vggss", _vggss_folder(tmp_path))
    assert [e.name for e in bench.entries] == ["good", "clipped"]
    assert bench.n_listed == 5 and bench.clipped == 1
    assert len(bench.problems) == 3
    for name, reason in (("nomedia", "missing media"), ("badbox", "corrupt box"), ("badimage", "unreadable image")):
        assert any(p.startswith(f"{name}:") and reason in p for p in bench.problems), bench.problems
    res = run.score(bench, seed=0)
    # the centre half-disc against the centred half-size box; whole image: the box's share (1/4)
    assert res.table["whole_image"]["ciou_mean"] == pytest.approx((0.25 + 0.5) / 2)
    assert res.table["whole_image"]["n"] == 2


def test_cli_benchmark_exit_0_names_each_broken_entry(tmp_path, capsys):
    from dmc.pipeline.cli import main

    root, out = _vggss_folder(tmp_path), tmp_path / "out"
    rc = main(["--params", str(ROOT / "params.yaml"), "localize", "--benchmark", "vggss", "--root", str(root),
               "--content-free", "--benchmark-out", str(out)])
    err = capsys.readouterr().err
    assert rc == 0
    for name in ("nomedia", "badbox", "badimage"):
        assert f"not scored: {name}:" in err
    assert "2 scored / 5 listed" in err
    data = json.loads((out / "vggss.json").read_text())
    assert data["n_scored"] == 2 and data["n_listed"] == 5 and len(data["not_scored"]) == 3
    assert set(data["methods"]) == {"center_prior", "whole_image", "random"}
    assert "2 scored / 5 listed" in (out / "vggss.md").read_text()


def _flickr_xml(path: Path, boxes):
    objs = "".join(f"<object><bbox><name>s</name><x>{a}</x><y>{b}</y><x2>{c}</x2><y2>{d}</y2></bbox></object>"
                   for a, b, c, d in boxes)
    path.write_text(f"<annotation><filename>x</filename>{objs}</annotation>")


def test_flickr_reader_consensus_test_list_and_broken_files(tmp_path):
    ann = tmp_path / "Annotations"
    ann.mkdir()
    _flickr_xml(ann / "111.xml", [(0, 0, 128, 128), (0, 0, 128, 128), (64, 64, 192, 192)])
    _flickr_xml(ann / "222.xml", [(0, 0, 300, 10)])                  # outside 256 x 256: corrupt
    (ann / "333.xml").write_text("<annotation><object><bbox>")       # unreadable XML
    lst = tmp_path / "flickr_test.csv"
    lst.write_text("111,0\n222,0\n333,0\n444,0\n")
    bench = read_flickr(tmp_path, [r.split(",")[0] for r in lst.read_text().split()])
    assert [e.name for e in bench.entries] == ["111"] and bench.n_listed == 4
    assert [p.split(":")[0] for p in bench.problems] == ["222", "333", "444"]
    gt = bench.entries[0].gt
    # 128 / 256 -> 112 px; two agree on [0, 112)^2 (1), the third adds [112, 168)^2 band etc. at 1/2
    assert gt[0, 0] == 1.0 and gt[100, 100] == 1.0 and gt[150, 150] == 0.5 and gt[200, 200] == 0.0
    assert gt.sum() == pytest.approx(112 * 112 + 0.5 * (112 * 112 - 56 * 56))


@pytest.mark.parametrize("kind", ["flickr", "music-solo"])
def test_cli_scores_a_folder_in_the_published_layout(kind, tmp_path, capsys):
    from dmc.pipeline.cli import main

    root = tmp_path / kind
    if kind == "flickr":
        (root / "Annotations").mkdir(parents=True)
        _flickr_xml(root / "Annotations" / "111.xml", [(0, 0, 128, 128), (0, 0, 128, 128)])
        _flickr_xml(root / "Annotations" / "222.xml", [(64, 64, 192, 192)])
        names = ["111", "222"]
    else:
        root.mkdir()
        (root / "solotest.json").write_text(json.dumps(
            {f"v{i}/frame_001/0000{i}.jpg": {"bbox": [{"normbox": [0.25, 0.25, 0.5, 0.5], "category_id": 1}]}
             for i in (1, 2)}))
        names = ["v1/frame_001/00001", "v2/frame_001/00002"]
    _jpg(root / "frames" / f"{names[0]}.jpg")
    _wav(root / "audio" / f"{names[0]}.wav")                     # the second clip has no media
    out = tmp_path / "out"
    rc = main(["--params", str(ROOT / "params.yaml"), "localize", "--benchmark", "auto", "--root", str(root),
               "--content-free", "--benchmark-out", str(out)])
    err = capsys.readouterr().err
    assert rc == 0 and "1 scored / 2 listed" in err and f"not scored: {names[1]}: missing media" in err
    data = json.loads((out / f"{kind}.json").read_text())
    assert data["benchmark"] == kind and data["n_scored"] == 1
    # the whole image against a ground truth of a quarter of the image (consensus 1 or union)
    assert data["methods"]["whole_image"]["ciou_mean"] == pytest.approx(0.25)


def test_music_reader_names_a_corrupt_frame(tmp_path):
    path = tmp_path / "solotest.json"
    path.write_text(json.dumps({
        "v1/frame_001/00001.jpg": {"bbox": [{"box": [0, 0, 1, 1], "normbox": [0.25, 0.5, 0.5, 0.25],
                                              "category_id": 1}], "wdith": 640, "height": 360},
        "v2/frame_002/00002.jpg": {"bbox": [{"normbox": [0.1, "x", 0.2, 0.2]}]}}))
    bench = read_music(path, "music-solo")
    assert [e.name for e in bench.entries] == ["v1/frame_001/00001"] and bench.n_listed == 2
    assert bench.entries[0].gt.sum() == 112 * 56
    assert bench.problems[0].startswith("v2/frame_002/00002: corrupt box")


def test_nothing_scored_gives_null_metrics_and_exit_0(tmp_path, capsys):
    from dmc.pipeline.cli import main

    path = tmp_path / "vggss.json"
    path.write_text(json.dumps([{"file": "a", "bbox": []}]))
    rc = main(["--params", str(ROOT / "params.yaml"), "localize", "--benchmark", "vggss", "--annotations", str(path),
               "--benchmark-out", str(tmp_path / "out")])
    assert rc == 0 and "not scored: a: no box" in capsys.readouterr().err
    data = json.loads((tmp_path / "out" / "vggss.json").read_text())
    assert data["n_scored"] == 0 and data["methods"]["center_prior"]["ciou50"] is None
    assert "| center_prior | n/a |" in (tmp_path / "out" / "vggss.md").read_text()


def test_vggss_test_list_names_ids_missing_from_the_annotations(tmp_path):
    path = tmp_path / "v.json"
    path.write_text(json.dumps([{"file": "a", "bbox": [[0, 0, 1, 1]]}, {"file": "b", "bbox": [[0, 0, 1, 1]]}]))
    bench = read_vggss(path, ["a", "zz"])
    assert [e.name for e in bench.entries] == ["a"] and bench.n_listed == 2
    assert bench.problems == [f"zz: listed in the test list, not in {path}"]


@pytest.mark.slow
def test_published_content_free_baselines_from_the_full_vggss_json():
    """The centre prior (34.0 / 37.4) and the whole image (21.9 / 31.2) over all 5,158 public clips."""
    bench = run.load("vggss", None, VGGSS)
    assert bench.n_listed == 5158 and len(bench.entries) == 5158 and bench.clipped == 12
    assert len({e.cls for e in bench.entries}) == 221
    res = run.score(bench, seed=0, content_free=("center_prior", "whole_image"))
    cp, wi = res.table["center_prior"], res.table["whole_image"]
    assert abs(100 * cp["ciou50"] - 34.0) <= 0.1 and abs(100 * cp["auc"] - 37.4) <= 0.1
    assert abs(100 * wi["ciou50"] - 21.9) <= 0.1 and abs(100 * wi["auc"] - 31.2) <= 0.1
    # the committed result file (make benchmark-content-free) is this computation's
    committed = json.loads((ROOT / "results/benchmarks/vggss_content_free/vggss.json").read_text())
    for method in ("center_prior", "whole_image"):
        for key in ("ciou50", "auc", "ciou_mean"):
            assert committed["methods"][method][key] == round(res.table[method][key], 4)


# -- the embedded default through the benchmark path ---------------------------------------------------
@pytest.fixture(scope="module")
def synthetic_layout(tmp_path_factory):
    """Three synthetic clips at 112 x 112 (boxes land on whole pixels at 224) written in VGG-SS layout."""
    from dmc.config import Params
    from dmc.localization.benchmarks.synthetic import write_vggss_layout
    from dmc.synth import generate_videos

    from conftest import load_default_params

    d = tmp_path_factory.mktemp("layout")
    p = load_default_params()
    generate_videos(d / "videos", d / "gt", n_videos=3, seconds=4.0, width=112, height=112, fps=10,
                    audio_rate=16000, other_containers=0.0, max_sources=2, max_distractors=1, seed=7)
    cfg = Params.from_dict(p)
    written, skipped = write_vggss_layout(d / "videos", d / "gt", d / "vggss", cfg.decode, (112, 112))
    assert (written, skipped) == (3, 0)
    return d, p


def test_synthetic_layout_boxes_agree_with_the_internal_ground_truth(synthetic_layout):
    from dmc.io.decoding import decode_video
    from dmc.io.ground_truth import GroundTruth
    from dmc.io.shards import list_videos
    from dmc.localization.benchmarks.synthetic import clip_id

    d, p = synthetic_layout
    bench = run.load("vggss", d / "vggss")
    assert len(bench.entries) == 3 and not bench.problems
    by_name = {e.name: e for e in bench.entries}
    gt = GroundTruth(d / "gt", (112, 112))
    for rel in list_videos(d / "videos"):
        clip = decode_video(d / "videos" / rel, p["decode"]["segment_seconds"], 112, p["decode"]["sample_rate"])
        t = float(clip.frame_times[len(clip.frames) // 2])
        bench_mask, internal = by_name[clip_id(rel)].gt.astype(bool), gt.mask(rel, t, (224, 224))
        # the same boxes; the published int(224 * v) may lose the last pixel row or column of a box
        # where v * 224 falls a hair under a whole number (61 / 112 * 224 = 121.999..)
        differ = bench_mask ^ internal
        assert differ.sum() <= 0.05 * internal.sum()
        border = binary_dilation(internal) & ~binary_erosion(internal)    # one pixel either side of an edge
        assert not (differ & ~border).any()
        assert (bench_mask & internal).sum() >= 0.95 * internal.sum()


def test_cli_scores_the_synthetic_layout_with_a_model_and_every_baseline(synthetic_layout, tmp_path, capsys):
    import torch

    from dmc.model.network import DMC
    from dmc.pipeline.cli import main

    from conftest import write_params

    d, p = synthetic_layout
    model = DMC.random_init(p)
    model_path = tmp_path / "dmc.pt"
    torch.save({"model": model.state_dict(), "config": {"model": p["model"], "train": p["train"],
                                                        "decode": p["decode"]}, "step": 0}, model_path)
    params = dict(p, data=dict(p["data"], localization_benchmark=str(d / "vggss")))
    params["localize"] = dict(p["localize"], device="cpu")
    write_params(tmp_path / "params.yaml", params)
    out = tmp_path / "out"
    rc = main(["--params", str(tmp_path / "params.yaml"), "localize", "--benchmark", "auto", "--model",
               str(model_path), "--benchmark-out", str(out), "--benchmark-metrics", str(tmp_path / "m.json")])
    assert rc == 0, capsys.readouterr().err
    data = json.loads((tmp_path / "m.json").read_text())
    assert data["benchmark"] == "vggss" and data["n_scored"] == 3
    assert list(data["methods"]) == ["dmc", "random_init", "center_prior", "whole_image", "random"]
    # the saved model is the random-init network itself: the two rows are the same maps
    assert data["methods"]["dmc"] == data["methods"]["random_init"]
    per_clip = (out / "vggss_per_clip.csv").read_text().splitlines()
    assert len(per_clip) == 1 + 3 * 5


def test_extended_set_adds_one_mismatched_negative_per_clip(synthetic_layout, tmp_path):
    import torch

    from dmc.config import Params
    from dmc.model.network import DMC

    d, p = synthetic_layout
    model_path = tmp_path / "dmc.pt"
    torch.save({"model": DMC.random_init(p).state_dict(), "config": {"model": p["model"], "train": p["train"],
                                                                     "decode": p["decode"]}, "step": 0}, model_path)
    cfg = Params.from_dict(p)
    bench = run.load("vggss", d / "vggss")
    models, negatives = run.model_maps(bench, cfg, model_path, "cpu", extended=True)
    assert len(negatives["dmc"]) == 3
    res = run.score(bench, 0, models=models, negatives=negatives)
    for method in ("dmc", "random_init", "center_prior", "whole_image", "random"):
        sub = res.per_clip[res.per_clip.method == method]
        n_boxes = [e.n_boxes for e in bench.entries] + [0, 0, 0]
        ious, conf = [*sub.ciou, *[float("nan")] * 3], [*sub.confidence, *sub.confidence_mismatched]
        assert res.table[method]["ap"] == protocol.average_precision(n_boxes, ious, conf)
        assert res.table[method]["max_f1"] == protocol.max_f1(n_boxes, ious, conf)
    # a content-free map is the same whatever the audio: its negatives are as confident as its clips
    cp = res.per_clip[res.per_clip.method == "center_prior"]
    assert (cp.confidence == cp.confidence_mismatched).all()
    # mismatched audio changes the network's maps
    assert not np.allclose(np.stack(models["random_init"]), np.stack(negatives["random_init"]))
    assert "AP (%)" in run.markdown(res)


def test_vggss_folder_of_videos_named_by_file(synthetic_layout, tmp_path):
    """VGG-SS as videos named by ``file``: the middle frame and its audio, as the frames/audio layout."""
    import shutil

    import torch

    from dmc.config import Params
    from dmc.io.shards import list_videos
    from dmc.localization.benchmarks.synthetic import clip_id
    from dmc.model.network import DMC

    d, p = synthetic_layout
    root = tmp_path / "vggss_videos"
    (root / "videos").mkdir(parents=True)
    shutil.copy(d / "vggss" / "vggss.json", root / "vggss.json")
    rels = list_videos(d / "videos")
    for rel in rels[:2]:
        shutil.copy(d / "videos" / rel, root / "videos" / f"{clip_id(rel)}{Path(rel).suffix}")
    (root / "videos" / f"{clip_id(rels[2])}.mp4").write_bytes(b"\0" * 64)      # a broken video
    model_path = tmp_path / "dmc.pt"
    torch.save({"model": DMC.random_init(p).state_dict(), "config": {"model": p["model"], "train": p["train"],
                                                                     "decode": p["decode"]}, "step": 0}, model_path)
    cfg = Params.from_dict(p)
    bench = run.load("vggss", root)
    assert len(bench.entries) == 2 and len(bench.problems) == 1
    assert bench.problems[0].startswith(f"{clip_id(rels[2])}: ") and "unreadable video" in bench.problems[0]
    models, _ = run.model_maps(bench, cfg, model_path, "cpu")
    # the same clips through the frames/audio layout give nearly the same maps (the frame is a JPEG
    # there, the audio 16-bit PCM)
    frames = run.load("vggss", d / "vggss")
    frames.entries = [e for e in frames.entries if e.name in {x.name for x in bench.entries}]
    ref, _ = run.model_maps(frames, cfg, model_path, "cpu")
    for a, b in zip(models["dmc"], ref["dmc"]):
        assert a.shape == b.shape and np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.95
    res = run.score(bench, 0, models=models)
    assert res.table["dmc"]["n"] == 2


def test_pipeline_stage_without_a_benchmark_says_so(tmp_path, capsys):
    from dmc.pipeline.cli import main

    from conftest import load_default_params, write_params

    p = load_default_params()
    p["data"]["localization_benchmark"] = None
    write_params(tmp_path / "params.yaml", p)
    rc = main(["--params", str(tmp_path / "params.yaml"), "localize", "--benchmark", "auto",
               "--benchmark-out", str(tmp_path / "out"), "--benchmark-metrics", str(tmp_path / "m.json")])
    assert rc == 0
    assert json.loads((tmp_path / "m.json").read_text())["benchmark"] is None


# -- dmc fetch of the public annotation files (file:// URLs: no network) -------------------------------------
def test_fetch_vggss_json_from_a_file_url_checks_the_pinned_sha256(tmp_path, capsys):
    from dmc.pipeline.cli import main

    rc = main(["--params", str(ROOT / "params.yaml"), "fetch", "vggss-json", "--out", str(tmp_path / "ann"),
               "--url", VGGSS.as_uri()])
    assert rc == 0, capsys.readouterr().err
    assert (tmp_path / "ann" / "vggss.json").read_bytes() == VGGSS.read_bytes()


def test_fetch_refuses_a_changed_file_and_writes_nothing(tmp_path, capsys):
    from dmc.pipeline.cli import main

    changed = tmp_path / "vggss.json"
    changed.write_bytes(VGGSS.read_bytes().replace(b"elk bugling", b"elk bugle"))
    rc = main(["--params", str(ROOT / "params.yaml"), "fetch", "vggss-json", "--out", str(tmp_path / "ann"),
               "--url", changed.as_uri()])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("dmc fetch:")]
    assert rc == 1 and len(errors) == 1 and "sha256 mismatch" in errors[0]
    assert not (tmp_path / "ann" / "vggss.json").exists()


def test_fetch_offline_names_the_url(tmp_path, capsys):
    from dmc.pipeline.cli import main

    missing = (tmp_path / "nowhere.csv").as_uri()
    rc = main(["--params", str(ROOT / "params.yaml"), "fetch", "flickr-test-249", "--out", str(tmp_path / "ann"),
               "--url", missing])
    err = capsys.readouterr().err
    assert rc == 1 and missing in err and "download failed" in err
    assert not (tmp_path / "ann").exists() or not any((tmp_path / "ann").iterdir())


def test_pinned_annotation_urls_are_commits():
    from dmc.io.annotations import ANNOTATIONS
    from dmc.names import ANNOTATION_FILES

    assert tuple(ANNOTATIONS) == ANNOTATION_FILES      # the CLI's choices (names.py: no heavy imports)

    for spec in ANNOTATIONS.values():
        assert spec.url.startswith("https://raw.githubusercontent.com/")
        assert len(spec.url.split("/")[5]) == 40     # a commit, never a branch
    assert ANNOTATIONS["vggss-json"].sha256 == __import__("hashlib").sha256(VGGSS.read_bytes()).hexdigest()


def test_the_two_published_flickr_test_lists(tmp_path):
    """249 ids (LVS, EZ-VSL) and 250 (SLAVC): the 250th, 3908875350, has no released files, so over
    a folder with the 249 annotations it is the one clip named, and the 249 are scored."""
    from dmc.io.annotations import ANNOTATIONS
    from dmc.localization.benchmarks.flickr import read_test_list

    data = ROOT / "tests" / "data" / "benchmarks"
    for name, n in (("flickr_test_249.csv", 249), ("flickr_test_250.csv", 250)):
        assert __import__("hashlib").sha256((data / name).read_bytes()).hexdigest() == \
            ANNOTATIONS[f"flickr-test-{n}"].sha256
    ids249, ids250 = read_test_list(data / "flickr_test_249.csv"), read_test_list(data / "flickr_test_250.csv")
    assert len(ids249) == 249 and len(set(ids250)) == 250 and set(ids250) - set(ids249) == {"3908875350"}
    (tmp_path / "Annotations").mkdir()
    for i in ids249:
        _flickr_xml(tmp_path / "Annotations" / f"{i}.xml", [(0, 0, 128, 128)])
    bench = read_flickr(tmp_path, ids250)
    assert len(bench.entries) == 249 and bench.n_listed == 250
    assert bench.problems == [f"3908875350: no annotation {tmp_path / 'Annotations' / '3908875350.xml'}"]
