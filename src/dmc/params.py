"""Load and validate params.yaml before any work starts.

The JSON schema (``src/dmc/schemas/params.schema.yaml``, linked from
``workflow/schemas/``) fixes every key, type and range; ``validate_params`` adds the
checks that relate keys to each other.  Every error is one line naming the key, e.g.
``params.yaml: train.clusters: 0 is less than the minimum of 1``.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

DEFAULT_PATH = "params.yaml"


class ParamsError(ValueError):
    """An invalid params.yaml; the message is one line that names the key."""


def schema() -> dict:
    text = resources.files("dmc").joinpath("schemas/params.schema.yaml").read_text()
    return yaml.safe_load(text)


def _key_of(error: jsonschema.ValidationError) -> tuple[str, str]:
    """The dotted key an error is about, and a short reason."""
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required":
        missing = error.message.split("'")[1]
        return ".".join(path + [missing]), "missing key"
    if error.validator == "additionalProperties":
        allowed = set(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - allowed)
        return ".".join(path + unknown[:1]), "unknown key (allowed: " + ", ".join(sorted(allowed)) + ")"
    return ".".join(path) or "<top level>", error.message


def _cross_checks(p: dict) -> list[tuple[str, str]]:
    """Checks across keys that a JSON schema cannot express."""
    d = p["decode"]
    errs = []
    if d["f_max"] > d["sample_rate"] / 2:
        errs.append(("decode.f_max", f"{d['f_max']} Hz is above the Nyquist frequency {d['sample_rate'] / 2} Hz"))
    if d["f_min"] >= d["f_max"]:
        errs.append(("decode.f_min", f"must be below decode.f_max ({d['f_max']})"))
    if d["hop_seconds"] > d["window_seconds"]:
        errs.append(("decode.hop_seconds", "must not exceed decode.window_seconds"))
    if d["window_seconds"] > d["segment_seconds"]:
        errs.append(("decode.window_seconds", "must not exceed decode.segment_seconds"))
    for extra in _EXTRA_CHECKS:
        errs.extend(extra(p))
    return errs


# Later modules (training, evaluation) register checks that need their own knowledge,
# e.g. that k clusters fit into the number of conv-map vectors.
_EXTRA_CHECKS: list = []


def register_check(fn):
    _EXTRA_CHECKS.append(fn)
    return fn


def validate_params(params: Any, source: str = DEFAULT_PATH) -> dict:
    """Return ``params`` if valid, else raise ParamsError naming the first bad key."""
    validator = jsonschema.Draft7Validator(schema())
    errors = sorted(validator.iter_errors(params), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if errors:
        key, reason = _key_of(errors[0])
        raise ParamsError(f"{source}: {key}: {reason}")
    for key, reason in _cross_checks(params):
        raise ParamsError(f"{source}: {key}: {reason}")
    return params


def load_params(path: str | Path = DEFAULT_PATH) -> dict:
    """Read and validate a params file."""
    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    return validate_params(copy.deepcopy(params), source=str(path))
