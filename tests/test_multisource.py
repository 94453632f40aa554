"""The multi-source test corpus and the training option synth.mixtures (issue 33):
dmc.synth.multisource, dmc.pipeline.multicorpus, the stages synth_multi / decode_multi."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, load_default_params, tree_hashes, with_overrides, write_params
from dmc.io.audio import read_audio
from dmc.pipeline import graph
from dmc.synth import CLASS_NAMES, generate_videos
from dmc.synth import multisource as MS
from dmc.synth import corpus as C
from dmc.synth import videos as V

KW = dict(n_videos=8, seconds=2.0, width=64, height=48, fps=10, audio_rate=22050, other_containers=0.5,
          seed=2000, portable_audio=True, workers=1)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("multi")
    clips = MS.generate_multisource(root / "videos", root / "stems", root / "gt", **KW)
    return root, clips


def _gt(root):
    read = lambda name: pd.read_csv(root / "gt" / name, keep_default_na=False)   # noqa: E731
    return read("clips.csv"), read("boxes.csv"), read("objects.csv")


# -- the schedule ----------------------------------------------------------------------------------
def test_schedule_by_hand_properties():
    plan = MS.schedule(40, seed=5)
    kinds = [k for k, _ in plan]
    assert kinds.count("duet") == 10 and kinds.count("mixture") == 30
    assert all(a < b for _, (a, b) in plan)                                    # two distinct classes
    mix_pairs = [p for k, p in plan if k == "mixture"]
    for start in range(0, 28, 4):                 # each block of 4 mixture pairs: every class once
        assert sorted(c for p in mix_pairs[start:start + 4] for c in p) == list(range(len(CLASS_NAMES)))
    assert plan == MS.schedule(40, seed=5) and plan != MS.schedule(40, seed=6)


# -- the corpus: layout and ground truth -----------------------------------------------------------
def test_layout_and_ground_truth_are_complete(corpus):
    root, clips = corpus
    c, boxes, objects = _gt(root)
    assert sorted(p.name for p in (root / "videos").iterdir()) == sorted(c.video)       # nothing but videos
    assert sorted(p.name for p in (root / "gt").iterdir()) == ["boxes.csv", "clips.csv", "objects.csv"]
    assert list(c.columns) == MS.MULTI_CLIP_COLUMNS and list(objects.columns) == MS.OBJECT_COLUMNS
    assert list(boxes.columns) == V.BOX_COLUMNS
    assert set(c.kind) == {"mixture", "duet"} and (c.kind == "duet").sum() == round(MS.DUET_SHARE * len(c))
    assert (c.n_sources == 2).all()
    n_frames = int(KW["seconds"] * KW["fps"])
    for row in c.itertuples():
        o = objects[objects.video == row.video]
        b = boxes[boxes.video == row.video]
        n_obj = MS.MIXTURE_OBJECTS if row.kind == "mixture" else 2
        assert len(o) == n_obj == row.n_sources + row.n_distractors
        assert o["class"].nunique() == n_obj and set(o["class"]) <= set(CLASS_NAMES)
        assert o.sounding.sum() == 2 and (row.kind == "duet") == (o.sounding == 1).all()
        assert sorted(o[o.sounding == 1]["class"]) == sorted(row.sounding_classes.split(";"))
        # every object boxed in every frame, with the class and sounding flag of objects.csv
        assert sorted(b.frame.unique()) == list(range(n_frames)) and (b.groupby("frame").size() == n_obj).all()
        per_obj = b.groupby("object_id").agg(cls=("class", "unique"), snd=("sounding", "unique"))
        for ob in o.itertuples():
            assert list(per_obj.loc[ob.object_id, "cls"]) == [ob._3] and list(per_obj.loc[ob.object_id, "snd"]) == [ob.sounding]
        # a stem for each sounding object and the background, none for a silent one
        assert all(bool(s) == bool(snd) for s, snd in zip(o.stem, o.sounding))
        for s in [*o.stem[o.sounding == 1], row.background_stem]:
            assert (root / "stems" / s).is_file() and s.startswith(Path(row.video).stem + "/")
    assert sorted(str(p.relative_to(root / "stems")) for p in (root / "stems").rglob("*.flac")) == \
        sorted([*objects.stem[objects.sounding == 1], *c.background_stem])
    assert (boxes.x1 > boxes.x0).all() and (boxes.x1 <= KW["width"]).all() and (boxes.y1 <= KW["height"]).all()


def test_silent_objects_are_of_classes_that_sound_in_other_clips(corpus):
    root, _ = corpus
    _, _, objects = _gt(root)
    silent = objects[objects.sounding == 0]
    assert len(silent) >= 2
    for ob in silent.itertuples():
        elsewhere = objects[(objects.video != ob.video) & (objects.sounding == 1)]
        assert ob._3 in set(elsewhere["class"]), f"{ob.video}: silent {ob._3} sounds in no other clip"


# -- stems sum to the mixture ----------------------------------------------------------------------
def _stems_of(root, clips, objects, video):
    row = clips.set_index("video").loc[video]
    o = objects[(objects.video == video) & (objects.sounding == 1)].sort_values("object_id")
    return [read_audio(root / "stems" / s) for s in [*o.stem, row.background_stem]]


def test_the_encoder_gets_exactly_the_sum_of_the_stems(tmp_path, monkeypatch):
    """The array handed to the clip's audio encoder equals, sample for sample, the float32 sum of the
    stems read back from their FLAC files (a mono MP4 clip and a stereo WebM one)."""
    given = {}
    real = MS._encode

    def spy(path, container, frames, audio, *a, **k):
        given[container] = audio.copy()
        return real(path, container, frames, audio, *a, **k)

    monkeypatch.setattr(MS, "_encode", spy)
    for i, container in ((0, "mp4"), (1, "webm")):
        row, _, objs = MS._make_multi_clip((str(tmp_path / "v"), str(tmp_path / "s"), i, container, 7, "mixture", (1, 4),
                                            2.0, 64, 48, 10, 22050, False, True))
        stems = [read_audio(tmp_path / "s" / o[5]) for o in sorted(objs, key=lambda o: o[1]) if o[3]]
        stems.append(read_audio(tmp_path / "s" / row["background_stem"]))
        assert len(stems) == 3 and all(r == row["audio_rate"] for _, r in stems)
        total = np.zeros_like(stems[0][0])
        for s, _ in stems:
            assert s.shape == (row["audio_channels"], round(2.0 * row["audio_rate"]))
            total += s
        np.testing.assert_array_equal(total, given[container])
        assert all(np.abs(s).max() > 0 for s, _ in stems)
        assert not any(np.array_equal(s, total) for s, _ in stems)             # a real mixture
    assert given["webm"].shape[0] == 2 and given["mp4"].ndim == 2


def test_render_clip_replays_the_written_stems(corpus):
    root, clips = corpus
    c, _, objects = _gt(root)
    kinds = V._containers(len(c), KW["other_containers"], np.random.default_rng([KW["seed"], 1 << 30]))
    plan = MS.schedule(len(c), KW["seed"])
    for i, row in enumerate(c.itertuples()):
        clip = MS.render_clip(i, KW["seed"], *plan[i], kinds[i], KW["seconds"], KW["width"], KW["height"],
                              KW["audio_rate"], False, True)
        on_disk = _stems_of(root, c, objects, row.video)
        want = [clip["stems"][k] for k in sorted(k for k in clip["stems"] if k != MS.BACKGROUND)] + [clip["stems"][MS.BACKGROUND]]
        for (s, rate), w in zip(on_disk, want):
            assert rate == row.audio_rate
            np.testing.assert_array_equal(s, w)
        np.testing.assert_array_equal(MS.mix(want), clip["audio"])


def _snr(ref, x):
    n = min(ref.shape[1], x.shape[1])
    err = x[:, :n].astype(np.float64) - ref[:, :n]
    return 10 * np.log10(np.sum(ref[:, :n].astype(np.float64) ** 2) / np.sum(err ** 2))


def test_decoded_clip_audio_is_the_stem_sum_within_the_codec(corpus):
    """The clip's decoded audio (AAC or Vorbis) is close to the sum of its stems, and clearly closer
    than to the sum without either source: both sources are in the mixture."""
    root, _ = corpus
    c, _, objects = _gt(root)
    for row in c.itertuples():
        audio, rate = read_audio(root / "videos" / row.video)
        assert rate == row.audio_rate and audio.shape[0] == row.audio_channels
        stems = [s for s, _ in _stems_of(root, c, objects, row.video)]
        total = MS.mix(stems)
        snr = _snr(total, audio)
        assert snr > 10, f"{row.video}: {snr:.1f} dB"
        for k in range(2):
            assert _snr(total - stems[k], audio) < snr - 6, f"{row.video}: source {k} not in the mixture"


# -- its own seed --------------------------------------------------------------------------------
def test_same_seed_same_bytes_other_seed_other_bytes(corpus, tmp_path):
    root, clips = corpus
    again = MS.generate_multisource(tmp_path / "a" / "videos", tmp_path / "a" / "stems", tmp_path / "a" / "gt",
                                    **{**KW, "workers": 2})
    pd.testing.assert_frame_equal(clips, again)
    for sub in ("videos", "stems", "gt"):
        assert tree_hashes(root / sub) == tree_hashes(tmp_path / "a" / sub), sub
    MS.generate_multisource(tmp_path / "b" / "videos", tmp_path / "b" / "stems", tmp_path / "b" / "gt",
                            **{**KW, "seed": KW["seed"] + 1})
    for sub in ("videos", "stems"):
        assert not set(tree_hashes(root / sub).values()) & set(tree_hashes(tmp_path / "b" / sub).values()), sub


def test_settings_come_from_multi_seed_not_the_training_seed():
    from dmc.pipeline.multicorpus import multi_corpus_settings
    from dmc.pipeline.params import ParamsError

    s = load_default_params()["synth"]
    kw = multi_corpus_settings(s)
    assert kw["seed"] == s["multi_seed"] and kw["n_videos"] == s["multi_videos"]
    assert multi_corpus_settings({**s, "seed": s["seed"] + 50}) == kw                  # the training seed: no effect
    assert multi_corpus_settings({**s, "multi_seed": s["multi_seed"] + 1})["seed"] == s["multi_seed"] + 1
    assert multi_corpus_settings({**s, "size": "tiny"})["n_videos"] == round(s["multi_videos"] / 4)
    assert multi_corpus_settings({**s, "mixtures": "music_synthetic"}) == kw
    for bad in (*range(s["seed"], s["seed"] + 4), s["test_seed"]):
        with pytest.raises(ParamsError, match="synth.multi_seed"):
            multi_corpus_settings({**s, "multi_seed": bad})


def test_dmc_synth_multi_writes_the_corpus(tmp_path):
    from dmc.pipeline.cli import main

    p = with_overrides(load_default_params(), synth__size="tiny", synth__multi_videos=8, synth__video_seconds=1.0,
                       synth__width=32, synth__height=32)
    params = write_params(tmp_path / "params.yaml", p)
    out = tmp_path / "synth_multi"
    assert main(["--params", str(params), "synth", "multi", "--out", str(out / "videos"), "--stems", str(out / "stems"),
                 "--ground-truth", str(out / "ground_truth")]) == 0
    c = pd.read_csv(out / "ground_truth" / "clips.csv")
    assert len(c) == 2 == len(list((out / "videos").iterdir())) and (out / "stems").is_dir()


# -- the pipeline: only the scoring reads it ------------------------------------------------------
def test_only_decode_multi_reads_the_multi_source_corpus():
    readers = {s.name for s in graph.STEPS if any("synth_multi" in d or "decoded_multi" in d for d in s.deps)}
    assert readers == {"decode_multi", "heldout_multi"}       # heldout_multi scores on it (inference only)
    scored = {o.path for o in graph.step("heldout_multi").outs}
    assert not any(d in scored for s in graph.STEPS for d in s.deps)   # nothing downstream reads its outputs
    assert {s.name for s in graph.STEPS if "synth.multi_seed" in s.params} == {"synth_multi"}
    assert "synth" not in graph.step("synth").params and "synth.mixtures" in graph.step("synth").params
    assert not {"synth.multi_seed", "synth.multi_videos", "synth.mixtures"} & set(graph.step("synth_test").params)
    assert "synth.mixtures" not in graph.step("synth_multi").params


# -- the training-corpus option synth.mixtures -----------------------------------------------------
TRAIN_KW = dict(n_videos=6, seconds=2.0, width=64, height=48, fps=10, audio_rate=22050, other_containers=0.5,
                max_sources=3, max_distractors=2, seed=11, workers=1, portable_audio=True)


def test_mixtures_option_makes_half_the_training_clips_multi_source(tmp_path):
    plain = generate_videos(tmp_path / "n" / "v", tmp_path / "n" / "gt", **TRAIN_KW)
    mixed = generate_videos(tmp_path / "m" / "v", tmp_path / "m" / "gt", **TRAIN_KW, mixtures="music_synthetic")
    assert list(mixed.columns) == V.CLIP_COLUMNS
    hp, hm = tree_hashes(tmp_path / "n" / "v"), tree_hashes(tmp_path / "m" / "v")
    same = [v for v in plain.video if hp[v] == hm[v]]
    changed = [v for v in plain.video if hp[v] != hm[v]]
    assert len(changed) == round(MS.MIXTURE_SHARE * len(plain)) == len(same)
    # the other clips are those of the corpus without mixtures, row for row
    pd.testing.assert_frame_equal(plain.set_index("video").loc[same], mixed.set_index("video").loc[same])
    m = mixed.set_index("video").loc[changed]
    assert (m.n_sources == 2).all() and set(m.n_distractors) <= {0, MS.MIXTURE_OBJECTS - 2}
    boxes = pd.read_csv(tmp_path / "m" / "gt" / "boxes.csv")
    for v in changed:
        b = boxes[(boxes.video == v) & (boxes.frame == 0)]
        assert len(b) == 2 + m.n_distractors[v] and b.sounding.sum() == 2
    assert sorted(p.name for p in (tmp_path / "m" / "v").iterdir()) == sorted(mixed.video)    # no stems there
    with pytest.raises(ValueError, match="mixtures"):
        generate_videos(tmp_path / "x" / "v", tmp_path / "x" / "gt", **TRAIN_KW, mixtures="duets")


def test_default_mixtures_run_the_unchanged_clip_maker(tmp_path, monkeypatch):
    """synth.mixtures: none (the default) hands the very jobs of the code before the option to
    videos._make_clip (whose bytes test_manifest's regeneration checks against the committed corpus)."""
    seen = {}

    def record(fn, jobs, workers=None):
        seen["fn"], seen["jobs"] = fn, list(jobs)
        return [fn(j) for j in jobs]

    monkeypatch.setattr(C, "parallel_map", record)
    generate_videos(tmp_path / "v", tmp_path / "gt", **{**TRAIN_KW, "n_videos": 2})
    assert seen["fn"] is V._make_clip
    kinds = V._containers(2, TRAIN_KW["other_containers"], np.random.default_rng([TRAIN_KW["seed"], 1 << 30]))
    want = [(seen["jobs"][0][0], i, kinds[i], 11, 2.0, 64, 48, 10, 22050, 3, 2, "none", False, True) for i in range(2)]
    assert seen["jobs"] == want
    assert MS.training_jobs(want, "none", 11) == [("plain", j) for j in want]


def test_default_corpora_regenerated_through_generate_videos_have_the_committed_bytes(tmp_path, monkeypatch):
    """The default training corpus and test corpus, regenerated with today's generate_videos at default
    params (a few clips of each: the other jobs are skipped), have the bytes that
    results/manifest/synth.tsv and synth_test.tsv record."""
    from dmc import synth
    from dmc.io import manifest as M
    from dmc.pipeline.testcorpus import test_corpus_settings

    real = C.parallel_map
    picked = {}

    def some(fn, jobs, workers=None):   # run one MP4, one WebM and one MKV clip; the rest are skipped
        keep = {}
        for j in jobs:
            keep.setdefault(j[2], j[1])
        picked["clips"] = sorted(keep.values())
        return [real(fn, [j], 1)[0] if j[1] in picked["clips"] else ({}, []) for j in jobs]

    monkeypatch.setattr(C, "parallel_map", some)
    p = load_default_params()
    s = {**p["synth"], **synth.scaled_counts(p["synth"])}
    for name, kw in (("synth", dict(n_videos=s["videos"], seconds=s["video_seconds"], width=s["width"],
                                    height=s["height"], fps=s["fps"], audio_rate=s["audio_rate"],
                                    other_containers=s["other_containers"], max_sources=s["max_sources"],
                                    max_distractors=s["max_distractors"], seed=s["seed"], control=s["control"],
                                    variants=s["variants"], portable_audio=s["portable_audio"],
                                    mixtures=s["mixtures"])),
                     ("synth_test", test_corpus_settings(p["synth"]))):
        generate_videos(tmp_path / name / "videos", tmp_path / name / "gt", **kw)
        _, entries = M.read_manifest(ROOT / M.MANIFEST_DIR / f"{name}.tsv")
        recorded = {e.path: e.sha256 for e in entries}
        files = sorted((tmp_path / name / "videos").iterdir())
        assert len(files) == len(picked["clips"]) >= 2 and {f.suffix for f in files} >= {".mp4", ".webm"}
        for f in files:
            assert M.file_hashes(f)[1] == recorded[f"videos/{f.name}"], f"{name}: videos/{f.name} differs"


def test_verify_still_compares_the_committed_manifests_at_default_params():
    """The new synth keys do not make `dmc verify` skip the committed manifests (recorded before them):
    at default params every folder is compared; synth.mixtures changes what the training corpus's
    folders depend on only; the multi-source corpus's own keys change none of them."""
    from dmc.io import manifest as M

    p = load_default_params()

    def skipped(params):
        out = set()
        for name in M.ROOTS:
            rec, _ = M.read_manifest(ROOT / M.MANIFEST_DIR / f"{name}.tsv")
            if M._differing_params(rec, params, M.DEPENDS[name], M.INDEPENDENT.get(name, ())):
                out.add(name)
        return out

    assert skipped(p) == set()
    assert skipped(with_overrides(p, synth__multi_seed=7, synth__multi_videos=9)) == set()
    assert skipped(with_overrides(p, synth__mixtures="music_synthetic")) == {"synth", "decoded"}
    assert skipped(with_overrides(p, synth__video_seconds=4.0)) == set(M.ROOTS)   # a real change is still seen


# -- end to end: the multi-source corpus is read for scores only -------------------------------------
def _write_multi_corpus(root, p, n_videos):
    from dmc.io.shards import build_index, videos_of_shard, write_shard
    from dmc.pipeline.multicorpus import multi_corpus_settings

    kw = multi_corpus_settings({**p["synth"], "multi_videos": n_videos, "size": "small"})
    MS.generate_multisource(root / "videos", root / "stems", root / "ground_truth", **kw)
    write_shard(root / "decoded" / "shard-00000", root / "videos", videos_of_shard(root / "videos", 0, 1), p["decode"])
    build_index([root / "decoded" / "shard-00000"], root / "decoded", p["decode"])
    return root


@pytest.mark.slow
def test_multi_corpus_end_to_end_is_read_for_scores_only(small_corpus, tmp_path):
    """On the tiny corpus: the multi-source corpus comes from its own seed (same seed, same bytes; not
    the training corpus's videos; another multi_seed, other bytes); scored as the test corpus is
    (dmc.pipeline.heldout), the run's choices (count cut points, majority, the control's pairing) are
    the same whatever it holds (poisoned), while its scores change (the positive control)."""
    import torch

    from dmc.config import Params
    from dmc.model.network import DMC
    from dmc.pipeline import heldout as H

    p = with_overrides(load_default_params(), localize__device="cpu")
    a = _write_multi_corpus(tmp_path / "a", p, 6)
    b = _write_multi_corpus(tmp_path / "b", p, 6)
    ha = tree_hashes(a / "videos")
    assert ha == tree_hashes(b / "videos") and tree_hashes(a / "stems") == tree_hashes(b / "stems")
    assert not set(ha.values()) & set(tree_hashes(small_corpus / "videos").values())
    other = _write_multi_corpus(tmp_path / "c", with_overrides(p, synth__multi_seed=p["synth"]["multi_seed"] + 1), 6)
    assert not set(tree_hashes(other / "videos").values()) & set(ha.values())

    torch.manual_seed(0)
    model = DMC.from_params(p["model"], p["train"])
    model_path = tmp_path / "m.pt"
    torch.save({"model": model.state_dict(), "config": {"model": p["model"], "train": p["train"]}}, model_path)
    poisoned = tmp_path / "poisoned"
    shutil.copytree(a, poisoned)
    for shard in (poisoned / "decoded").glob("shard-*"):       # every multi-source segment overwritten
        frames = np.load(shard / "frames.npy", mmap_mode="r+")
        mel = np.load(shard / "logmel.npy", mmap_mode="r+")
        frames[:] = 255 - frames
        mel[:] = 50.0
        frames.flush()
        mel.flush()
    out = {}
    for name, root in (("clean", a), ("poisoned", poisoned)):
        H.run(Params.from_dict(p), small_corpus / "decoded", root / "decoded", model_path, small_corpus / "ground_truth",
              root / "ground_truth", None, tmp_path / name, tmp_path / f"{name}.json", log=lambda *_: None)
        out[name] = (json.loads((tmp_path / name / "details.json").read_text()), pd.read_csv(tmp_path / name / "pairs.csv"),
                     pd.read_csv(tmp_path / name / "clips.csv"))
    details, pairs, clips = out["clean"]
    assert details["clips"] == 6 and set(pairs.video) == set(clips.video) and (clips.n_sources == 2).all()
    for key in ("multisource_cuts", "majority_count_train_val", "audio_partner"):
        assert details[key] == out["poisoned"][0][key], key
    cols = [c for c in pairs if c.endswith("_ciou")]
    assert not pairs[cols].equals(out["poisoned"][1][cols])                 # positive control: scores move


def test_mixtures_with_the_shortcut_control_are_refused_naming_the_key(tmp_path):
    from dmc.pipeline.params import ParamsError, validate_params

    bad = with_overrides(load_default_params(), synth__mixtures="music_synthetic", synth__control="no_objects")
    with pytest.raises(ParamsError, match="synth.mixtures"):
        validate_params(bad)
    validate_params(with_overrides(load_default_params(), synth__mixtures="music_synthetic"))
    with pytest.raises(ValueError, match="synth.mixtures"):
        generate_videos(tmp_path / "v", tmp_path / "gt", **TRAIN_KW, mixtures="music_synthetic", control="no_objects")
    assert not (tmp_path / "v").exists()
