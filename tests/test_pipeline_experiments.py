"""Seeds / ablation sweeps: the grid, the dvc commands, and the aggregation of dvc.api.exp_show()'s rows."""

import copy
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dmc.pipeline.experiments import (PENDING, SweepError, aggregate, collect, configs, experiment_rows, match_config,
                                     plan, queue_command, run_command, sweep_seeds)
from dmc.pipeline.params import ParamsError, validate_params

DATA = Path(__file__).parent / "data"


def test_plan_is_the_default_then_one_key_at_a_time(params):
    validate_params(params, sweeps=True)     # the committed grid is valid
    runs = plan(params, "ablation")
    grid = params["sweeps"]["ablation"]
    seeds = sweep_seeds(params, "ablation")
    # each key contributes its values except the default's own, each under every ablation seed
    extra = sum(len([v for v in vals if v != _get(params, k)]) for k, vals in grid.items())
    assert len(runs) == (1 + extra) * len(seeds)
    assert [r.config for r in runs[:len(seeds)]] == ["default"] * len(seeds)
    assert all(len(r.overrides) <= 1 for r in runs)
    assert [r.seed for r in plan(params, "seeds")] == params["sweeps"]["seeds"]
    # runs already finished are not planned again; without ablation_seeds the ablation uses seeds
    done = {("default", s) for s in seeds}
    assert plan(params, "ablation", done) == runs[len(seeds):]
    p = copy.deepcopy(params)
    p["sweeps"].pop("ablation_seeds", None)
    assert sweep_seeds(p, "ablation") == p["sweeps"]["seeds"]
    p = copy.deepcopy(params)
    p["train"]["temperature"] = 1.0
    labels = [label for label, _ in configs(p, "ablation")]
    assert "train.temperature=10.0" in labels and "train.temperature=1.0" not in labels   # 1.0 is the default here


def _get(p, dotted):
    for k in dotted.split("."):
        p = p[k]
    return p


def test_queue_command_sets_the_seed_and_one_key(params):
    p = copy.deepcopy(params)
    p["sweeps"]["ablation"] = {"decode.frame_size": [32, 64]}
    run = [r for r in plan(p, "ablation") if r.config == "decode.frame_size=32"][1]
    assert queue_command(run) == ["dvc", "exp", "run", "--queue", "-S", f"seed={run.seed}",
                                  "-S", "decode.frame_size=32"]
    assert run_command(2) == ["dvc", "exp", "run", "--run-all", "--jobs", "2"]


@pytest.mark.parametrize("key,values,message", [
    ("train.temprature", [1.0], r"sweeps\.ablation\.train\.temprature: not a key"),
    ("train", [1], r"sweeps\.ablation\.train: names a section"),
    ("train.clusters", [4, 200], r"sweeps\.ablation\.train\.clusters: value 200 is invalid: train\.clusters"),
    ("decode.frame_size", [8], r"sweeps\.ablation\.decode\.frame_size: value 8 is invalid"),
])
def test_bad_grid_is_refused_naming_the_key(params, key, values, message):
    bad = copy.deepcopy(params)
    bad["sweeps"]["ablation"][key] = values
    validate_params(bad)                     # the pipeline steps do not need the grid
    with pytest.raises(ParamsError, match=message):
        validate_params(bad, sweeps=True)


def test_match_config_by_params(params):
    base = {"seed": 0, "train.temperature": 1.0, "train.clusters": 10, "sweeps.seeds": [0]}
    assert match_config({**base, "seed": 2}, base, params, "ablation") == "default"
    assert match_config({**base, "train.temperature": 10.0}, base, params, "ablation") == "train.temperature=10.0"
    assert match_config({**base, "train.temperature": 10.0}, base, params, "seeds") is None
    assert match_config({**base, "train.temperature": 7.0}, base, params, "ablation") is None     # not in the grid
    assert match_config({**base, "train.temperature": 10.0, "train.clusters": 4}, base, params, "ablation") is None
    # exp_show's cells: booleans read back as bools, numbers as floats; a label is the grid's value
    grid = params["sweeps"]["ablation"]
    assert False in grid["synth.variants"] and 32 in grid["decode.frame_size"]
    assert match_config({**base, "synth.variants": True}, {**base, "synth.variants": False}, params,
                        "ablation") == "synth.variants=true"
    assert match_config({**base, "decode.frame_size": 32.0}, {**base, "decode.frame_size": 64.0}, params,
                        "ablation") == "decode.frame_size=32"


# ---- rows of dvc.api.exp_show(), built by hand as the recorded sample has them -------------------
# (tests/data/dvc_exp_show_sample.json): one flat dict per row, params and metrics by dotted name,
# numbers as floats, booleans as "True"/"False", lists as their str(); the workspace, the baseline
# commit, then its experiments newest first (queued ones last).

def flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        out.update(flat(v, key) if isinstance(v, dict) else {key: v})
    return out


def cell(v):
    return str(v) if isinstance(v, (bool, list)) else float(v) if isinstance(v, (int, float)) else v


def exp(rev, params, metrics, state=None, typ="branch_commit", name=None):
    return {"Experiment": name or rev, "rev": rev, "typ": typ, "Created": "01:00 PM", "parent": None,
            "State": state, "Executor": None if state is None else "Dvc-task",
            **{k: cell(v) for k, v in flat(params).items()}, **metrics}


def show_doc(base_params, experiments):
    """workspace, baseline, then ``experiments`` (give them newest first)"""
    base = exp("main", base_params, {}, typ="baseline", name=None)
    base["Experiment"] = None
    return [dict(base, rev="workspace", Created=None), base, *experiments]


def variant(params, seed, **dotted):
    p = copy.deepcopy(params)
    p["seed"] = seed
    for k, v in dotted.items():
        sec, key = k.split("__")
        p[sec][key] = v
    return p


def m(dmc, rnd, extra=None):
    return {"esc50.dmc.acc_mean": dmc, "esc50.random_init.acc_mean": rnd, "other.metric": 1.0, **(extra or {})}


def test_aggregate_hand_computed(params, tmp_path):
    p = copy.deepcopy(params)
    p["train"]["temperature"] = 1.0
    p["sweeps"]["ablation"] = {"train.temperature": [1.0, 10.0, 30.0]}
    p["sweeps"]["seeds"] = [0, 1, 2]
    p["sweeps"].pop("ablation_seeds", None)
    p["sweeps"]["metrics"] = ["esc50.dmc.acc_mean", "esc50.random_init.acc_mean", "localization.dmc.auc"]
    exps = [   # newest first, as exp_show lists them; queued ones last
        exp("r2", variant(p, 2), m(0.85, 0.65)),                 # the rerun of r2old: the newest counts
        exp("s9", variant(p, 9), m(0.99, 0.1)),                  # seed not in the sweep
        exp("x", variant(p, 0, train__lr=0.5), m(0.99, 0.1)),    # not in the grid
        exp("f", variant(p, 2, train__temperature=30.0), m(0.0, 0.0), state="Failed"),
        exp("t1", variant(p, 1, train__temperature=10.0), m(0.70, 0.75)),
        exp("t0", variant(p, 0, train__temperature=10.0), m(0.60, 0.70)),
        exp("r2old", variant(p, 2), m(0.10, 0.10)),
        exp("r1", variant(p, 1), m(0.90, 0.75)),
        exp("r0", variant(p, 0), m(0.80, 0.70)),
        exp("q", variant(p, 1, train__temperature=30.0), {}, state="Queued", typ="branch_base"),
    ]
    doc = json.loads(json.dumps(show_doc(p, exps)))
    runs = collect(doc, p, "ablation")
    assert list(runs.rev) == ["r0", "r1", "t0", "t1", "r2"]      # oldest first
    # what `dmc sweep --queue` does not queue again: finished, queued or running (not failed)
    known = collect(doc, p, "ablation", states=PENDING)
    assert set(zip(known.config, known.seed)) == {("default", 0), ("default", 1), ("default", 2),
                                                  ("train.temperature=10.0", 0), ("train.temperature=10.0", 1),
                                                  ("train.temperature=30.0", 1)}
    todo = plan(p, "ablation", set(zip(known.config, known.seed)))
    assert [(r.config, r.seed) for r in todo] == [("train.temperature=10.0", 2), ("train.temperature=30.0", 0),
                                                  ("train.temperature=30.0", 2)]

    table = aggregate(doc, p, "ablation", tmp_path).set_index("config")
    assert list(table.index) == ["default", "train.temperature=10.0"]
    d = table.loc["default"]
    assert d.n == 3 and d.seeds == "0 1 2"
    assert d["esc50.dmc.acc_mean.mean"] == pytest.approx(0.85)
    assert d["esc50.dmc.acc_mean.std"] == pytest.approx(0.05)                    # sample std of .80 .90 .85
    deltas = [0.10, 0.15, 0.20]
    assert d["esc50.dmc-random_init.acc_mean.mean"] == pytest.approx(0.15)
    assert d["esc50.dmc-random_init.acc_mean.std"] == pytest.approx(pd.Series(deltas).std())
    t = table.loc["train.temperature=10.0"]
    assert t.n == 2 and t["esc50.dmc.acc_mean.mean"] == pytest.approx(0.65)
    assert t["esc50.dmc.acc_mean.std"] == pytest.approx(math.sqrt(2 * 0.05 ** 2))
    assert "localization.dmc.auc.mean" not in table.columns and "other.metric.mean" not in table.columns
    md = (tmp_path / "ablation.md").read_text()
    assert "| `default` | 3 (0 1 2) | 0.850 ± 0.050 | 0.150 ± 0.050 |" in md
    assert len(pd.read_csv(tmp_path / "ablation_runs.csv")) == 5

    seeds = aggregate(doc, p, "seeds", tmp_path)
    assert list(seeds.config) == ["default"] and (tmp_path / "seeds.md").exists()


def test_aggregate_refuses_when_nothing_finished(params, tmp_path):
    doc = show_doc(params, [exp("q", variant(params, 1), {}, state="Queued", typ="branch_base")])
    with pytest.raises(SweepError, match="no finished experiment of the seeds sweep"):
        aggregate(doc, params, "seeds", tmp_path)


def test_cli_refuses_a_bad_grid_before_queueing(params, tmp_path):
    bad = copy.deepcopy(params)
    bad["sweeps"]["ablation"]["train.iterations"] = [3, 0]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(bad))
    proc = subprocess.run([sys.executable, "-m", "dmc.pipeline.cli", "--params", str(path), "sweep", "ablation", "--queue"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "dvc" not in proc.stderr
    assert proc.stderr.strip() == (f"dmc: invalid parameters: {path}: sweeps.ablation.train.iterations: "
                                   "value 0 is invalid: train.iterations: 0 is less than the minimum of 1")


def _with_defaults(recorded: dict, default: dict | None = None) -> dict:
    """``recorded`` with every key of the default params it lacks (nested), its own values kept."""
    from conftest import load_default_params

    out = copy.deepcopy(load_default_params() if default is None else default)
    for key, value in recorded.items():
        out[key] = _with_defaults(value, out[key]) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def test_real_dvc_exp_show_sample(tmp_path):
    """The reader on rows recorded from the installed dvc (tests/data/make_exp_show_sample.py: two
    seeds of a tiny project at the default and at temperature=10, seed 1 at the default run again
    with a changed stage (+0.1), seed 2 at temperature=10 run from the queue, seed 2 at the default
    queued, not run)."""
    sample = json.loads((DATA / "dvc_exp_show_sample.json").read_text())
    p, rows = sample["params"], sample["rows"]
    base, exps = experiment_rows(rows, p)
    assert base["synth.variants"] is False and base["data.ground_truth"] == p["data"]["ground_truth"]
    assert len(exps) == 6 and all(e["params"]["synth.variants"] is False for e in exps)
    table = aggregate(rows, p, "ablation", tmp_path).set_index("config")
    assert list(table.index) == ["default", "train.temperature=10.0"]
    assert table.loc["default"].n == 2            # seed 1's newer run (0.911) replaces the older (0.811)
    assert table.loc["default", "esc50.dmc.acc_mean.mean"] == pytest.approx((0.801 + 0.911) / 2)
    assert table.loc["train.temperature=10.0"].n == 3     # seed 2 ran from the queue
    assert table.loc["train.temperature=10.0", "esc50.dmc.acc_mean.mean"] == pytest.approx((0.81 + 0.82 + 0.83) / 3)
    known = collect(rows, p, "ablation", states=PENDING)      # the queued run is not queued again
    assert ("default", 2) in set(zip(known.config, known.seed))


def test_rows_that_are_not_exp_show_rows_are_refused(params):
    with pytest.raises(SweepError, match=r"not the rows of dvc.api.exp_show\(\)"):
        collect([{"rev": "workspace", "data": {}}], params, "seeds")      # `dvc exp show --json` of dvc 3.x


FAKE_STAGE = '''import json, yaml
p = yaml.safe_load(open("params.yaml"))
s, z = p["seed"], p["train"]["temperature"]
json.dump({"esc50.dmc.acc_mean": 0.8 + 0.01 * s + 0.001 * z, "esc50.random_init.acc_mean": 0.7 + 0.02 * s},
          open("metrics.json", "w"))
'''


@pytest.mark.slow
def test_two_tiny_experiments_end_to_end(params, tmp_path):
    """`dmc sweep seeds` in a tiny git + DVC project: queues and runs two real experiments."""
    if shutil.which("dvc") is None:
        pytest.fail("dvc is not on PATH (it is a dependency of the project)")
    p = copy.deepcopy(params)
    p["train"]["temperature"] = 1.0
    p["sweeps"]["seeds"] = [0, 1]
    p["sweeps"]["ablation"] = {"train.temperature": [1.0, 10.0]}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    (tmp_path / "metrics.py").write_text(FAKE_STAGE)
    (tmp_path / "dvc.yaml").write_text(
        f"stages:\n  fake:\n    cmd: {sys.executable} metrics.py\n    deps: [metrics.py]\n"
        "    params: [seed, train.temperature]\n    metrics:\n      - metrics.json:\n          cache: false\n")

    def run(*cmd):
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc

    run("git", "init", "-q")
    run("dvc", "init", "-q")
    run("git", "add", "-A")
    run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tiny project")
    run(sys.executable, "-m", "dmc.pipeline.cli", "sweep", "seeds")
    table = pd.read_csv(tmp_path / "results/tables/seeds.csv")
    assert list(table.config) == ["default"] and table.n[0] == 2
    assert table["esc50.dmc.acc_mean.mean"][0] == pytest.approx(0.806, abs=1e-4)
    assert table["esc50.dmc.acc_mean.std"][0] == pytest.approx(math.sqrt(2) * 0.005, abs=1e-4)   # csv: 4 decimals
    assert table["esc50.dmc-random_init.acc_mean.mean"][0] == pytest.approx(0.096, abs=1e-4)
    assert "| `default` | 2 (0 1) | 0.806 ± 0.007 |" in (tmp_path / "results/tables/seeds.md").read_text()


def test_control_sweep_plans_and_matches_several_keys(params):
    """`dmc sweep control`: the default and sweeps.control (several keys at once) under every seed;
    an experiment is the control only when it changes exactly those keys to those values."""
    validate_params(params, sweeps=True)
    control = params["sweeps"]["control"]
    assert len(control) >= 2
    runs = plan(params, "control")
    seeds = sweep_seeds(params, "control")
    assert [r.config for r in runs] == ["default"] * len(seeds) + ["control"] * len(seeds)
    assert all(r.overrides == control for r in runs[len(seeds):])
    assert queue_command(runs[-1])[-4:] == ["-S", "synth.control=\"no_objects\"", "-S", "data.ground_truth=null"]
    base = {"seed": 0, "synth.control": "none", "data.ground_truth": "data/synth/ground_truth", "train.epochs": 15}
    assert match_config({**base, **control, "seed": 1}, base, params, "control") == "control"
    assert match_config({**base, "synth.control": "no_objects"}, base, params, "control") is None
    assert match_config({**base, **control, "train.epochs": 30}, base, params, "control") is None
    assert match_config({**base, "seed": 2}, base, params, "control") == "default"


def test_structure_sweep_is_a_one_key_grid_of_its_own(params):
    """`dmc sweep structure`: the default, then each value of sweeps.structure away from it (the
    clustering's squash placement and first centers), under the ablation seeds; its experiments
    are told apart from the ablation's by the grid they come from, and a bad value is refused
    naming the key."""
    validate_params(params, sweeps=True)
    grid = params["sweeps"]["structure"]
    assert set(grid) == {"train.squash", "train.cluster_init"}
    runs = plan(params, "structure")
    seeds = sweep_seeds(params, "structure")
    labels = [label for label, _ in configs(params, "structure")]
    assert labels[0] == "default" and set(labels[1:]) == {
        f"{k}={v}" for k, vals in grid.items() for v in vals if v != _get(params, k)}
    assert len(runs) == len(labels) * len(seeds) and all(len(r.overrides) <= 1 for r in runs)
    base = {"seed": 0, "train.squash": "both", "train.cluster_init": "uniform", "train.temperature": 10.0}
    assert match_config({**base, "train.cluster_init": "spread"}, base, params, "structure") == "train.cluster_init=spread"
    assert match_config({**base, "train.cluster_init": "spread"}, base, params, "ablation") is None
    assert match_config({**base, "train.temperature": 30.0}, base, params, "structure") is None
    bad = copy.deepcopy(params)
    bad["sweeps"]["structure"]["train.squash"] = ["both", "twice"]
    with pytest.raises(ParamsError, match=r"sweeps\.structure\.train\.squash: value 'twice' is invalid"):
        validate_params(bad, sweeps=True)


# ---- results that say what they are: studies in results/studies/<name>/, each .md with its header ---
STUDIES = Path(__file__).resolve().parents[1] / "results" / "studies"


def test_a_sweep_writes_its_study_folder_with_a_header_and_the_seeds_table_beside_the_run(tmp_path, monkeypatch):
    from dmc.pipeline.cli import main

    sample = json.loads((DATA / "dvc_exp_show_sample.json").read_text())
    # the recorded project's params, completed with keys added to the schema since it was recorded
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(_with_defaults(sample["params"]), sort_keys=False))
    (tmp_path / "rows.json").write_text(json.dumps(sample["rows"]))
    monkeypatch.chdir(tmp_path)            # not a git checkout: the header says so
    assert main(["sweep", "ablation", "--aggregate", "--rows-json", "rows.json"]) == 0
    md = (tmp_path / "results/studies/ablation/ablation.md").read_text().splitlines()
    assert md[0].startswith("> **Study `ablation`**: what moves when one key at a time leaves the default")
    assert "**Made at**: no git commit (its params.yaml" in md[0] and "**Command**: `dmc sweep ablation --rows-json rows.json`" in md[0]
    assert md[1] == "" and md[2].startswith("<!-- dmc sweep ablation")
    assert main(["sweep", "seeds", "--aggregate", "--rows-json", "rows.json"]) == 0
    assert (tmp_path / "results/tables/seeds.md").read_text().startswith("<!-- dmc sweep seeds")    # no study


def test_the_header_names_the_commit():
    from dmc.pipeline.provenance import git_commit, header

    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=STUDIES, capture_output=True, text=True).stdout.strip()
    assert git_commit(STUDIES).startswith(f"commit {sha}")
    assert header("x", "why?", "commit abc", "dmc sweep x", "2026-01-02") == \
        "> **Study `x`**: why? **Made at**: commit abc. **Command**: `dmc sweep x`. **Date**: 2026-01-02."


def test_every_committed_study_says_what_it_is_and_is_in_the_index():
    folders = sorted(p.name for p in STUDIES.iterdir() if p.is_dir())
    assert folders, "no studies under results/studies"
    index = (STUDIES / "README.md").read_text()
    for name in folders:
        assert f"| `{name}` |" in index, f"results/studies/README.md does not list {name}"
        for md in sorted((STUDIES / name).glob("*.md")):
            first = md.read_text().splitlines()[0]
            assert first.startswith(f"> **Study `{name}`**: "), f"{md}: no header line"
            assert all(f"**{k}**: " in first for k in ("Made at", "Command", "Date")), f"{md}: {first}"
    assert not [p for p in (STUDIES.parent / "tables").glob("*") if p.is_dir()], "a study folder left in results/tables"


def test_the_header_tells_code_changes_from_result_files(tmp_path):
    """A study made while only result files differ from the commit says so; a change to the code
    (anything outside results/ and benchmarks/results/) says "with uncommitted changes"."""
    from dmc.pipeline.provenance import git_commit

    def git(*a):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "core.hooksPath=/dev/null", *a],
                       cwd=tmp_path, check=True, capture_output=True)
    (tmp_path / "results").mkdir()
    (tmp_path / "results/table.md").write_text("a\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "one")
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    assert git_commit(tmp_path) == f"commit {sha}"
    (tmp_path / "results/table.md").write_text("b\n")
    assert git_commit(tmp_path) == f"commit {sha}, with uncommitted result files only"
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_commit(tmp_path) == f"commit {sha}, with uncommitted changes"


def test_one_code_check_for_compare_and_the_headline(tmp_path):
    """dmc.pipeline.provenance.same_code: a stage counts as run by this code only when every dependency
    that counts has the given MD5 (a checkout's file or a commit's), and never when none counts."""
    from dmc.pipeline.provenance import file_md5_at, same_code

    deps = [{"path": "src/a.py", "md5": "1"}, {"path": "data/x", "md5": "9"}]
    src = lambda p: p.startswith("src/")            # noqa: E731
    assert same_code(deps, {"src/a.py": "1"}.get, src)
    assert not same_code(deps, {"src/a.py": "2"}.get, src)
    assert not same_code([{"path": "data/x", "md5": "9"}], {}.get, src)       # nothing counts: not the same
    assert not same_code(deps, {"src/a.py": "1"}.get)                      # everything counts: data/x differs

    def git(*a):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "core.hooksPath=/dev/null",
                               *a], cwd=tmp_path, check=True, capture_output=True, text=True).stdout.strip()
    (tmp_path / "a.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "one")
    import hashlib
    sha = git("rev-parse", "HEAD")
    assert file_md5_at(sha, "a.py", tmp_path) == hashlib.md5(b"x = 1\n").hexdigest()
    assert file_md5_at(sha, "missing.py", tmp_path) is None
