"""Sharded decode output: every good clip lands in exactly one shard, bad ones in the report."""

import numpy as np
import pandas as pd
import pytest

from dmc.atomic import atomic_dir
from dmc.io.shards import (TooManyBadVideos, build_index, list_videos, open_shard, shard_of,
                        videos_of_shard, write_shard)
from media import make_video


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "videos"
    (root / "sub").mkdir(parents=True)
    for i in range(5):
        make_video(root / f"good{i}.mp4", seconds=2.0 + i % 2)
    make_video(root / "sub" / "good5.webm", seconds=2.0, channels=2)
    make_video(root / "noaudio.mp4", audio=False)
    (root / "empty.mkv").write_bytes(b"")
    (root / "notes.txt").write_text("not a video, ignored")
    return root


def decode_all(root, out, decode, n):
    dirs = []
    for s in range(n):
        dirs.append(out / f"shard-{s:05d}")
        write_shard(dirs[-1], root, videos_of_shard(root, s, n), decode)
    return dirs


def test_shards_and_index(tmp_path, corpus, params):
    decode = dict(params["decode"], segment_seconds=1.0, frame_size=32)
    videos = list_videos(corpus)
    assert "notes.txt" not in videos and "sub/good5.webm" in videos and len(videos) == 8
    assert sorted(sum((videos_of_shard(corpus, s, 3) for s in range(3)), [])) == videos
    dirs = decode_all(corpus, tmp_path / "dec", decode, 3)
    summary = build_index(dirs, tmp_path / "dec", decode)
    assert summary == {"videos": 8, "ok": 6, "partial": 0, "bad": 2, "segments": 2 * 3 + 3 * 2 + 2,
                       "frames": 14, "audio_seconds_decoded": pytest.approx(summary["audio_seconds_decoded"]),
                       "audio_seconds_in_segments": 14.0}
    index = pd.read_csv(tmp_path / "dec" / "index.csv")
    report = pd.read_csv(tmp_path / "dec" / "report.csv").set_index("video")
    assert report.loc["empty.mkv", "status"] == "bad" and "0 bytes" in report.loc["empty.mkv", "reason"]
    assert report.loc["noaudio.mp4", "reason"] == "no audio stream"
    for shard, rows in index.groupby("shard"):
        frames, logmel, seg = open_shard(tmp_path / "dec" / shard)
        assert isinstance(frames, np.memmap) and frames.shape == (len(seg), 32, 32, 3)
        assert logmel.shape == (len(seg), 21, 64)
        assert list(rows.row) == list(range(len(seg)))
        assert all(shard_of(v, 3) == int(shard[-5:]) for v in rows.video)
    assert not list((tmp_path / "dec").glob("*.tmp-*"))


def test_too_many_bad_videos_fails_naming_them(tmp_path, corpus, params):
    decode = dict(params["decode"], segment_seconds=1.0, frame_size=32, max_bad_fraction=0.1)
    dirs = decode_all(corpus, tmp_path / "dec", decode, 2)
    with pytest.raises(TooManyBadVideos, match=r"2 of 8 videos.*decode.max_bad_fraction") as err:
        build_index(dirs, tmp_path / "dec", decode)
    assert "empty.mkv: empty file" in str(err.value)
    assert not (tmp_path / "dec" / "index.csv").exists()


def test_interrupted_write_leaves_nothing_under_final_name(tmp_path):
    final = tmp_path / "shard-00000"
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(final) as tmp:
            (tmp / "frames.npy").write_bytes(b"partial")
            raise KeyboardInterrupt
    assert not final.exists() and list(tmp_path.iterdir()) == []
