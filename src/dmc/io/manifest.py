"""Per-file manifests of the embedded default and ``dmc verify``: which file of a run differs from
the committed one, and in what (container, video stream, audio stream, array).

``results/manifest/<name>.tsv`` holds one manifest per data folder (:data:`ROOTS`: ``synth`` =
data/synth, ``decoded`` = data/decoded, ``evalsets`` = data/evalsets, and the untouched test corpus
``synth_test`` = data/synth_test, ``decoded_test`` = data/decoded_test), tab-separated with columns
:data:`COLUMNS`:

* ``path`` relative to the folder, ``size`` in bytes, ``sha256`` of the bytes, ``md5`` of the
  bytes (DVC's hash: :func:`dvc_dir_md5` rebuilds the ``.dir`` hash that dvc.lock records for an
  output folder from these, so a test checks the manifest against dvc.lock without the data);
* ``parts``: ``;``-joined ``name=digest`` (SHA-256, first 16 hex digits) of the file's parts, so a
  difference is placed in the part that made it. Media files (:data:`MEDIA`: MP4, WebM, MKV,
  OGG, WAV, ...): per stream ``<v|a><index>.<codec>.packets`` (the encoded packets as the muxer
  stored them: the encoder's output) and ``<v|a><index>.decoded`` (the decoded pictures or
  samples, decoded by FFmpeg's portable C code, :mod:`dmc.io.avcpu`). ``.npy`` files:
  ``array.<dtype>.<shape>`` (the array's data, without the header).

A first line ``# params <json>`` records the params the data depend on (:data:`PARAM_KEYS`); a
run with other values is not the embedded default and is not compared.

``results/manifest/results.tsv`` (:data:`RESULTS`) covers the run's results, file by file
(:data:`RESULT_FILES`, paths relative to the repository): the trained model ``models/dmc.pt``
(parts: the training mode it records, :mod:`dmc.model.portable`, and one digest per weight tensor),
the metrics JSON files (parts: each key with its value) and the training log (part ``untimed``: the
log without its timing columns :data:`TIMING_COLUMNS`, which are compared instead of the bytes).
It records every params section the results depend on (:data:`RESULT_PARAM_KEYS`). Its report names
the training mode of the model on disk and of the manifest's.

:func:`verify` hashes the current files; a file whose size and SHA-256 match is equal; for any
other it computes the parts and names the kind of difference (:data:`KINDS`). Given a reference
copy of the files (``--reference``: the same folders of another run), it also measures them:
largest absolute difference of the arrays and of the decoded samples, number of elements that
differ.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dmc.errors import DmcError

#: manifest name -> data folder (relative to the repository root)
ROOTS = {"synth": "data/synth", "decoded": "data/decoded", "evalsets": "data/evalsets",
         "synth_test": "data/synth_test", "decoded_test": "data/decoded_test"}
MANIFEST_DIR = "results/manifest"
COLUMNS = ("path", "size", "sha256", "md5", "parts")
MEDIA = (".mp4", ".webm", ".mkv", ".ogg", ".opus", ".wav", ".flac", ".m4a", ".mov", ".avi", ".mp3")
#: params the manifested data depend on: the corpus, the decoding, where the data sets are read
PARAM_KEYS = ("synth", "decode", "data")
#: manifest -> the recorded params (sections or keys) its folder depends on
DEPENDS = {"synth": ("synth",), "decoded": ("synth", "decode", "data.videos"),
           "evalsets": ("synth", "decode", "data.esc50", "data.esc10", "data.dcase"),
           "synth_test": ("synth",), "decoded_test": ("synth", "decode")}
#: keys under a recorded section that a folder does not depend on: the multi-source test corpus's
#: own seed and size (issue 33) change none of these folders; nor does the training corpus's
#: ``synth.mixtures`` change the test corpus, the evaluation sets or their decoded forms
_MULTI_ONLY = ("synth.multi_seed", "synth.multi_videos")
INDEPENDENT = {"synth": _MULTI_ONLY, "decoded": _MULTI_ONLY, "evalsets": (*_MULTI_ONLY, "synth.mixtures"),
               "synth_test": (*_MULTI_ONLY, "synth.mixtures"), "decoded_test": (*_MULTI_ONLY, "synth.mixtures")}
#: keys added to params after manifests were recorded, with the value their data were made at: a
#: manifest that does not record the key was made at that value (the code path is unchanged there)
ADDED = {"synth.mixtures": "none"}
#: the results manifest: the trained model and the metrics (relative to the repository root)
RESULTS = "results"
RESULT_FILES = ("models/dmc.pt", "results/train/metrics.json", "results/train/log.csv", "results/metrics.json",
                "results/localization_metrics.json", "results/heldout_metrics.json")
#: params the results depend on (every section but the sweeps), and keys among them that do not
#: change a result (devices: the model records where it was trained; workers; checkpoint frequency;
#: the class maps' gate, which only the multi-source and MUSIC class-aware scores read, none of RESULT_FILES)
RESULT_PARAM_KEYS = ("seed", "data", "synth", "decode", "model", "train", "features", "evaluate", "localize")
RESULT_IGNORED = ("train.device", "train.num_workers", "train.checkpoint_every", "features.device", "localize.device",
                  "localize.class_map_gate")
#: the training log's wall-clock columns (dmc.model.training.LOG_FIELDS): left out of its comparison
TIMING_COLUMNS = ("seconds", "samples_per_s")
#: kinds of difference, as :class:`Difference` names them
KINDS = ("missing", "extra", "container", "video", "audio", "streams", "array", "npy header", "bytes", "model",
         "metrics", "log")
#: file names left out, as DVC leaves them out (.dvcignore): Snakemake's marker in folder outputs
IGNORED_NAMES = (".snakemake_timestamp",)
_CHUNK = 1 << 20
_DIGITS = 16


class ManifestError(DmcError):
    """A manifest file that cannot be read (names the file and the reason)."""


class VerifyError(DmcError):
    """Files differ from their manifest (the differences are printed before it)."""


def _digest(h) -> str:
    return h.hexdigest()[:_DIGITS]


def file_hashes(path: Path) -> tuple[int, str, str]:
    """(size, sha256, md5) of a file's bytes."""
    sha, md5 = hashlib.sha256(), hashlib.md5()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return size, sha.hexdigest(), md5.hexdigest()


# -- parts of a file ------------------------------------------------------------------------------
def _stream_key(stream) -> str:
    return f"{stream.type[0]}{stream.index}"


def media_streams(path: Path) -> dict[str, dict]:
    """Per stream (``v0``, ``a1``, ...): codec, SHA-256 of its packets, and its decoded pictures or
    samples (``packets`` / ``decoded`` digests and the decoded arrays' ``samples`` when asked)."""
    import av

    from dmc.io.avcpu import ffmpeg_portable

    out: dict[str, dict] = {}
    with ffmpeg_portable(), av.open(str(path)) as container:
        streams = [s for s in container.streams if s.type in ("video", "audio")]
        packets = {s.index: hashlib.sha256() for s in streams}
        for packet in container.demux(streams):
            if packet.size:
                packets[packet.stream.index].update(bytes(packet))
        for s in streams:
            out[_stream_key(s)] = {"codec": s.codec_context.name, "type": s.type,
                                   "packets": _digest(packets[s.index])}
    for s_key, info in out.items():
        info["decoded"], info["array"] = _decoded(path, int(s_key[1:]))
    return out


def _decoded(path: Path, index: int) -> tuple[str, np.ndarray | None]:
    """Digest of one stream's decoded pictures (planes as arrays, without line padding) or
    samples (as decoded), and the samples themselves for audio (for measuring a difference)."""
    import av

    from dmc.io.avcpu import ffmpeg_portable

    h, chunks = hashlib.sha256(), []
    try:
        with ffmpeg_portable(), av.open(str(path)) as container:
            stream = container.streams[index]
            for frame in container.decode(stream):
                arr = np.ascontiguousarray(frame.to_ndarray())
                h.update(arr.tobytes())
                if stream.type == "audio":
                    chunks.append(arr.reshape(len(frame.layout.channels), -1) if arr.ndim == 2
                                  and frame.format.is_planar else arr.reshape(-1, len(frame.layout.channels)).T)
    except (av.FFmpegError, ValueError) as exc:
        return f"undecodable({type(exc).__name__})", None
    samples = np.concatenate(chunks, axis=1).astype(np.float64) if chunks else None
    return _digest(h), samples


def npy_part(path: Path) -> tuple[str, str]:
    """(``array.<dtype>.<shape>``, digest of the array's data bytes) of a .npy file."""
    arr = np.load(path, mmap_mode="r", allow_pickle=False)
    h = hashlib.sha256()
    flat = arr.reshape(-1) if arr.flags.c_contiguous else np.ascontiguousarray(arr).reshape(-1)
    step = max(1, _CHUNK // max(1, arr.itemsize))
    for i in range(0, len(flat), step):
        h.update(np.ascontiguousarray(flat[i:i + step]).tobytes())
    shape = "x".join(str(n) for n in arr.shape) or "scalar"
    return f"array.{arr.dtype.str.lstrip('<>|=')}.{shape}", _digest(h)


def parts_of(path: Path) -> dict[str, str]:
    """The ``parts`` of a file as ``{name: digest}`` (empty for a file without parts)."""
    suffix = path.suffix.lower()
    if suffix in MEDIA:
        try:
            streams = media_streams(path)
        except Exception as exc:   # noqa: BLE001 - an unreadable file is recorded, not fatal
            return {"unreadable": type(exc).__name__}
        parts = {}
        for key, info in streams.items():
            parts[f"{key}.{info['codec']}.packets"] = info["packets"]
            parts[f"{key}.decoded"] = info["decoded"]
        return parts
    if suffix == ".npy":
        try:
            name, digest = npy_part(path)
        except (ValueError, OSError) as exc:
            return {"unreadable": type(exc).__name__}
        return {name: digest}
    return {}


def _format_parts(parts: dict[str, str]) -> str:
    return ";".join(f"{k}={v}" for k, v in parts.items())


def _parse_parts(text: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in text.split(";") if item)


# -- manifests ------------------------------------------------------------------------------------
@dataclass
class Entry:
    path: str
    size: int
    sha256: str
    md5: str
    parts: dict[str, str] = field(default_factory=dict)


def files_of(folder: Path) -> list[str]:
    """Every file under ``folder``, relative, '/'-separated, sorted (temporary ``.tmp-`` names of
    an interrupted write and :data:`IGNORED_NAMES` left out, as DVC hashes the folder)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and ".tmp-" not in p.name and p.name not in IGNORED_NAMES)


def build(folder: Path, with_parts: bool = True) -> list[Entry]:
    """Manifest entries of every file under ``folder``."""
    entries = []
    for rel in files_of(folder):
        size, sha, md5 = file_hashes(folder / rel)
        entries.append(Entry(rel, size, sha, md5, parts_of(folder / rel) if with_parts else {}))
    return entries


def params_record(params: dict, keys=PARAM_KEYS) -> dict:
    return {k: params[k] for k in keys if k in params}


def write_manifest(path: Path, entries: list[Entry], params: dict | None = None, keys=PARAM_KEYS) -> None:
    from dmc.atomic import atomic_file

    with atomic_file(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        if params is not None:
            fh.write("# params " + json.dumps(params_record(params, keys), sort_keys=True) + "\n")
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(COLUMNS)
        for e in entries:
            w.writerow([e.path, e.size, e.sha256, e.md5, _format_parts(e.parts)])


def read_manifest(path: Path) -> tuple[dict | None, list[Entry]]:
    """(recorded params or None, entries) of a manifest file."""
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found (write it with `dmc verify --write`)")
    with open(path, newline="", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    params = None
    if lines and lines[0].startswith("# params "):
        try:
            params = json.loads(lines[0][len("# params "):])
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{path}, line 1: bad params record: {exc}") from None
        lines = lines[1:]
    rows = list(csv.reader(lines, delimiter="\t"))
    if not rows or tuple(rows[0]) != COLUMNS:
        raise ManifestError(f"{path}: header must be {' '.join(COLUMNS)} (tab-separated)")
    entries = []
    for n, row in enumerate(rows[1:], start=2 + (params is not None)):
        if len(row) != len(COLUMNS):
            raise ManifestError(f"{path}, line {n}: {len(row)} fields, expected {len(COLUMNS)}")
        try:
            entries.append(Entry(row[0], int(row[1]), row[2], row[3], _parse_parts(row[4])))
        except ValueError as exc:
            raise ManifestError(f"{path}, line {n}: {exc}") from None
    return params, entries


def dvc_dir_md5(entries: list[Entry], under: str = "") -> str:
    """DVC's ``.dir`` hash of the folder ``under`` (relative to the manifest's folder, '' = all)
    from the entries' md5s: md5 of the sorted JSON list of {relpath, md5}, as dvc-data computes it."""
    prefix = under.rstrip("/") + "/" if under else ""
    items = sorted(({"md5": e.md5, "relpath": e.path[len(prefix):]} for e in entries
                    if e.path.startswith(prefix)), key=lambda d: d["relpath"])
    return hashlib.md5(json.dumps(items, sort_keys=True).encode("utf-8")).hexdigest() + ".dir"


# -- comparing ------------------------------------------------------------------------------------
@dataclass
class Difference:
    path: str          # relative to the repository root (folder/path)
    kind: str          # one of KINDS
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.kind}: {self.detail}"


def _measure_arrays(a: np.ndarray, b: np.ndarray) -> str:
    if a.shape != b.shape:
        return f"shape {b.shape} against {a.shape}"
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    diff = np.abs(a64 - b64)
    return f"max abs diff {float(diff.max()) if diff.size else 0.0:.3g}, {int(np.count_nonzero(diff))} of {diff.size} values differ"


def classify(rel: str, current: Path, recorded: Entry, reference: Path | None = None) -> Difference:
    """What differs between the file ``current`` and its manifest entry (and, when given, the
    reference copy of the file, measured)."""
    parts = parts_of(current)
    suffix = current.suffix.lower()
    if suffix in MEDIA and parts and "unreadable" not in parts:
        old, new = recorded.parts, parts
        old_streams = sorted({k.split(".")[0] + "." + k.split(".")[1] for k in old if k.endswith(".packets")})
        new_streams = sorted({k.split(".")[0] + "." + k.split(".")[1] for k in new if k.endswith(".packets")})
        if old_streams != new_streams:
            return Difference(rel, "streams", f"streams {', '.join(new_streams)} against {', '.join(old_streams)}")
        changed = [s for s in new_streams if new[f"{s}.packets"] != old.get(f"{s}.packets")]
        if not changed:
            return Difference(rel, "container", "container bytes differ, every stream's packets equal")
        ref_streams = media_streams(reference) if reference is not None and reference.is_file() else None
        details, kinds = [], []
        for s in changed:
            key, codec = s.split(".")
            kind = "video" if key[0] == "v" else "audio"
            kinds.append(kind)
            dec = "decoded too" if new[f"{key}.decoded"] != old.get(f"{key}.decoded") else "decoded equal"
            text = f"{kind} stream {key} ({codec}) differs ({dec})"
            if ref_streams is not None and kind == "audio" and key in ref_streams:
                cur = media_streams(current)[key]["array"]
                ref = ref_streams[key]["array"]
                if cur is not None and ref is not None:
                    text += f": {_measure_arrays(ref, cur)}"
            details.append(text)
        same = [f"{s.split('.')[0]} ({s.split('.')[1]})" for s in new_streams if s not in changed]
        if same:
            details.append("equal: " + ", ".join(same))
        return Difference(rel, kinds[0] if len(set(kinds)) == 1 else "streams", "; ".join(details))
    if suffix == ".npy" and parts and "unreadable" not in parts:
        (name, digest), = parts.items()
        old = recorded.parts
        if name in old and old[name] == digest:
            return Difference(rel, "npy header", "file bytes differ, array equal")
        if name not in old:
            was = next(iter(old), "?")
            return Difference(rel, "array", f"{name} against {was}")
        text = f"array differs ({name})"
        if reference is not None and reference.is_file():
            text += ": " + _measure_arrays(np.load(reference, allow_pickle=False), np.load(current, allow_pickle=False))
        return Difference(rel, "array", text)
    size = current.stat().st_size
    detail = f"bytes differ (size {size} against {recorded.size})" if size != recorded.size else "bytes differ"
    return Difference(rel, "bytes", detail)


def compare(folder: Path, entries: list[Entry], label: str, reference: Path | None = None) -> tuple[int, list[Difference]]:
    """(files compared, differences) of ``folder`` against its manifest ``entries``; paths in the
    differences are ``label/relative path``."""
    recorded = {e.path: e for e in entries}
    present = files_of(folder) if folder.is_dir() else []
    diffs = [Difference(f"{label}/{rel}", "missing", "in the manifest, not on disk")
             for rel in sorted(set(recorded) - set(present))]
    diffs += [Difference(f"{label}/{rel}", "extra", "on disk, not in the manifest")
              for rel in sorted(set(present) - set(recorded))]
    for rel in sorted(set(present) & set(recorded)):
        e = recorded[rel]
        size, sha, _ = file_hashes(folder / rel)
        if size == e.size and sha == e.sha256:
            continue
        ref = reference / rel if reference is not None else None
        diffs.append(classify(f"{label}/{rel}", folder / rel, e, ref))
    diffs.sort(key=lambda d: d.path)
    return len(set(present) | set(recorded)), diffs


def _differing_params(recorded: dict | None, params: dict, depends=PARAM_KEYS, independent=(), keys=PARAM_KEYS,
                      ignored=()) -> list[str]:
    """Keys (under the sections or keys ``depends``, less ``independent`` and ``ignored``) whose value
    differs from the recorded one; a key the record lacks counts at its :data:`ADDED` value."""
    if recorded is None:
        return []
    now = params_record(params, keys)
    out = []
    for section in sorted(set(recorded) | set(now)):
        a, b = recorded.get(section), now.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            missing = object()
            was = {k: a.get(k, ADDED.get(f"{section}.{k}", missing)) for k in set(a) | set(b)}
            keys = [f"{section}.{k}" for k in sorted(was) if was[k] != b.get(k, missing)]
        else:
            keys = [section] if a != b else []
        out += [k for k in keys if any(k == d or k.startswith(d + ".") for d in depends)
                and k not in independent and k not in ignored]
    return out


def verify(root: Path, params: dict, manifest_dir: Path | None = None, reference: Path | None = None,
           names=tuple(ROOTS)) -> tuple[list[str], list[Difference]]:
    """Compare the data folders of ``root`` (a repository) with their manifests.

    Returns (notes, differences): notes say what was compared or skipped (a manifest whose
    recorded params differ from ``params``: not the embedded default). ``reference``: a folder
    holding another run's data folders under the same relative paths (e.g. another clone's root)
    to measure the differences.
    """
    manifest_dir = manifest_dir or root / MANIFEST_DIR
    notes, diffs = [], []
    for name in names:
        rec_params, entries = read_manifest(manifest_dir / f"{name}.tsv")
        other = _differing_params(rec_params, params, DEPENDS[name], INDEPENDENT.get(name, ()))
        if other:
            notes.append(f"{ROOTS[name]}: not compared: params differ from the manifest's "
                         f"({', '.join(other[:4])}{', ...' if len(other) > 4 else ''}), not the embedded default")
            continue
        ref = reference / ROOTS[name] if reference is not None else None
        n, d = compare(root / ROOTS[name], entries, ROOTS[name], ref)
        notes.append(f"{ROOTS[name]}: {n} files, {len(d)} differ")
        diffs += d
    return notes, diffs


def write_all(root: Path, params: dict, manifest_dir: Path | None = None, names=tuple(ROOTS)) -> list[Path]:
    """Write the manifest of every data folder; returns the files written."""
    manifest_dir = manifest_dir or root / MANIFEST_DIR
    written = []
    for name in names:
        folder = root / ROOTS[name]
        if not folder.is_dir():
            raise ManifestError(f"{folder}: not found (run the pipeline first: dvc repro)")
        path = manifest_dir / f"{name}.tsv"
        write_manifest(path, build(folder), params)
        written.append(path)
    return written
