"""The cluster -> class mapping file written beside a model (``models/dmc.pt`` ->
``models/dmc.class_mapping.json``: one per model, as several models share a folder, e.g.
``models/headline/default_s0.pt``).

Contents: ``clusters`` (k), ``classes`` (class names, index = class), ``cluster_to_class`` (k
class indices, -1 = none), ``contingency`` (C x k training mass, :mod:`dmc.localization.class_mapping`),
``fitted_on`` (which data: training splits only) and ``rule`` (how it was learned).  Written
atomically (:mod:`dmc.atomic`); :func:`read_mapping` refuses a malformed file with a
:class:`MappingFileError` naming the file and the reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from dmc.atomic import atomic_file
from dmc.errors import DmcError

SUFFIX = ".class_mapping.json"


class MappingFileError(DmcError, ValueError):
    """A cluster -> class mapping file that is missing or malformed (names the file)."""


@dataclass(frozen=True)
class ClassMapping:
    classes: list[str]
    cluster_to_class: list[int]
    contingency: list[list[float]] = field(default_factory=list)
    fitted_on: str = "train"
    rule: str = ""

    @property
    def clusters(self) -> int:
        return len(self.cluster_to_class)


def mapping_path(model_path: str | Path) -> Path:
    """The mapping file beside a model file: the model's name with its suffix replaced by :data:`SUFFIX`."""
    p = Path(model_path)
    return p.with_name(p.stem + SUFFIX)


def write_mapping(path: str | Path, mapping: ClassMapping) -> Path:
    path = Path(path)
    body = {"clusters": mapping.clusters, "classes": list(mapping.classes),
            "cluster_to_class": [int(c) for c in mapping.cluster_to_class],
            "contingency": [[float(x) for x in row] for row in mapping.contingency],
            "fitted_on": mapping.fitted_on, "rule": mapping.rule}
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(body, indent=2) + "\n")
    return path


def read_mapping(path: str | Path) -> ClassMapping:
    path = Path(path)
    try:
        body = json.loads(path.read_text())
    except FileNotFoundError:
        raise MappingFileError(f"{path}: cluster -> class mapping not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MappingFileError(f"{path}: not a readable JSON mapping ({e})") from None
    if not isinstance(body, dict):
        raise MappingFileError(f"{path}: expected a JSON object")
    classes, owner = body.get("classes"), body.get("cluster_to_class")
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise MappingFileError(f"{path}: 'classes' must be a list of names")
    if not isinstance(owner, list) or not all(isinstance(c, int) and not isinstance(c, bool) for c in owner):
        raise MappingFileError(f"{path}: 'cluster_to_class' must be a list of integers")
    if body.get("clusters") != len(owner):
        raise MappingFileError(f"{path}: 'clusters' is {body.get('clusters')!r} but {len(owner)} clusters are mapped")
    bad = [c for c in owner if not -1 <= c < len(classes)]
    if bad:
        raise MappingFileError(f"{path}: class indices {bad} outside -1..{len(classes) - 1}")
    cont = body.get("contingency", [])
    if not isinstance(cont, list) or any(not isinstance(r, list) or len(r) != len(owner) for r in cont):
        raise MappingFileError(f"{path}: 'contingency' must be rows of {len(owner)} numbers")
    return ClassMapping(classes, owner, cont, str(body.get("fitted_on", "")), str(body.get("rule", "")))
