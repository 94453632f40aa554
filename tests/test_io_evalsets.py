"""Tests of dmc.io.evalsets: ESC-50 / DCASE layouts, their validation, and audio decoding."""

from __future__ import annotations

import re
import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from dmc.io.evalsets import DatasetError, load_audio, read_dcase, read_esc50

HEADER = "filename,fold,target,category,esc10,src_file,take"


def write_wav(path: Path, x: np.ndarray, rate: int, width: int = 2) -> Path:
    """x: (samples, channels) in [-1, 1]. width 2/3 = 16/24-bit PCM, 4 = 32-bit float."""
    path.parent.mkdir(parents=True, exist_ok=True)
    x = np.atleast_2d(x.T).T if x.ndim == 1 else x
    if width == 4:
        data = x.astype("<f4").tobytes()
        fmt = struct.pack("<HHIIHH", 3, x.shape[1], rate, rate * 4 * x.shape[1], 4 * x.shape[1], 32)
        path.write_bytes(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE"
                         + b"fmt " + struct.pack("<I", len(fmt)) + fmt
                         + b"data" + struct.pack("<I", len(data)) + data)
        return path
    scale = 2 ** (8 * width - 1) - 1
    ints = np.round(x * scale).astype("<i4")
    raw = ints.astype("<i2").tobytes() if width == 2 else \
        b"".join(v.to_bytes(4, "little", signed=True)[:3] for v in ints.ravel().tolist())
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)
    return path


def tiny_wav(path: Path) -> None:
    write_wav(path, np.zeros(160), 16000)


def fixed_rows() -> list[str]:
    """CSV body of a small valid ESC-50 set: 2 classes x 5 folds (lines 2..11)."""
    return [f"{f}-{100 + t}-A-{t}.wav,{f},{t},{['dog', 'rain'][t]},{t == 0},{100 + t},A"
            for f in range(1, 6) for t in range(2)]


def make_esc50(root: Path, rows: list[str]) -> Path:
    """Write meta/esc50.csv with ``rows`` and a wav for each name that stays inside root."""
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / "meta" / "esc50.csv").write_text("\n".join([HEADER, *rows]) + "\n")
    for row in rows:
        name = row.split(",")[0]
        if ".." not in name and not name.startswith("/"):
            tiny_wav(root / "audio" / name)
    return root


def test_read_esc50_valid(tmp_path):
    meta = read_esc50(make_esc50(tmp_path, fixed_rows()))
    assert len(meta) == 10
    assert meta["fold"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert meta["esc10"].dtype == bool and meta["esc10"].sum() == 5
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in meta["path"])


def test_read_esc50_groups(tmp_path):
    root = make_esc50(tmp_path, fixed_rows())
    assert "group" not in read_esc50(root).columns          # optional: no file, no column
    (root / "meta" / "groups.csv").write_text("category,group\ndog,animals\nrain,natural\n")
    meta = read_esc50(root)
    assert meta.groupby("category")["group"].unique().map(list).to_dict() == {
        "dog": ["animals"], "rain": ["natural"]}


@pytest.mark.parametrize("body, reason", [
    ("dog,animals\n", "groups.csv: no group for category 'rain'"),
    ("dog,animals\nrain,natural\ncat,animals\n", "groups.csv, line 4: category 'cat' is not in meta/esc50.csv"),
    ("dog,animals\nrain,natural\ndog,pets\n", "groups.csv, line 4: category 'dog' listed again"),
    ("dog,animals\nrain,\n", "groups.csv, line 3: category 'rain' has an empty group"),
])
def test_esc50_bad_groups_name_file_and_line(tmp_path, body, reason):
    root = make_esc50(tmp_path, fixed_rows())
    (root / "meta" / "groups.csv").write_text("category,group\n" + body)
    with pytest.raises(DatasetError, match=re.escape(reason)):
        read_esc50(root)


@pytest.mark.parametrize("line, field, value, reason", [
    (3, 1, "x", "fold 'x' is not an integer"),
    (4, 2, "1.5", "target '1.5' is not an integer"),
    (2, 1, "6", "fold 6 not in 1..5"),
    (6, 3, "cat", "target 0 is 'cat' here but 'dog' on line 2"),
    (7, 4, "maybe", "esc10 'maybe' is not True/False"),
])
def test_esc50_bad_row_names_file_and_line(tmp_path, line, field, value, reason):
    rows = fixed_rows()
    cells = rows[line - 2].split(",")
    cells[field] = value
    if field in (1, 2):  # keep the name consistent with the bad column so the column is blamed
        cells[0] = "odd-name.wav"
    rows[line - 2] = ",".join(cells)
    make_esc50(tmp_path, rows)
    with pytest.raises(DatasetError) as err:
        read_esc50(tmp_path)
    msg = str(err.value)
    assert "esc50.csv" in msg and f"line {line}" in msg and reason in msg


def test_esc50_category_with_two_targets(tmp_path):
    rows = fixed_rows()
    rows[3] = "2-101-A-7.wav,2,7,dog,False,101,A"  # line 5: dog is target 0 on line 2
    make_esc50(tmp_path, rows)
    with pytest.raises(DatasetError, match=r"esc50.csv, line 5: category 'dog' has target 7 here but 0 on line 2"):
        read_esc50(tmp_path)


def test_esc50_missing_column_duplicate_and_field_count(tmp_path):
    make_esc50(tmp_path, fixed_rows())
    csv = tmp_path / "meta" / "esc50.csv"
    text = csv.read_text()
    csv.write_text(text.replace("fold,target", "fld,target", 1))
    with pytest.raises(DatasetError, match=r"esc50.csv, line 1: missing column\(s\) fold"):
        read_esc50(tmp_path)
    lines = text.splitlines()
    csv.write_text("\n".join([*lines, lines[1]]) + "\n")
    with pytest.raises(DatasetError, match=r"line 12: duplicate filename '1-100-A-0.wav' \(first on line 2\)"):
        read_esc50(tmp_path)
    csv.write_text("\n".join([*lines[:3], lines[3] + ",extra", *lines[4:]]) + "\n")
    with pytest.raises(DatasetError, match=r"line 4: expected 7 fields, found 8"):
        read_esc50(tmp_path)


def test_esc50_missing_wav_and_name_disagreeing_with_columns(tmp_path):
    make_esc50(tmp_path, fixed_rows())
    (tmp_path / "audio" / "3-100-A-0.wav").unlink()
    with pytest.raises(DatasetError, match=r"line 6: audio file .*3-100-A-0.wav listed but missing"):
        read_esc50(tmp_path)
    rows = fixed_rows()
    rows[0] = "2-100-A-0.wav,1,0,dog,True,100,A"
    make_esc50(tmp_path, rows)
    with pytest.raises(DatasetError, match=r"line 2: filename '2-100-A-0.wav' says fold 2"):
        read_esc50(tmp_path)


@pytest.mark.parametrize("name", ["../1-100-A-0.wav", "/etc/1-100-A-0.wav", "a/../../x.wav"])
def test_esc50_path_escape_rejected(tmp_path, name):
    rows = fixed_rows()
    rows[2] = rows[2].replace("2-100-A-0.wav", name)
    make_esc50(tmp_path / "esc", rows)
    tiny_wav(tmp_path / "1-100-A-0.wav")  # exists outside the root: must still be refused
    with pytest.raises(DatasetError, match=r"esc50.csv, line 4: filename .* escapes the dataset root"):
        read_esc50(tmp_path / "esc")


# ---------------------------------------------------------------- DCASE

def make_dcase(root: Path, fmt: str = "txt") -> Path:
    for scene in ("bus", "park"):
        for i in range(1, 5):
            tiny_wav(root / "audio" / f"{scene}{i:02d}.wav")
    train = ["audio/bus01.wav bus", "bus02.wav\tbus", "audio/park01.wav park", "park02.wav park"]
    test = ["audio/bus03.wav bus", "bus04.wav bus", "", "park03.wav park", "park04.wav park"]
    if fmt in ("txt", "both"):
        (root / "train.txt").write_text("\n".join(train) + "\n")
        (root / "test.txt").write_text("\n".join(test) + "\n")
    if fmt in ("csv", "both"):
        lines = ["filename,label,split"] + [",".join(l.split()) + ",train" for l in train] + \
                [",".join(l.split()) + ",test" for l in test if l]
        (root / "split.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.parametrize("fmt", ["txt", "csv", "both"])
def test_read_dcase_formats(tmp_path, fmt):
    table = read_dcase(make_dcase(tmp_path, fmt))
    assert list(table.columns) == ["filename", "path", "label", "split"]
    assert len(table) == 8
    assert set(table["filename"]) == {f"audio/{s}{i:02d}.wav" for s in ("bus", "park") for i in range(1, 5)}
    assert table.set_index("filename").loc["audio/bus04.wav", "split"] == "test"
    assert (table["split"] == "train").sum() == 4
    assert all(Path(p).is_file() for p in table["path"])


def test_dcase_errors_name_file_and_line(tmp_path):
    root = make_dcase(tmp_path)
    test = root / "test.txt"
    good = test.read_text()
    test.write_text(good.replace("park04.wav park", "park04.wav office"))
    with pytest.raises(DatasetError, match=r"test.txt, line 5: label 'office' not in the split file's training labels"):
        read_dcase(root)
    test.write_text(good.replace("bus04.wav bus", "bus04.wav"))
    with pytest.raises(DatasetError, match=r"test.txt, line 2: malformed line"):
        read_dcase(root)
    test.write_text(good.replace("bus04.wav bus", "audio/bus01.wav bus"))
    with pytest.raises(DatasetError, match=r"test.txt, line 2: audio/bus01.wav is in both train and test"):
        read_dcase(root)
    test.write_text(good.replace("bus04.wav bus", "bus09.wav bus"))
    with pytest.raises(DatasetError, match=r"test.txt, line 2: audio file .*bus09.wav listed but missing"):
        read_dcase(root)
    test.write_text(good.replace("bus04.wav bus", "../bus04.wav bus"))
    with pytest.raises(DatasetError, match=r"test.txt, line 2: filename '../bus04.wav' escapes"):
        read_dcase(root)


def test_dcase_csv_errors_and_disagreement(tmp_path):
    root = make_dcase(tmp_path, "csv")
    split = root / "split.csv"
    good = split.read_text()
    split.write_text(good.replace("park04.wav,park,test", "park04.wav,park,dev"))
    with pytest.raises(DatasetError, match=r"split.csv, line 9: split 'dev' is neither"):
        read_dcase(root)
    split.write_text(good.replace("park04.wav,park,test", "park04.wav,beach,test"))
    with pytest.raises(DatasetError, match=r"split.csv, line 9: label 'beach' not in the split file's training"):
        read_dcase(root)
    split.write_text(good)
    make_dcase(root, "txt")
    (root / "test.txt").write_text((root / "test.txt").read_text().replace("park04.wav park", "park04.wav bus"))
    with pytest.raises(DatasetError, match=r"split.csv: disagrees with train.txt/test.txt"):
        read_dcase(root)
    split.unlink()
    (root / "test.txt").write_text("# nothing\n")
    with pytest.raises(DatasetError, match=r"test.txt: no test recordings"):
        read_dcase(root)
    (root / "test.txt").unlink()
    with pytest.raises(DatasetError, match=r"test.txt: file not found"):
        read_dcase(root)


# ---------------------------------------------------------------- audio

@pytest.mark.parametrize("width, rate, channels", [(2, 44100, 2), (3, 48000, 1), (4, 22050, 3)])
def test_load_audio_formats(tmp_path, width, rate, channels):
    t = np.arange(rate) / rate  # 1 s
    x = np.stack([0.5 * np.sin(2 * np.pi * 440 * t)] * channels, axis=1)
    path = write_wav(tmp_path / "a.wav", x, rate, width)
    y = load_audio(path, 16000)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - 16000) <= 2
    assert 0.48 < np.abs(y).max() < 0.52  # mono = mean of identical channels, no gain change
    multi = load_audio(path, 16000, mono=False)
    assert multi.shape[0] == channels and abs(multi.shape[1] - 16000) <= 2
    cut = load_audio(path, 16000, offset=0.25, duration=0.5)
    assert len(cut) == 8000
    np.testing.assert_allclose(cut, y[4000:12000], atol=1e-6)
    assert len(load_audio(path, 16000, offset=0.75, duration=0.5)) < 8000  # no padding


def test_load_audio_unreadable_names_file(tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    with pytest.raises(DatasetError, match="broken.wav: cannot decode audio"):
        load_audio(bad, 16000)
    with pytest.raises(DatasetError, match="absent.wav"):
        load_audio(tmp_path / "absent.wav", 16000)


# ---------------------------------------------------------------- ESC-10 release, other formats

def test_read_esc10_release_layout(tmp_path):
    """The ESC-10 release as generated (OGG Opus in 'NNN - Class name/' folders): folds from the
    file names, labels from the folders; the same log-mel pipeline reads it."""
    from dmc.io.evalsets import read_esc10
    from dmc.evaluation.features import evalset_logmel
    from dmc.synth import generate_esc10
    from conftest import load_default_params

    root = tmp_path / "ESC-10"
    folders = generate_esc10(root, n_classes=3, clips_per_class=5, seed=1)
    assert folders == ["001 - Flute", "002 - Engine", "003 - Bird"]
    t = read_esc10(root)
    assert len(t) == 15 and sorted(t["fold"].unique()) == [1, 2, 3, 4, 5]
    assert t.groupby("target")["category"].unique().map(list).to_dict() == {0: ["Flute"], 1: ["Engine"], 2: ["Bird"]}
    assert all(p.endswith(".ogg") and f"/{f}-" in p.replace(" - ", "/") for p, f in zip(t["path"], t["fold"]))
    (root / ".DS_Store").write_text("")          # hidden files are ignored
    logmel, clips = evalset_logmel("esc10", root, load_default_params()["decode"])
    assert logmel.shape == (15, 101, 64) and list(clips["fold"]) == list(t["fold"])


def test_esc10_portable_audio_is_lossless_flac(tmp_path):
    """synth.portable_audio: the ESC-10 clips are FLAC with exactly the samples of the ESC-like clips
    they come from (no libopus, no resampling), in the same layout and names but .flac."""
    import av

    from dmc.io.audio import read_audio
    from dmc.io.evalsets import read_esc10
    from dmc.synth import generate_esc10
    from dmc.synth.evalsets import generate_esc50

    root = tmp_path / "ESC-10"
    generate_esc10(root, n_classes=2, clips_per_class=5, seed=1, portable_audio=True)
    generate_esc10(tmp_path / "opus", n_classes=2, clips_per_class=5, seed=1)
    t, opus = read_esc10(root), read_esc10(tmp_path / "opus")
    assert all(p.endswith(".flac") for p in t["path"])
    for p in t["path"]:                                     # FLAC streams only: no libopus anywhere
        with av.open(p) as c:
            assert [st.codec_context.name for st in c.streams] == ["flac"]
    assert [f.rsplit(".", 1)[0] for f in t["filename"]] == [f.rsplit(".", 1)[0] for f in opus["filename"]]
    meta = generate_esc50(tmp_path / "esc", n_classes=2, clips_per_class=5, seed=1)
    for r in meta.itertuples():
        wav, rate = read_audio(tmp_path / "esc" / "audio" / r.filename)
        flac, frate = read_audio(next(p for p in t["path"] if p.endswith(f"/{r.fold}-{r.src_file}-{r.take}.flac")))
        assert frate == rate == 44100 and np.array_equal(flac, wav)


@pytest.mark.parametrize("make, reason", [
    (lambda r: (r / "Dog bark").mkdir(), "class folder name is not 'NNN - Class name'"),
    (lambda r: (r / "001 - Dog").mkdir() or (r / "001 - Dog" / "clip.ogg").write_text("x"),
     "not an ESC-10 clip"),
    (lambda r: (r / "001 - Dog").mkdir() or (r / "001 - Dog" / "7-100-A.ogg").write_text("x"), "fold 7 not in 1..5"),
    (lambda r: (r / "001 - Dog").mkdir() or (r / "001 - Cat").mkdir(), "class number 001 also used"),
    (lambda r: (r / "notes.txt").write_text("x"), "a file beside the class folders"),
    (lambda r: None, "no clips"),
])
def test_esc10_errors_name_the_path(tmp_path, make, reason):
    from dmc.io.evalsets import read_esc10

    root = tmp_path / "ESC-10"
    root.mkdir()
    make(root)
    with pytest.raises(DatasetError, match=re.escape(reason)):
        read_esc10(root)


def test_esc50_manifest_rows_in_any_audio_format(tmp_path):
    """FLAC, MP3, OGG and WAV rows of meta/esc50.csv go through the same decoder."""
    from media import tone
    from test_io_audio import write_audio

    root = tmp_path / "esc"
    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    rows = []
    for i, (codec, fmt, ext) in enumerate([("flac", "flac", "flac"), ("libmp3lame", "mp3", "mp3"),
                                            ("libopus", "ogg", "ogg"), ("pcm_s16le", "wav", "wav")]):
        name = f"{i + 1}-{100 + i}-A-{i % 2}.{ext}"
        write_audio(root / "audio" / name, tone(5.0, 44100, 1), 44100, codec, fmt)
        rows.append(f"{name},{i + 1},{i % 2},{['a', 'b'][i % 2]}")
    (root / "meta" / "esc50.csv").write_text("filename,fold,target,category\n" + "\n".join(rows) + "\n")
    table = read_esc50(root)
    assert list(table["filename"].str.rsplit(".", n=1).str[1]) == ["flac", "mp3", "ogg", "wav"]
    waves = [load_audio(p, 16000) for p in table["path"]]
    ref = waves[3]   # the lossless ones agree exactly; lossy codecs only approximately
    assert np.array_equal(waves[0], ref)
    for w in waves[1:3]:
        n = min(len(w), len(ref))
        assert abs(len(w) - 80000) < 2000 and np.corrcoef(np.abs(w[:n]), np.abs(ref[:n]))[0, 1] > 0.5
