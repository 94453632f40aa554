"""params.yaml validation: every error is one line naming the key, before any work."""

import copy
import subprocess
import sys

import pytest
import yaml

from dmc.pipeline.params import ParamsError, validate_params


def set_key(p, dotted, value):
    *head, last = dotted.split(".")
    for k in head:
        p = p[k]
    if value is DELETE:
        del p[last]
    else:
        p[last] = value


DELETE = object()


@pytest.mark.parametrize("key,value,message", [
    ("decode.n_mels", "sixty-four", r"decode\.n_mels: 'sixty-four' is not of type 'integer'"),
    ("decode.hop_seconds", DELETE, r"decode\.hop_seconds: missing key"),
    ("decode.hop_secs", 0.01, r"decode\.hop_secs: unknown key"),
    ("decode.num_shards", 0, r"decode\.num_shards: 0 is less than the minimum of 1"),
    ("decode.f_max", 9000.0, r"decode\.f_max: .*Nyquist"),
    ("decode.max_bad_fraction", -0.1, r"decode\.max_bad_fraction: -0\.1 is less than the minimum"),
    ("synth.size", "huge", r"synth\.size: 'huge' is not one of"),
    ("seeed", 1, r"seeed: unknown key"),
])
def test_invalid_params_name_the_key(params, key, value, message):
    bad = copy.deepcopy(params)
    set_key(bad, key, value)
    with pytest.raises(ParamsError, match=message) as err:
        validate_params(bad)
    assert "\n" not in str(err.value)


def test_default_params_are_valid(params):
    assert validate_params(params) is params


def test_cli_refuses_before_work(tmp_path, params):
    bad = copy.deepcopy(params)
    bad["decode"]["num_shards"] = "four"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(bad))
    out = tmp_path / "videos"
    proc = subprocess.run([sys.executable, "-m", "dmc.pipeline.cli", "--params", str(path), "synth", "videos",
                           "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"dmc: invalid parameters: {path}: decode.num_shards: 'four' is not of type 'integer'"]
    assert not out.exists()


@pytest.mark.parametrize("key,value,message", [
    ("train.clusters", 0, r"train\.clusters: 0 is less than the minimum of 1"),
    ("train.clusters", 300, r"train\.clusters: 300 clusters exceed the vectors per clip \(visual 256, audio 40\)"),
    ("train.margin", -1.0, r"train\.margin: -1\.0 is less than the minimum of 0"),
    ("train.dim", 0, r"train\.dim: 0 is less than the minimum of 1"),
    ("train.batch_size", 1, r"train\.batch_size: 1 is less than the minimum of 2"),
    ("train.device", "tpu", r"train\.device: 'tpu' is not one of"),
    ("model.preset", "huge", r"model\.preset: 'huge' is not one of model\.presets"),
    ("model.presets.tiny16.audio", [[16], [32], [64]], r"model\.presets\.tiny16: .*same width"),
    ("localize.heatmap_rule", "nearest", r"localize\.heatmap_rule: 'nearest' is not one of"),
    ("localize.class_map_gate", "sound", r"localize\.class_map_gate: 'sound' is not one of"),
])
def test_invalid_training_params_name_the_key(params, key, value, message):
    bad = copy.deepcopy(params)
    set_key(bad, key, value)
    with pytest.raises(ParamsError, match=message):
        validate_params(bad)


def test_schema_heatmap_rules_are_the_code_rules():
    """localize.heatmap_rule accepts exactly the rules dmc.localization.heatmaps computes."""
    from dmc.localization.heatmaps import RULES
    from dmc.pipeline.params import schema

    assert schema()["properties"]["localize"]["properties"]["heatmap_rule"]["enum"] == list(RULES)


def test_schema_class_map_gates_are_the_code_gates():
    """localize.class_map_gate accepts exactly the gates dmc.localization.classmaps computes."""
    from dmc.localization.classmaps import GATES
    from dmc.pipeline.params import schema

    assert schema()["properties"]["localize"]["properties"]["class_map_gate"]["enum"] == list(GATES)
