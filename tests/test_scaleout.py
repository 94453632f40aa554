"""Scale-out: the Snakemake profiles (local and SLURM) resolve the DAG with the resources each
job needs, and DVC pushes the pipeline's outputs to a remote and pulls them back identical."""

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, load_default_params, tree_hashes, with_overrides, write_params

BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"
ENV = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", DVC_NO_ANALYTICS="1")
PROFILES = ROOT / "workflow" / "profiles"
# snakemake-executor-plugin-slurm is an optional extra (`pip install -e '.[slurm]'`); without
# it `--executor slurm` is not a valid choice, so the dry run names the dryrun executor.
HAVE_SLURM_PLUGIN = importlib.util.find_spec("snakemake_executor_plugin_slurm") is not None


def sh(cmd, cwd, check=True, timeout=900):
    proc = subprocess.run(cmd, cwd=cwd, env=ENV, shell=True, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout + proc.stderr


def dry_run_jobs(text: str) -> list[dict]:
    """The jobs of a `snakemake -n` listing: rule, wildcards, threads, resources."""
    jobs = []
    for block in re.split(r"\n(?=rule \w+:\n)", text):
        m = re.match(r"rule (\w+):\n", block)
        if not m:
            continue
        job = {"rule": m.group(1), "threads": 1, "resources": {}, "wildcards": {}, "shell": "Shell command: None"
               not in block}
        for key in ("resources", "wildcards"):
            line = re.search(rf"^\s+{key}: (.*)$", block, flags=re.M)
            if line:
                job[key] = dict(kv.split("=", 1) for kv in line.group(1).split(", "))
        threads = re.search(r"^\s+threads: (\d+)$", block, flags=re.M)
        job["threads"] = int(threads.group(1)) if threads else 1
        jobs.append(job)
    return jobs


def list_rules(cwd=ROOT) -> set[str]:
    return set(sh("snakemake --list-rules", cwd).split())


def test_profiles_parse_and_name_existing_rules():
    default = yaml.safe_load((PROFILES / "default" / "config.yaml").read_text())
    slurm = yaml.safe_load((PROFILES / "slurm" / "config.yaml").read_text())
    assert default["cores"] == "all" and default["rerun-incomplete"] is True and default["keep-going"] is False
    assert default["printshellcmds"] is True
    assert slurm["executor"] == "slurm" and "cluster" not in slurm and int(slurm["jobs"]) > 1
    assert {"slurm_partition", "mem_mb", "runtime"} <= set(slurm["default-resources"])
    rules = list_rules()
    assert set(slurm["set-resources"]) <= rules and set(slurm["set-threads"]) <= rules
    for rule in ("train", "extract"):
        res = slurm["set-resources"][rule]
        assert "gpu" in res and "gres" not in res          # the plugin refuses both at once
        assert res["slurm_partition"] != slurm["default-resources"]["slurm_partition"]
    assert "gpu" not in slurm["set-resources"]["decode_shard"] and "gpu" not in slurm["set-resources"]["evaluate"]
    assert slurm["set-threads"]["decode_shard"] == 1 and slurm["set-threads"]["train"] > 1


def test_default_profile_dry_run():
    text = sh(f"snakemake -n --forceall --profile {PROFILES / 'default'}", ROOT)
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", text, flags=re.M))
    p = load_default_params()
    assert int(counts["decode_shard"]) == p["decode"]["num_shards"] and counts["train"] == "1"
    assert "This was a dry-run" in text


@pytest.mark.slow
def test_slurm_profile_dry_run_lists_jobs_and_resources():
    executor = "" if HAVE_SLURM_PLUGIN else "--executor dryrun"
    text = sh(f"snakemake -n --forceall --cores 64 --profile {PROFILES / 'slurm'} {executor}", ROOT)
    jobs = [j for j in dry_run_jobs(text) if j["shell"]]
    p = load_default_params()
    by_rule = {}
    for j in jobs:
        by_rule.setdefault(j["rule"], []).append(j)
    assert len(by_rule["decode_shard"]) == p["decode"]["num_shards"] and len(by_rule["train"]) == 1
    cpu_partition = yaml.safe_load((PROFILES / "slurm" / "config.yaml").read_text())[
        "default-resources"]["slurm_partition"]
    for j in jobs:   # every job that runs a command says where, how much memory and how long
        assert {"slurm_partition", "mem_mb", "runtime"} <= set(j["resources"]), j
    for j in by_rule["decode_shard"]:
        assert j["threads"] == 1 and int(j["resources"].get("gpu", 0)) == 0
        assert j["resources"]["slurm_partition"] == cpu_partition and int(j["resources"]["mem_mb"]) >= 2000
    for j in by_rule["evaluate"]:
        assert int(j["resources"].get("gpu", 0)) == 0 and j["resources"]["slurm_partition"] == cpu_partition
    train = by_rule["train"][0]
    assert int(train["resources"]["gpu"]) == 1 and train["resources"]["slurm_partition"] != cpu_partition
    assert train["threads"] > 1
    for j in by_rule["extract"]:
        wants = 0 if j["wildcards"]["method"] == "logmel_stats" else 1
        assert int(j["resources"]["gpu"]) == wants, j

    # every rule whose own resources ask for a GPU (train.device auto/cuda) gets one on SLURM
    local = dry_run_jobs(sh("snakemake -n --forceall --cores 64", ROOT))
    gpu_rules = {j["rule"] for j in local if int(j["resources"].get("gpu", 0)) > 0}
    assert {"train", "extract"} <= gpu_rules
    for j in jobs:
        if j["rule"] in gpu_rules and j["wildcards"].get("method") != "logmel_stats":
            assert int(j["resources"].get("gpu", 0)) >= 1, f"{j['rule']} needs a GPU in the slurm profile"


# -- DVC remote: push, wipe the cache and the outputs, pull, identical files ----------------------



@pytest.mark.slow
def test_dvc_push_and_pull_from_a_local_remote_restores_identical_outputs(tmp_path):
    d = tmp_path / "project"
    d.mkdir()
    for name in ("Snakefile", "dvc.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, d / name)
    for name in ("workflow", "src", ".dvc"):
        shutil.copytree(ROOT / name, d / name, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "tmp", "cache", "config.local"))
    # a cheap part of the pipeline: 8 synthetic videos of 4 s, the smallest evaluation sets, 2 shards
    write_params(d / "params.yaml", with_overrides(load_default_params(), synth__size="tiny", synth__videos=32,
                                                   synth__video_seconds=4.0, synth__esc50_classes=2,
                                                   synth__dcase_seconds=5.0, decode__num_shards=2))
    (d / ".gitignore").write_text("/.snakemake/\n/logs/\n__pycache__/\n")
    sh("git init -q && git add -A && git -c user.name=t -c user.email=t@t commit -qm init", d)

    out = sh("dvc repro synth decode", d)
    assert "Running stage 'synth'" in out and "Running stage 'decode'" in out
    before = tree_hashes(d / "data")
    assert any(k.startswith("decoded/shard-00001/") for k in before) and "decoded/index.csv" in before

    remote = tmp_path / "remote"
    sh(f"dvc remote add -d local {remote}", d)
    sh("dvc push", d)
    assert any(p.is_file() for p in remote.rglob("*"))

    shutil.rmtree(d / ".dvc" / "cache")
    shutil.rmtree(d / "data")
    sh("dvc pull synth decode", d)
    assert tree_hashes(d / "data") == before
    assert "up to date" in sh("dvc status synth decode", d)
    # Snakemake agrees with no sync command (src/dmc/pipeline/dvcsync.py; Snakemake's directory markers,
    # .snakemake_timestamp, are in .dvcignore: not data, so not compared above)
    assert "Nothing to be done" in sh("snakemake -n --cores 1 decode", d)
