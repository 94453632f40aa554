"""Training: accuracy and clustering sharpness rise, the test split is never read for a choice,
checkpoints resume to identical weights after SIGKILL, DDP runs."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import load_default_params, with_overrides, write_params
from dmc.model.dataset import ShardDataset, split_of
from dmc.model.training import LOG_FIELDS, Trainer, epoch_batches, load_model


def fast_params(**over):
    base = dict(train__epochs=2, train__batch_size=16, train__checkpoint_every=3, train__warmup_steps=0,
                train__lr=1e-3, train__device="cpu")
    base.update(over)
    return with_overrides(load_default_params(), **base)


def test_epoch_batches_are_disjoint_across_processes_and_seeded():
    a = epoch_batches(100, 8, seed=0, epoch=3, rank=0, world=2)
    b = epoch_batches(100, 8, seed=0, epoch=3, rank=1, world=2)
    flat_a, flat_b = sum(a, []), sum(b, [])
    assert not set(flat_a) & set(flat_b) and len(a) == len(b) == 6
    assert a == epoch_batches(100, 8, seed=0, epoch=3, rank=0, world=2)
    assert a != epoch_batches(100, 8, seed=0, epoch=4, rank=0, world=2)


@pytest.mark.slow
def test_short_training_raises_heldout_correspondence(small_corpus, tmp_path):
    # a small test split: on 96 videos, 0.2 of them leave too few to learn correspondence in 12 epochs
    p = fast_params(train__epochs=12, train__batch_size=32, train__checkpoint_every=0, train__test_fraction=0.05)
    log = tmp_path / "log.csv"
    last = Trainer(p, small_corpus / "decoded", tmp_path / "m.pt", log, tmp_path / "ck").fit()
    rows = pd.read_csv(log)
    assert list(rows.epoch) == list(range(13))
    init = rows.val_acc.iloc[0]
    assert last["val_acc"] >= init + 0.15, rows[["epoch", "train_loss", "val_acc"]].to_string()
    assert rows.train_loss.iloc[-1] < rows.train_loss.iloc[1]
    model, config = load_model(tmp_path / "m.pt")
    assert config["train"]["clusters"] == p["train"]["clusters"]
    # the clustering: per-epoch sharpness of both modalities on the validation split
    assert list(rows.columns) == LOG_FIELDS
    k = p["train"]["clusters"]
    for m in ("audio", "visual"):
        assert ((rows[f"val_{m}_max_assign"] >= 1 / k - 1e-6) & (rows[f"val_{m}_max_assign"] <= 1)).all()
        assert ((rows[f"val_{m}_entropy"] >= 0) & (rows[f"val_{m}_entropy"] <= 1 + 1e-6)).all()
        assert ((rows[f"val_{m}_clusters_used"] >= 1 - 1e-6) & (rows[f"val_{m}_clusters_used"] <= k + 1e-6)).all()
        # training lifts the assignments above uniform (1/k) and above where they started
        assert rows[f"val_{m}_max_assign"].iloc[-1] > 1 / k + 0.01, rows.filter(like="max_assign").to_string()
        assert rows[f"val_{m}_max_assign"].iloc[-1] > rows[f"val_{m}_max_assign"].iloc[0]


def poison_test_split(decoded, params):
    """Overwrite the frames and log-mel of every test-split segment with extreme values."""
    index = pd.read_csv(decoded / "index.csv", keep_default_na=False)
    test = index[index.video.map(lambda v: split_of(v, params)) == "test"]
    assert len(test) and test.video.nunique() < index.video.nunique()
    for shard, rows in test.groupby("shard"):
        frames = np.load(decoded / shard / "frames.npy", mmap_mode="r+")
        mel = np.load(decoded / shard / "logmel.npy", mmap_mode="r+")
        frames[rows.row.to_numpy()] = 255 - frames[rows.row.to_numpy()]
        mel[rows.row.to_numpy()] = 50.0
        frames.flush()
        mel.flush()
    return test.video.nunique()


def test_no_choice_reads_the_test_split(small_corpus, tmp_path):
    """Training (weights, per-epoch log, val report) is the same whatever the test videos hold;
    only the test report changes."""
    p = fast_params(train__epochs=2, train__batch_size=16, train__checkpoint_every=0)
    clean = tmp_path / "clean"
    shutil.copytree(small_corpus / "decoded", clean)
    poisoned = tmp_path / "poisoned"
    shutil.copytree(small_corpus / "decoded", poisoned)
    n_test = poison_test_split(poisoned, p)
    results = {}
    for name, decoded in (("clean", clean), ("poisoned", poisoned)):
        d = tmp_path / f"run-{name}"
        Trainer(p, decoded, d / "m.pt", d / "log.csv", d / "ck", metrics_json=d / "metrics.json").fit()
        results[name] = (torch.load(d / "m.pt", weights_only=True)["model"],
                         pd.read_csv(d / "log.csv").drop(columns=["seconds", "samples_per_s"]),
                         json.loads((d / "metrics.json").read_text()))
    (wa, la, ma), (wb, lb, mb) = results["clean"], results["poisoned"]
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key
    pd.testing.assert_frame_equal(la, lb)
    val = {k: v for k, v in ma.items() if ".val." in k}
    assert val and val == {k: v for k, v in mb.items() if ".val." in k}
    assert ma["correspondence.test.videos"] == mb["correspondence.test.videos"] == n_test
    # the poison did reach the test report: its numbers are not those of the clean data
    test_keys = [k for k in ma if ".test." in k and not k.endswith(("videos", "segments"))]
    assert any(ma[k] != mb[k] for k in test_keys), (ma, mb)


def run_train(params_path, out, env=None):
    return subprocess.Popen([sys.executable, "-m", "dmc.pipeline.cli", "--params", str(params_path), "train",
                             "--decoded", str(out["decoded"]), "--out", str(out["model"]), "--train-log",
                             str(out["log"]), "--checkpoints", str(out["ck"])],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)


@pytest.mark.slow
def test_sigkill_and_resume_gives_identical_weights(small_corpus, tmp_path):
    p = write_params(tmp_path / "params.yaml", fast_params(train__epochs=3))
    runs = {}
    for name in ("straight", "killed"):
        d = tmp_path / name
        runs[name] = {"decoded": small_corpus / "decoded", "model": d / "m.pt", "log": d / "log.csv", "ck": d / "ck"}
    assert run_train(p, runs["straight"]).wait(timeout=600) == 0
    report = json.loads((runs["straight"]["log"].parent / "metrics.json").read_text())   # beside the log
    assert 0 <= report["correspondence.test.acc"] <= 1 and report["correspondence.val.videos"] > 0

    proc = run_train(p, runs["killed"])
    ckpt = runs["killed"]["ck"] / "last.pt"
    deadline = time.time() + 300
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    step_at_kill = torch.load(ckpt, weights_only=True)["step"]
    assert not runs["killed"]["model"].exists() and 0 < step_at_kill
    resumed = run_train(p, runs["killed"])
    output = resumed.communicate(timeout=600)[0].decode()
    assert resumed.returncode == 0 and f"resumed from {ckpt} at step {step_at_kill}" in output

    a = torch.load(runs["straight"]["model"], weights_only=True)["model"]
    b = torch.load(runs["killed"]["model"], weights_only=True)["model"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    pd.testing.assert_frame_equal(pd.read_csv(runs["straight"]["log"]).drop(columns=["seconds", "samples_per_s"]),
                                  pd.read_csv(runs["killed"]["log"]).drop(columns=["seconds", "samples_per_s"]))


@pytest.mark.slow
def test_checkpoint_of_other_params_is_not_resumed(small_corpus, tmp_path):
    out = {"decoded": small_corpus / "decoded", "model": tmp_path / "m.pt", "log": tmp_path / "log.csv",
           "ck": tmp_path / "ck"}
    p1 = write_params(tmp_path / "p1.yaml", fast_params(train__epochs=1))
    assert run_train(p1, out).wait(timeout=600) == 0
    p2 = write_params(tmp_path / "p2.yaml", fast_params(train__epochs=1, train__clusters=4))
    proc = run_train(p2, out)
    text = proc.communicate(timeout=600)[0].decode()
    assert proc.returncode == 0 and "from other params or data; starting afresh" in text


@pytest.mark.slow
def test_torchrun_ddp_two_gloo_processes(small_corpus, tmp_path):
    p = write_params(tmp_path / "params.yaml", fast_params(train__epochs=1, train__batch_size=8))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "dmc.pipeline.cli", "--params", str(p), "train", "--decoded", str(small_corpus / "decoded"),
           "--out", str(tmp_path / "m.pt"), "--train-log", str(tmp_path / "log.csv"), "--checkpoints", str(tmp_path / "ck")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = pd.read_csv(tmp_path / "log.csv")
    assert list(rows.epoch) == [0, 1]
    # each process takes every other item of the epoch's permutation: half the steps of one process
    n_train = len(ShardDataset.of_split(small_corpus / "decoded", load_default_params(), "train"))
    assert rows.step.iloc[-1] == len(epoch_batches(n_train, 8, 0, 0, 0, 2)) == n_train // 2 // 8
    load_model(tmp_path / "m.pt")


def test_checkpoint_resumes_whatever_the_trainers_device(small_corpus, tmp_path):
    """Found on the GPU machine: `try_resume` mapped the whole checkpoint to the trainer's device, so
    the saved CPU RNG state became a CUDA tensor and every resume on a GPU failed. A trainer whose
    device is not the CPU (here "meta", the one such device every machine has) must still resume."""
    p = fast_params(train__epochs=1, train__batch_size=16, train__checkpoint_every=0)
    Trainer(p, small_corpus / "decoded", tmp_path / "m.pt", tmp_path / "log.csv", tmp_path / "ck").fit()
    saved = torch.load(tmp_path / "ck" / "last.pt", map_location="cpu", weights_only=True)
    tr = Trainer(p, small_corpus / "decoded", tmp_path / "m2.pt", tmp_path / "log2.csv", tmp_path / "ck")
    tr.device = torch.device("meta")
    assert tr.try_resume() and tr.step == saved["step"]
    assert torch.equal(torch.get_rng_state(), saved["torch_rng"])
    assert all(torch.equal(v, saved["model"][k]) for k, v in tr.model.state_dict().items())


@pytest.mark.slow
def test_torchrun_one_process_uses_ddp_and_writes_the_plain_runs_files(small_corpus, tmp_path):
    """`torchrun --nproc_per_node 1` runs through the process group and DDP (how the GPU check smoke-
    tests nccl on one GPU); on the CPU (gloo) the model it writes is byte-identical to a plain run's."""
    p = write_params(tmp_path / "params.yaml", fast_params(train__epochs=1, train__batch_size=8, train__checkpoint_every=0))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    runs = {"plain": [sys.executable, "-m", "dmc.pipeline.cli"],
            "torchrun": [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
                         "-m", "dmc.pipeline.cli"]}
    for name, head in runs.items():
        out = tmp_path / name
        cmd = head + ["--params", str(p), "train", "--decoded", str(small_corpus / "decoded"), "--out",
                      str(out / "m.pt"), "--train-log", str(out / "log.csv"), "--checkpoints", str(out / "ck")]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        if name == "torchrun":
            assert "DDP over a gloo process group of 1 process(es)" in proc.stderr, proc.stderr[-3000:]
    files = {n: sorted(f.relative_to(tmp_path / n) for f in (tmp_path / n).rglob("*") if f.is_file()) for n in runs}
    assert files["plain"] == files["torchrun"]
    assert (tmp_path / "plain/m.pt").read_bytes() == (tmp_path / "torchrun/m.pt").read_bytes()


@pytest.mark.slow
def test_bad_batch_size_refused_before_training(small_corpus, tmp_path):
    p = fast_params(train__batch_size=100000)
    with pytest.raises(ValueError, match="train.batch_size"):
        Trainer(p, small_corpus / "decoded", tmp_path / "m.pt", tmp_path / "log.csv", tmp_path / "ck")


def test_saved_model_carries_the_clustering_structure(small_corpus, tmp_path):
    """A model trained away from the clustering's code defaults (squash both, uniform first
    centers, what models saved before these keys existed were trained with) loads with its own
    structure; at the code defaults the saved config has no such keys (such models hash the same)."""
    cases = (({"train__squash": "both", "train__cluster_init": "uniform"}, ("both", "uniform"), (False, False)),
             ({"train__squash": "projected", "train__cluster_init": "spread"}, ("projected", "spread"), (True, True)),
             ({"train__squash": "none", "train__cluster_init": "uniform"}, ("none", "uniform"), (True, False)))
    for i, (over, expected, saved) in enumerate(cases):
        p = fast_params(train__epochs=1, train__batch_size=16, train__checkpoint_every=0, **over)
        path = tmp_path / f"m{i}.pt"
        Trainer(p, small_corpus / "decoded", path, tmp_path / "log.csv", tmp_path / "ck").fit()
        model, config = load_model(path)
        assert (model.clustering.squash, model.clustering.init) == expected
        assert ("squash" in config["train"], "cluster_init" in config["train"]) == saved


def test_a_checkpoint_of_other_data_with_the_same_index_is_not_resumed(tmp_path):
    """Found when synth.portable_audio became the default: the clips, segments and index stayed the
    same, only the audio of a few clips changed, and `dmc train` resumed the old run's checkpoint
    (its fingerprint read the index alone). One changed log-mel value must change the fingerprint."""
    from dmc.model.training import fingerprint

    params = load_default_params()
    shard = tmp_path / "shard-00000"
    shard.mkdir()
    (tmp_path / "index.csv").write_text("shard,row,video\nshard-00000,0,vid_00000.mp4\n")
    logmel = np.zeros((1, 41, 64), np.float32)
    np.save(shard / "logmel.npy", logmel)
    np.save(shard / "frames.npy", np.zeros((1, 64, 64, 3), np.uint8))
    first = fingerprint(params, tmp_path)
    assert fingerprint(params, tmp_path) == first
    logmel[0, 3, 5] = 1e-3
    np.save(shard / "logmel.npy", logmel)
    assert fingerprint(params, tmp_path) != first
