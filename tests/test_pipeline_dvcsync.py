"""Snakemake follows DVC's record (src/dmc/pipeline/dvcsync.py): which steps it marks current, when it
looks again, when it stays out of the way. The four real switches: tests/test_switches.py."""

import os
from types import SimpleNamespace

from dmc.pipeline import dvcsync
from dmc.pipeline import graph

ALL = {s.name for s in graph.STEPS if not s.foreach} | {f"{s.name}@{k}" for s in graph.STEPS if s.foreach
                                                      for k in s.foreach}


def parts(cmd):
    i, j = cmd.index("--allowed-rules"), cmd.index("--")
    return cmd[i + 1:j], cmd[j + 1:]


def test_touch_only_the_steps_whose_every_stage_is_clean(params):
    assert dvcsync.touch_command(set(), params) is None
    rules, targets = parts(dvcsync.touch_command({"synth", "decode", "evalset@esc50"}, params))
    assert rules == [*graph.step("synth").rules, *graph.step("decode").rules]   # evalset@dcase is not clean
    assert targets == ["synth", "decode"]
    rules, targets = parts(dvcsync.touch_command(ALL, params))
    assert set(rules) == {r for s in graph.STEPS for r in s.rules}
    assert "data/evalsets/esc50/logmel.npy" in targets and "data/evalsets/dcase/logmel.npy" in targets
    assert "--touch" in dvcsync.touch_command(ALL, params)


def test_fingerprint_follows_the_lock_params_and_file_times(tmp_path, params):
    (tmp_path / "dvc.lock").write_text("a")
    (tmp_path / "params.yaml").write_text("p")
    model = tmp_path / graph.MODEL
    model.parent.mkdir(parents=True)
    model.write_bytes(b"m")
    first = dvcsync.fingerprint(tmp_path, params)
    assert dvcsync.fingerprint(tmp_path, params) == first
    os.utime(model, ns=(1, 10**18))                       # same content, another mtime (dvc checkout)
    second = dvcsync.fingerprint(tmp_path, params)
    assert second != first
    (tmp_path / "dvc.lock").write_text("b")               # another result (exp apply, git checkout)
    assert dvcsync.fingerprint(tmp_path, params) != second


def test_stays_out_of_dvc_stages_and_remote_jobs(tmp_path, params, monkeypatch):
    (tmp_path / ".dvc").mkdir()
    (tmp_path / "dvc.lock").write_text("")
    called = []
    monkeypatch.setattr(dvcsync, "clean_stages", lambda root: called.append(root) or set())
    main, job = SimpleNamespace(is_main_process=True), SimpleNamespace(is_main_process=False)
    monkeypatch.setenv("DVC_STAGE", "train")              # inside `dvc repro`: DVC already decided
    dvcsync.agree(main, params, tmp_path)
    monkeypatch.delenv("DVC_STAGE")
    dvcsync.agree(job, params, tmp_path)                  # a cluster job re-reading the Snakefile
    assert not called and not (tmp_path / dvcsync.STATE).exists()
    monkeypatch.delenv(dvcsync.OFF, raising=False)
    dvcsync.agree(main, params, tmp_path)                 # nothing clean: nothing to touch, state recorded
    assert called == [tmp_path] and (tmp_path / dvcsync.STATE).is_file()
    dvcsync.agree(main, params, tmp_path)                 # nothing changed since: DVC is not asked again
    assert called == [tmp_path]
