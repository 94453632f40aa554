"""The results manifest (``results/manifest/results.tsv``) and its part of ``dmc verify``: the trained
model and the metrics files of a run, against the committed run's.

The files are :data:`dmc.io.manifest.RESULT_FILES`; each row has the columns of every manifest
(:data:`dmc.io.manifest.COLUMNS`) and these parts:

* the model (``.pt``): ``training`` (the mode it was trained in: portable, fast, or unrecorded for
  a model from before ``train.portable``), ``threads`` (its intra-op threads) and ``w.<name>`` (a
  digest of each weight tensor, so a difference is counted in tensors);
* a metrics file (``.json``): ``k.<key>`` with the value itself (JSON), so a difference names the
  key and both values;
* the training log (``.csv``): ``untimed``, a digest of the log without its timing columns
  (:data:`dmc.io.manifest.TIMING_COLUMNS`): its bytes are not compared, this part is.

The model's bytes can match only when both runs trained in the portable mode on the CPU
(:mod:`dmc.model.portable`): the report names the mode of the model on disk and of the manifest's.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import numpy as np

from dmc.io.manifest import (MANIFEST_DIR, RESULT_FILES, RESULT_IGNORED, RESULT_PARAM_KEYS, RESULTS, TIMING_COLUMNS,
                             Difference, Entry, ManifestError, _differing_params, file_hashes, read_manifest,
                             write_manifest)

_DIGITS = 16
_UNSAFE = (";", "=", "\t", "\n", "\r")     # characters the parts column cannot hold in a value


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:_DIGITS]


def _state(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def training_record(path: Path) -> dict | None:
    """The ``training`` record of a model file (None: not recorded, or not readable)."""
    try:
        return _state(path).get("training")
    except Exception:       # noqa: BLE001 - an unreadable model is reported by its bytes
        return None


def _tensor_digest(tensor) -> str:
    arr = tensor.detach().cpu().contiguous().numpy()
    return _digest(f"{arr.dtype.str}{arr.shape}".encode() + arr.tobytes())


def model_parts(path: Path) -> dict[str, str]:
    try:
        state = _state(path)
    except Exception as exc:     # noqa: BLE001
        return {"unreadable": type(exc).__name__}
    record = state.get("training") or {}
    parts = {"training": record.get("mode", "unrecorded"), "threads": str(record.get("threads", ""))}
    parts.update({f"w.{name}": _tensor_digest(t) for name, t in state["model"].items()})
    return parts


def metrics_parts(path: Path) -> dict[str, str]:
    try:
        values = json.loads(path.read_text())
    except (ValueError, OSError) as exc:
        return {"unreadable": type(exc).__name__}
    out = {}
    for key, value in values.items():
        text = json.dumps(value, sort_keys=True)
        out[f"k.{key}"] = text if not any(c in text or c in key for c in _UNSAFE) else "sha:" + _digest(text.encode())
    return out


def untimed_log(path: Path) -> str:
    """The training log as CSV text without its timing columns."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
        fields = [f for f in (rows[0].keys() if rows else []) if f not in TIMING_COLUMNS]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def log_parts(path: Path) -> dict[str, str]:
    try:
        return {"untimed": _digest(untimed_log(path).encode())}
    except (ValueError, OSError) as exc:
        return {"unreadable": type(exc).__name__}


def result_parts(path: Path) -> dict[str, str]:
    suffix = path.suffix.lower()
    if suffix == ".pt":
        return model_parts(path)
    if suffix == ".json":
        return metrics_parts(path)
    if suffix == ".csv":
        return log_parts(path)
    return {}


def write_results(root: Path, params: dict, manifest_dir: Path | None = None) -> Path:
    """Write ``results.tsv`` for the run in ``root``; every result file must exist."""
    manifest_dir = manifest_dir or root / MANIFEST_DIR
    entries = []
    for rel in RESULT_FILES:
        if not (root / rel).is_file():
            raise ManifestError(f"{root / rel}: not found (run the pipeline first: dvc repro)")
        size, sha, md5 = file_hashes(root / rel)
        entries.append(Entry(rel, size, sha, md5, result_parts(root / rel)))
    path = manifest_dir / f"{RESULTS}.tsv"
    write_manifest(path, entries, params, RESULT_PARAM_KEYS)
    return path


def describe_parts(parts: dict[str, str]) -> str:
    mode = parts.get("training", "unrecorded")
    if mode == "portable":
        return f"portable mode ({parts.get('threads')} threads)"
    if mode == "unrecorded":
        return "mode not recorded"
    return f"{mode} mode"


def _model_difference(rel: str, current: Path, recorded: Entry, reference: Path | None) -> Difference:
    new, old = model_parts(current), recorded.parts
    names = sorted(k for k in set(new) | set(old) if k.startswith("w."))
    differ = [k for k in names if new.get(k) != old.get(k)]
    text = (f"{len(differ)} of {len(names)} weight tensors differ" if differ else "weights equal, record differs")
    text += f"; trained in {describe_parts(new)}, the manifest's in {describe_parts(old)}"
    if differ and reference is not None and reference.is_file():
        a, b = _state(reference)["model"], _state(current)["model"]
        common = [k[2:] for k in differ if k[2:] in a and k[2:] in b and a[k[2:]].shape == b[k[2:]].shape]
        if common:
            worst = max(float(np.abs(a[k].double().numpy() - b[k].double().numpy()).max()) for k in common)
            text += f"; largest absolute weight difference {worst:.3g}"
    return Difference(rel, "model", text)


def _metrics_difference(rel: str, current: Path, recorded: Entry) -> Difference:
    new, old = metrics_parts(current), recorded.parts
    keys = sorted(set(new) | set(old))
    differ = [k for k in keys if new.get(k) != old.get(k)]
    shown = ", ".join(f"{k[2:]} {new.get(k, 'absent')} against {old.get(k, 'absent')}" for k in differ[:4])
    more = f", and {len(differ) - 4} more" if len(differ) > 4 else ""
    return Difference(rel, "metrics", f"{len(differ)} of {len(keys)} values differ: {shown}{more}" if differ
                      else "bytes differ, every value equal")


def verify_results(root: Path, params: dict, manifest_dir: Path | None = None,
                   reference: Path | None = None) -> tuple[list[str], list[Difference]]:
    """(notes, differences) of the run's results in ``root`` against ``results.tsv``.

    ``reference``: another run's repository root, to measure a model difference."""
    manifest_dir = manifest_dir or root / MANIFEST_DIR
    path = manifest_dir / f"{RESULTS}.tsv"
    model = root / RESULT_FILES[0]
    now = "absent" if not model.is_file() else describe_parts(model_parts(model))
    if not path.is_file():
        return [f"results: {path} not written (dmc verify --write --only results): the model ({now}) and the "
                "metrics not compared"], []
    rec_params, entries = read_manifest(path)
    recorded = {e.path: e for e in entries}
    then = describe_parts(recorded[RESULT_FILES[0]].parts) if RESULT_FILES[0] in recorded else "absent"
    notes = [f"{RESULT_FILES[0]}: trained in {now}; the manifest's model in {then}"]
    other = _differing_params(rec_params, params, RESULT_PARAM_KEYS, keys=RESULT_PARAM_KEYS, ignored=RESULT_IGNORED)
    if other:
        notes.append(f"results: not compared: params differ from the manifest's "
                     f"({', '.join(other[:4])}{', ...' if len(other) > 4 else ''})")
        return notes, []
    diffs, timing_only = [], 0
    for rel in RESULT_FILES:
        current, e = root / rel, recorded.get(rel)
        if e is None:
            if current.is_file():
                diffs.append(Difference(rel, "extra", "on disk, not in the manifest"))
            continue
        if not current.is_file():
            diffs.append(Difference(rel, "missing", "in the manifest, not on disk"))
            continue
        size, sha, _ = file_hashes(current)
        if size == e.size and sha == e.sha256:
            continue
        suffix = current.suffix.lower()
        if suffix == ".csv":
            if log_parts(current).get("untimed") == e.parts.get("untimed"):
                timing_only += 1
                continue
            diffs.append(Difference(rel, "log", f"values differ beyond the timing columns ({', '.join(TIMING_COLUMNS)})"))
        elif suffix == ".pt":
            diffs.append(_model_difference(rel, current, e, reference / rel if reference is not None else None))
        elif suffix == ".json":
            diffs.append(_metrics_difference(rel, current, e))
        else:
            diffs.append(Difference(rel, "bytes", "bytes differ"))
    notes.append(f"results: {len(recorded)} files, {len(diffs)} differ"
                 + (f" ({timing_only} training log(s) differ in the timing columns only)" if timing_only else ""))
    return notes, diffs
