"""Scale-out on real engines, all started here on localhost (`make cluster-deps test-cluster`):

* a one-node SLURM cluster (Debian's slurmctld, slurmd, munge): the pipeline runs through
  `snakemake --profile workflow/profiles/slurm` as real sbatch jobs, a job killed with
  `scancel` is resubmitted by the profile's `retries`, the outputs equal a local run's, and
  `SNAKEMAKE_PROFILE=… dvc repro` sends its stages' jobs to SLURM too;
* a DVC remote over SSH (Debian's openssh-server, dvc-ssh): push, pull into a fresh clone,
  nothing to reproduce there, and a push cut by the server's death is completed by the next;
* torchrun with two "nodes" (two agents, c10d rendezvous, gloo): same files as one process,
  a worker killed with SIGKILL fails the run without a model, the rerun resumes.
"""

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from cluster_services import (CPU_PARTITION, GPU_PARTITION, SLURM_CPUS, SLURM_MEM_MB, SlurmCluster, SSHServer,
                              children, free_port, kill_tree, wait_until)
from conftest import ROOT, decode_corpus, load_default_params, tree_hashes, with_overrides, write_params

pytestmark = pytest.mark.cluster

BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"
ENV = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", DVC_NO_ANALYTICS="1", OMP_NUM_THREADS="1")
PROFILE = ROOT / "workflow" / "profiles" / "slurm"

# The embedded default at its smallest: 16 synthetic videos of 4 s, tiny evaluation sets, 2 shards.
TINY = dict(synth__size="tiny", synth__videos=64, synth__video_seconds=4.0, synth__esc50_classes=2,
            synth__dcase_seconds=5.0, decode__num_shards=2, train__epochs=2, train__batch_size=4,
            train__device="cpu", evaluate__C_grid=[1.0])


def sh(cmd, cwd, env=ENV, check=True, timeout=900) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, shell=True, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout + proc.stderr


def make_project(d: Path, **overrides) -> Path:
    """A copy of the project (own git and DVC repos) wired to the tiny corpus."""
    d.mkdir(parents=True)
    for name in ("Snakefile", "dvc.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, d / name)
    for name in ("workflow", "src", ".dvc"):
        shutil.copytree(ROOT / name, d / name, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "tmp", "cache", "config.local"))
    write_params(d / "params.yaml", with_overrides(load_default_params(), **{**TINY, **overrides}))
    (d / ".gitignore").write_text("/.snakemake/\n/logs/\n__pycache__/\n")
    sh("git init -q && git add -A && git -c user.name=t -c user.email=t@t commit -qm init", d)
    return d




def same_model(a: Path, b: Path) -> None:
    sa, sb = (torch.load(p, map_location="cpu", weights_only=True) for p in (a, b))
    assert sa["step"] == sb["step"] and sa["config"] == sb["config"]
    assert sa["model"].keys() == sb["model"].keys()
    for k in sa["model"]:
        assert torch.equal(sa["model"][k], sb["model"][k]), k


def same_log(a: Path, b: Path) -> None:
    drop = ["seconds", "samples_per_s"]
    pd.testing.assert_frame_equal(pd.read_csv(a).drop(columns=drop), pd.read_csv(b).drop(columns=drop))


# -- SLURM ------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def cluster_profile(dest: Path) -> Path:
    """workflow/profiles/slurm with this cluster's partitions; threads and memory capped at
    its one node (2 CPUs); no accounting database here, so job states come from squeue
    (slurmctld keeps finished jobs for MinJobAge) and jobs name no account."""
    cfg = yaml.safe_load((PROFILE / "config.yaml").read_text())
    for res in [cfg["default-resources"], *cfg["set-resources"].values()]:
        if res.get("slurm_partition") == "CHANGE_ME":
            res["slurm_partition"] = CPU_PARTITION
        elif res.get("slurm_partition") == "CHANGE_ME_GPU":
            res["slurm_partition"] = GPU_PARTITION
        if "mem_mb" in res:
            res["mem_mb"] = min(int(res["mem_mb"]), SLURM_MEM_MB // 2)
    cfg["set-threads"] = {rule: min(int(n), SLURM_CPUS) for rule, n in cfg["set-threads"].items()}
    cfg.update({"slurm-status-command": "squeue", "slurm-no-account": True,
                "slurm-init-seconds-before-status-checks": 2, "slurm-keep-successful-logs": True})
    dest.mkdir(parents=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return dest


def rule_of(job: dict) -> str:
    m = re.match(r"rule_([a-z_]+?)(?:_wildcards_.*)?$", job["comment"])
    return m.group(1) if m else ""


TARGETS = "decode train"   # synth_videos, decode_shard x2, decode_index (CPU partition), train ("GPU" partition)


@pytest.fixture(scope="module")
def slurm_run(slurm, tmp_path_factory):
    """The same targets run locally and through SLURM; the train job cancelled mid-run."""
    base = tmp_path_factory.mktemp("slurm-run")
    local = make_project(base / "local")   # the reference, run meanwhile (the SLURM run mostly waits)
    # --cores as the node's CPUs: Snakemake sets OMP_NUM_THREADS to a job's threads (train: 8,
    # capped at --cores locally and at SLURM_CPUS by the test profile), and the CPU kernels
    # split a convolution's sums by thread, so only the same thread count gives the same bits.
    local_run = subprocess.Popen(f"snakemake --cores {SLURM_CPUS} {TARGETS}", cwd=local, env=ENV, shell=True,
                                 stdout=open(base / "local.log", "w"), stderr=subprocess.STDOUT)
    proj = make_project(base / "cluster")
    profile = cluster_profile(base / "profile")
    before = {j["id"] for j in slurm.jobs()}
    env = dict(ENV, SLURM_CONF=str(slurm.conf))
    log = open(base / "snakemake.log", "w")
    proc = subprocess.Popen(f"snakemake --profile {profile} {TARGETS}", cwd=proj, env=env, shell=True,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        def running_train():
            if proc.poll() is not None:
                raise AssertionError(f"snakemake ended before train ran:\n{(base / 'snakemake.log').read_text()}")
            return next((j for j in slurm.jobs() if rule_of(j) == "train" and j["state"] == "RUNNING"), None)

        job = wait_until("the train job to run", running_train, 600, interval=0.5)
        time.sleep(3)   # mid-run: started, not finished (2 epochs)
        slurm.run(f"scancel {job['id']}")
        cancelled = job["id"]
        rc = proc.wait(timeout=900)
        local_rc = local_run.wait(timeout=900)
    finally:
        for p in (proc, local_run):
            if p.poll() is None:
                kill_tree(p.pid)
        log.close()
    text = (base / "snakemake.log").read_text()
    assert rc == 0, text[-6000:]
    assert local_rc == 0, (base / "local.log").read_text()[-6000:]
    jobs = [j for j in slurm.jobs() if j["id"] not in before]
    return {"local": local, "cluster": proj, "jobs": jobs, "cancelled": cancelled, "log": text, "env": env,
            "profile": profile}


def test_pipeline_jobs_are_real_sbatch_jobs_on_both_partitions(slurm_run):
    jobs = slurm_run["jobs"]
    by_rule = {}
    for j in jobs:
        by_rule.setdefault(rule_of(j), []).append(j)
    p = with_overrides(load_default_params(), **TINY)
    assert len(by_rule["decode_shard"]) == p["decode"]["num_shards"]
    assert {"synth_videos", "decode_shard", "decode_index", "train"} == set(by_rule), by_rule
    for rule in ("synth_videos", "decode_shard", "decode_index"):
        assert all(j["partition"] == CPU_PARTITION and j["state"] == "COMPLETED" for j in by_rule[rule]), by_rule[rule]
    # train: the cancelled job, then the retry (profile `retries: 1`) that completed, both on the GPU partition
    train = sorted(by_rule["train"], key=lambda j: int(j["id"]))
    assert [(j["id"], j["state"]) for j in train] == [(slurm_run["cancelled"], "CANCELLED"),
                                                      (train[1]["id"], "COMPLETED")], train
    assert all(j["partition"] == GPU_PARTITION for j in train)
    # every job ran under slurmd and left its log (kept by --slurm-keep-successful-logs)
    logs = list((slurm_run["cluster"] / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert {p.stem for p in logs} >= {j["id"] for j in jobs}
    train_log = next(p for p in logs if p.stem == train[1]["id"]).read_text()
    assert "rule train:" in train_log and "Finished job" in train_log


def test_pipeline_outputs_through_slurm_equal_a_local_run(slurm_run):
    local, cluster = slurm_run["local"], slurm_run["cluster"]
    assert tree_hashes(cluster / "data") == tree_hashes(local / "data")
    same_model(cluster / "models" / "dmc.pt", local / "models" / "dmc.pt")
    same_log(cluster / "results" / "train" / "log.csv", local / "results" / "train" / "log.csv")
    # a killed job's outputs were redone, not trusted: nothing half-written is left
    assert not [p for p in (cluster / "models").rglob("*") if ".tmp-" in p.name]


def test_dvc_repro_with_snakemake_profile_sends_jobs_to_slurm(slurm, slurm_run):
    """README: `SNAKEMAKE_PROFILE=workflow/profiles/slurm dvc repro`."""
    proj, local = slurm_run["cluster"], slurm_run["local"]
    before = {j["id"] for j in slurm.jobs()}
    env = dict(slurm_run["env"], SNAKEMAKE_PROFILE=str(slurm_run["profile"]))
    out = sh("dvc repro synth", proj, env=env)
    assert "Running stage 'synth'" in out
    new = [j for j in slurm.jobs() if j["id"] not in before]
    assert sorted(rule_of(j) for j in new) == ["synth_evalset"] * 3 + ["synth_videos"], new
    assert all(j["state"] == "COMPLETED" and j["partition"] == CPU_PARTITION for j in new), new
    for name in ("videos", "ground_truth"):
        assert tree_hashes(proj / "data" / "synth" / name) == tree_hashes(local / "data" / "synth" / name)
    assert {"esc50", "dcase"} <= {p.name for p in (proj / "data" / "synth").iterdir()}
    assert "up to date" in sh("dvc status synth", proj)


# -- DVC remote over SSH ------------------------------------------------------------------------

@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    server = SSHServer(tmp_path_factory.mktemp("sshd"))
    try:
        yield server.start()
    finally:
        server.stop()


def ssh_remote(project: Path, server: SSHServer, store: Path) -> None:
    sh(f"dvc remote add -d store ssh://root@127.0.0.1:{server.port}{store}", project)
    sh(f"dvc remote modify --local store keyfile {server.key}", project)


def remote_files(store: Path) -> list[Path]:
    return [p for p in store.rglob("*") if p.is_file()]


def assert_store_intact(store: Path) -> None:
    """Every object under its final name in the remote holds exactly the bytes its name says."""
    objects = [p for p in remote_files(store) if re.fullmatch(r"[0-9a-f]{30}(\.dir)?", p.name)]
    assert objects
    for p in objects:
        md5 = hashlib.md5(p.read_bytes()).hexdigest()
        assert p.parent.name + p.name.removesuffix(".dir") == md5, f"corrupt object {p}"


def test_dvc_ssh_remote_push_pull_and_an_interrupted_push(sshd, tmp_path):
    proj = make_project(tmp_path / "a")
    sh("dvc repro synth", proj)
    # enough bytes that a push takes a while: 120 files of 1 MiB, tracked with `dvc add`
    blobs = proj / "blobs"
    blobs.mkdir()
    for i in range(120):
        (blobs / f"{i:03d}.bin").write_bytes(os.urandom(1 << 20))
    sh("dvc add blobs && git add -A && git -c user.name=t -c user.email=t@t commit -qm data", proj)
    store = tmp_path / "store"
    store.mkdir()
    ssh_remote(proj, sshd, store)
    sh("git add -A && git -c user.name=t -c user.email=t@t commit -qm remote", proj)

    # the server dies (listener and open connections, SIGKILL) while the push is under way
    push = subprocess.Popen("dvc push -j 1", cwd=proj, env=ENV, shell=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_until("the push to start writing", lambda: len(remote_files(store)) >= 5, 300, interval=0.05)
        sshd.stop(signal.SIGKILL)
        out = push.communicate(timeout=300)[0]
    finally:
        if push.poll() is None:
            kill_tree(push.pid)
    assert push.returncode != 0, out
    pushed_before = len(remote_files(store))
    assert_store_intact(store)
    status = sh("dvc status -c", proj, check=False)
    assert "new:" in status or "missing" in status, status      # the remote lacks some objects

    sshd.start()
    out = sh("dvc push", proj)
    assert "pushed" in out
    assert "in sync" in sh("dvc status -c", proj)
    assert_store_intact(store)
    assert len(remote_files(store)) > pushed_before

    # a fresh clone pulls everything; `dvc repro` then has nothing to do
    clone = tmp_path / "b"
    sh(f"git clone -q {proj} {clone}", tmp_path)
    sh(f"dvc remote modify --local store keyfile {sshd.key}", clone)
    sh("dvc pull synth blobs.dvc", clone)
    assert tree_hashes(clone / "data") == tree_hashes(proj / "data")
    assert tree_hashes(clone / "blobs") == tree_hashes(proj / "blobs")
    out = sh("dvc repro synth", clone)
    assert "Running stage" not in out and "didn't change, skipping" in out, out
    assert "up to date" in sh("dvc status synth blobs.dvc", clone)


# -- torchrun across two "nodes" ----------------------------------------------------------------

@pytest.fixture(scope="module")
def ddp_corpus(tmp_path_factory):
    return decode_corpus(tmp_path_factory.mktemp("ddp-corpus"), 32, seed=5) / "decoded"


def ddp_params(path: Path, **kw) -> Path:
    return write_params(path, with_overrides(load_default_params(), train__device="cpu", train__num_workers=0,
                                             train__warmup_steps=2, **kw))


def train_cmd(params: Path, decoded: Path, out: Path) -> list[str]:
    return ["-m", "dmc.pipeline.cli", "--params", str(params), "train", "--decoded", str(decoded),
            "--out", str(out / "m.pt"), "--train-log", str(out / "log.csv"), "--checkpoints", str(out / "ck")]


def two_nodes(params: Path, decoded: Path, out: Path) -> list[subprocess.Popen]:
    """Two torchrun agents ("nodes") on localhost, one worker each, meeting at a c10d rendezvous."""
    port = free_port()
    out.mkdir(parents=True, exist_ok=True)
    procs = []
    for node in range(2):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
               "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "dmc-test",
               "--max-restarts", "0", *train_cmd(params, decoded, out)]
        procs.append(subprocess.Popen(cmd, env=ENV, stdout=open(out / f"node{node}.log", "w"),
                                      stderr=subprocess.STDOUT, start_new_session=True))
    return procs


def wait_all(procs, timeout=600) -> list[int]:
    try:
        return [p.wait(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                kill_tree(p.pid)


def node_logs(out: Path) -> str:
    return "\n".join((out / f"node{i}.log").read_text()[-3000:] for i in range(2))


def test_torchrun_two_nodes_equal_one_process_with_the_same_global_batch(ddp_corpus, tmp_path):
    p2 = ddp_params(tmp_path / "p2.yaml", train__epochs=1, train__batch_size=4)
    assert wait_all(two_nodes(p2, ddp_corpus, tmp_path / "nodes")) == [0, 0], node_logs(tmp_path / "nodes")
    p1 = ddp_params(tmp_path / "p1.yaml", train__epochs=1, train__batch_size=8)
    single = tmp_path / "single"
    proc = subprocess.run([sys.executable, *train_cmd(p1, ddp_corpus, single)], env=ENV, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    nodes = tmp_path / "nodes"
    # the same files, the same number of optimizer steps per epoch (global batch 2 x 4 = 8)
    files = lambda d: sorted(p.relative_to(d).as_posix() for p in d.rglob("*") if p.suffix in (".pt", ".csv"))
    assert files(nodes) == files(single) == ["ck/last.pt", "log.csv", "m.pt"]
    a, b = pd.read_csv(nodes / "log.csv"), pd.read_csv(single / "log.csv")
    assert list(a.epoch) == list(b.epoch) == [0, 1] and list(a.step) == list(b.step)
    ma, mb = (torch.load(d / "m.pt", weights_only=True) for d in (nodes, single))
    assert ma["step"] == mb["step"] and ma["config"] == mb["config"]
    assert {k: v.shape for k, v in ma["model"].items()} == {k: v.shape for k, v in mb["model"].items()}
    # rank 1 wrote nothing: the files are rank 0's, written once
    assert "resumed" not in node_logs(nodes)


def test_torchrun_two_nodes_worker_killed_then_resumed(ddp_corpus, tmp_path):
    p = ddp_params(tmp_path / "p.yaml", train__epochs=2, train__batch_size=4, train__checkpoint_every=2)
    straight = tmp_path / "straight"
    assert wait_all(two_nodes(p, ddp_corpus, straight)) == [0, 0], node_logs(straight)

    killed = tmp_path / "killed"
    procs = two_nodes(p, ddp_corpus, killed)
    try:
        # mid-epoch, after the first checkpoint: SIGKILL the worker of node 1 (the agent's child)
        wait_until("a checkpoint", (killed / "ck" / "last.pt").exists, 600, interval=0.1)
        state = torch.load(killed / "ck" / "last.pt", weights_only=True)
        worker = wait_until("node 1's worker", lambda: next(iter(
            c for c in children(procs[1].pid) if b"dmc.pipeline.cli" in Path(f"/proc/{c}/cmdline").read_bytes()), None), 60)
        os.kill(worker, signal.SIGKILL)
        codes = wait_all(procs, timeout=300)
    finally:
        for pr in procs:
            if pr.poll() is None:
                kill_tree(pr.pid)
    assert codes[0] != 0 and codes[1] != 0, (codes, node_logs(killed))
    assert not (killed / "m.pt").exists()                       # no model, not even a partial one
    assert not [x for x in killed.rglob("*") if ".tmp-" in x.name]
    ck = torch.load(killed / "ck" / "last.pt", weights_only=True)
    assert ck["step"] >= state["step"] >= 2

    assert wait_all(two_nodes(p, ddp_corpus, killed)) == [0, 0], node_logs(killed)
    assert re.search(r"resumed from .* at step \d+", node_logs(killed))
    same_model(killed / "m.pt", straight / "m.pt")
    same_log(killed / "log.csv", straight / "log.csv")
