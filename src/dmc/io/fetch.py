"""``dmc fetch``: download a published evaluation set and lay it out as params.yaml expects.

One command per data set, no hand work::

    dmc fetch esc50 --out data/esc50      # then params.yaml: data.esc50: data/esc50
    dmc fetch dcase --out data/dcase      # then params.yaml: data.dcase: data/dcase

Steps: download each archive of the data set from its pinned URL (an immutable commit archive
or a fixed file, never a moving branch) into a temporary folder beside ``--out``; check its
checksum where one is published (else print the SHA-256 it got, to pin with ``--sha256``);
unpack (zip or tar; members that would leave the folder are refused); convert to the layout
of :mod:`dmc.io.evalsets`; verify what was unpacked (the reader's checks: every file the
metadata lists is present; then expected counts, a balanced design, and every audio file
decodes with the expected duration); only then rename the result to ``--out``. On any error
the message names the archive or the file, and nothing is left under ``--out`` or beside it
(an earlier ``--out`` stays as it was).

``--url`` (repeatable: DCASE takes the development set, then the test set) and ``--sha256``
fetch from a mirror or a local ``file://`` copy; ``--expect-files`` changes the expected
number of audio files (a subset, a test archive).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from dmc.atomic import atomic_dir
from dmc.io.evalsets import DatasetError, read_dcase, read_esc50

__all__ = ["FetchError", "Archive", "SOURCES", "fetch"]


class FetchError(DatasetError):
    """A download, archive or unpacked data set is not what was expected; the message names it."""


@dataclass(frozen=True)
class Archive:
    url: str
    sha256: str | None = None      # null where the publisher gives none
    md5: str | None = None
    size: int | None = None        # bytes, where published


@dataclass(frozen=True)
class Source:
    archives: tuple[Archive, ...]
    files: int                     # audio files expected in the unpacked set
    seconds: float                 # duration of every audio file
    convert: Callable[[list[Path], Path], None]
    verify: Callable[[Path], dict]
    about: str


def _convert_esc50(unpacked: list[Path], out: Path) -> None:
    """The ESC-50 repository as released: keep ``audio/`` and ``meta/esc50.csv`` (and LICENSE)."""
    metas = sorted(unpacked[0].rglob("meta/esc50.csv"))
    if len(metas) != 1:
        raise FetchError(f"{_name(unpacked[0])}: expected one meta/esc50.csv in the archive, found {len(metas)}")
    root = metas[0].parent.parent
    if not (root / "audio").is_dir():
        raise FetchError(f"{_name(unpacked[0])}: no audio/ folder beside meta/esc50.csv")
    (out / "meta").mkdir()
    shutil.move(str(root / "audio"), out / "audio")
    shutil.move(str(metas[0]), out / "meta" / "esc50.csv")
    for extra in ("LICENSE", "README.md"):
        if (root / extra).is_file():
            shutil.move(str(root / extra), out / extra)


def _verify_esc50(root: Path) -> dict:
    table = read_esc50(root)            # columns, folds, targets, every listed wav on disk
    listed = set(table.filename)
    unlisted = sorted(p.name for p in (root / "audio").glob("*.wav") if p.name not in listed)
    if unlisted:
        raise FetchError(f"audio/{unlisted[0]}: not listed in meta/esc50.csv "
                         f"({len(unlisted)} unlisted file(s))")
    cells = table.groupby(["fold", "target"]).size()
    if cells.nunique() != 1 or len(cells) != 5 * table.target.nunique():
        raise FetchError(f"meta/esc50.csv: clips are not balanced over 5 folds x "
                         f"{table.target.nunique()} classes")
    return {"files": len(table), "classes": int(table.target.nunique()), "paths": list(table.path)}


_SCENE = re.compile(r"^(?:test_)?([a-z]+?)(\d{2})\.wav$")
DCASE_SCENES = ("bus", "busystreet", "office", "openairmarket", "park", "quietstreet", "restaurant",
                "supermarket", "tube", "tubestation")


def _convert_dcase(unpacked: list[Path], out: Path) -> None:
    """DCASE2013 scenes: the development set (train) and the test set, as ``audio/<scene><NN>.wav``
    and ``audio/test_<scene><NN>.wav`` with ``train.txt`` / ``test.txt``."""
    if len(unpacked) != 2:
        raise FetchError(f"dcase needs two archives (development set, test set), got {len(unpacked)}")
    (out / "audio").mkdir()
    for split, folder, prefix in (("train", unpacked[0], ""), ("test", unpacked[1], "test_")):
        wavs = sorted(p for p in folder.rglob("*.wav") if not p.name.startswith("._"))
        if not wavs:
            raise FetchError(f"{_name(folder)}: no .wav files in the archive")
        lines = []
        for wav in wavs:
            m = _SCENE.match(wav.name)
            if not m or m.group(1) not in DCASE_SCENES:
                raise FetchError(f"{_name(folder)}: {wav.relative_to(folder).as_posix()}: not a "
                                 f"<scene><NN>.wav name of the DCASE2013 scenes {DCASE_SCENES}")
            name = f"audio/{prefix}{m.group(1)}{m.group(2)}.wav"
            if (out / name).exists():
                raise FetchError(f"{_name(folder)}: {wav.name} appears twice")
            shutil.move(str(wav), out / name)
            lines.append(f"{name}\t{m.group(1)}\n")
        (out / f"{split}.txt").write_text("".join(lines))


def _verify_dcase(root: Path) -> dict:
    table = read_dcase(root)            # both splits, every listed wav on disk, test labels known
    counts = table.groupby(["split", "label"]).size()
    if counts.nunique() != 1 or set(table[table.split == "train"].label) != set(table[table.split == "test"].label):
        raise FetchError(f"train.txt/test.txt: scenes are not balanced over train and test: {counts.to_dict()}")
    return {"files": len(table), "classes": int(table.label.nunique()), "paths": list(table.path)}


SOURCES: dict[str, Source] = {
    # ESC-50 v2.0.0 (WAV release, 2017-12-13) as in the repository at commit 00aa5afb: a commit
    # archive never changes content, but GitHub generates the zip on request and publishes no
    # checksum (its compression has changed before), so the content is verified instead.
    "esc50": Source(
        archives=(Archive("https://github.com/karolpiczak/ESC-50/archive/"
                          "00aa5afbc655f148255d139b51abcfa5abf9ccb5.zip", sha256=None),),
        files=2000, seconds=5.0, convert=_convert_esc50, verify=_verify_esc50,
        about="ESC-50 (Piczak 2015): 2000 clips, 50 classes, 5 folds, 5 s, 44.1 kHz mono"),
    # DCASE2013 scene classification (IEEE AASP challenge, QMUL) on archive.org: the public
    # development set (MD5 and size as published with dcase_util's DCASE2013_Scenes_DevelopmentSet)
    # and the test set released after the challenge (no checksum published).
    "dcase": Source(
        archives=(Archive("https://archive.org/download/dcase2013_scene_classification/scenes_stereo.zip",
                          md5="abdefde136d84de33b0f20a0f13a6b97", size=361748263),
                  Archive("https://archive.org/download/dcase2013_scene_classification_testset/"
                          "scenes_stereo_testset.zip", size=371994727)),
        files=200, seconds=30.0, convert=_convert_dcase, verify=_verify_dcase,
        about="DCASE2013 scenes: 10 scenes x 10 recordings (train) + 10 x 10 (test), 30 s stereo"),
}


def _name(path: Path) -> str:
    """The archive's file name, from the folder it was unpacked to."""
    return re.sub(r"^unpacked-\d+-", "", path.name)


def _download(archive: Archive, dest: Path, log: Callable[[str], None]) -> None:
    """Stream ``archive.url`` to ``dest`` and check size and checksums where known."""
    sha, md5, size = hashlib.sha256(), hashlib.md5(), 0
    try:
        with urllib.request.urlopen(archive.url, timeout=60) as response, open(dest, "wb") as fh:
            while chunk := response.read(1 << 20):
                fh.write(chunk)
                sha.update(chunk)
                md5.update(chunk)
                size += len(chunk)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise FetchError(f"{archive.url}: download failed: {getattr(exc, 'reason', exc)}") from None
    if archive.size is not None and size != archive.size:
        raise FetchError(f"{archive.url}: {size} bytes downloaded, expected {archive.size} (incomplete or changed)")
    for label, want, got in (("sha256", archive.sha256, sha.hexdigest()), ("md5", archive.md5, md5.hexdigest())):
        if want and want.lower() != got:
            raise FetchError(f"{archive.url}: {label} mismatch: expected {want.lower()}, got {got} "
                             "(corrupted or changed archive)")
    if not archive.sha256 and not archive.md5:
        log(f"fetch: {archive.url}: no published checksum; got sha256 {sha.hexdigest()} "
            f"({size} bytes); the unpacked content is verified instead")


def _unpack(path: Path, dest: Path, url: str) -> None:
    """Unpack a zip or tar archive into ``dest``; refuse members that would leave it."""
    dest.mkdir()
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                for member in zf.namelist():
                    pure = PurePosixPath(member.replace("\\", "/"))
                    if pure.is_absolute() or ".." in pure.parts:
                        raise FetchError(f"{url}: archive member {member!r} would be written outside the folder")
                bad = zf.testzip()
                if bad is not None:
                    raise FetchError(f"{url}: archive member {bad} is corrupted (CRC mismatch)")
                zf.extractall(dest)
        elif tarfile.is_tarfile(path):
            with tarfile.open(path) as tf:
                tf.extractall(dest, filter="data")
        else:
            raise FetchError(f"{url}: not a zip or tar archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise FetchError(f"{url}: cannot unpack: {exc}") from None


def _check_audio(paths: list[str], seconds: float, root: Path) -> None:
    """Every file decodes (PyAV) and lasts ``seconds`` (within 1 %)."""
    import av

    for path in paths:
        rel = Path(path).relative_to(root.absolute()).as_posix()
        try:
            with av.open(path) as container:
                if not container.streams.audio:
                    raise FetchError(f"{rel}: no audio stream")
                stream = container.streams.audio[0]
                samples = sum(frame.samples for frame in container.decode(stream))
                rate = stream.codec_context.sample_rate
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise FetchError(f"{rel}: does not decode: {exc}") from None
        got = samples / rate if rate else 0.0
        if abs(got - seconds) > 0.01 * seconds:
            raise FetchError(f"{rel}: {got:.3f} s of audio, expected {seconds} s (incomplete file?)")


def fetch(name: str, out: str | Path, urls: list[str] | None = None, sha256: list[str] | None = None,
          expect_files: int | None = None, log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> dict:
    """Download, unpack, convert and verify data set ``name`` into ``out`` (atomically); returns
    ``{"files", "classes"}``."""
    if name not in SOURCES:
        raise FetchError(f"unknown data set {name!r}; known: {', '.join(SOURCES)}")
    source = SOURCES[name]
    archives = list(source.archives)
    if urls:
        if len(urls) != len(archives):
            raise FetchError(f"{name}: give {len(archives)} --url (one per archive: "
                             f"{', '.join(a.url.rsplit('/', 1)[-1] for a in archives)}), got {len(urls)}")
        if sha256 and len(sha256) != len(urls):
            raise FetchError(f"{name}: give one --sha256 per --url ({len(urls)}), got {len(sha256)}")
        archives = [Archive(u, sha256=(sha256[i] if sha256 else None)) for i, u in enumerate(urls)]
    elif sha256:
        archives = [Archive(a.url, sha256=h, md5=a.md5, size=a.size) for a, h in zip(archives, sha256)]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=out.name + ".tmp-", dir=out.parent))
    try:
        unpacked = []
        for i, archive in enumerate(archives):
            log(f"fetch: {name}: downloading {archive.url}")
            path = work / f"archive-{i}"
            _download(archive, path, log)
            unpacked.append(work / f"unpacked-{i}-{archive.url.rstrip('/').rsplit('/', 1)[-1]}")
            _unpack(path, unpacked[-1], archive.url)
            path.unlink()
        with atomic_dir(out) as stage:
            try:
                source.convert(unpacked, stage)
                summary = source.verify(stage)
                expected = source.files if expect_files is None else expect_files
                if summary["files"] != expected:
                    raise FetchError(f"{summary['files']} audio files, expected {expected}")
                _check_audio(summary.pop("paths"), source.seconds, stage)
            except DatasetError as exc:
                # name files as they are in the unpacked archive, not in the temporary folder
                msg = str(exc)
                for form in (str(stage.absolute()), str(stage)):
                    msg = msg.replace(form, "(unpacked)")
                raise FetchError(f"{name}: the archive is incomplete or invalid: {msg}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"fetch: {name}: {summary['files']} files, {summary['classes']} classes, verified, in {out}")
    return summary
