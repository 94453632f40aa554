"""``dmc compare SET [SET ...]``: the committed default against a change, under N seeds, as DVC experiments.

1. **check** (before any work): each SET is ``key=value`` (the value read as YAML, as
   ``dvc exp run -S`` reads it) naming one parameter of params.yaml (not a section, not the
   seed, not ``sweeps``); the params with every SET must pass the schema and its cross-key
   checks (:func:`dmc.pipeline.params.validate_params`), differ from the default, and N >= 2.
2. **runs**: the default and the change under seeds 0 .. N-1. A run already done is *reused*,
   not retrained (:func:`find_done`): HEAD (the committed run) or any experiment (``refs/exps``,
   whatever its baseline commit) whose params.yaml equals the run's params (but ``sweeps``),
   whose dvc.yaml equals this checkout's and whose dvc.lock records, for every dependency that
   git tracks (the code), the MD5 of this checkout's file, with metrics files that match the
   lock. The others are queued (``dvc exp run --queue -S seed=S [-S key=value]``), unless
   already queued or running, and run (``dvc exp run --run-all --jobs J``; J runs at once).
3. **table**: each run's per-unit files are read from its commit (``git show <rev>:<path>``:
   they are git-tracked, ``cache: false``), paired by seed and unit, and written by
   :mod:`dmc.pipeline.comparison` to ``results/compare/<slug>/`` (compare.md, compare.csv,
   compare.png, metrics.json, runs.csv); the differences also go to
   ``results/compare/metrics.json`` under the slug (a top-level metrics file of dvc.yaml:
   ``dvc exp show`` displays them). ``timing.json`` beside them: when the command started and
   ended, its wall-clock seconds, the runs made and reused, the jobs, the CPU and its cores (what
   a comparison costs on this machine; docs/pipeline.md includes it).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import yaml

from dmc.atomic import atomic_file
from dmc.errors import DmcError
from dmc.pipeline.experiments import (IGNORED_KEYS, Run, _flatten, _fmt_value, _same, exp_rows, experiment_rows,
                                      queue_command, run_command, sh)
from dmc.pipeline.params import ParamsError, get_dotted, set_dotted, validate_params
from dmc.pipeline.comparison import CHANGE, DEFAULT, RunFiles

OUT = Path("results/compare")
INDEX = OUT / "metrics.json"
#: the per-unit and metrics files of a run, read from its commit
FILES = {"pairs": "results/heldout/pairs.csv", "clips": "results/heldout/clips.csv",
         "esc": "results/heldout/esc50_clips.csv", "dcase": "results/tables/dcase_recordings.csv"}
METRIC_FILES = ("results/metrics.json", "results/heldout_metrics.json")
QUEUED = ("Queued", "Running")


class CompareError(DmcError, ValueError):
    """A comparison cannot be planned or made (one line saying why)."""


# ---------------------------------------------------------------------------------------------
# 1. the check
# ---------------------------------------------------------------------------------------------
def parse_sets(params: dict, sets: list[str]) -> dict[str, Any]:
    """{dotted key: value} of the SETs; ParamsError / CompareError naming the bad one."""
    if not sets:
        raise CompareError("give at least one SET key=value (e.g. train.clusters=5)")
    base = {k: v for k, v in params.items() if k != "sweeps"}
    out: dict[str, Any] = {}
    for item in sets:
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise CompareError(f"SET {item!r}: not key=value")
        try:
            current = get_dotted(base, key)
        except KeyError:
            raise ParamsError(f"SET {item}: {key}: not a key of params.yaml") from None
        if isinstance(current, (dict, list)) or key.split(".")[0] in IGNORED_KEYS:
            raise ParamsError(f"SET {item}: {key}: names a section, a list, the seed or the sweeps, not one "
                              "parameter")
        if key in out:
            raise CompareError(f"SET {item}: {key} is set twice")
        try:
            out[key] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            raise ParamsError(f"SET {item}: {key}: {text!r} is not a YAML value") from None
    changed = base
    for key, value in out.items():
        changed = set_dotted(changed, key, value)
    validate_params(changed, source="SET")                  # one line naming the key
    if all(_same(get_dotted(base, k), v) for k, v in out.items()):
        raise CompareError(f"SET {' '.join(sets)}: the default already has these values: nothing to compare")
    return out


def check_seeds(n: int) -> list[int]:
    if n < 2:
        raise CompareError(f"--seeds {n}: at least 2 seeds are needed to tell a change from the seed-to-seed noise")
    return list(range(n))


def label(overrides: dict) -> str:
    return " ".join(f"{k}={_fmt_value(v)}" for k, v in overrides.items())


def slug(overrides: dict) -> str:
    """The folder name of a comparison: ``train.clusters=5`` (several SETs joined by ``+``)."""
    return re.sub(r"[^A-Za-z0-9._=+-]", "_", "+".join(f"{k}={_fmt_value(v)}" for k, v in overrides.items()))


def default_jobs(n_runs: int, cpus: int | None = None) -> int:
    """Experiments run at once: one per 4 cores (each run's Snakemake and torch use several), at least 1."""
    cpus = cpus or os.cpu_count() or 1
    return max(1, min(n_runs, cpus // 4))


# ---------------------------------------------------------------------------------------------
# 2. the runs: reuse what is done
# ---------------------------------------------------------------------------------------------
def _relevant(flat: dict) -> dict:
    return {k: v for k, v in flat.items() if k.split(".")[0] != "sweeps"}


def run_params(params: dict, overrides: dict, seed: int) -> dict:
    """The flat params (but ``sweeps``) of one run: params.yaml, the overrides, the seed."""
    p = {k: v for k, v in params.items() if k != "sweeps"}
    for key, value in {**overrides, "seed": seed}.items():
        p = set_dotted(p, key, value)
    return _flatten(p)


def _params_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)


def _git(cwd, *args, binary: bool = False):
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=not binary)
    return proc.stdout if proc.returncode == 0 else None


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class Checkout:
    """This checkout's dvc.yaml text and the MD5 of each git-tracked file (the code)."""

    def __init__(self, cwd: str | Path = "."):
        self.cwd = Path(cwd)
        self.dvc_yaml = (self.cwd / "dvc.yaml").read_text() if (self.cwd / "dvc.yaml").is_file() else None
        self.tracked = set((_git(cwd, "ls-files") or "").splitlines())
        self._md5: dict[str, str | None] = {}

    def md5(self, path: str) -> str | None:
        if path not in self._md5:
            f = self.cwd / path
            self._md5[path] = _md5(f.read_bytes()) if f.is_file() else None
        return self._md5[path]


def _same_code(lock: dict, here: Checkout) -> bool:
    """Every dependency in the lock that git tracks here has this checkout's MD5."""
    from dmc.pipeline.provenance import same_code

    deps = [d for st in (lock.get("stages") or {}).values() for d in st.get("deps") or []]
    return same_code(deps, here.md5, lambda path: path in here.tracked)


def _complete(rev: str, lock: dict, cwd) -> bool:
    """The metrics files at ``rev`` are those its dvc.lock records (the run finished and was committed)."""
    outs = {o["path"]: o.get("md5") for st in (lock.get("stages") or {}).values() for o in st.get("outs") or []}
    for path in METRIC_FILES:
        data = _git(cwd, "show", f"{rev}:{path}", binary=True)
        if path not in outs or data is None or _md5(data) != outs[path]:
            return False
    return True


def candidates(cwd: str | Path = ".") -> list[tuple[str, str, str]]:
    """(name, rev, commit time) of HEAD and of every experiment ref (refs/exps/<baseline>/<name>)."""
    out = []
    head = (_git(cwd, "rev-parse", "HEAD") or "").strip()
    if head:
        out.append(("HEAD", head, (_git(cwd, "log", "-1", "--format=%ct", head) or "0").strip()))
    refs = _git(cwd, "for-each-ref", "--format=%(refname) %(objectname) %(committerdate:unix)", "refs/exps") or ""
    for line in refs.splitlines():
        ref, rev, ts = line.split()
        if ref.count("/") >= 4:             # refs/exps/ab/cdef.../<name>, not refs/exps/celery/stash etc.
            out.append((ref.rsplit("/", 1)[-1], rev, ts))
    return out


def find_done(params: dict, configs: dict[str, dict], seeds: list[int], cwd: str | Path = ".",
              log=print) -> dict[tuple[str, int], tuple[str, str]]:
    """{(config, seed): (name, rev)} of the runs already done (see the module doc); the newest
    commit when several match."""
    here = Checkout(cwd)
    want = {(c, s): run_params(params, over, s) for c, over in configs.items() for s in seeds}
    found: dict[tuple[str, int], tuple[str, str, str]] = {}
    for name, rev, ts in candidates(cwd):
        text = _git(cwd, "show", f"{rev}:params.yaml")
        if text is None or _git(cwd, "show", f"{rev}:dvc.yaml") != here.dvc_yaml:
            continue
        flat = _relevant(_flatten(yaml.safe_load(text) or {}))
        key = next((k for k, p in want.items() if _params_equal(flat, p)), None)
        if key is None or (key in found and found[key][2] >= ts):
            continue
        lock = yaml.safe_load(_git(cwd, "show", f"{rev}:dvc.lock") or "{}") or {}
        if _same_code(lock, here) and _complete(rev, lock, cwd):
            found[key] = (name, rev, ts)
    log(f"compare: {len(found)} of {len(want)} runs already done: "
        + (", ".join(f"{c} s{s} ({n})" for (c, s), (n, _, _) in sorted(found.items())) or "none"))
    return {k: (n, r) for k, (n, r, _) in found.items()}


def pending(rows: list[dict], params: dict, configs: dict[str, dict]) -> set[tuple[str, int]]:
    """(config, seed) of the experiments queued or running (rows of dvc.api.exp_show()): the keys
    that differ from the baseline's are exactly a configuration's overrides (and the seed)."""
    base, exps = experiment_rows(rows, params, states=QUEUED)
    out = set()
    for e in exps:
        changed = {k for k in set(e["params"]) | set(base) if k.split(".")[0] not in IGNORED_KEYS
                   and not _same(e["params"].get(k), base.get(k))}
        for c, over in configs.items():
            if changed == set(over) and all(_same(e["params"].get(k), v) for k, v in over.items()):
                if isinstance(e["params"].get("seed"), (int, float)):
                    out.add((c, int(e["params"]["seed"])))
    return out


# ---------------------------------------------------------------------------------------------
# 3. the table
# ---------------------------------------------------------------------------------------------
def read_run(rev: str, cwd: str | Path = ".") -> RunFiles:
    """A run's per-unit tables and flat metrics from its commit (None where a file is absent)."""
    run = RunFiles()
    for attr, path in FILES.items():
        text = _git(cwd, "show", f"{rev}:{path}")
        setattr(run, attr, pd.read_csv(io.StringIO(text), keep_default_na=True) if text else None)
    for path in METRIC_FILES:
        text = _git(cwd, "show", f"{rev}:{path}")
        if text:
            run.metrics.update(_flatten(json.loads(text)))
    return run


def _update_index(index: Path, key: str, numbers: dict) -> None:
    data = json.loads(index.read_text()) if index.is_file() else {}
    data[key] = numbers
    with atomic_file(index) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_timing(path: Path, started: float, finished: float, *, made: int, reused: int, jobs: int) -> dict:
    """What the comparison cost here (``timing.json``): start and end (UTC), wall seconds, runs made
    and reused, jobs at once, the CPU model and its cores."""
    from dmc.pipeline.provenance import cpu_model

    iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))      # noqa: E731
    record = {"started": iso(started), "finished": iso(finished), "wall_s": round(finished - started, 1),
              "runs_made": made, "runs_reused": reused, "jobs": jobs,
              "cpu_model": cpu_model(), "cores": os.cpu_count()}
    with atomic_file(path) as tmp:
        Path(tmp).write_text(json.dumps(record, indent=2) + "\n")
    return record


def run_compare(params: dict, sets: list[str], n_seeds: int = 5, jobs: int | None = None, *,
                cwd: str | Path = ".", out_root: str | Path | None = None, log=print, command: str = "dmc compare",
                runner: Callable = sh, rows: Callable = exp_rows, replicates: int | None = None,
                date: str | None = None) -> Path:
    """Check, run what is missing, write the table; returns the comparison's folder."""
    from dmc.pipeline.provenance import git_commit, header
    from dmc.pipeline import comparison

    started = time.time()
    overrides = parse_sets(params, sets)       # bad input: one line, before any work
    seeds = check_seeds(n_seeds)
    if jobs is not None and jobs < 1:
        raise CompareError(f"--jobs {jobs}: must be at least 1")
    configs = {DEFAULT: {}, CHANGE: overrides}
    change = label(overrides)
    done = find_done(params, configs, seeds, cwd, log)
    missing = [(c, s) for c in configs for s in seeds if (c, s) not in done]
    if missing:
        busy = pending(rows(cwd, log), params, configs)
        for c, s in missing:
            if (c, s) not in busy:
                runner(queue_command(Run(c, s, dict(configs[c]))), cwd, log)
    j = jobs or default_jobs(len(missing))
    if missing:
        log(f"compare: {len(missing)} runs to make ({len(missing) - len(busy & set(missing))} queued now), {j} at once")
        try:
            runner(run_command(j), cwd, log)
        except DmcError as exc:      # one failed experiment: the others are still compared
            log(f"compare: {exc}")
        done = find_done(params, configs, seeds, cwd, log)
    failed = [(c, s) for s in seeds for c in configs if (c, s) not in done]
    paired = [s for s in seeds if (DEFAULT, s) in done and (CHANGE, s) in done]
    if len(paired) < 2:
        raise CompareError(f"only {len(paired)} seed(s) have both runs done (missing: "
                           + ", ".join(f"{c} seed {s}" for c, s in failed) + "); see `dvc exp show` / `dvc queue status`")
    runs = {(c, s): read_run(done[(c, s)][1], cwd) for c in configs for s in paired}
    table = comparison.differences(runs, **({"replicates": replicates} if replicates else {}))
    name = slug(overrides)
    root = Path(cwd) / (out_root or OUT)
    question = (f"does `{change}` move the headline metrics away from the default, beyond what changing the "
                f"training seed and the test clips moves them ({n_seeds} seeds)?")
    head = header(f"compare {name}", question, f"{git_commit(cwd)} (its params.yaml is the default)", command, date)
    note = ("Runs not done (failed, or still queued), left out: " + ", ".join(f"{c} seed {s}" for c, s in failed) + ".") if failed else ""
    comparison.write(table, root / name, head, change, note)
    with atomic_file(root / name / "runs.csv") as tmp:
        pd.DataFrame([{"setting": c, "seed": s, "run": done[(c, s)][0], "rev": done[(c, s)][1]}
                      for c, s in sorted(done)]).to_csv(tmp, index=False)
    _update_index(root / "metrics.json", name, comparison.metrics_json(table))
    write_timing(root / name / "timing.json", started, time.time(), made=len(missing), reused=len(configs) * len(seeds) - len(missing),
                 jobs=j if missing else 0)
    log(f"compare: {len(paired)} paired seeds -> {root / name / 'compare.md'}")
    return root / name
