"""Tests of the embedded synthetic corpus (dmc.synth): layouts, media, determinism, acoustics."""

from __future__ import annotations

import hashlib
import re
import wave
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from dmc import synth
from dmc.io.evalsets import read_esc50
from dmc.synth import CLASS_NAMES, SIZES, generate_dcase, generate_esc50, generate_videos, scaled_counts
from dmc.synth import evalsets
from dmc.synth.sounds import render_sound

VIDEO_KW = dict(n_videos=4, seconds=2.0, width=64, height=48, fps=10, audio_rate=22050,
                other_containers=0.5, max_sources=3, max_distractors=2, seed=7, workers=1)


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _no_temp_left(parent: Path) -> bool:
    return not [p for p in parent.rglob("*") if ".tmp-" in p.name]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth_videos")
    clips = generate_videos(root / "videos", root / "gt", **VIDEO_KW)
    return root, clips


# --------------------------------------------------------------------------- videos
def test_videos_folder_holds_only_videos(videos):
    root, clips = videos
    names = sorted(p.name for p in (root / "videos").iterdir())
    assert names == sorted(clips["video"])
    assert all(re.fullmatch(r"vid_\d{5}\.(mp4|webm|mkv)", n) for n in names)
    assert set(clips["container"]) == {"mp4", "webm", "mkv"}
    assert sorted(p.name for p in (root / "gt").iterdir()) == ["boxes.csv", "clips.csv"]
    assert _no_temp_left(root)


def test_videos_decode_back(videos):
    root, clips = videos
    expected_codecs = {"mp4": ("h264", "aac"), "mkv": ("h264", "aac"), "webm": ("vp9", "opus")}
    for row in clips.itertuples():
        path = root / "videos" / row.video
        with av.open(str(path)) as c:
            vs, aus = c.streams.video[0], c.streams.audio[0]
            assert (vs.codec_context.name, aus.codec_context.name) == expected_codecs[row.container]
            assert abs(c.duration / 1e6 - VIDEO_KW["seconds"]) < 0.1
            frames = [f.to_ndarray(format="rgb24") for f in c.decode(vs)]
        assert len(frames) == int(VIDEO_KW["seconds"] * VIDEO_KW["fps"])
        assert frames[0].shape == (VIDEO_KW["height"], VIDEO_KW["width"], 3)
        with av.open(str(path)) as c:
            aus = c.streams.audio[0]
            assert aus.channels == row.audio_channels and aus.rate == row.audio_rate
            audio = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(aus)])
        expected_rate = 48000 if row.container == "webm" else VIDEO_KW["audio_rate"]
        assert row.audio_rate == expected_rate
        seconds = len(audio) / row.audio_channels / row.audio_rate
        assert abs(seconds - VIDEO_KW["seconds"]) < 0.1
        assert np.sqrt(np.mean(audio.astype(np.float64) ** 2)) > 0.01     # audible sources


def test_ground_truth_boxes(videos):
    root, clips = videos
    boxes = pd.read_csv(root / "gt" / "boxes.csv")
    assert list(boxes.columns) == ["video", "frame", "time_s", "object_id", "class", "sounding",
                                   "x0", "y0", "x1", "y1"]
    clips_csv = pd.read_csv(root / "gt" / "clips.csv")
    assert list(clips_csv.columns[:6]) == ["video", "seconds", "n_sources", "sounding_classes",
                                           "container", "audio_channels"]
    n_frames = int(VIDEO_KW["seconds"] * VIDEO_KW["fps"])
    for row in clips.itertuples():
        b = boxes[boxes.video == row.video]
        n_obj = row.n_sources + row.n_distractors
        assert 1 <= row.n_sources <= VIDEO_KW["max_sources"]
        assert 0 <= row.n_distractors <= VIDEO_KW["max_distractors"]
        assert sorted(b.frame.unique()) == list(range(n_frames))
        assert (b.groupby("frame").size() == n_obj).all()
        assert (b.groupby("frame").sounding.sum() == row.n_sources).all()
        sounding = b[b.sounding == 1]["class"].unique()
        assert sorted(sounding) == sorted(row.sounding_classes.split(";"))
        assert b.groupby("object_id")["class"].nunique().max() == 1
        assert b["class"].nunique() == n_obj                          # distinct classes
    assert (boxes.x0 >= 0).all() and (boxes.y0 >= 0).all()
    assert (boxes.x1 <= VIDEO_KW["width"]).all() and (boxes.y1 <= VIDEO_KW["height"]).all()
    assert (boxes.x1 > boxes.x0).all() and (boxes.y1 > boxes.y0).all()
    assert set(boxes["class"]) <= set(CLASS_NAMES)


def test_videos_deterministic_and_worker_independent(videos, tmp_path):
    root, clips = videos
    again = generate_videos(tmp_path / "videos", tmp_path / "gt", **{**VIDEO_KW, "workers": 2})
    pd.testing.assert_frame_equal(clips, again)
    assert _digests(root / "gt") == _digests(tmp_path / "gt")
    assert _digests(root / "videos") == _digests(tmp_path / "videos")


def test_portable_audio_changes_only_the_webm_audio(tmp_path):
    """synth.portable_audio: the WebM clips' audio is Vorbis (stereo; a mono clip as two equal
    channels) instead of libopus's Opus; their video stream and every other clip stay the same."""
    import av
    from dmc.io.manifest import parts_of

    kw = {**VIDEO_KW, "other_containers": 1.0}                    # seed 7: WebM, MKV, WebM, MKV
    root = tmp_path / "opus"
    clips = generate_videos(root / "videos", root / "gt", **kw)
    portable = generate_videos(tmp_path / "videos", tmp_path / "gt", **{**kw, "portable_audio": True})
    webm = clips.index[clips["container"] == "webm"]
    assert sorted(clips["audio_channels"][webm]) == [1, 2]                # a mono and a stereo WebM clip
    pd.testing.assert_frame_equal(clips.drop(columns="audio_channels"), portable.drop(columns="audio_channels"))
    assert (portable["audio_channels"][webm] == 2).all()
    assert _digests(root / "gt")["boxes.csv"] == _digests(tmp_path / "gt")["boxes.csv"]
    old, new = _digests(root / "videos"), _digests(tmp_path / "videos")
    assert {k for k in old if old[k] != new[k]} == set(clips["video"][webm])
    streams = {name: parts_of(tmp_path / "videos" / name) for name in portable["video"]}
    assert not [n for n, parts in streams.items() if any(".opus." in k for k in parts)]   # no libopus stream
    for name in clips["video"][webm]:
        a, b = parts_of(root / "videos" / name), parts_of(tmp_path / "videos" / name)
        assert a["v0.vp9.packets"] == b["v0.vp9.packets"] and "a1.opus.packets" in a and "a1.vorbis.packets" in b
        with av.open(str(tmp_path / "videos" / name)) as c:
            planes = np.concatenate([f.to_ndarray() for f in c.decode(audio=0)], axis=1)
        assert planes.shape[0] == 2 and np.abs(planes).max() > 0.01


# --------------------------------------------------------------------------- ESC-50
def test_esc50_layout(tmp_path):
    root = tmp_path / "esc50"
    meta = generate_esc50(root, n_classes=10, clips_per_class=5, seed=1, workers=1)
    csv = pd.read_csv(root / "meta" / "esc50.csv")
    assert list(csv.columns) == ["filename", "fold", "target", "category", "esc10", "src_file", "take"]
    assert csv.esc10.dtype == bool and csv.esc10.any() and not csv.esc10.all()
    assert len(csv) == 50 and csv.filename.is_unique
    assert sorted(p.name for p in (root / "audio").iterdir()) == sorted(csv.filename)
    assert sorted(p.name for p in (root / "meta").iterdir()) == ["esc50.csv", "groups.csv"]
    assert sorted(p.name for p in root.iterdir()) == ["audio", "meta"]
    for row in csv.itertuples():
        m = re.fullmatch(r"([1-5])-(\d+)-([A-Z])-(\d+)\.wav", row.filename)
        assert m, row.filename
        assert (int(m[1]), int(m[2]), m[3], int(m[4])) == (row.fold, row.src_file, row.take, row.target)
    assert csv.groupby("target").category.nunique().max() == 1 and csv.category.nunique() == 10
    counts = csv.groupby(["fold", "target"]).size()
    assert len(counts) == 5 * 10 and (counts == 1).all()           # every class in every fold
    for name in csv.filename[:5]:
        with wave.open(str(root / "audio" / name)) as w:
            params = (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes())
            assert params == (1, 2, 44100, 220500)
    pd.testing.assert_frame_equal(meta.reset_index(drop=True), csv)
    # each category's family, as the reader attaches it: 8 families, then their variants
    groups = pd.read_csv(root / "meta" / "groups.csv")
    assert groups.category.tolist() == evalsets.esc50_categories(10)
    assert groups.group.tolist() == [*CLASS_NAMES, CLASS_NAMES[0], CLASS_NAMES[1]]
    read = read_esc50(root)
    assert (read.group == read.category.str.split("_").str[0]).all()
    assert _no_temp_left(tmp_path)


def test_esc50_fifty_classes(tmp_path):
    cats = evalsets.esc50_categories(50)
    assert len(set(cats)) == 50 and cats[:8] == list(CLASS_NAMES)
    meta = generate_esc50(tmp_path / "e", n_classes=50, clips_per_class=5, seed=0, seconds=0.2, workers=1)
    assert meta.target.nunique() == 50 and len(meta) == 250
    assert (meta.groupby(["fold", "target"]).size() == 1).all()


def test_esc50_deterministic(tmp_path):
    kw = dict(n_classes=3, clips_per_class=5, seconds=1.0, workers=1)
    generate_esc50(tmp_path / "a", seed=3, **kw)
    generate_esc50(tmp_path / "b", seed=3, **kw)
    generate_esc50(tmp_path / "c", seed=4, **kw)
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    assert _digests(tmp_path / "a") != _digests(tmp_path / "c")


def test_failed_generation_leaves_nothing(tmp_path, monkeypatch):
    calls = []

    def boom(*args):
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("killed")
        return np.zeros(100, np.float32)

    monkeypatch.setattr(evalsets, "_esc50_clip", boom)
    with pytest.raises(RuntimeError):
        generate_esc50(tmp_path / "esc50", n_classes=2, clips_per_class=5, workers=1)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- DCASE
def test_dcase_layout_and_determinism(tmp_path):
    table = generate_dcase(tmp_path / "d", recordings_per_scene=2, seconds=3.0, seed=2, workers=1)
    root = tmp_path / "d"
    files = sorted(p.name for p in (root / "audio").iterdir())
    assert len(files) == 20 and set(table.scene) == set(evalsets.SCENES) and len(evalsets.SCENES) == 10
    assert all(re.fullmatch(r"[a-z]+\d\d\.wav", f) for f in files)
    with wave.open(str(root / "audio" / files[0])) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (2, 2, 44100, 132300)
    splits = {}
    for split in ("train", "test"):
        lines = (root / f"{split}.txt").read_text().splitlines()
        pairs = [line.split("\t") for line in lines]
        assert all(len(p) == 2 and p[0] == f"audio/{p[1]}{p[0][-6:-4]}.wav" for p in pairs)
        splits[split] = {p[0] for p in pairs}
        assert pd.Series([p[1] for p in pairs]).value_counts().to_dict() == {s: 1 for s in evalsets.SCENES}
    assert not splits["train"] & splits["test"]
    assert splits["train"] | splits["test"] == {f"audio/{f}" for f in files}
    generate_dcase(tmp_path / "d2", recordings_per_scene=2, seconds=3.0, seed=2, workers=1)
    assert _digests(root) == _digests(tmp_path / "d2")


# --------------------------------------------------------------------------- sounds / sizes
def _band_log_spectrum(x: np.ndarray, sr: int) -> np.ndarray:
    n = 1024
    frames = x[: len(x) // n * n].reshape(-1, n) * np.hanning(n)
    power = (np.abs(np.fft.rfft(frames, axis=1)) ** 2).mean(0)
    f = np.fft.rfftfreq(n, 1 / sr)
    edges = np.geomspace(150, 7500, 17)
    bands = np.array([power[(f >= lo) & (f < hi)].mean() for lo, hi in zip(edges[:-1], edges[1:])])
    return np.log10(bands / bands.max() + 1e-5)


def test_classes_are_acoustically_distinct():
    sr, k = 16000, 4
    feats = {c: [_band_log_spectrum(render_sound(c, 2.0, sr, np.random.default_rng([c, i])), sr)
                 for i in range(k)] for c in range(len(CLASS_NAMES))}
    for c, fs in feats.items():
        for i, f in enumerate(fs):                      # leave-one-out nearest class centroid
            own = np.linalg.norm(f - np.mean([g for j, g in enumerate(fs) if j != i], axis=0))
            other = min(np.linalg.norm(f - np.mean(feats[d], axis=0)) for d in feats if d != c)
            assert own < other, (CLASS_NAMES[c], i)


def test_sounds_range_and_determinism():
    for c in range(len(CLASS_NAMES)):
        a = render_sound(c, 1.0, 22050, np.random.default_rng(5))
        b = render_sound(c, 1.0, 22050, np.random.default_rng(5))
        assert a.dtype == np.float32 and a.shape == (22050,)
        assert np.array_equal(a, b) and np.abs(a).max() <= 1.0 and a.std() > 0.01


def test_scaled_counts():
    base = {"videos": 96, "esc50_clips_per_class": 10, "dcase_recordings_per_scene": 4}
    assert scaled_counts({**base, "size": "small"}) == base
    tiny = scaled_counts({**base, "size": "tiny"})
    assert tiny["videos"] == 24 and tiny["esc50_clips_per_class"] >= 5
    assert tiny["dcase_recordings_per_scene"] >= 2 and tiny["dcase_recordings_per_scene"] % 2 == 0
    large = scaled_counts({**base, "size": "large"})
    assert large["videos"] == 96 * 20 and large["esc50_clips_per_class"] % 5 == 0
    assert set(SIZES) == {"tiny", "small", "medium", "large"}
    with pytest.raises(ValueError):
        scaled_counts({**base, "size": "huge"})
    assert synth.generate_videos is generate_videos


def test_no_objects_control_hides_the_sounding_objects_only(videos, tmp_path):
    """control=no_objects: the same clips (same audio, same silent distractors) with the sounding
    objects left out of the frames and of the boxes."""
    root, clips = videos
    ctl = generate_videos(tmp_path / "videos", tmp_path / "gt", **{**VIDEO_KW, "control": "no_objects"})
    pd.testing.assert_frame_equal(clips, ctl)
    boxes = pd.read_csv(root / "gt" / "boxes.csv")
    boxes_ctl = pd.read_csv(tmp_path / "gt" / "boxes.csv")
    assert boxes.sounding.sum() > 0 and boxes_ctl.sounding.sum() == 0
    pd.testing.assert_frame_equal(boxes[boxes.sounding == 0].reset_index(drop=True), boxes_ctl)
    name = clips.video[0]

    def decoded(folder):
        with av.open(str(folder / name)) as c:
            audio = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(c.streams.audio[0])])
        with av.open(str(folder / name)) as c:
            frame = next(c.decode(c.streams.video[0])).to_ndarray(format="rgb24")
        return audio, frame

    (a, f), (a_ctl, f_ctl) = decoded(root / "videos"), decoded(tmp_path / "videos")
    np.testing.assert_array_equal(a, a_ctl)            # the sounds are still there
    assert np.abs(f.astype(int) - f_ctl.astype(int)).max() > 50   # the objects are not
    with pytest.raises(ValueError, match="control"):
        generate_videos(tmp_path / "v2", tmp_path / "g2", **{**VIDEO_KW, "control": "nothing"})


def test_variants_are_drawn_and_heard_as_such(videos, tmp_path):
    """synth.variants: objects of every variant, sized to match, same counts per clip; off, every
    object is the plain variant."""
    from dmc.synth.videos import LOOKS, plan_clip

    plain = [plan_clip(np.random.default_rng([3, i]), 128, 128, 3, 2) for i in range(40)]
    varied = [plan_clip(np.random.default_rng([3, i]), 128, 128, 3, 2, variants=True) for i in range(40)]
    assert {o["variant"] for c in plain for o in c} == {""}
    assert {o["variant"] for c in varied for o in c} == set(LOOKS)
    for v, (scale, opacity) in LOOKS.items():
        sizes = [o["size"] for c in varied for o in c if o["variant"] == v]
        assert 0.10 * 128 * scale - 1e-9 <= min(sizes) and max(sizes) <= 0.15 * 128 * scale + 1e-9
        assert all(o["opacity"] == opacity for c in varied for o in c if o["variant"] == v)
    low = [o["size"] for c in varied for o in c if o["variant"] == "low"]
    high = [o["size"] for c in varied for o in c if o["variant"] == "high"]
    assert min(low) > max(high)                      # low-pitched objects are drawn larger

    root, clips = videos
    var = generate_videos(tmp_path / "videos", tmp_path / "gt", **{**VIDEO_KW, "variants": True})
    same = ["video", "container", "n_sources", "n_distractors"]     # drawn before the variants
    pd.testing.assert_frame_equal(clips[same], var[same])
    assert _digests(tmp_path / "videos") != _digests(root / "videos")


def test_reverberate_adds_a_decaying_tail():
    from dmc.synth.sounds import reverberate

    sr, x = 8000, np.zeros(8000, np.float32)
    x[100] = 1.0
    y = reverberate(x, 0.5, sr, np.random.default_rng(0), level=0.1)
    assert y.dtype == np.float32 and y[100] >= 0.3 - 1e-6     # 0.3 of the direct sound stays
    assert np.sqrt(np.mean((y - 0.3 * x) ** 2)) == pytest.approx(0.1, rel=1e-4)   # the wet part at `level`
    early, late = np.abs(y[200:1300]).mean(), np.abs(y[3000:4100]).mean()
    assert early > 10 * late > 0                     # it decays (0.15 s time constant) within 0.5 s
    assert np.abs(y[100 + 4000 + 1:]).max() < 1e-6 * early   # and ends after the 0.5 s tail (FFT rounding)


def test_draw_object_opacity_blends_with_the_background():
    from dmc.synth.visuals import draw_object, object_state

    state = object_state(np.random.default_rng(0))
    canvas = np.full((32, 32, 3), 100, np.uint8)
    solid, hazy = canvas.copy(), canvas.copy()
    draw_object(solid, 0, (16.0, 16.0), 8.0, 0.0, state)
    draw_object(hazy, 0, (16.0, 16.0), 8.0, 0.0, state, opacity=0.5)
    inside = (solid != 100).any(-1)
    assert inside.sum() > 50 and ((hazy != 100).any(-1) <= inside).all()
    expected = (128 * solid[inside].astype(int) + 128 * 100 + 128) >> 8
    np.testing.assert_array_equal(hazy[inside], expected)
