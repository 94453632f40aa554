"""The Snakemake + DVC spine: the DAG resolves, dvc.yaml (generated from src/dmc/pipeline/graph.py, see
tests/test_pipeline_graph.py) agrees with the rules, and the whole pipeline runs end to end on a tiny
corpus, twice (the second time doing nothing)."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, load_default_params, with_overrides, write_params

BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"
ENV = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", DVC_NO_ANALYTICS="1")


def sh(cmd, cwd, check=True, timeout=1800):
    proc = subprocess.run(cmd, cwd=cwd, env=ENV, shell=True, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout + proc.stderr


def rule_outputs(cwd) -> dict[str, str]:
    """Every output file of the full DAG -> the rule that makes it (Snakemake's own view)."""
    text = sh("snakemake --forceall --detailed-summary --cores 1", cwd)
    rows = [line.split("\t") for line in text.splitlines() if "\t" in line]
    return {r[0]: r[2] for r in rows[1:] if len(r) > 2}


def test_snakemake_dry_run_resolves_the_dag():
    text = sh("snakemake -n --forceall --cores 2", ROOT)
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", text, flags=re.M))
    p = load_default_params()
    assert int(jobs["decode_shard"]) == p["decode"]["num_shards"]
    from dmc.names import DATASETS, METHODS
    assert jobs["train"] == "1" and jobs["evaluate"] == "1" and int(jobs["extract"]) == len(DATASETS) * len(METHODS)


def test_snakemake_lint_is_clean():
    """`snakemake --lint`: every rule logs (logs/<rule>...), names its software environment
    (workflow/envs/dmc.yaml) and takes its paths from its inputs and outputs."""
    text = sh("snakemake --lint", ROOT, timeout=600)
    assert "Congratulations, your workflow is in a good condition!" in text, text[-3000:]


def test_dvc_stages_cover_exactly_their_rules_outputs():
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    outputs = rule_outputs(ROOT)
    claimed = set()
    for name, stage in dvc.items():
        stages = [stage["do"]] if "foreach" in stage else [stage]
        for st in stages:
            rules = st["cmd"].split("--allowed-rules")[1].split("--")[0].split()
            outs = [next(iter(o)) if isinstance(o, dict) else o
                    for key in ("outs", "metrics", "plots") for o in st.get(key, [])]
            outs = [o.replace("${key}", k) for o in outs for k in (stage.get("foreach") or {"": ""})]
            mine = {f for f, r in outputs.items() if r in rules}
            assert mine, f"stage {name}: its rules {rules} make no output"
            for f in mine:
                assert any(f == o or f.startswith(o.rstrip("/") + "/") for o in outs), \
                    f"stage {name}: {f} (rule {outputs[f]}) is not declared in dvc.yaml"
            claimed |= mine
    assert claimed == set(outputs), f"outputs of no DVC stage: {set(outputs) - claimed}"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A copy of the project wired to a tiny corpus, with its own git and DVC repos."""
    d = tmp_path_factory.mktemp("project")
    for name in ("Snakefile", "dvc.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, d / name)
    for name in ("workflow", "src", ".dvc"):
        shutil.copytree(ROOT / name, d / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "tmp",
                                                                                          "cache"))
    p = with_overrides(load_default_params(), synth__size="tiny", synth__test_videos=24, synth__multi_videos=24, decode__num_shards=2, train__epochs=2,
                       train__batch_size=16, evaluate__C_grid=[0.1, 1.0])
    write_params(d / "params.yaml", p)
    (d / ".gitignore").write_text("/.snakemake/\n/logs/\n__pycache__/\n")
    sh("git init -q && git add -A && git -c user.name=t -c user.email=t@t commit -qm init", d)
    return d


@pytest.mark.slow
def test_end_to_end_dvc_repro_twice_and_an_experiment(project):
    out = sh("dvc repro", project)
    for stage in ("synth", "decode", "train", "evalset@esc50", "evalset@esc10", "evalset@dcase", "extract", "evaluate",
                  "localize", "synth_test", "decode_test", "heldout", "synth_multi", "decode_multi", "heldout_multi"):
        assert f"Running stage '{stage}'" in out
    for f in ("data/decoded/index.csv", "models/dmc.pt", "results/train/log.csv", "results/metrics.json",
              "results/tables/summary.md", "results/tables/esc50_folds.csv", "results/tables/dcase_scenes.md",
              "results/figures/esc50_dmc_confusion.png", "results/plots/dcase_dmc_confusion.csv",
              "results/localization_metrics.json", "results/localization/table.md", "results/heldout_metrics.json",
              "results/heldout/pairs.csv", "results/heldout/table.md", "data/decoded_multi/index.csv",
              "data/synth_multi/ground_truth/objects.csv", "results/heldout_multi_metrics.json",
              "results/heldout_multi/ca_clips.csv", "results/heldout_multi/table.md", "models/dmc.class_mapping.json"):
        assert (project / f).is_file(), f
    metrics = json.loads((project / "results/metrics.json").read_text())
    assert 0 <= metrics["esc50.dmc.acc_mean"] <= 1 and "dcase.random_init.scene_acc_mean" in metrics
    # the ESC-10 release layout (OGG clips in 'NNN - Class/' folders) went through the same stages
    assert 0 <= metrics["esc10.dmc.acc_mean"] <= 1 and metrics["esc10.dmc.n_folds"] == 5
    # each job's output went to its log too (logs/<rule>[/<wildcards>].log, git-ignored)
    assert "train: done" in (project / "logs/train.log").read_text()
    assert "extract: esc50/dmc" in (project / "logs/extract/esc50/dmc.log").read_text()

    again = sh("dvc repro", project)
    assert "Running stage" not in again and "up to date" in again
    assert "Nothing to be done" in sh("snakemake -n --cores 1", project)
    assert "up to date" in sh("dvc status", project)

    # an experiment with a changed training param reruns training and what follows, only
    sh("git add -A && git -c user.name=t -c user.email=t@t commit -qm baseline", project)
    before = json.loads((project / "results/metrics.json").read_text())
    out = sh("dvc exp run -S train.clusters=4", project)
    assert "Running stage 'train'" in out and "Running stage 'evaluate'" in out
    assert "Running stage 'decode'" not in out and "Running stage 'synth'" not in out
    assert "Running stage 'evalset" not in out
    after = json.loads((project / "results/metrics.json").read_text())
    assert before.keys() == after.keys()
    assert any(before[k] != after[k] for k in before if k.startswith(("esc50.dmc.", "dcase.dmc."))), before
    assert all(before[k] == after[k] for k in before if ".logmel_stats." in k)
    shown = sh("dvc exp show --no-pager --md", project)
    assert "train.clusters" in shown or "clusters" in shown
    diff = sh("dvc metrics diff HEAD --md", project)
    assert "esc50.dmc.acc_mean" in diff
