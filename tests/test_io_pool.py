"""The decode worker pool (dmc.io.pool): the same shard bytes with any worker count, broken
videos reported and the run going on, one FFmpeg thread per worker, nothing left by an interrupt."""

import multiprocessing

import numpy as np
import pandas as pd
import pytest

from dmc.cores import decode_workers, resolve_workers
from dmc.io import shards
from dmc.io.decoding import decode_video
from dmc.io.pool import decoded_clips
from dmc.io.shards import list_videos, write_shard
from media import make_video


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "videos"
    root.mkdir()
    for i in range(4):
        make_video(root / f"good{i}.mp4", seconds=2.0 + i % 2, fps=10)
    make_video(root / "good4.webm", seconds=2.0, channels=2)
    make_video(root / "noaudio.mp4", audio=False)
    (root / "empty.mkv").write_bytes(b"")
    (root / "garbage.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    return root


def _decode(params):
    return dict(params["decode"], segment_seconds=1.0, frame_size=32)


def _files(shard):
    return {p.name: p.read_bytes() for p in sorted(shard.iterdir())}


def test_shard_bytes_do_not_depend_on_the_worker_count(tmp_path, corpus, params):
    videos = list_videos(corpus)
    out = {}
    for workers in (1, 2, 3):
        shard = tmp_path / f"w{workers}" / "shard-00000"
        summary = write_shard(shard, corpus, videos, _decode(params), workers=workers)
        assert summary["videos"] == 8 and summary["ok"] == 5 and summary["bad"] == 3
        out[workers] = _files(shard)
    assert set(out[1]) == {"frames.npy", "logmel.npy", "segments.csv", "report.csv"}
    assert out[2] == out[1] and out[3] == out[1]
    # in the order of the videos, the broken ones named with their reason
    report = pd.read_csv(tmp_path / "w2" / "shard-00000" / "report.csv", keep_default_na=False)
    assert list(report.video) == videos
    bad = report.set_index("video").loc[["empty.mkv", "garbage.mp4", "noaudio.mp4"]]
    assert (bad.status == "bad").all()
    assert "0 bytes" in bad.reason["empty.mkv"] and bad.reason["noaudio.mp4"] == "no audio stream"
    assert bad.reason["garbage.mp4"].startswith("cannot open")


def test_workers_decode_with_one_ffmpeg_thread_in_other_processes(corpus, params):
    videos = [v for v in list_videos(corpus) if v.startswith("good")]
    got = list(decoded_clips(corpus, videos, _decode(params), workers=2))
    assert [rel for rel, _ in got] == videos
    # the thread count the video codec context had when the worker decoded (read back there)
    assert [clip.threads for _, clip in got] == [1] * len(videos)
    assert multiprocessing.active_children() == []          # the pool is shut down when done


def test_one_thread_gives_the_pictures_and_samples_of_ffmpegs_automatic_threads(corpus):
    path = corpus / "good1.mp4"
    one, auto = decode_video(path, 1.0, 32, 16000, threads=1), decode_video(path, 1.0, 32, 16000, threads=0)
    assert one.threads == 1 and auto.threads >= 2      # FFmpeg resolves 0 (automatic) to cores + 1
    assert np.array_equal(one.frames, auto.frames) and np.array_equal(one.waves, auto.waves)


def test_an_interrupt_leaves_no_shard_no_temporary_and_no_worker(tmp_path, corpus, params, monkeypatch):
    calls = []

    def interrupted(self, block):
        calls.append(block.shape)
        if len(calls) == 2:
            raise KeyboardInterrupt
    monkeypatch.setattr(shards._NpyAppender, "append", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_shard(tmp_path / "dec" / "shard-00000", corpus, list_videos(corpus), _decode(params), workers=2)
    assert list((tmp_path / "dec").iterdir()) == []
    assert multiprocessing.active_children() == []


def test_worker_counts_resolve(params):
    assert resolve_workers(3) == 3
    assert resolve_workers("auto") == resolve_workers(None) >= 1
    assert decode_workers(params) == resolve_workers(params["compute"]["decode_workers"])
    assert decode_workers({"decode": {}}) == resolve_workers("auto")       # compute absent: auto
    with pytest.raises(ValueError, match="worker count"):
        resolve_workers(0)


@pytest.mark.parametrize("bad", [0, "many", 1.5])
def test_a_bad_worker_count_is_refused_naming_the_key(params, bad):
    from conftest import with_overrides
    from dmc.pipeline.params import ParamsError, validate_params

    with pytest.raises(ParamsError, match=r"compute\.decode_workers"):
        validate_params(with_overrides(params, compute__decode_workers=bad))
