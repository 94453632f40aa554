"""`dmc fetch`: archives made here, served from file:// URLs with their checksums; corrupted and
incomplete archives fail with one line naming the problem and leave nothing behind."""

from __future__ import annotations

import hashlib
import wave
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dmc.pipeline.cli import main
from dmc.io.evalsets import read_dcase, read_esc50
from dmc.io.fetch import SOURCES

ROOT = Path(__file__).resolve().parents[1]
RATE = 8000


def _wav(path: Path, seconds: float, channels: int = 1, freq: float = 440.0) -> None:
    t = np.arange(int(round(seconds * RATE))) / RATE
    x = (0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.repeat(x[:, None], channels, axis=1).tobytes())


def _zip(folder: Path, archive: Path) -> tuple[str, str]:
    """Zip ``folder`` (its name as the top folder, as GitHub archives do); (file:// URL, sha256)."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            zf.write(p, p.relative_to(folder.parent).as_posix())
    return archive.as_uri(), hashlib.sha256(archive.read_bytes()).hexdigest()


def _esc50_tree(tmp: Path, drop: str | None = None, short: str | None = None) -> Path:
    """A tiny ESC-50 release: 2 classes x 5 folds, 5 s clips (``drop``: a listed file left out,
    ``short``: a listed file only 3 s long)."""
    top = tmp / "ESC-50-0123abc"
    (top / "audio").mkdir(parents=True)
    (top / "meta").mkdir()
    lines = ["filename,fold,target,category,esc10,src_file,take"]
    for target, category in enumerate(("dog", "rain")):
        for fold in range(1, 6):
            name = f"{fold}-{1000 + 10 * target + fold}-A-{target}.wav"
            lines.append(f"{name},{fold},{target},{category},{target == 0},{1000 + 10 * target + fold},A")
            if name != drop:
                _wav(top / "audio" / name, 3.0 if name == short else 5.0, freq=300 + 400 * target)
    (top / "meta" / "esc50.csv").write_text("\n".join(lines) + "\n")
    (top / "README.md").write_text("tiny ESC-50\n")
    return top


def _fetch(capsys, *args) -> tuple[int, str]:
    rc = main(["--params", str(ROOT / "params.yaml"), "fetch", *map(str, args)])
    return rc, capsys.readouterr().err


def _nothing_left(out: Path) -> bool:
    return not out.exists() and not list(out.parent.glob(out.name + ".tmp-*"))


def test_pinned_sources_are_immutable_urls():
    for name, source in SOURCES.items():
        for archive in source.archives:
            assert archive.url.startswith("https://")
            assert not any(branch in archive.url for branch in ("/master.", "/main.", "refs/heads")), archive.url


def test_fetch_esc50_from_a_file_url(tmp_path, capsys):
    url, sha = _zip(_esc50_tree(tmp_path / "src"), tmp_path / "esc50.zip")
    out = tmp_path / "data" / "esc50"
    rc, err = _fetch(capsys, "esc50", "--url", url, "--sha256", sha, "--expect-files", 10, "--out", out)
    assert rc == 0, err
    table = read_esc50(out)
    assert len(table) == 10 and sorted(set(table.category)) == ["dog", "rain"]
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "audio", "meta"]
    assert not list(out.parent.glob("*.tmp-*"))
    assert "10 files, 2 classes, verified" in err


def test_wrong_checksum_is_refused(tmp_path, capsys):
    url, sha = _zip(_esc50_tree(tmp_path / "src"), tmp_path / "esc50.zip")
    out = tmp_path / "esc50"
    rc, err = _fetch(capsys, "esc50", "--url", url, "--sha256", "0" * 64, "--expect-files", 10, "--out", out)
    assert rc == 1 and err.count("\n") == 2           # the download line, then one error line
    assert f"dmc fetch: {url}: sha256 mismatch: expected {'0' * 64}, got {sha}" in err
    assert _nothing_left(out)


def test_corrupted_archive_is_refused(tmp_path, capsys):
    url, _ = _zip(_esc50_tree(tmp_path / "src"), tmp_path / "esc50.zip")
    zip_path = tmp_path / "esc50.zip"
    data = zip_path.read_bytes()
    zip_path.write_bytes(data[: len(data) // 2])       # a download cut in the middle
    sha = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    out = tmp_path / "esc50"
    rc, err = _fetch(capsys, "esc50", "--url", url, "--sha256", sha, "--expect-files", 10, "--out", out)
    assert rc == 1 and "not a zip or tar archive" in err.splitlines()[-1]
    assert _nothing_left(out)


def test_incomplete_archive_names_the_missing_file(tmp_path, capsys):
    missing = "3-1013-A-1.wav"
    url, sha = _zip(_esc50_tree(tmp_path / "src", drop=missing), tmp_path / "esc50.zip")
    out = tmp_path / "esc50"
    out.mkdir()
    (out / "previous.txt").write_text("an earlier copy stays as it was\n")
    rc, err = _fetch(capsys, "esc50", "--url", url, "--sha256", sha, "--expect-files", 10, "--out", out)
    line = err.splitlines()[-1]
    assert rc == 1 and line.startswith("dmc fetch: esc50: the archive is incomplete or invalid: ")
    assert "meta/esc50.csv, line 9" in line and missing in line and "missing" in line
    assert sorted(p.name for p in out.iterdir()) == ["previous.txt"]
    assert not list(tmp_path.glob("esc50.tmp-*"))


def test_short_file_and_wrong_count_are_refused(tmp_path, capsys):
    url, sha = _zip(_esc50_tree(tmp_path / "src", short="2-1002-A-0.wav"), tmp_path / "esc50.zip")
    out = tmp_path / "esc50"
    rc, err = _fetch(capsys, "esc50", "--url", url, "--sha256", sha, "--expect-files", 10, "--out", out)
    assert rc == 1 and "audio/2-1002-A-0.wav: 3.000 s of audio, expected 5.0 s" in err.splitlines()[-1]
    assert _nothing_left(out)
    url, sha = _zip(_esc50_tree(tmp_path / "src2"), tmp_path / "esc50b.zip")
    rc, err = _fetch(capsys, "esc50", "--url", url, "--sha256", sha, "--out", out)   # expects 2000
    assert rc == 1 and "10 audio files, expected 2000" in err.splitlines()[-1]
    assert _nothing_left(out)


def _dcase_tree(tmp: Path, top: str, names: list[str]) -> Path:
    folder = tmp / top
    folder.mkdir(parents=True)
    for i, name in enumerate(names):
        _wav(folder / name, 30.0, channels=2, freq=200 + 100 * i)
    return folder


def test_fetch_dcase_development_and_test_sets(tmp_path, capsys):
    dev_url, dev_sha = _zip(_dcase_tree(tmp_path, "scenes_stereo", ["bus01.wav", "tube07.wav"]), tmp_path / "dev.zip")
    test_url, test_sha = _zip(_dcase_tree(tmp_path / "t", "scenes_stereo_testset", ["bus03.wav", "tube01.wav"]),
                              tmp_path / "test.zip")
    out = tmp_path / "dcase"
    rc, err = _fetch(capsys, "dcase", "--url", dev_url, "--sha256", dev_sha, "--url", test_url, "--sha256", test_sha,
                     "--expect-files", 4, "--out", out)
    assert rc == 0, err
    table = read_dcase(out)
    assert sorted(zip(table.filename, table.label, table.split)) == [
        ("audio/bus01.wav", "bus", "train"), ("audio/test_bus03.wav", "bus", "test"),
        ("audio/test_tube01.wav", "tube", "test"), ("audio/tube07.wav", "tube", "train")]
    rc, err = _fetch(capsys, "dcase", "--url", dev_url, "--out", tmp_path / "d2")
    assert rc == 1 and "give 2 --url" in err and _nothing_left(tmp_path / "d2")
