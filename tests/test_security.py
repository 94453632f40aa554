"""Security: nothing loaded from disk can run code (no unpickling of arbitrary objects), and no
shell command of the workflow is built from a file name without quoting. (Paths of manifests
and split files escaping their data set root: tests/test_io_evalsets.py, and through the CLI in
tests/test_faults.py.)"""

import ast
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import ROOT
from dmc.pipeline.cli import main
from dmc.model.dataset import ShardDataset
from dmc.io.shards import open_shard
from dmc.model.training import load_model


class Payload:
    """Unpickling this runs os.mkdir(marker): the marker folder appears iff code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def evil_npy(path: Path, marker: Path) -> Path:
    np.save(path, np.array([Payload(marker), 1], dtype=object), allow_pickle=True)
    assert b"posix" in path.read_bytes() or b"mkdir" in path.read_bytes()   # the payload is really there
    return path


def test_every_load_in_the_package_refuses_pickles():
    """Static check of src/dmc: np.load never allows pickles, torch.load always weights_only=True,
    and no pickle/joblib/yaml.load/pd.read_pickle at all."""
    calls = []
    for file in sorted((ROOT / "src" / "dmc").rglob("*.py")):
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            kw = {k.arg: k.value for k in node.keywords}
            where = f"{file.relative_to(ROOT)}:{node.lineno}: {name}"
            if name in ("np.load", "numpy.load"):
                calls.append(where)
                assert "allow_pickle" not in kw or (isinstance(kw["allow_pickle"], ast.Constant)
                                                    and kw["allow_pickle"].value is False), where
            elif name == "torch.load":
                calls.append(where)
                assert isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True, where
            else:
                assert not re.fullmatch(r"(pickle|cPickle|dill|joblib)\.loads?|pd\.read_pickle|yaml\.load|"
                                        r"yaml\.unsafe_load|torch\.jit\.load", name), where
    assert any("np.load" in c for c in calls) and any("torch.load" in c for c in calls)


def test_pickle_bearing_npy_is_refused(tmp_path):
    marker = tmp_path / "code-ran"
    shard = tmp_path / "decoded" / "shard-00000"
    shard.mkdir(parents=True)
    evil_npy(shard / "frames.npy", marker)
    np.save(shard / "logmel.npy", np.zeros((2, 41, 64), np.float32))
    pd.DataFrame({"video": ["a.mp4", "a.mp4"], "segment": [0, 1], "start_s": [0.0, 2.0], "end_s": [2.0, 4.0],
                  "frame_time_s": [1.0, 3.0]}).to_csv(shard / "segments.csv", index=False)
    pd.DataFrame({"shard": [shard.name] * 2, "row": [0, 1], "video": ["a.mp4"] * 2, "segment": [0, 1]}).to_csv(
        tmp_path / "decoded" / "index.csv", index=False)
    for mmap in (True, False):
        with pytest.raises(ValueError):
            open_shard(shard, mmap=mmap)
    with pytest.raises(ValueError):
        ShardDataset(tmp_path / "decoded")[0]
    # the CLI: features of a pickle-bearing log-mel file
    with pytest.raises(ValueError, match="pickle|Python objects"):
        main(["--params", str(ROOT / "params.yaml"), "extract", "esc50", "--method", "logmel_stats",
              "--logmel", str(evil_npy(tmp_path / "logmel.npy", marker)), "--out", str(tmp_path / "f.npy")])
    assert not marker.exists() and not (tmp_path / "f.npy").exists()
    # (the payload is live: loading it with pickles allowed does run it)
    np.load(tmp_path / "logmel.npy", allow_pickle=True)
    assert marker.is_dir()


def test_checkpoint_with_an_arbitrary_object_is_refused(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "dmc.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "config": {"model": {}, "train": {}}, "step": 1,
                "extra": Payload(marker)}, path)
    with pytest.raises(pickle.UnpicklingError):
        load_model(path)
    from dmc.hear import load_model as hear_load_model

    with pytest.raises(pickle.UnpicklingError):
        hear_load_model(str(path))
    assert not marker.exists()


def smk_constants() -> dict[str, str]:
    """String constants of common.smk: literals, or names taken from dmc.pipeline.graph (its paths)."""
    from dmc.pipeline import graph

    text = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    out = dict(re.findall(r'^([A-Z_]+) = "([^"]*)"$', text, flags=re.M))
    for name, attr in re.findall(r"^([A-Z_]+) = graph\.([A-Z_]+)$", text, flags=re.M):
        value = getattr(graph, attr)
        if isinstance(value, str):
            out[name] = value
    return out


def test_shell_commands_quote_every_file_name():
    """In every rule's shell command: inputs, outputs, logs and params are quoted with :q;
    wildcards are only used where wildcard_constraints restrict them to plain characters;
    other names are constants of common.smk made of plain characters."""
    constants = smk_constants()
    plain = re.compile(r"[\w./-]+")
    checked = 0
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"^(?=rule \w+:)", smk.read_text(), flags=re.M)[1:]:
            rule = block.split(":", 1)[0].split()[1]
            m = re.search(r"^    shell:\n((?:        .*\n?)+)", block, flags=re.M)
            if not m:
                continue
            shell = m.group(1)
            constraints = dict(re.findall(r"^        (\w+)=r?[\"']([^\"']*)[\"'],?$", block, flags=re.M))
            constraints |= {k: "|".join(["esc50", "dcase", "dmc", "random_init", "logmel_stats"])
                            for k in re.findall(r'^        (\w+)="\|"\.join\(', block, flags=re.M)}
            for name, quoted in re.findall(r"(?<!\{)\{([A-Za-z_][\w.]*)(:q)?\}(?!\})", shell):
                where = f"{smk.name}: rule {rule}: {{{name}}}"
                head = name.split(".")[0]
                if head in ("input", "output", "log", "params"):
                    assert quoted, f"{where} must be {{{name}:q}}"
                elif head == "wildcards":
                    pattern = constraints.get(name.split(".")[1])
                    assert pattern and re.fullmatch(r"[\w|\\{}\[\]-]+", pattern), \
                        f"{where}: no wildcard_constraints restricting it to plain characters"
                else:
                    assert quoted or plain.fullmatch(constants.get(name, "")), f"{where}: quote it"
                checked += 1
    assert checked >= 10
