"""Load and validate params.yaml before any work starts.

The JSON schema (``src/dmc/schemas/params.schema.yaml``, linked from
``workflow/schemas/``) fixes every key, type and range; ``validate_params`` adds the
checks that relate keys to each other.  Every error is one line naming the key, e.g.
``params.yaml: train.clusters: 0 is less than the minimum of 1``.
:func:`load_config` returns the validated params as typed objects (:class:`dmc.config.Params`),
built once: what the CLI hands to every step.
"""

from __future__ import annotations

import copy
import functools
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from dmc.config import Params
from dmc.errors import ParamsError   # defined with the other errors: lower layers raise it too
from dmc.names import GRIDS

DEFAULT_PATH = "params.yaml"


def schema() -> dict:
    text = resources.files("dmc").joinpath("schemas/params.schema.yaml").read_text()
    return yaml.safe_load(text)


@functools.lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft7Validator:
    """Built once per process (the sweep checks validate params once per ablation value)."""
    return jsonschema.Draft7Validator(schema())


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


def _cross_checks(p: dict, sweeps: bool = False) -> list[tuple[str, str]]:
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
    s = p["synth"]
    if s["mixtures"] != "none" and s["control"] != "none":
        errs.append(("synth.mixtures", f"{s['mixtures']} does not combine with synth.control = {s['control']} "
                     "(the control hides the sounding objects)"))
    t = p["train"]
    if t["val_fraction"] + t["test_fraction"] >= 1:
        errs.append(("train.test_fraction", f"train.val_fraction + train.test_fraction = "
                     f"{t['val_fraction'] + t['test_fraction']:g} leaves no training videos (must be < 1)"))
    errs.extend(_model_checks(p))
    if sweeps and not errs and "sweeps" in p:
        errs.extend(_sweep_checks(p))
    return errs


def get_dotted(p: dict, dotted: str):
    """``params["a"]["b"]`` for ``"a.b"``; KeyError if a part is missing."""
    node = p
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def set_dotted(p: dict, dotted: str, value) -> dict:
    """A deep copy of ``p`` with the dotted key set to ``value``."""
    out = copy.deepcopy(p)
    *head, last = dotted.split(".")
    node = out
    for part in head:
        node = node[part]
    node[last] = value
    return out


def _sweep_checks(p: dict) -> list[tuple[str, str]]:
    """Every key of the one-key-at-a-time grids (ablation, structure) names a scalar param and
    every value gives valid params."""
    base = {k: v for k, v in p.items() if k != "sweeps"}
    for grid in GRIDS:
        for key, values in (p["sweeps"].get(grid) or {}).items():
            where = f"sweeps.{grid}.{key}"
            try:
                current = get_dotted(base, key)
            except KeyError:
                return [(where, "not a key of params.yaml")]
            if isinstance(current, (dict, list)) or key == "seed":
                return [(where, "names a section or the seed, not one parameter")]
            for value in values:
                try:
                    validate_params(set_dotted(base, key, value))
                except ParamsError as exc:
                    return [(where, f"value {value!r} is invalid: {str(exc).split(': ', 1)[1]}")]
    return []


def conv_map_size(size: int, blocks: list) -> int:
    """Side of a conv map after the 2x2 max-pools between ``blocks`` (floor at each pool)."""
    for _ in range(len(blocks) - 1):
        size //= 2
    return size


def _model_checks(p: dict) -> list[tuple[str, str]]:
    m, t, d = p["model"], p["train"], p["decode"]
    if m["preset"] not in m["presets"]:
        return [("model.preset", f"{m['preset']!r} is not one of model.presets ({', '.join(m['presets'])})")]
    preset = m["presets"][m["preset"]]
    if preset["visual"][-1][-1] != preset["audio"][-1][-1]:
        return [(f"model.presets.{m['preset']}", "visual and audio streams must end with the same width")]
    # vectors per clip: visual frame_size^2 map, audio (1 + samples // hop) x n_mels map
    hop = int(round(d["hop_seconds"] * d["sample_rate"]))
    frames = 1 + int(round(d["segment_seconds"] * d["sample_rate"])) // hop
    p_v = conv_map_size(d["frame_size"], preset["visual"]) ** 2
    p_a = conv_map_size(frames, preset["audio"]) * conv_map_size(d["n_mels"], preset["audio"])
    if t["clusters"] > min(p_v, p_a):
        return [("train.clusters", f"{t['clusters']} clusters exceed the vectors per clip (visual {p_v}, "
                 f"audio {p_a}); lower it or use larger decode.frame_size / decode.segment_seconds")]
    return []


def validate_params(params: Any, source: str = DEFAULT_PATH, sweeps: bool = False) -> dict:
    """Return ``params`` if valid, else raise ParamsError naming the first bad key.

    ``sweeps``: also check that every value of the ablation grid gives valid params (one
    validation per value: done by the commands that use the grid, ``dmc sweep`` and
    ``dmc check-params``, not by every pipeline step).
    """
    errors = sorted(_validator().iter_errors(params), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if errors:
        key, reason = _key_of(errors[0])
        raise ParamsError(f"{source}: {key}: {reason}")
    for key, reason in _cross_checks(params, sweeps):
        raise ParamsError(f"{source}: {key}: {reason}")
    return params


def load_params(path: str | Path = DEFAULT_PATH, sweeps: bool = False) -> dict:
    """Read and validate a params file (``sweeps``: see :func:`validate_params`)."""
    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    return validate_params(copy.deepcopy(params), source=str(path), sweeps=sweeps)


def load_config(path: str | Path = DEFAULT_PATH, sweeps: bool = False) -> Params:
    """:func:`load_params`, as the typed :class:`~dmc.config.Params` (built once, after validation)."""
    return Params.from_dict(load_params(path, sweeps=sweeps))
