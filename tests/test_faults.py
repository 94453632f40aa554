"""Faults that really happen: a decode job killed with SIGKILL, an output folder that cannot
be written, a full disk, and a corpus and evaluation sets full of broken files.

(SIGKILL during training, with resumed weights and per-epoch metrics equal to an
uninterrupted run, is tested in tests/test_model_training.py.)
"""

import errno
import filecmp
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dmc.io.shards
from conftest import ROOT, load_default_params, with_overrides, write_params
from dmc.pipeline.cli import main
from media import make_video

SIZE = 32    # decode.frame_size in these tests (odd sources are resized to it)


def run_dmc(params: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dmc.pipeline.cli", "--params", str(params), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def decode_params(tmp_path: Path, **over) -> Path:
    base = dict(decode__segment_seconds=1.0, decode__frame_size=SIZE, decode__num_shards=1)
    base.update(over)
    return write_params(tmp_path / "params.yaml", with_overrides(load_default_params(), **base))


def same_folder(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir()) == ["frames.npy", "logmel.npy", "report.csv",
                                                             "segments.csv"]
    for name in names:
        assert filecmp.cmp(a / name, b / name, shallow=False), name


def temporaries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.tmp-*"))


# -- SIGKILL during `dmc decode --shard` ---------------------------------------------------

@pytest.fixture(scope="module")
def many_clips(tmp_path_factory):
    """60 clips of 4 s (one clip hard-linked under 60 names): a shard that takes seconds."""
    root = tmp_path_factory.mktemp("many")
    one = make_video(root / "one.mkv", seconds=4.0, size=(96, 64))
    videos = root / "videos"
    videos.mkdir()
    for i in range(60):
        os.link(one, videos / f"clip_{i:03d}.mkv")
    return videos


def start_decode(params, videos, out):
    return subprocess.Popen([sys.executable, "-m", "dmc.pipeline.cli", "--params", str(params), "decode", "--shard", "0",
                             "--videos", str(videos), "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def kill_mid_write(proc, folder: Path, name: str) -> Path:
    """SIGKILL ``proc`` once its shard's temporary folder holds at least one decoded clip."""
    deadline, tmp = time.time() + 240, []
    while time.time() < deadline and proc.poll() is None:
        tmp = [t for t in folder.glob(name + ".tmp-*") if (t / "frames.npy").is_file()]
        if tmp and (tmp[0] / "frames.npy").stat().st_size > 128 + 2 * SIZE * SIZE * 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"decode finished before it could be killed: {proc.stderr.read()[-2000:]}"
    assert tmp, "no decoded clip in the shard's temporary folder after 240 s"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return tmp[0]


@pytest.mark.slow
def test_sigkill_during_decode_shard_then_rerun_equals_uninterrupted(tmp_path, many_clips):
    params = decode_params(tmp_path)
    ref = tmp_path / "ref" / "shard-00000"
    done = run_dmc(params, "decode", "--shard", "0", "--videos", many_clips, "--out", ref)
    assert done.returncode == 0, done.stderr

    work = tmp_path / "work"
    out = work / "shard-00000"
    # killed on a fresh folder: nothing under the final name, only the temporary folder
    left = kill_mid_write(start_decode(params, many_clips, out), work, out.name)
    assert not out.exists() and left.exists() and temporaries(work) == [left]
    # the rerun clears the leftover, finishes, and equals the uninterrupted run byte for byte
    rerun = run_dmc(params, "decode", "--shard", "0", "--videos", many_clips, "--out", out)
    assert rerun.returncode == 0, rerun.stderr
    assert temporaries(work) == []
    same_folder(ref, out)

    # killed while redoing a complete shard: the previous complete shard stays as it was
    left = kill_mid_write(start_decode(params, many_clips, out), work, out.name)
    assert left.exists()
    same_folder(ref, out)


# -- unwritable output, disk full ----------------------------------------------------------

@pytest.fixture(scope="module")
def few_clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("few")
    for i in range(3):
        make_video(root / f"c{i}.mp4", seconds=2.0)
    return root


@pytest.mark.parametrize("sub", ["shard-00000", "sub/shard-00000"])
def test_output_under_a_file_fails_with_one_line(tmp_path, few_clips, capsys, sub):
    # a path under a regular file cannot be created, even by root (chmod would not stop root)
    blocker = tmp_path / "file.txt"
    blocker.write_text("I am a file\n")
    params = decode_params(tmp_path)
    t = time.time()
    code = main(["--params", str(params), "decode", "--shard", "0", "--videos", str(few_clips),
                 "--out", str(blocker / sub)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert err[0].startswith("dmc decode: ") and str(blocker) in err[0]
    assert "not a folder" in err[0] or "Not a directory" in err[0]
    assert time.time() - t < 30    # fails before decoding anything
    assert blocker.read_text() == "I am a file\n" and sorted(tmp_path.iterdir()) == [blocker, params]


class FullDisk:
    """A file object that accepts ``limit`` bytes, then fails as a full disk does."""

    def __init__(self, fh, limit):
        self.fh, self.left = fh, limit

    def write(self, data):
        n = len(data.encode()) if isinstance(data, str) else memoryview(data).nbytes
        if n > self.left:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.fh.name)
        self.left -= n
        return self.fh.write(data)

    def __getattr__(self, name):
        return getattr(self.fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.fh.close()


def test_disk_full_while_writing_a_shard(tmp_path, few_clips, capsys, monkeypatch):
    monkeypatch.setattr(dmc.io.shards, "open", lambda *a, **k: FullDisk(open(*a, **k), 20_000), raising=False)
    out = tmp_path / "decoded" / "shard-00000"
    code = main(["--params", str(decode_params(tmp_path)), "decode", "--shard", "0", "--videos", str(few_clips),
                 "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1, err
    assert err[-1].startswith("dmc decode: ") and "No space left on device" in err[-1]
    assert str(out.parent) in err[-1] and ".npy" in err[-1]    # names the file being written
    assert list(out.parent.iterdir()) == []                      # no partial shard, no temporary


def test_disk_full_at_the_final_rename(tmp_path, few_clips, capsys, monkeypatch):
    real = os.replace

    def replace(src, dst):
        if Path(dst).name == "shard-00000":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src), None, str(dst))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    out = tmp_path / "decoded" / "shard-00000"
    code = main(["--params", str(decode_params(tmp_path)), "decode", "--shard", "0", "--videos", str(few_clips),
                 "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and "No space left on device" in err[-1] and str(out) in err[-1], err
    assert list(out.parent.iterdir()) == []


# -- a corpus of broken and unusual files, end to end ---------------------------------------

GOOD = {   # name -> make_video keywords; all 3 s, so 3 segments of 1 s each
    "plain_h264_aac.mp4": {},
    "vp9_opus_stereo.webm": dict(channels=2),
    "pcm_u8.mkv": dict(audio_format="u8"),
    "pcm_s24.mkv": dict(audio_format="s24"),
    "pcm_s16.mkv": dict(audio_format="s16"),
    "pcm_float.mkv": dict(audio_format="flt"),
    "surround_51.mp4": dict(channels=6),
    "rate_8k.mp4": dict(audio_rate=8000),
    "rate_96k.mkv": dict(audio_rate=96000, audio_format="s32"),
    "odd_63x47_ffv1.mkv": dict(size=(63, 47), vcodec="ffv1", pix_fmt="yuv444p"),
    "odd_63x47_mpeg4.mkv": dict(size=(63, 47), vcodec="mpeg4"),
    "rotated_90.mp4": dict(rotation=90),
    "vfr.mkv": dict(vfr=True),
    "no_duration.mkv": dict(options={"live": "1"}),
}
BAD = {    # name -> reason in report.csv
    "cut.mp4": "cannot open",
    "zero_bytes.mp4": "empty file (0 bytes)",
    "no_audio.mp4": "no audio stream",
    "no_video.mkv": "no video stream",
    "short_audio.mkv": "shorter than one segment",
    "text_file.mp4": "cannot open",
}


@pytest.fixture(scope="module")
def messy_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("messy")
    v = root / "videos"
    (v / "sub dir").mkdir(parents=True)
    for name, kw in GOOD.items():
        make_video(v / name, seconds=3.0, **kw)
    make_video(v / "sub dir" / "it's, quoted.mp4", seconds=3.0)    # odd characters in the path
    for name, keep in (("cut.mp4", 0.6), ("partial_cut.webm", 0.6)):
        data = make_video(root / name, seconds=4.0).read_bytes()
        (v / name).write_bytes(data[: int(len(data) * keep)])
    (v / "zero_bytes.mp4").write_bytes(b"")
    make_video(v / "no_audio.mp4", audio=False)
    make_video(v / "no_video.mkv", video=False)
    make_video(v / "short_audio.mkv", seconds=3.0, audio_seconds=0.5)
    (v / "text_file.mp4").write_text("this is a text file, not a video\n")
    return v


def test_messy_corpus_decodes_end_to_end(tmp_path, messy_corpus):
    params = decode_params(tmp_path, decode__num_shards=3, decode__max_bad_fraction=0.9)
    out = tmp_path / "decoded"
    done = run_dmc(params, "decode", "--videos", messy_corpus, "--out-dir", out)
    assert done.returncode == 0, done.stderr
    good = {*GOOD, "sub dir/it's, quoted.mp4"}
    assert f"{len(good) + 1 + len(BAD)} videos ({len(good)} ok, 1 partial, {len(BAD)} skipped)" in done.stderr

    report = pd.read_csv(out / "report.csv", keep_default_na=False).set_index("video")
    assert set(report.index) == good | set(BAD) | {"partial_cut.webm"}
    for name, reason in BAD.items():
        assert report.loc[name, "status"] == "bad" and reason in report.loc[name, "reason"], report.loc[name]
    assert report.loc["partial_cut.webm", "status"] == "partial"
    assert "truncated" in report.loc["partial_cut.webm", "reason"]
    assert (report.loc[sorted(good), "status"] == "ok").all(), report[report.status != "ok"]

    index = pd.read_csv(out / "index.csv", keep_default_na=False)
    counts = index.groupby("video").size()
    assert all(counts[name] == 3 for name in good), counts
    assert 1 <= counts["partial_cut.webm"] < 4 and not set(BAD) & set(index.video)

    shards = {s: dmc.io.shards.open_shard(out / s) for s in index.shard.unique()}
    assert not temporaries(out)

    def frames_of(name):
        rows = index[index.video == name]
        return np.stack([shards[r.shard][0][r.row] for r in rows.itertuples()])

    def logmel_of(name):
        rows = index[index.video == name]
        return np.stack([shards[r.shard][1][r.row] for r in rows.itertuples()])

    for frames, logmel, seg in shards.values():
        assert frames.shape[1:] == (SIZE, SIZE, 3) and frames.dtype == np.uint8
        assert np.isfinite(logmel).all()
    # odd sizes, rotation, VFR, no duration: frames of the configured size, and the frame kept
    # for segment s is source frame 10 s + 5 (its red level, 10 * index, survives resizing)
    for name in ("odd_63x47_ffv1.mkv", "odd_63x47_mpeg4.mkv", "rotated_90.mp4", "no_duration.mkv"):
        red = frames_of(name)[..., 0].astype(float).mean(axis=(1, 2))
        np.testing.assert_allclose(red, [50, 150, 250], atol=8, err_msg=name)
    vfr = index[index.video == "vfr.mkv"]    # frame gaps 0.05-0.15 s: the nearest is within 0.075 s
    assert np.all(np.abs(vfr.frame_time_s - (vfr.segment + 0.5)) <= 0.075), vfr
    # 8-bit, 24-bit, 32-bit and float samples all decode to the same tone at the same level
    ref = logmel_of("pcm_s16.mkv")
    loud = ref > ref.max() - 2.5     # the tone's bands (8-bit quantisation noise lifts the quiet ones)
    for name in ("pcm_u8.mkv", "pcm_s24.mkv", "pcm_float.mkv"):
        np.testing.assert_allclose(logmel_of(name)[loud], ref[loud], atol=0.1, err_msg=name)


# -- bad evaluation data, through the CLI ----------------------------------------------------

def tiny_wav(path: Path) -> None:
    import wave

    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * 1600)


def esc50(root: Path, rows: list[str], wavs: list[str]) -> Path:
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "esc50.csv").write_text("filename,fold,target,category\n" + "\n".join(rows) + "\n")
    for w in wavs:
        tiny_wav(root / "audio" / w)
    return root


def test_missing_wav_named_with_file_and_line_by_the_cli(tmp_path):
    rows = [f"{f}-1-A-0.wav,{f},0,dog" for f in range(1, 6)]
    root = esc50(tmp_path / "esc", rows, [r.split(",")[0] for r in rows if not r.startswith("3-")])
    done = run_dmc(ROOT / "params.yaml", "evalset", "esc50", "--root", root, "--out-dir", tmp_path / "out")
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == (f"dmc evalset: {root / 'meta' / 'esc50.csv'}, line 4: audio file "
                                   f"{root / 'audio' / '3-1-A-0.wav'} listed but missing on disk")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", ["malformed_row", "unknown_label", "escaping_path"])
def test_bad_evaluation_files_named_by_the_cli(tmp_path, capsys, case):
    if case == "malformed_row":
        rows = [f"{f}-1-A-0.wav,{f},0,dog" for f in range(1, 6)]
        rows[2] = "3-1-A-0.wav,3,0"
        root = esc50(tmp_path / "esc", rows, [r.split(",")[0] for r in rows])
        dataset, where, reason = "esc50", f"{root / 'meta' / 'esc50.csv'}, line 4", "expected 4 fields, found 3"
    else:
        root = tmp_path / "dcase"
        for name in ("bus01", "bus02", "park01"):
            tiny_wav(root / "audio" / f"{name}.wav")
        (root / "train.txt").write_text("bus01.wav bus\npark01.wav park\n")
        test_name = "../../../etc/passwd" if case == "escaping_path" else "bus02.wav"
        (root / "test.txt").write_text(f"# scenes\n{test_name} {'bus' if case == 'escaping_path' else 'busstop'}\n")
        dataset, where = "dcase", f"{root / 'test.txt'}, line 2"
        reason = "escapes the dataset root" if case == "escaping_path" else "label 'busstop' not in"
    code = main(["--params", str(ROOT / "params.yaml"), "evalset", dataset, "--root", str(root),
                 "--out-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert err[0].startswith(f"dmc evalset: {where}: ") and reason in err[0], err[0]
    assert not (tmp_path / "out").exists()
