"""Snakemake follows DVC's record of what is current, with no command to remember.

DVC knows by content hashes whether a stage is up to date (``dvc.lock`` against the
workspace); Snakemake judges by mtimes and by its own records in ``.snakemake/`` (params,
code, input set of the run that made each file).  After ``dvc checkout``, ``dvc pull``,
``dvc exp apply`` or ``git checkout`` (+ DVC's post-checkout hook) the files are right but
their mtimes are new and Snakemake's records may describe another run, so Snakemake would
redo work DVC has already restored.

:func:`agree` runs when the Snakefile is read (main process only; not inside a DVC stage,
where DVC already decided): for the steps whose every DVC stage is up to date, it marks
their outputs as current for Snakemake (``snakemake --touch`` restricted to those steps'
rules, which writes the mtimes and Snakemake's records of the current params and code).
Steps DVC reports as changed are left alone, so Snakemake still reruns them.  A fingerprint
of dvc.lock, params.yaml and the mtimes of every step's files (``.snakemake/dmc-dvc-sync.json``)
skips all of this, DVC's status included, when nothing changed since the last check.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from dmc.pipeline import graph

STATE = Path(".snakemake") / "dmc-dvc-sync.json"
OFF = "DMC_NO_DVC_SYNC"          # set (to anything) to switch the check off, e.g. in the touch run


def _instances(step: graph.Step) -> dict[str, dict]:
    """DVC stage name -> {key: value} for ${key}/${item} substitution (one per foreach item)."""
    if not step.foreach:
        return {step.name: {}}
    return {f"{step.name}@{k}": {"key": k, "item": v} for k, v in step.foreach.items()}


def _subst(text: str, params: dict, local: dict) -> str | None:
    """${key}, ${item}, ${a.b} of DVC templating; None when a param is null."""
    import re

    out = text
    for name in re.findall(r"\$\{([^}]+)\}", text):
        value = local[name] if name in local else graph.lookup(params, name)
        if isinstance(value, str) and "${" in value:
            value = _subst(value, params, local)
        if value is None:
            return None
        out = out.replace("${" + name + "}", str(value))
    return out


def _paths(params: dict) -> list[str]:
    """Every file or folder a step reads or writes (data, code), DVC's view."""
    out = []
    for step in graph.STEPS:
        for local in _instances(step).values():
            for p in (*step.deps, *graph.code_deps(step.name), *(o.path for o in step.outs)):
                q = _subst(p, params, local)
                if q:
                    out.append(q)
    return sorted(set(out))


def fingerprint(root: Path, params: dict) -> str:
    """Hash of dvc.lock, params.yaml and the (mtime, size) of every file and folder of the steps."""
    h = hashlib.sha256()
    for name in ("dvc.lock", "params.yaml"):
        f = root / name
        h.update(f.read_bytes() if f.is_file() else b"-")
    for p in _paths(params):
        top = root / p
        entries = [top] if not top.is_dir() else [top, *sorted(top.rglob("*"))]
        for e in entries:
            try:
                st = e.stat()
            except FileNotFoundError:
                h.update(f"{e}:missing".encode())
                continue
            h.update(f"{e}:{st.st_mtime_ns}:{st.st_size}".encode())
    return h.hexdigest()


def clean_stages(root: Path) -> set[str]:
    """DVC stages whose deps, params and outs match dvc.lock (DVC's own `dvc status`)."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        changed = repo.status()
        return {s.addressing for s in repo.index.stages} - set(changed)


def touch_command(clean: set[str], params: dict) -> list[str] | None:
    """`snakemake --touch` for the steps whose every stage is clean (None when there are none)."""
    rules, targets = [], []
    for step in graph.STEPS:
        inst = _instances(step)
        if not set(inst) <= clean:
            continue
        rules += step.rules
        targets += [_subst(t, params, local) for local in inst.values() for t in step.targets]
    if not targets:
        return None
    return [sys.executable, "-m", "snakemake", "--touch", "--cores", "1", "--quiet", "--allowed-rules", *rules, "--",
            *dict.fromkeys(targets)]


def agree(workflow, config: dict, root: str | Path = ".") -> None:
    """Make Snakemake's view agree with DVC's for the steps DVC reports up to date (see module doc)."""
    root = Path(root)
    if (os.environ.get(OFF) or os.environ.get("DVC_STAGE") or not workflow.is_main_process
            or not (root / ".dvc").is_dir() or not (root / "dvc.lock").is_file()):
        return
    state = root / STATE
    before = fingerprint(root, config)
    if state.is_file() and json.loads(state.read_text()).get("fingerprint") == before:
        return
    try:
        clean = clean_stages(root)
    except Exception as exc:   # e.g. DVC busy in another process: Snakemake decides alone this time
        print(f"dmc: DVC status unavailable ({type(exc).__name__}: {exc}); Snakemake judges by its own "
              "records this time", file=sys.stderr)
        return
    cmd = touch_command(clean, config)
    if cmd:
        proc = subprocess.run(cmd, cwd=root, env=dict(os.environ, **{OFF: "1"}), capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"dmc: could not mark the steps DVC reports up to date for Snakemake ({' '.join(cmd)}):\n"
                  f"{proc.stderr[-2000:]}", file=sys.stderr)
            return
        print(f"dmc: outputs DVC reports up to date are current for Snakemake too "
              f"({', '.join(cmd[cmd.index('--') + 1:])})", file=sys.stderr)
    state.parent.mkdir(exist_ok=True)
    state.write_text(json.dumps({"fingerprint": fingerprint(root, config)}) + "\n")
