"""``dmc verify`` over every manifest: the data folders (:mod:`dmc.io.manifest`) and the run's
results, the trained model and the metrics (:mod:`dmc.io.results_manifest`), by manifest name.

Apart from both modules because the results manifest builds on the data manifests' helpers: the
dispatch lives here so neither imports the other in a circle.
"""

from __future__ import annotations

from pathlib import Path

from dmc.io import manifest as data
from dmc.io.manifest import RESULTS, ROOTS
from dmc.io.results_manifest import verify_results, write_results

NAMES = (*ROOTS, RESULTS)


def verify(root: Path, params: dict, manifest_dir: Path | None = None, reference: Path | None = None,
           names=NAMES) -> tuple[list[str], list]:
    """(notes, differences) of every manifest in ``names`` (:func:`dmc.io.manifest.verify` for the data
    folders, :func:`dmc.io.results_manifest.verify_results` for ``results``)."""
    manifest_dir = manifest_dir or root / data.MANIFEST_DIR
    notes, diffs = [], []
    folders = [n for n in names if n != RESULTS]
    if folders:
        notes, diffs = data.verify(root, params, manifest_dir, reference, folders)
    if RESULTS in names:
        n, d = verify_results(root, params, manifest_dir, reference)
        notes, diffs = notes + n, diffs + d
    return notes, diffs


def write_all(root: Path, params: dict, manifest_dir: Path | None = None, names=NAMES) -> list[Path]:
    """Write every manifest in ``names``; returns the files written."""
    manifest_dir = manifest_dir or root / data.MANIFEST_DIR
    folders = [n for n in names if n != RESULTS]
    written = data.write_all(root, params, manifest_dir, folders) if folders else []
    if RESULTS in names:
        written.append(write_results(root, params, manifest_dir))
    return written
