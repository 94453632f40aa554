"""`dmc compare`: the table and verdicts on made-up per-clip files, bad input refused before any
work, and the reuse of done runs (a tiny git repository; the slow test: real DVC experiments)."""

import copy
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dmc.errors import ParamsError
from dmc.pipeline import compare as C
from dmc.pipeline import comparison as T
from dmc.pipeline.comparison import CHANGE, DEFAULT, RunFiles

VIDEOS = [f"v{i}.mp4" for i in range(4)]


def made_up_run(seed: int, change: bool) -> RunFiles:
    """Per-clip files of one run. Pointing: the default misses every pair, the change hits every
    pair. cIoU: 0 (default) / 0.92 (change). Counting: the same predictions in both. ESC-like: the
    default right on every clip, the change on none. DCASE-like: scene a has 3 test recordings,
    scene b 1; the default is right on a's three and wrong on b (mean scene accuracy (1 + 0) / 2 =
    0.5, plain accuracy 3/4), the change right on all four (1.0)."""
    pairs = pd.DataFrame({"video": [v for v in VIDEOS for _ in range(2)], "segment": [0, 1] * 4,
                          "dmc_ciou": 0.92 if change else 0.0, "dmc_pointing": int(change)})
    clips = pd.DataFrame({"video": VIDEOS, "n_sources": [1, 2, 3, 1], "pred_dmc": [1, 2, 1, 2]})
    esc = pd.DataFrame({"clip": range(5), "fold": [1, 2, 3, 4, 5], "target": [0, 1, 2, 3, 4],
                        "pred_dmc": [9] * 5 if change else [0, 1, 2, 3, 4]})
    dcase = pd.DataFrame({"recording": ["a1", "a2", "a3", "b1"], "scene": ["a", "a", "a", "b"],
                          "pred_dmc": ["a", "a", "a", "b" if change else "a"]})
    return RunFiles(pairs, clips, esc, dcase, {"dcase.dmc.scene_acc_mean": 1.0 if change else 0.5 + 0.1 * seed})


@pytest.fixture
def runs():
    return {(c, s): made_up_run(s, c == CHANGE) for c in (DEFAULT, CHANGE) for s in (0, 1, 2)}


def test_differences_and_verdicts_by_hand(runs):
    t = T.differences(runs, replicates=500).set_index("metric")
    assert list(t.index) == ["esc_acc", "dcase_scene_acc", "pointing", "ciou50", "auc", "count_acc"]
    assert (t.n_seeds == 3).all() and (t.seeds == "0 1 2").all()
    # pointing and cIoU@0.5: 0 -> 1 on every pair of every seed: every replicate is +1
    for m in ("pointing", "ciou50"):
        r = t.loc[m]
        assert (r.default, r.change, r["diff"], r.lo, r.hi) == (0.0, 1.0, 1.0, 1.0, 1.0)
        assert (r.seeds_higher, r.seeds_lower, r.verdict) == (3, 0, "higher")
    # AUC over the 21 thresholds 0, 0.05 .. 1 (trapezoids: 0.025 at the ends, 0.05 inside): cIoU 0.92
    # passes 0 .. 0.9 (0.025 + 18 x 0.05 = 0.925), cIoU 0 passes 0 only (0.025): +0.9
    assert t.loc["auc", "diff"] == pytest.approx(0.9) and t.loc["auc", "lo"] == pytest.approx(0.9)
    # counting: the same predictions: 2 of 4 right in both, every replicate 0
    r = t.loc["count_acc"]
    assert (r.default, r.change, r["diff"], r.lo, r.hi) == (0.5, 0.5, 0.0, 0.0, 0.0)
    assert (r.seeds_higher, r.seeds_lower, r.verdict) == (0, 0, "no difference resolved at 3 seeds")
    r = t.loc["esc_acc"]
    assert (r["diff"], r.lo, r.hi, r.seeds_lower, r.verdict) == (-1.0, -1.0, -1.0, 3, "lower")
    # DCASE-like: the mean of the scenes' accuracies, not the plain accuracy over recordings
    r = t.loc["dcase_scene_acc"]
    assert (r.default, r.change, r["diff"]) == (0.5, 1.0, 0.5)
    assert r.resampled == "seeds, then recordings" and t.loc["pointing", "resampled"] == "seeds, then clips"
    assert t.loc["pointing", "per_seed"] == "+1.0000 +1.0000 +1.0000"


def test_a_run_without_the_per_recording_file_is_resampled_at_the_seed_level(runs):
    """The DCASE-like row falls back to each run's flat metric (made up: default 0.5, 0.6, 0.7, the
    change 1.0: per-seed differences 0.5, 0.4, 0.3, mean 0.4); the others keep their clips."""
    runs[(DEFAULT, 1)].dcase = None
    t = T.differences(runs, replicates=2000).set_index("metric")
    r = t.loc["dcase_scene_acc"]
    assert r.resampled == "seeds only: a run has no per-recording file"
    assert r["diff"] == pytest.approx(0.4) and r.default == pytest.approx(0.6)
    assert r.per_seed == "+0.5000 +0.4000 +0.3000"
    # replicates are means of three seeds drawn from {0.5, 0.4, 0.3}: from 0.3 to 0.5, all above 0
    assert 0.3 - 1e-9 <= r.lo <= r.hi <= 0.5 + 1e-9 and r.verdict == "higher"
    assert t.loc["pointing", "resampled"] == "seeds, then clips"


def test_clips_that_differ_between_the_settings_are_not_paired(runs):
    runs[(CHANGE, 0)].clips = runs[(CHANGE, 0)].clips.assign(video=["w0", "w1", "w2", "w3"])
    runs[(CHANGE, 0)].metrics["heldout.count.dmc.acc"] = 0.5
    for s in (0, 1, 2):
        runs[(DEFAULT, s)].metrics["heldout.count.dmc.acc"] = 0.5
        runs[(CHANGE, s)].metrics.setdefault("heldout.count.dmc.acc", 0.5)
    r = T.differences(runs, replicates=200).set_index("metric").loc["count_acc"]
    assert r.resampled == "seeds only: the two settings' clips differ" and r["diff"] == 0.0


def test_written_files(runs, tmp_path):
    t = T.differences(runs, replicates=200)
    paths = T.write(t, tmp_path / "x", "> **Study `compare x`**: header.", "train.clusters=5")
    assert [p.name for p in paths] == ["compare.md", "compare.csv", "metrics.json", "compare.png"]
    md = (tmp_path / "x/compare.md").read_text()
    assert md.startswith("> **Study `compare x`**: header.\n")
    assert "| test corpus: pointing | 0.000 | 1.000 | **+1.000 [+1.000, +1.000]** | 3 / 0 | seeds, then clips | higher |" in md
    assert "| no difference resolved at 3 seeds |" in md
    js = json.loads((tmp_path / "x/metrics.json").read_text())
    assert js["n_seeds"] == 3 and js["pointing.verdict"] == 1 and js["esc_acc.verdict"] == -1
    assert js["count_acc.verdict"] == 0 and js["pointing.diff"] == 1.0 and js["esc_acc.seeds_lower"] == 3
    assert pd.read_csv(tmp_path / "x/compare.csv").metric.tolist()[0] == "esc_acc"
    assert (tmp_path / "x/compare.png").read_bytes()[:4] == b"\x89PNG"


def test_verdict():
    assert T.verdict(0.01, 0.2, 5) == "higher" and T.verdict(-0.2, -0.01, 5) == "lower"
    assert T.verdict(-0.1, 0.1, 5) == "no difference resolved at 5 seeds"
    assert T.verdict(0.0, 0.1, 2) == "no difference resolved at 2 seeds"   # 0 inside the interval
    assert T.verdict(float("nan"), 0.1, 2) == "not measured"


# ---------------------------------------------------------------------------------------------
# bad input: one line, before any work
# ---------------------------------------------------------------------------------------------
def no_work(*args, **kw):
    raise AssertionError("work started")


@pytest.mark.parametrize("sets,seeds,error,message", [
    (["train.clustrs=5"], 5, ParamsError, "SET train.clustrs=5: train.clustrs: not a key of params.yaml"),
    (["train.clusters=0"], 5, ParamsError, "SET: train.clusters: 0 is less than the minimum of 1"),
    (["train.squash=sideways"], 5, ParamsError, "SET: train.squash: 'sideways' is not one of"),
    (["train=1"], 5, ParamsError, "names a section"),
    (["seed=3"], 5, ParamsError, "the seed"),
    (["train.clusters"], 5, C.CompareError, "not key=value"),
    (["train.clusters=10"], 5, C.CompareError, "the default already has these values"),
    (["train.clusters=5", "train.clusters=4"], 5, C.CompareError, "set twice"),
    (["train.clusters=5"], 1, C.CompareError, "--seeds 1: at least 2 seeds"),
])
def test_bad_input_is_refused_before_any_work(params, tmp_path, sets, seeds, error, message):
    assert params["train"]["clusters"] == 10
    with pytest.raises(error) as exc:
        C.run_compare(params, sets, seeds, cwd=tmp_path, runner=no_work, rows=no_work, log=no_work)
    assert message in str(exc.value) and "\n" not in str(exc.value)
    assert not list(tmp_path.iterdir())


def test_cli_prints_one_line(tmp_path):
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "dmc.pipeline.cli", "--params", str(root / "params.yaml"), "compare",
                           "train.clusters=0", "--seeds", "3"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "dmc: invalid parameters: SET: train.clusters: 0 is less than the minimum of 1"
    proc = subprocess.run([sys.executable, "-m", "dmc.pipeline.cli", "--params", str(root / "params.yaml"), "compare",
                           "train.clusters=5", "--seeds", "1"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("dmc compare: --seeds 1: at least 2 seeds")


def test_slug_label_and_jobs():
    over = {"train.clusters": 5, "train.margin": 10.0, "train.squash": "both"}
    assert C.slug(over) == "train.clusters=5+train.margin=10.0+train.squash=both"
    assert C.label(over) == "train.clusters=5 train.margin=10.0 train.squash=both"
    assert C.default_jobs(10, cpus=2) == 1 and C.default_jobs(10, cpus=16) == 4 and C.default_jobs(2, cpus=64) == 2


# ---------------------------------------------------------------------------------------------
# reuse: a tiny git repository with a committed run (HEAD) and experiment refs
# ---------------------------------------------------------------------------------------------
DVC_YAML = "stages:\n  fake:\n    cmd: python fake.py\n    deps: [fake.py]\n    params: [seed, train.clusters]\n"


def git(repo, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


def md5(data) -> str:
    return hashlib.md5(data if isinstance(data, bytes) else data.encode()).hexdigest()


def write_run(repo: Path, params: dict, seed: int, clusters: int, code: str = "print(1)\n") -> None:
    """The files a run of the fake stage leaves: params.yaml, its per-clip files, metrics, dvc.lock."""
    p = copy.deepcopy(params)
    p["seed"], p["train"]["clusters"] = seed, clusters
    (repo / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    run = made_up_run(seed, clusters != 10)
    files = {"results/heldout/pairs.csv": run.pairs.to_csv(index=False),
             "results/heldout/clips.csv": run.clips.to_csv(index=False),
             "results/heldout/esc50_clips.csv": run.esc.to_csv(index=False),
             "results/tables/dcase_recordings.csv": run.dcase.to_csv(index=False),
             "results/metrics.json": json.dumps(run.metrics), "results/heldout_metrics.json": "{}"}
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    lock = {"schema": "2.0", "stages": {"fake": {
        "cmd": "python fake.py", "deps": [{"path": "fake.py", "md5": md5(code), "size": len(code)}],
        "params": {"params.yaml": {"seed": seed, "train.clusters": clusters}},
        "outs": [{"path": p, "md5": md5(files[p]), "size": len(files[p])} for p in C.METRIC_FILES]}}}
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock))


def commit_exp(repo: Path, params, seed, clusters, name, **kw) -> str:
    """An experiment commit on top of HEAD, referenced as refs/exps/<baseline>/<name>; HEAD kept."""
    head = git(repo, "rev-parse", "HEAD")
    write_run(repo, params, seed, clusters, **kw)
    git(repo, "add", "-A")
    tree = git(repo, "write-tree")
    rev = git(repo, "commit-tree", tree, "-p", head, "-m", name)
    git(repo, "update-ref", f"refs/exps/{head[:2]}/{head[2:]}/{name}", rev)
    git(repo, "checkout", "-q", "--", ".")          # back to HEAD's files
    return rev


@pytest.fixture
def repo(tmp_path, params):
    """HEAD: the default at seed 0; experiments: the default at seed 1, clusters=5 at seeds 0 and 1,
    and two that must not be reused: clusters=5 seed 1 with other code, clusters=5 seed 2 with
    another learning rate."""
    r = tmp_path / "repo"
    r.mkdir()
    git(r, "init", "-q")
    (r / "fake.py").write_text("print(1)\n")
    (r / "dvc.yaml").write_text(DVC_YAML)
    write_run(r, params, 0, 10)
    git(r, "add", "-A")
    git(r, "commit", "-qm", "the committed run")
    commit_exp(r, params, 1, 10, "exp-default-1")
    commit_exp(r, params, 0, 5, "exp-change-0")
    commit_exp(r, params, 1, 5, "exp-change-1")
    commit_exp(r, params, 1, 5, "exp-other-code", code="print(2)\n")
    lr = copy.deepcopy(params)
    lr["train"]["lr"] = 0.5
    commit_exp(r, lr, 2, 5, "exp-other-lr")
    return r


def test_done_runs_are_found_by_params_and_code(repo, params):
    configs = {DEFAULT: {}, CHANGE: {"train.clusters": 5}}
    done = C.find_done(params, configs, [0, 1, 2], repo, log=lambda m: None)
    assert {k: v[0] for k, v in done.items()} == {(DEFAULT, 0): "HEAD", (DEFAULT, 1): "exp-default-1",
                                                 (CHANGE, 0): "exp-change-0", (CHANGE, 1): "exp-change-1"}
    # the code changed here: no run is the same any more
    (repo / "fake.py").write_text("print(3)\n")
    assert C.find_done(params, configs, [0, 1], repo, log=lambda m: None) == {}
    (repo / "fake.py").write_text("print(2)\n")      # the code of exp-other-code
    assert list(C.find_done(params, configs, [0, 1], repo, log=lambda m: None)) == [(CHANGE, 1)]


def test_a_metrics_file_that_is_not_the_locked_one_is_not_a_done_run(repo, params):
    (repo / "results/metrics.json").write_text("{}")
    git(repo, "commit", "-qam", "metrics edited by hand")
    done = C.find_done(params, {DEFAULT: {}}, [0], repo, log=lambda m: None)
    assert done == {}


def test_done_runs_are_reused_not_queued(repo, params):
    calls = []
    log = []
    out = C.run_compare(params, ["train.clusters=5"], 2, cwd=repo, runner=lambda cmd, cwd, log: calls.append(cmd),
                        rows=no_work, log=log.append, replicates=200, date="2026-12-07")
    assert calls == []                                 # all four runs done: nothing queued, nothing run
    assert out == repo / "results/compare/train.clusters=5"
    md = (out / "compare.md").read_text()
    assert md.startswith("> **Study `compare train.clusters=5`**: does `train.clusters=5` move")
    assert "**Command**: `dmc compare`. **Date**: 2026-12-07." in md
    assert "| test corpus: pointing | 0.000 | 1.000 | **+1.000 [+1.000, +1.000]** | 2 / 0 |" in md
    runs = pd.read_csv(out / "runs.csv")
    assert list(runs.run) == ["exp-change-0", "exp-change-1", "HEAD", "exp-default-1"]
    index = json.loads((repo / "results/compare/metrics.json").read_text())
    assert index["train.clusters=5"]["pointing.verdict"] == 1
    timing = json.loads((out / "timing.json").read_text())
    assert (timing["runs_made"], timing["runs_reused"], timing["jobs"]) == (0, 4, 0)
    assert 0 <= timing["wall_s"] < 600 and timing["started"] <= timing["finished"] and timing["cores"] >= 1


def test_only_the_missing_runs_are_queued(repo, params):
    """Seeds 0-2: seed 2 of both settings is missing (exp-other-lr has another lr); seed 2 of the
    default is already queued (exp_show), so only the change's seed 2 is queued, then the queue runs.
    The run fails: the table is still written from seeds 0 and 1 and names the runs left out."""
    calls = []
    rows = [{"rev": "workspace", "typ": "baseline", "Experiment": None, "State": None,
             "seed": 0, "train.clusters": 10},
            {"rev": "abc", "typ": "baseline", "Experiment": None, "State": None, "seed": 0, "train.clusters": 10},
            {"rev": "q1", "typ": "branch_commit", "Experiment": "q1", "State": "Queued", "seed": 2,
             "train.clusters": 10}]
    def runner(cmd, cwd, log):          # `dvc exp run --run-all` fails when an experiment fails
        calls.append(cmd)
        if "--run-all" in cmd:
            raise C.CompareError("`dvc exp run --run-all --jobs 2` failed with exit status 1: ERROR: failed to reproduce")

    out = C.run_compare(params, ["train.clusters=5"], 3, jobs=2, cwd=repo, rows=lambda cwd, log: rows,
                        runner=runner, log=lambda m: None, replicates=100)
    assert calls == [["dvc", "exp", "run", "--queue", "-S", "seed=2", "-S", "train.clusters=5"],
                     ["dvc", "exp", "run", "--run-all", "--jobs", "2"]]
    md = (out / "compare.md").read_text()
    assert "Runs not done (failed, or still queued), left out: default seed 2, change seed 2." in md
    assert "| 2 / 0 | seeds, then clips | higher |" in md and "hierarchical bootstrap, 100 replicates" in md
    timing = json.loads((out / "timing.json").read_text())
    assert (timing["runs_made"], timing["runs_reused"], timing["jobs"]) == (2, 4, 2)
    # fewer than two seeds with both runs: refused, nothing written
    with pytest.raises(C.CompareError, match=r"only 0 seed\(s\) have both runs done"):
        C.run_compare(params, ["train.clusters=4"], 2, cwd=repo, rows=lambda cwd, log: rows,
                      runner=lambda cmd, cwd, log: None, log=lambda m: None)
    assert not (repo / "results/compare/train.clusters=4").exists()


FAKE_STAGE = '''import json, os, yaml
import pandas as pd
p = yaml.safe_load(open("params.yaml"))
s, k = p["seed"], p["train"]["clusters"]
v = [f"v{i}" for i in range(6)]
os.makedirs("results/heldout", exist_ok=True); os.makedirs("results/tables", exist_ok=True)
hit = [int((i + s) % 3 != 0 or k == 5) for i in range(6)]
pd.DataFrame({"video": v, "segment": 0, "dmc_ciou": [0.6 * h for h in hit], "dmc_pointing": hit}).to_csv(
    "results/heldout/pairs.csv", index=False)
pd.DataFrame({"video": v, "n_sources": 1, "pred_dmc": [1, 1, 2, 1, 1, 2]}).to_csv("results/heldout/clips.csv", index=False)
pd.DataFrame({"clip": range(6), "fold": 1, "target": 0, "pred_dmc": [0] * 6}).to_csv("results/heldout/esc50_clips.csv", index=False)
pd.DataFrame({"recording": ["a", "b"], "scene": ["x", "y"], "pred_dmc": ["x", "y"]}).to_csv(
    "results/tables/dcase_recordings.csv", index=False)
json.dump({"dcase.dmc.scene_acc_mean": 1.0}, open("results/metrics.json", "w"))
json.dump({"heldout.dmc.pointing": sum(hit) / 6}, open("results/heldout_metrics.json", "w"))
'''


@pytest.mark.slow
def test_real_experiments_then_reuse(params, tmp_path):
    """`dmc compare train.clusters=5 --seeds 2` in a tiny git + DVC project: the committed run is
    reused and the three others run as queued DVC experiments; the same command again reuses all
    four and runs nothing."""
    if shutil.which("dvc") is None:
        pytest.fail("dvc is not on PATH (it is a dependency of the project)")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (tmp_path / "fake.py").write_text(FAKE_STAGE)
    outs = "".join(f"      - {p}:\n          cache: false\n" for p in
                   ("results/heldout", "results/tables/dcase_recordings.csv"))
    mets = "".join(f"      - {p}:\n          cache: false\n" for p in C.METRIC_FILES)
    (tmp_path / "dvc.yaml").write_text(f"stages:\n  fake:\n    cmd: {sys.executable} fake.py\n    deps: [fake.py]\n"
                                       f"    params: [seed, train.clusters]\n    outs:\n{outs}    metrics:\n{mets}")

    def run(*cmd):
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc

    run("git", "init", "-q")
    run("dvc", "init", "-q")
    run("dvc", "repro", "-q")
    run("git", "add", "-A")
    run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tiny project, the committed run")
    cmd = (sys.executable, "-m", "dmc.pipeline.cli", "compare", "train.clusters=5", "--seeds", "2", "--jobs", "1")
    first = run(*cmd).stderr
    assert "compare: 1 of 4 runs already done: default s0 (HEAD)" in first
    assert first.count("$ dvc exp run --queue") == 3 and "$ dvc exp run --run-all --jobs 1" in first
    table = pd.read_csv(tmp_path / "results/compare/train.clusters=5/compare.csv").set_index("metric")
    # pointing: the default hits 4 of 6 clips in each seed, the change all 6: +1/3 in both seeds
    assert table.loc["pointing", "diff"] == pytest.approx(1 / 3, abs=1e-4)
    assert table.loc["pointing", "seeds_higher"] == 2 and table.loc["esc_acc", "diff"] == 0
    second = run(*cmd).stderr
    assert "compare: 4 of 4 runs already done" in second and "$ dvc" not in second
