"""Readers for the two audio benchmarks (ESC-50, DCASE2013 scenes) and an audio decoder.

Every problem in a metadata file raises :class:`DatasetError` whose message names the
file, the 1-based line (the CSV header is line 1) and the reason, so a broken dataset is
fixed in one look. Filenames in the metadata must stay inside the dataset root: absolute
names and ``..`` components are rejected (checked on the text, so a dataset folder that is
itself a symlink still works).

ESC-50 (``read_esc50``): ``root/audio/{fold}-{clip}-{take}-{target}.wav`` and
``root/meta/esc50.csv`` with columns ``filename,fold,target,category[,esc10,src_file,take]``
(the last three are optional; ``esc10`` enables the ESC-10 subset evaluation). Listed files may
be WAV, OGG, FLAC or MP3 (any format FFmpeg reads): all go through :func:`load_audio`.
An optional ``root/meta/groups.csv`` (columns ``category,group``) maps every category to a
coarser group (the synthetic set: its sound family; real ESC-50: e.g. its five major
categories); it adds a ``group`` column and the evaluation then also scores group accuracy.

ESC-10 as first released (``read_esc10``): ``root/NNN - Class name/FOLD-SOURCE-TAKE.ogg``, the
fold in the file name, the class from the folder (target ``NNN - 1``).

DCASE2013 scenes, "DCASE2014" in the paper (``read_dcase``): ``root/audio/<scene><NN>.wav``
plus either ``root/train.txt`` and ``root/test.txt`` (lines ``filename label``, SoundNet /
AVID style) or ``root/split.csv`` (columns ``filename,label,split``). When both forms are
present they must agree.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from dmc.errors import DmcError

ESC50_REQUIRED = ("filename", "fold", "target", "category")
AUDIO_EXTENSIONS = (".wav", ".ogg", ".flac", ".mp3", ".opus", ".m4a")
ESC50_NAME = re.compile(r"^(\d+)-[^-/]+-[^-/]+-(\d+)\.[A-Za-z0-9]+$")
ESC10_FOLDER = re.compile(r"^(\d{3}) - (.+)$")
ESC10_NAME = re.compile(r"^(\d+)-([^-/]+)-([^-/.]+)\.[A-Za-z0-9]+$")
DCASE_SPLIT_COLUMNS = ("filename", "label", "split")


class DatasetError(DmcError, ValueError):
    """A dataset file is malformed; the message names the file, the line and the reason."""


def _error(file: Path, line: int | None, reason: str) -> DatasetError:
    where = f"{file}, line {line}" if line is not None else f"{file}"
    return DatasetError(f"{where}: {reason}")


def _resolve(root: Path, base: Path, name: str, file: Path, line: int) -> Path:
    """Path of ``name`` under ``base``; rejects names that could leave ``root``."""
    pure = PurePosixPath(name.replace("\\", "/"))
    if not name or pure.is_absolute() or re.match(r"^[A-Za-z]:", name) or ".." in pure.parts:
        raise _error(file, line, f"filename {name!r} escapes the dataset root {root}")
    path = base.joinpath(*pure.parts)
    if not path.is_file():
        raise _error(file, line, f"audio file {path} listed but missing on disk")
    return path


def _read_csv(file: Path, required: tuple[str, ...]) -> list[tuple[int, dict]]:
    """Rows of a CSV file as (line number, {column: stripped text}); checks the header."""
    if not file.is_file():
        raise _error(file, None, "file not found")
    with open(file, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in required if c not in header]
        if missing:
            raise _error(file, 1, f"missing column(s) {', '.join(missing)} (header: {header})")
        rows = []
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise _error(file, reader.line_num,
                             f"expected {len(header)} fields, found {len(cells)}")
            rows.append((reader.line_num, {h: c.strip() for h, c in zip(header, cells)}))
    if not rows:
        raise _error(file, None, "no data rows")
    return rows


def _int(value: str, column: str, file: Path, line: int) -> int:
    try:
        return int(value)
    except ValueError:
        raise _error(file, line, f"{column} {value!r} is not an integer") from None


def read_esc50(root: str | Path) -> pd.DataFrame:
    """Read and validate an ESC-50 layout; returns the metadata with an absolute ``path``.

    Checks: required columns, integer fold/target, fold in 1..5, every listed wav exists,
    no duplicate filename, a one-to-one target <-> category mapping, ``esc10`` is a boolean,
    and a filename of the form ``{fold}-{clip}-{take}-{target}.wav`` agrees with its
    fold/target columns (other names are accepted as they are).
    """
    root = Path(root).absolute()
    file = root / "meta" / "esc50.csv"
    rows = _read_csv(file, ESC50_REQUIRED)
    has_esc10 = "esc10" in rows[0][1]
    seen: dict[str, int] = {}
    category_of: dict[int, tuple[str, int]] = {}
    target_of: dict[str, tuple[int, int]] = {}
    records = []
    for line, row in rows:
        name = row["filename"]
        if name in seen:
            raise _error(file, line, f"duplicate filename {name!r} (first on line {seen[name]})")
        seen[name] = line
        path = _resolve(root, root / "audio", name, file, line)
        fold = _int(row["fold"], "fold", file, line)
        target = _int(row["target"], "target", file, line)
        if not 1 <= fold <= 5:
            raise _error(file, line, f"fold {fold} not in 1..5")
        category = row["category"]
        if target in category_of and category_of[target][0] != category:
            prev, at = category_of[target]
            raise _error(file, line, f"target {target} is {category!r} here but {prev!r} on line {at}")
        if category in target_of and target_of[category][0] != target:
            prev, at = target_of[category]
            raise _error(file, line, f"category {category!r} has target {target} here but {prev} on line {at}")
        category_of.setdefault(target, (category, line))
        target_of.setdefault(category, (target, line))
        m = ESC50_NAME.match(PurePosixPath(name).name)
        if m and (int(m.group(1)), int(m.group(2))) != (fold, target):
            raise _error(file, line, f"filename {name!r} says fold {m.group(1)}, target {m.group(2)} "
                                     f"but the columns say fold {fold}, target {target}")
        record = dict(row, fold=fold, target=target)
        if has_esc10:
            flag = row["esc10"].lower()
            if flag not in ("true", "false", "1", "0"):
                raise _error(file, line, f"esc10 {row['esc10']!r} is not True/False")
            record["esc10"] = flag in ("true", "1")
        record["path"] = str(path)
        records.append(record)
    meta = pd.DataFrame.from_records(records)
    groups = root / "meta" / "groups.csv"
    if groups.exists():
        meta["group"] = meta["category"].map(_read_groups(groups, set(target_of)))
    return meta


def _read_groups(file: Path, categories: set[str]) -> dict[str, str]:
    """``category -> group`` of an ESC-50 ``meta/groups.csv``: one row per category, none unknown."""
    group_of: dict[str, tuple[str, int]] = {}
    for line, row in _read_csv(file, ("category", "group")):
        category, group = row["category"], row["group"]
        if category not in categories:
            raise _error(file, line, f"category {category!r} is not in meta/esc50.csv")
        if category in group_of:
            raise _error(file, line, f"category {category!r} listed again (first on line {group_of[category][1]})")
        if not group:
            raise _error(file, line, f"category {category!r} has an empty group")
        group_of[category] = (group, line)
    missing = sorted(categories - set(group_of))
    if missing:
        raise _error(file, None, f"no group for category {missing[0]!r}"
                                 + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return {c: g for c, (g, _) in group_of.items()}


def read_esc10(root: str | Path) -> pd.DataFrame:
    """Read the ESC-10 release layout; returns a table like :func:`read_esc50`'s (columns
    ``filename`` (root-relative), ``fold``, ``target``, ``category``, ``src_file``, ``take``,
    ``path``), sorted by filename.

    Checks: folders named ``NNN - Class name`` (other folders and hidden files are errors,
    files outside a class folder too), clips named ``FOLD-SOURCE-TAKE.<audio extension>`` with
    fold in 1..5, no class number used twice, at least one clip.
    """
    root = Path(root).absolute()
    if not root.is_dir():
        raise _error(root, None, "ESC-10 folder not found")
    records, numbers = [], {}
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            raise _error(entry, None, "a file beside the class folders (expected 'NNN - Class name/')")
        m = ESC10_FOLDER.match(entry.name)
        if not m:
            raise _error(entry, None, "class folder name is not 'NNN - Class name'")
        number, category = int(m.group(1)), m.group(2).strip()
        if number in numbers:
            raise _error(entry, None, f"class number {number:03d} also used by {numbers[number]!r}")
        numbers[number] = entry.name
        for clip in sorted(entry.iterdir()):
            if clip.name.startswith("."):
                continue
            c = ESC10_NAME.match(clip.name)
            if not c or clip.suffix.lower() not in AUDIO_EXTENSIONS or not clip.is_file():
                raise _error(clip, None, "not an ESC-10 clip: expected FOLD-SOURCE-TAKE."
                                         f"{{{','.join(e[1:] for e in AUDIO_EXTENSIONS)}}}")
            fold = int(c.group(1))
            if not 1 <= fold <= 5:
                raise _error(clip, None, f"fold {fold} not in 1..5")
            records.append({"filename": f"{entry.name}/{clip.name}", "fold": fold, "target": number - 1,
                            "category": category, "src_file": c.group(2), "take": c.group(3),
                            "path": str(clip)})
    if not records:
        raise _error(root, None, "no clips: expected folders 'NNN - Class name/' with FOLD-SOURCE-TAKE.ogg files")
    return pd.DataFrame.from_records(records).sort_values("filename", ignore_index=True)


def _read_list(file: Path, split: str) -> list[tuple[int, str, str, str]]:
    """Lines ``filename label`` of train.txt/test.txt as (line, filename, label, split)."""
    out = []
    with open(file, encoding="utf-8-sig") as fh:
        for line, text in enumerate(fh, start=1):
            if not text.strip() or text.lstrip().startswith("#"):
                continue
            parts = text.split()
            if len(parts) != 2:
                raise _error(file, line, f"malformed line {text.strip()!r}: expected 'filename label'")
            out.append((line, parts[0], parts[1], split))
    return out


def _dcase_entries(root: Path) -> tuple[list[tuple[Path, int, str, str, str]], Path]:
    """All (file, line, filename, label, split) entries of one split description."""
    train, test, table = root / "train.txt", root / "test.txt", root / "split.csv"
    entries, train_file = [], None
    if train.exists() or test.exists():
        for f, split in ((train, "train"), (test, "test")):
            if not f.is_file():
                raise _error(f, None, "file not found (train.txt and test.txt go together)")
            entries += [(f, *e) for e in _read_list(f, split)]
        train_file = train
    if table.exists():
        csv_entries = []
        for line, row in _read_csv(table, DCASE_SPLIT_COLUMNS):
            split = row["split"].lower()
            if split not in ("train", "test"):
                raise _error(table, line, f"split {row['split']!r} is neither 'train' nor 'test'")
            if not row["filename"] or not row["label"]:
                raise _error(table, line, "empty filename or label")
            csv_entries.append((table, line, row["filename"], row["label"], split))
        if train_file is not None:
            def key(es):
                return sorted((_relname(e[2]), e[3], e[4]) for e in es)
            if key(entries) != key(csv_entries):
                raise _error(table, None, "disagrees with train.txt/test.txt; keep one split description")
        else:
            entries, train_file = csv_entries, table
    if train_file is None:
        raise _error(root, None, "no split description: need train.txt + test.txt or split.csv")
    return entries, train_file


def _relname(name: str) -> str:
    """Root-relative name: ``bus01.wav`` means ``audio/bus01.wav``."""
    pure = PurePosixPath(name.replace("\\", "/"))
    return str(pure if len(pure.parts) > 1 else PurePosixPath("audio", *pure.parts))


def read_dcase(root: str | Path) -> pd.DataFrame:
    """Read and validate a DCASE2013-scenes layout.

    Returns one row per recording with columns ``filename`` (root-relative, e.g.
    ``audio/bus01.wav``, the recording id), ``path`` (absolute), ``label``, ``split``
    (``train``/``test``). A filename with a folder is relative to the root, a bare one
    lives in ``root/audio``. Errors: malformed line, path escaping the root, missing wav,
    a file listed twice or in both splits, a test label absent from the training labels.
    """
    root = Path(root).absolute()
    entries, train_file = _dcase_entries(root)
    for split in ("train", "test"):
        if not any(e[4] == split for e in entries):
            where = train_file if train_file.suffix == ".csv" else root / f"{split}.txt"
            raise _error(where, None, f"no {split} recordings")
    seen: dict[str, tuple[Path, int, str]] = {}
    train_labels = {e[3] for e in entries if e[4] == "train"}
    records = []
    for file, line, name, label, split in entries:
        rel = _relname(name)
        path = _resolve(root, root, rel, file, line)
        if rel in seen:
            pfile, pline, psplit = seen[rel]
            what = "in both train and test" if psplit != split else "listed twice"
            raise _error(file, line, f"{rel} is {what} (also {pfile.name} line {pline})")
        seen[rel] = (file, line, split)
        if split == "test" and label not in train_labels:
            raise _error(file, line, f"label {label!r} not in the split file's training labels "
                                     f"({train_file.name}: {sorted(train_labels)})")
        records.append({"filename": rel, "path": str(path), "label": label, "split": split})
    return pd.DataFrame.from_records(records, columns=["filename", "path", "label", "split"])


def load_audio(path: str | Path, sample_rate: int, mono: bool = True,
               offset: float = 0.0, duration: float | None = None) -> np.ndarray:
    """Decode an audio file (:func:`dmc.io.audio.read_audio`: any format FFmpeg reads, fast path for
    PCM WAV), resampled to ``sample_rate`` with the torchaudio kernel the training videos use.

    Returns ``(samples,)`` float32 when ``mono`` (the mean of the channels), else
    ``(channels, samples)``. The whole file is decoded and resampled, then
    ``[offset, offset + duration)`` is cut by sample index (exact, unlike container seeking). A
    file shorter than that gives what there is; callers pad. Raises :class:`DatasetError` naming
    the file when it cannot be decoded or has no audio stream.
    """
    from dmc.io.audio import AudioReadError, read_audio, resample, to_mono

    if offset < 0 or (duration is not None and duration < 0):
        raise ValueError(f"offset and duration must be >= 0, got {offset}, {duration}")
    try:
        audio, rate = read_audio(path)
    except AudioReadError as exc:
        raise _error(Path(path), None, str(exc)) from None
    except FileNotFoundError:
        raise _error(Path(path), None, "file not found") from None
    audio = resample(to_mono(audio) if mono else audio, rate, sample_rate)
    start = int(round(offset * sample_rate))
    stop = None if duration is None else start + int(round(duration * sample_rate))
    return np.ascontiguousarray(audio[..., start:stop], dtype=np.float32)
