"""A real corpus end to end, then switching between results with no manual step.

`dvc repro` runs every stage on a corpus without ground truth (`data.ground_truth: null`,
the videos in a folder of the user's own). Then each way of switching results (`dvc checkout`,
`dvc pull` from a remote, `git checkout` of another committed result, `dvc exp apply`) must
leave `dvc status` clean and `snakemake -n` with nothing to do, without `make sync`."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, load_default_params, with_overrides, write_params

BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"
ENV = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", DVC_NO_ANALYTICS="1")
ENV.pop("DMC_NO_DVC_SYNC", None)
GIT = "git -c user.name=t -c user.email=t@t"

pytestmark = pytest.mark.slow


def sh(cmd, cwd, check=True, env=ENV, timeout=1800):
    proc = subprocess.run(cmd, cwd=cwd, env=env, shell=True, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout + proc.stderr


def assert_in_agreement(d: Path):
    """What every switch must leave: both tools see nothing to do."""
    dry = sh("snakemake --cores 2 -n", d)
    assert "Nothing to be done" in dry, dry[-3000:]
    status = sh("dvc status", d)
    assert "Data and pipelines are up to date" in status, status


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """A project on a 'real' corpus: videos in corpus/videos (not made by the pipeline), no
    ground truth; reproduced once with `dvc repro`, committed on branch main."""
    d = tmp_path_factory.mktemp("real")
    for name in ("Snakefile", "dvc.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, d / name)
    for name in ("workflow", "src", ".dvc"):
        shutil.copytree(ROOT / name, d / name, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "tmp", "cache", "config.local"))
    p = with_overrides(load_default_params(), synth__size="tiny", synth__videos=64, synth__video_seconds=4.0, synth__dcase_seconds=10.0,
                       synth__esc50_classes=8, decode__num_shards=2, train__epochs=1,
                       train__batch_size=8, evaluate__C_grid=[1.0], localize__clips_for_overlays=2,
                       data__videos="corpus/videos", data__ground_truth=None)
    write_params(d / "params.yaml", p)
    sh("dmc synth videos --out corpus/videos --ground-truth corpus/unused && rm -r corpus/unused", d)
    (d / ".gitignore").write_text("/.snakemake/\n/logs/\n__pycache__/\n/corpus/\n")
    sh(f"git init -q -b main && {GIT} add -A && {GIT} commit -qm init", d)
    sh(f"make -f {ROOT / 'Makefile'} hooks BIN={BIN}", d)      # what `make install` does: DVC's post-checkout hook
    return d


def test_dvc_repro_on_a_real_corpus_runs_to_the_end(real):
    d = real
    assert len(list((d / "corpus" / "videos").iterdir())) > 0
    out = sh("dvc repro", d)                                   # exit 0 (sh checks)
    for stage in ("synth", "decode", "train", "evalset@esc50", "evalset@esc10", "evalset@dcase", "extract", "evaluate",
                  "localize"):
        assert f"Running stage '{stage}'" in out
    m = json.loads((d / "results/localization_metrics.json").read_text())
    assert 0 <= m["correspondence.dmc.acc"] <= 1 and 0 <= m["correspondence.random_init.acc"] <= 1
    assert m["correspondence.n_pairs"] > 0 and m["localization.n_pairs"] == 0
    assert m["localization.dmc.pointing"] is None and m["multisource.dmc.acc"] is None   # not applicable
    details = json.loads((d / "results/localization/details.json").read_text())
    assert details["ground_truth"] is None and "not applicable" in details["box_metrics"]
    assert len(list((d / "results/localization/overlays").glob("*.png"))) == 2
    assert "n/a" in (d / "results/localization/table.md").read_text()
    assert_in_agreement(d)
    sh(f"{GIT} add -A && {GIT} commit -qm baseline", d)


def test_dvc_checkout(real):
    d = real
    shutil.rmtree(d / "data" / "features")
    (d / "models" / "dmc.pt").unlink()
    sh("dvc checkout", d)                                      # same content, new mtimes
    # without the agreement Snakemake would redo what DVC restored (the test can fail)
    plain = sh("snakemake --cores 2 -n", d, env=dict(ENV, DMC_NO_DVC_SYNC="1"))
    assert "Nothing to be done" not in plain and "rule evaluate:" in plain
    assert_in_agreement(d)


def test_dvc_pull_from_a_local_remote(real, tmp_path):
    d = real
    sh(f"dvc remote add -d --local store {tmp_path / 'remote'}", d)
    sh("dvc push", d)
    shutil.rmtree(d / ".dvc" / "cache")
    for name in ("data", "models"):
        shutil.rmtree(d / name)
    sh("git checkout -- .", d)                                 # a fresh clone: git's files (.gitignore) back
    sh("dvc pull", d)
    assert_in_agreement(d)


def test_git_checkout_and_dvc_exp_apply(real):
    d = real
    out = sh("dvc exp run -S train.clusters=4 --name c4", d)   # a second result, in the workspace
    assert "Running stage 'train'" in out and "Running stage 'decode'" not in out
    c4 = (d / "models/dmc.pt").read_bytes()
    sh(f"git checkout -q -b c4 && {GIT} add -A && {GIT} commit -qm c4", d)

    sh("git checkout -q main", d)                              # the hook restores main's data
    assert "clusters: 10" in (d / "params.yaml").read_text()
    assert (d / "models/dmc.pt").read_bytes() != c4
    assert_in_agreement(d)

    sh("dvc exp apply c4", d)
    assert "clusters: 4" in (d / "params.yaml").read_text()
    assert (d / "models/dmc.pt").read_bytes() == c4
    assert_in_agreement(d)
