"""The pipeline graph, written once (src/dmc/pipeline/graph.py): dvc.yaml is generated from it, each
stage lists the code its step really imports and exactly the params keys its step reads.

The drift tests run the Snakemake rules' own `dmc` commands on a tiny corpus through a
recording `dmc` (tests/step_recorder.py) and compare what each step imported and read with
what its DVC stage lists."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, load_default_params, with_overrides, write_params
from dmc.pipeline import graph
from dmc.pipeline.cli import main
from step_recorder import install_shim

BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"


def sh(cmd, cwd, env, timeout=1800):
    proc = subprocess.run(cmd, cwd=cwd, env=env, shell=True, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def stages_on_disk() -> dict:
    """dvc.yaml's stages, foreach ones by their `do` body."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: st.get("do", st) for name, st in stages.items()}


# -- generated, not hand-written ----------------------------------------------------------------
def test_dvc_yaml_is_the_one_generated_from_the_table():
    assert main(["--params", str(ROOT / "params.yaml"), "dvc-yaml", "--file", str(ROOT / "dvc.yaml")]) == 0
    assert [s.name for s in graph.STEPS] == list(stages_on_disk())


def test_dvc_yaml_check_fails_on_a_hand_edit(tmp_path):
    edited = tmp_path / "dvc.yaml"
    edited.write_text((ROOT / "dvc.yaml").read_text().replace("    - src/dmc/model/training.py\n", "", 1))
    with pytest.raises(SystemExit) as exc:
        main(["--params", str(ROOT / "params.yaml"), "dvc-yaml", "--file", str(edited)])
    assert "differs from the pipeline table" in str(exc.value.code)
    assert main(["--params", str(ROOT / "params.yaml"), "dvc-yaml", "--write", "--file", str(edited)]) == 0
    assert edited.read_text() == (ROOT / "dvc.yaml").read_text()


def test_code_deps_follow_imports_inside_functions():
    # the examples of drift: modules a step runs that the hand-written lists missed
    assert {"src/dmc/io/decoding.py", "src/dmc/evaluation/protocols.py"} <= set(graph.code_deps("evalset"))
    assert {"src/dmc/model/training.py", "src/dmc/io/shards.py"} <= set(graph.code_deps("localize"))
    assert {"src/dmc/pipeline/steps/synth.py", "src/dmc/pipeline/params.py"} <= set(graph.code_deps("synth"))
    # and not more than the step's own subcommands import
    assert "src/dmc/model/training.py" not in graph.code_deps("decode")
    assert "src/dmc/evaluation/reporting.py" not in graph.code_deps("train")


# a step on other data (synth_test, decode_test) runs the entry module of the step it repeats
ENTRIES = {s.name: f"src/dmc/pipeline/steps/{s.module or s.name}.py" for s in graph.STEPS}


def test_a_stage_lists_its_own_entry_module_and_no_other_nor_cli():
    """cli.py only assembles the steps' entry modules: no stage lists it, nor another step's entry
    module, so editing one step's handler leaves the other stages current."""
    for s in graph.STEPS:
        deps = set(graph.code_deps(s.name))
        assert "src/dmc/pipeline/cli.py" not in deps and "src/dmc/pipeline/tools.py" not in deps
        assert {e for e in ENTRIES.values() if e in deps} == {ENTRIES[s.name]}, s.name


def test_each_steps_subcommands_come_from_its_entry_module():
    import argparse
    import importlib

    for s in graph.STEPS:
        sub = argparse.ArgumentParser().add_subparsers(dest="command")
        importlib.import_module(s.entry).add_parsers(sub)
        # a step on other data runs some of the subcommands of the step it repeats
        assert (set(sub.choices) >= set(s.commands)) if s.module else (set(sub.choices) == set(s.commands)), s.name
        assert all(c.get_default("func").__module__ == s.entry for c in sub.choices.values())


def test_editing_one_steps_handler_leaves_the_other_stages_current(tmp_path):
    """A real `dvc status`: a repository with the package and one stage per step whose deps are the
    generated code deps (no data, a command that does nothing); after `dvc repro`, an edit of the
    decode step's entry module makes the decode stage stale and leaves the others current."""
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    stages = {s.name: {"cmd": "true", "deps": graph.code_deps(s.name)} for s in graph.STEPS}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", DVC_NO_ANALYTICS="1")
    sh("dvc init --no-scm -q && dvc repro -q", tmp_path, env)

    def stale():
        proc = subprocess.run(["dvc", "status", "--json"], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        return set(json.loads(proc.stdout))

    assert stale() == set()
    entry = tmp_path / ENTRIES["decode"]
    entry.write_text(entry.read_text().replace("decode summary:", "decode totals:"))
    assert stale() == {"decode", "decode_test", "decode_multi"}   # decode_test, _multi run the decode step's code
    (tmp_path / "src/dmc/io/ground_truth.py").write_text("# an edit of a module only the scoring steps import\n")
    # benchmark runs the localize step's entry module; benchmark_layout reads the test corpus's boxes
    assert stale() == {"decode", "decode_test", "decode_multi", "localize", "heldout", "heldout_multi", "benchmark",
                       "benchmark_layout"}


def test_every_key_of_the_table_exists_and_rules_get_their_params():
    p = load_default_params()
    for s in graph.STEPS:
        for key in (*s.params, *s.ignored):
            graph.lookup(p, key)                      # KeyError names a key that does not exist
        assert set(graph.params_of(s.name, p)) == set(s.params)
        assert not set(s.params) & set(s.ignored)


# -- what the steps really import and read -----------------------------------------------------------
@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Records of every `dmc` command the rules ran: with ground truth (the synthetic corpus), then
    the localize step again without (a real corpus)."""
    d = tmp_path_factory.mktemp("graph")
    for name in ("Snakefile", "dvc.yaml"):
        shutil.copy(ROOT / name, d / name)
    for name in ("workflow", "src"):
        shutil.copytree(ROOT / name, d / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    p = with_overrides(load_default_params(), synth__size="tiny", synth__videos=64, synth__video_seconds=4.0, synth__dcase_seconds=10.0,
                       synth__esc50_classes=8, synth__test_videos=24, synth__multi_videos=24, decode__num_shards=2, train__epochs=1,
                       train__batch_size=8, evaluate__C_grid=[1.0], localize__clips_for_overlays=1,
                       train__device="cpu", features__device="cpu", localize__device="cpu")
    write_params(d / "params.yaml", p)
    install_shim(d / "shim")
    record = d / "record.jsonl"
    env = dict(os.environ, PATH=f"{d / 'shim'}:{BIN}:{os.environ['PATH']}", DMC_RECORD=str(record))
    sh("snakemake --cores 2", d, env)
    write_params(d / "params.yaml", with_overrides(p, data__ground_truth=None))
    sh("snakemake --cores 2 localize", d, env)
    runs = [json.loads(line) for line in record.read_text().splitlines()]
    assert all(r["exit"] == 0 for r in runs)
    return runs


def step_of(record: dict) -> graph.Step:
    """The step a recorded run belongs to: by its subcommand; where several steps share it (decode
    and decode_test, synth and synth_test), the one whose output path the command line names
    (the longest such path)."""
    steps = [s for s in graph.STEPS if record["command"] in s.commands]
    if len(steps) == 1:
        return steps[0]
    line = " ".join(record["argv"])
    named = [(max((len(o.path) for o in s.outs if o.path in line), default=0), s) for s in steps]
    return max(named, key=lambda x: x[0])[1]


def test_step_of_tells_shared_subcommands_apart():
    rec = lambda *argv: {"command": argv[0], "argv": list(argv)}   # noqa: E731
    assert step_of(rec("decode", "--shard", "1", "--out", "data/decoded/shard-00001")).name == "decode"
    assert step_of(rec("decode", "--videos", "data/synth_test/videos", "--out-dir", "data/decoded_test")).name == "decode_test"
    assert step_of(rec("synth", "esc50", "--out", "data/synth/esc50")).name == "synth"
    assert step_of(rec("synth", "test", "--out", "data/synth_test/videos")).name == "synth_test"
    assert step_of(rec("synth", "multi", "--out", "data/synth_multi/videos", "--stems", "data/synth_multi/stems")
                   ).name == "synth_multi"
    assert step_of(rec("decode", "--videos", "data/synth_multi/videos", "--out-dir", "data/decoded_multi")
                   ).name == "decode_multi"
    assert step_of(rec("train")).name == "train"


@pytest.mark.slow
def test_every_step_ran_and_localize_ran_without_ground_truth(recorded):
    assert {r["command"] for r in recorded} == {c for s in graph.STEPS for c in s.commands}
    assert {step_of(r).name for r in recorded} == {s.name for s in graph.STEPS}
    localize = [r for r in recorded if step_of(r).name == "localize"]   # not the benchmark step's `dmc localize`
    assert len(localize) == 2 and "synth.width" not in localize[1]["keys"] and "data.ground_truth" in localize[1]["keys"]


@pytest.mark.slow
def test_each_stage_lists_every_module_its_step_imports(recorded):
    stages = stages_on_disk()
    for r in recorded:
        name = step_of(r).name
        listed = {d for d in stages[name]["deps"] if d.startswith("src/")}
        imported, dispatch = ({m[m.rindex("/src/dmc/") + 1:] for m in r[k] if "/src/dmc/" in m}
                              for k in ("modules", "dispatch"))
        # cli.py imports every step's entry module to build its parser: only this step's one runs
        assert dispatch <= DISPATCH | set(ENTRIES.values()), f"the CLI imports {sorted(dispatch - DISPATCH)} " \
                                                             "to parse argv"
        ran = (imported - dispatch) | {ENTRIES[name]}
        assert ran <= listed, f"stage {name} (dmc {r['command']}) imports {sorted(ran - listed)}, " \
                              "which its deps in dvc.yaml do not list"


# what the CLI imports before a step runs, besides the entry modules: light, and read by no step
# (params.py and what it imports are every stage's deps)
DISPATCH = {f"src/dmc/{m}.py" for m in ("__init__", "errors", "names", "config", "pipeline/__init__", "pipeline/cli",
                                        "pipeline/tools", "pipeline/params", "pipeline/steps/__init__")}


def covers(key: str, listed) -> bool:
    return any(key == k or key.startswith(k + ".") for k in listed)


def leaves(params: dict, key: str) -> list[str]:
    """The dotted leaf keys under ``key`` (the key itself when its value is not a mapping)."""
    value = graph.lookup(params, key)
    if not isinstance(value, dict):
        return [key]
    return [leaf for k in value for leaf in leaves(params, f"{key}.{k}")]


@pytest.mark.slow
def test_each_stage_lists_exactly_the_params_keys_its_step_reads(recorded):
    p = load_default_params()
    read = {}
    for r in recorded:
        read.setdefault(step_of(r).name, set()).update(r["keys"])
    for s in graph.STEPS:
        keys = read[s.name]
        unlisted = sorted(k for k in keys if not covers(k, (*s.params, *s.ignored)))
        assert not unlisted, f"step {s.name} reads {unlisted}, which graph.STEPS does not list for it"
        # a listed section counts only when the step reads all of it
        unread = sorted(leaf for k in (*s.params, *s.ignored) for leaf in leaves(p, k) if leaf not in keys)
        assert not unread, f"step {s.name} lists {unread} but never reads them (needless reruns)"


def test_shared_names_match_the_package():
    from dmc.evaluation.reporting import METHODS

    assert tuple(METHODS) == graph.METHODS
    assert set(graph.EVALSETS) <= set(load_default_params()["data"])
