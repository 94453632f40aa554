"""Typed params (dmc.config): the dataclasses match the JSON schema, and as_dict gives back the dict."""

import dataclasses
import json

import pytest

from conftest import ROOT, with_overrides
from dmc.config import SECTIONS, Params, Preset
from dmc.pipeline.params import ParamsError, load_config, load_params, schema


def _section_schemas():
    props = schema()["properties"]
    out = {name: props[name] for name in SECTIONS}
    out["model.presets.*"] = props["model"]["properties"]["presets"]["additionalProperties"]
    return out


CLASSES = {**SECTIONS, "model.presets.*": Preset}


@pytest.mark.parametrize("section", sorted(CLASSES))
def test_every_schema_key_is_a_field_and_every_field_a_schema_key(section):
    cls, spec = CLASSES[section], _section_schemas()[section]
    assert set(cls.keys()) == set(spec["properties"]), f"{section}: fields and schema keys differ"
    optional = {f.name for f in dataclasses.fields(cls) if f.metadata.get("optional")}
    assert optional == set(spec["properties"]) - set(spec.get("required", ())), \
        f"{section}: the optional fields are not the keys the schema does not require"


def test_the_top_level_fields_are_the_schema_sections():
    top = schema()
    assert set(Params.keys()) == set(top["properties"])
    assert {f.name for f in dataclasses.fields(Params) if f.metadata.get("optional")} == \
        set(top["properties"]) - set(top["required"])


def test_a_drift_is_seen(monkeypatch):
    """The check is not vacuous: a schema key without a field fails it."""
    real = schema()
    real["properties"]["localize"]["properties"]["new_key"] = {"type": "number"}
    monkeypatch.setattr(f"{__name__}.schema", lambda: real)
    with pytest.raises(AssertionError, match="localize"):
        test_every_schema_key_is_a_field_and_every_field_a_schema_key("localize")


def test_the_default_params_round_trip_with_their_bytes(params):
    full = load_params(ROOT / "params.yaml", sweeps=True)
    for p in (params, full):
        cfg = Params.from_dict(p)
        assert cfg.as_dict() == p
        assert json.dumps(cfg.as_dict()) == json.dumps(p)       # key order too (pickled checkpoint configs)
        assert {k: cfg.__getattribute__(k).as_dict() for k in SECTIONS if k in p} == \
            {k: p[k] for k in SECTIONS if k in p}


def test_optional_keys_absent_stay_absent(params):
    p = with_overrides(params)
    del p["train"]["squash"]
    p.pop("sweeps", None)
    cfg = Params.from_dict(p)
    assert cfg.train.squash is None and cfg.sweeps is None
    assert cfg.as_dict() == p and "squash" not in cfg.train.as_dict()


def test_typed_values_and_immutability(params):
    cfg = load_config(ROOT / "params.yaml")
    assert cfg.localize.ciou_threshold == params["localize"]["ciou_threshold"]
    assert cfg.evaluate.C_grid == tuple(params["evaluate"]["C_grid"])
    assert cfg.model.presets[cfg.model.preset].visual == tuple(map(tuple, params["model"]["presets"][
        params["model"]["preset"]]["visual"]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.localize.ciou_threshold = 0.5


def test_load_config_still_refuses_invalid_params_naming_the_key(tmp_path, params):
    import yaml

    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(with_overrides(params, localize__ciou_threshold=2.0), sort_keys=False))
    with pytest.raises(ParamsError, match="localize.ciou_threshold"):
        load_config(path)


def test_from_dict_refuses_an_unvalidated_dict(params):
    p = with_overrides(params)
    p["localize"]["typo"] = 1
    with pytest.raises(KeyError, match="typo"):
        Params.from_dict(p)
