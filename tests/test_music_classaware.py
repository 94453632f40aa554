"""Class-aware scoring of DSOL's MUSIC files through the benchmark path, against hand computations.

Boxes at 224 px: [0.25, 0.25, 0.5, 0.5] -> rows and columns 56..168 (112 x 112 = 12544 px, a quarter
of the 50176 px); [0, 0, 0.5, 1] -> the left half (25088 px). Class indices: DSOL's sorted keylist
(accordion 0, acoustic_guitar 1, cello 2, ..., violin 9, xylophone 10); category_id 1 = cello,
11 = violin (DSOL duetkeys).
"""

from __future__ import annotations

import json
import math
import wave
from pathlib import Path

import numpy as np
import pytest

from dmc.localization.benchmarks import music_classaware, run
from dmc.localization.benchmarks.layout import BenchmarkError
from dmc.localization.benchmarks.music import CLASSES, class_index, read_music
from dmc.localization.mapping_file import ClassMapping, MappingFileError, mapping_path, write_mapping

ROOT = Path(__file__).resolve().parents[1]
CELLO, VIOLIN = 2, 9
QUARTER = {"normbox": [0.25, 0.25, 0.5, 0.5], "category_id": 1}          # cello, centred quarter
LEFT_HALF = {"normbox": [0.0, 0.0, 0.5, 1.0], "category_id": 11}         # violin, left half
SOLO = {"a/frame_001/00001.jpg": {"bbox": [QUARTER]},
        "b/frame_001/00002.jpg": {"bbox": [LEFT_HALF]},
        "c/frame_001/00003.jpg": {"bbox": [dict(QUARTER, category_id=99)]},   # not a DSOL category
        "d/frame_001/00004.jpg": {"bbox": []}}                                 # DSOL skips it


def _solo(tmp_path: Path) -> Path:
    path = tmp_path / "solotest.json"
    path.write_text(json.dumps(SOLO))
    return path


def test_dsol_classes_and_categories():
    assert CLASSES.index("cello") == CELLO and CLASSES.index("violin") == VIOLIN and len(CLASSES) == 11
    assert class_index(1) == CELLO and class_index(11) == VIOLIN and class_index(13) == 0
    assert class_index(99) is None and class_index(True) is None


def test_reader_keeps_classes_and_names_each_broken_frame(tmp_path):
    bench = read_music(_solo(tmp_path), "music-solo")
    assert [e.name for e in bench.entries] == ["a/frame_001/00001", "b/frame_001/00002"] and bench.n_listed == 4
    assert bench.entries[0].box_classes == (CELLO,) and bench.entries[1].box_classes == (VIOLIN,)
    assert bench.entries[0].boxes.tolist() == [[0.25, 0.25, 0.5, 0.5]]
    assert bench.problems[0].startswith("c/frame_001/00003: category_id [99]")
    assert bench.problems[1].startswith("d/frame_001/00004: no box")


def test_content_free_whole_image_by_hand(tmp_path):
    bench = read_music(_solo(tmp_path), "music-solo")
    per, table = music_classaware.score(bench, seed=0, content_free=("whole_image",))
    # the same all-ones map for every class: > 0.1 x max keeps every pixel -> cIoU = box share
    assert per.ciou.tolist() == pytest.approx([0.25, 0.5]) and set(per.relative) == {0.1}
    # no pixel of a silent class's map is <= 0.2
    assert per.nsa.tolist() == [0.0, 0.0]
    s = table["whole_image"]
    # success rates: 1 for t <= 0.25 (6 thresholds), 0.5 for 0.3..0.5 (5), 0 after (10)
    # AUC = 0.05 * (sum of rates - (first + last) / 2) = 0.05 * (6 + 2.5 - 0.5) = 0.4
    assert s["ciou30"] == pytest.approx(0.5) and s["auc"] == pytest.approx(0.4)
    assert s["nsa"] == 0.0 and s["n_images"] == 2 and math.isnan(s["nsa_drawn"])


def test_content_free_maps_are_one_map_for_every_class():
    m = music_classaware.content_free_maps("a", "random", seed=3, sigma=0.25)
    assert m.shape == (11, 224, 224) and all((m[c] == m[0]).all() for c in range(11))
    assert not (m[0] == music_classaware.content_free_maps("b", "random", 3, 0.25)[0]).all()


def _toy_solo_maps():
    a = np.zeros((11, 224, 224))
    a[:, :, :56] = 0.5            # every silent class: the left quarter above 0.2 -> NSA 0.75
    a[VIOLIN] = 1.0               # except violin: nothing <= 0.2 -> NSA 0
    a[CELLO] = 0.05
    a[CELLO, :112] = 1.0          # cello: the top half above 0.1 x max
    b = np.zeros((11, 224, 224))
    b[VIOLIN] = 1.0               # violin everywhere, the others silent (all <= 0.2)
    return [a, b]


def test_class_maps_of_a_model_by_hand(tmp_path):
    bench = read_music(_solo(tmp_path), "music-solo")
    per, table = music_classaware.score(bench, 0, models={"toy": _toy_solo_maps()}, content_free=())
    # a: top half (25088 px) vs the centred quarter (12544): overlap rows 56..112 x cols 56..168 = 6272
    #    cIoU = 6272 / (12544 + 25088 - 6272) = 0.2; NSA = (9 x 0.75 + 0) / 10 = 0.675
    # b: violin map everywhere vs the left half: 0.5; NSA = 1 (ten zero maps)
    assert per.ciou.tolist() == pytest.approx([0.2, 0.5]) and per.nsa.tolist() == pytest.approx([0.675, 1.0])
    s = table["toy"]
    # rates 1 for t <= 0.2 (5), 0.5 for 0.25..0.5 (6), 0 after: AUC = 0.05 * (5 + 3 - 0.5) = 0.375
    assert s["ciou30"] == pytest.approx(0.5) and s["auc"] == pytest.approx(0.375)
    assert s["nsa"] == pytest.approx((0.675 + 1.0) / 2)


def test_duet_binarises_at_dsol_duet_factor(tmp_path):
    path = tmp_path / "duettest.json"
    path.write_text(json.dumps({"x/frame_001/00001.jpg": {"bbox": [
        {"normbox": [0.0, 0.0, 0.5, 0.5], "category_id": 1}, {"normbox": [0.5, 0.5, 0.5, 0.5], "category_id": 11}]}}))
    bench = read_music(path, "music-duet")
    maps = np.zeros((11, 224, 224))
    maps[CELLO] = 0.15
    maps[CELLO, :112, :112] = 1.0       # > 0.2 x max: only its box (at 0.1 x max it would be everything)
    maps[VIOLIN, :112, :112] = 1.0      # in the cello's box: no overlap with its own
    per, table = music_classaware.score(bench, 0, models={"toy": [maps]}, content_free=())
    # mean over the two sounding classes (1 + 0) / 2; NSA: nine zero maps -> 1
    assert per.relative.tolist() == [0.2] and per.ciou.tolist() == [0.5] and per.nsa.tolist() == [1.0]
    assert per.n_sounding_classes.tolist() == [2]


def _wav(path: Path, rate=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((0.3 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate) * 32767).astype(np.int16).tobytes())


def _jpg(path: Path):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(path)


def test_cli_music_folder_class_aware_and_class_blind_tables(tmp_path, capsys):
    from dmc.pipeline.cli import main

    root = tmp_path / "music"
    _solo(root.mkdir() or root)
    for key in ("a/frame_001/00001", "b/frame_001/00002"):
        _jpg(root / "frames" / f"{key}.jpg")
        _wav(root / "audio" / f"{key}.wav")
    out = tmp_path / "out"
    rc = main(["--params", str(ROOT / "params.yaml"), "localize", "--benchmark", "auto", "--root", str(root),
               "--content-free", "--benchmark-out", str(out)])
    err = capsys.readouterr().err
    assert rc == 0 and "2 scored / 4 listed" in err
    assert "not scored: c/frame_001/00003: category_id [99]" in err and "not scored: d/frame_001/00004: no box" in err
    data = json.loads((out / "music-solo.json").read_text())
    ca = data["classaware"]
    assert ca["relative"] == 0.1 and ca["classes"] == list(CLASSES)
    assert ca["methods"]["whole_image"] == {"ciou30": 0.5, "auc": 0.4, "nsa": 0.0, "nsa_drawn": None, "n_images": 2}
    assert data["methods"]["whole_image"]["ciou_mean"] == pytest.approx(0.375)     # class-blind beside
    md = (out / "music-solo.md").read_text()
    assert "## Class-aware (DSOL)" in md and "## Class-blind" in md and "| whole_image | 50.0 | 40.0 | 0.0 | 2 |" in md
    assert len((out / "music-solo_classaware_per_clip.csv").read_text().splitlines()) == 1 + 2 * 3


def test_mapping_file_is_required_and_must_hold_dsol_classes(tmp_path, capsys):
    from dmc.pipeline.cli import main

    model = tmp_path / "dmc.pt"
    model.write_bytes(b"")
    with pytest.raises(MappingFileError, match="dmc.class_mapping.json"):
        music_classaware.mapping_for(model)
    write_mapping(mapping_path(model), ClassMapping(["cello", "violin"], [0, 1]))
    with pytest.raises(BenchmarkError, match="accordion"):
        music_classaware.mapping_for(model)
    root = tmp_path / "music"
    _solo(root.mkdir() or root)
    rc = main(["--params", str(ROOT / "params.yaml"), "localize", "--benchmark", "music-solo", "--root", str(root),
               "--model", str(model), "--benchmark-out", str(tmp_path / "out")])
    assert rc == 1 and "not in the mapping" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_cli_music_with_a_model_scores_class_maps_of_its_clusters(tmp_path, capsys):
    import torch

    from dmc.config import Params
    from dmc.model.network import DMC
    from dmc.pipeline.cli import main

    from conftest import load_default_params, write_params

    p = load_default_params()
    p["localize"] = dict(p["localize"], device="cpu")
    write_params(tmp_path / "params.yaml", p)
    k = p["train"]["clusters"]
    model_path = tmp_path / "dmc.pt"
    torch.save({"model": DMC.random_init(p).state_dict(), "config": {"model": p["model"], "train": p["train"],
                                                                   "decode": p["decode"]}, "step": 0}, model_path)
    write_mapping(mapping_path(model_path), ClassMapping(list(CLASSES), [j % len(CLASSES) for j in range(k)]))
    root = tmp_path / "music"
    _solo(root.mkdir() or root)
    for key in ("a/frame_001/00001", "b/frame_001/00002"):
        _jpg(root / "frames" / f"{key}.jpg")
        _wav(root / "audio" / f"{key}.wav")
    # every cluster mapped: the class maps are the cluster shares regrouped, summing to 1 where there is heat
    bench = run.load("music-solo", root)
    ungated = dict(p, localize=dict(p["localize"], class_map_gate="none"))
    maps = music_classaware.model_class_maps(bench, Params.from_dict(ungated), model_path, "cpu")
    assert list(maps) == ["dmc", "random_init"] and len(maps["dmc"]) == 2 and maps["dmc"][0].shape[0] == 11
    total = maps["dmc"][0].sum(0)
    assert np.allclose(total[total > 0], 1.0) and (total > 0).any()
    # gated by the heat map (localize.class_map_gate: heat): they sum to the min-max normalised heat map
    gated = dict(p, localize=dict(p["localize"], class_map_gate="heat"))
    total = music_classaware.model_class_maps(bench, Params.from_dict(gated), model_path, "cpu")["dmc"][0].sum(0)
    assert total.min() == pytest.approx(0.0) and total.max() == pytest.approx(1.0)
    out = tmp_path / "out"
    rc = main(["--params", str(tmp_path / "params.yaml"), "localize", "--benchmark", "music-solo", "--root",
               str(root), "--model", str(model_path), "--benchmark-out", str(out)])
    assert rc == 0, capsys.readouterr().err
    ca = json.loads((out / "music-solo.json").read_text())["classaware"]["methods"]
    assert list(ca) == ["dmc", "random_init", "center_prior", "whole_image", "random"]
    # the saved model is the random-init network itself, under the same mapping: the same scores
    assert ca["dmc"] == ca["random_init"] and ca["dmc"]["n_images"] == 2


def test_content_free_scene_scores_as_all_eleven_classes(tmp_path):
    from dmc.localization import classaware

    path = tmp_path / "duettest.json"
    path.write_text(json.dumps({"x/frame_001/00001.jpg": {"bbox": [QUARTER, LEFT_HALF]},
                                "y/frame_001/00002.jpg": {"bbox": [QUARTER, dict(LEFT_HALF, category_id=1)]}}))
    bench = read_music(path, "music-duet")
    for e in bench.entries:
        for m in ("center_prior", "whole_image", "random"):
            full = classaware.score_image(music_classaware.content_free_maps(e.name, m, 5, 0.25), e.boxes,
                                          e.box_classes, [True] * len(e.box_classes), 0.2)
            maps, classes = music_classaware.content_free_scene(e, m, 5, 0.25)
            small = classaware.score_image(maps, e.boxes, classes, [True] * len(classes), 0.2)
            # the same up to the last bit of a mean of ten equal numbers
            assert small.ciou == full.ciou and small.nsa == pytest.approx(full.nsa, rel=1e-12)
            assert small.n_sounding == full.n_sounding
