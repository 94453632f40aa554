"""Where `make demo` spends its time: the embedded default's pipeline run stage by stage, each timed.

A copy of the project (Snakefile, dvc.yaml, workflow/, src/, .dvc/ config, params.yaml, and with
``--install`` pyproject.toml and requirements.lock) is made in a temporary folder with its own git
and DVC repos, as a fresh clone would be. Then, optionally, the install is timed (``--install``:
a new virtual environment and ``pip install -c requirements.lock -e .[test]``, what ``make
install`` does; it needs the package index), and every DVC stage (``dvc stage list``, in
dvc.yaml's order, which is the pipeline's order) runs on its own with ``dvc repro --single-item
STAGE``, which calls Snakemake and the ``dmc`` step as ``make demo``'s ``dvc repro`` does.
Each stage's wall time is recorded; the table gives each stage's share of the total.

The result goes to ``benchmarks/results/<host>/demo_stages.json`` with the same host, commit and
load-average fields as ``make bench``'s files (benchmarks/run.py), and the table to
``demo_stages.md`` beside it. ``--set KEY=VALUE`` edits params.yaml of the copy (e.g.
``--set synth.size=tiny`` for a quick check of the script; its figures are then not the
default's, and the file says so under ``params_overrides``: use ``--out`` elsewhere).

    .venv/bin/python benchmarks/demo_stages.py [--install] [--set synth.size=tiny] [--out DIR] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from run import cpu_model, git, host_slug, versions  # noqa: E402  (benchmarks/run.py: the shared header)


def copy_project(dest: Path, overrides: dict, install: bool) -> None:
    for name in ("Snakefile", "dvc.yaml", ".dvcignore", *(("pyproject.toml", "requirements.lock", "README.md")
                                                          if install else ())):
        if (REPO / name).exists():
            shutil.copy(REPO / name, dest / name)
    for name in ("workflow", "src", ".dvc"):
        shutil.copytree(REPO / name, dest / name, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "tmp", "cache", "*.egg-info"))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for key, value in overrides.items():
        node = params
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        if leaf not in node:
            raise SystemExit(f"--set {key}: no such params key")
        node[leaf] = value
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (dest / ".gitignore").write_text("/.snakemake/\n/logs/\n__pycache__/\n/.venv/\n")
    run("git init -q && git add -A && git -c user.name=bench -c user.email=bench@localhost commit -qm copy", dest,
        os.environ)


def run(cmd: str, cwd: Path, env) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, shell=True, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed ({proc.returncode}) in {cwd}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t


def parse_set(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item}: expected KEY=VALUE")
        out[key] = yaml.safe_load(value)
    return out


def table(stages: list[dict], install_s: float | None) -> str:
    rows = ([{"stage": "install (make install)", "seconds": install_s}] if install_s is not None else []) + stages
    total = sum(r["seconds"] for r in rows)
    lines = ["| stage | seconds | share |", "|---|---:|---:|"]
    lines += [f"| {r['stage']} | {r['seconds']:.1f} | {100 * r['seconds'] / total:.0f} % |" for r in rows]
    lines.append(f"| total | {total:.1f} | 100 % |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--install", action="store_true", help="also time a fresh venv + pip install (needs the index)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="params.yaml edits of the copy")
    ap.add_argument("--out", type=Path, help="results folder (default benchmarks/results/<host>)")
    ap.add_argument("--keep", type=Path, help="make the copy here and keep it (default: a temporary folder)")
    args = ap.parse_args(argv)
    overrides = parse_set(args.set)
    # edited params are not the default's figures: kept apart from the committed results unless --out says
    out_dir = args.out or HERE / "results" / ("quick" if overrides else "") / host_slug()
    work = args.keep or Path(tempfile.mkdtemp(prefix="dmc-demo-stages-"))
    work.mkdir(parents=True, exist_ok=True)
    record = {"name": "demo_stages", "commit": git("rev-parse", "HEAD") or None,
              "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
              "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "host": host_slug(),
              "cpu_model": cpu_model(), "cores": os.cpu_count(),
              "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
              "load_average_start": [round(x, 2) for x in os.getloadavg()], "quick": bool(overrides),
              "command": ["python", "benchmarks/demo_stages.py", *sys.argv[1:]] if argv is None else
                         ["python", "benchmarks/demo_stages.py", *argv], "versions": versions()}
    t0 = time.perf_counter()
    try:
        copy_project(work, overrides, args.install)
        bin_dir = Path(sys.executable).parent
        env = dict(os.environ, PYTHONPATH=str(work / "src"))
        install_s = None
        if args.install:
            install_s = run(f"{sys.executable} -m venv .venv && .venv/bin/python -m pip install --quiet "
                            f"-c requirements.lock -e '.[test]'", work, os.environ)
            bin_dir = work / ".venv" / "bin"
            env.pop("PYTHONPATH")
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
        run("dvc init --no-scm -q -f" if not (work / ".dvc").is_dir() else "true", work, env)
        names = subprocess.run(["dvc", "stage", "list", "--name-only"], cwd=work, env=env, capture_output=True,
                               text=True, check=True).stdout.split()
        stages = []
        for name in names:
            print(f"== {name}", file=sys.stderr, flush=True)
            stages.append({"stage": name, "seconds": round(run(f"dvc repro --single-item '{name}'", work, env), 2)})
            print(f"   {stages[-1]['seconds']:.1f} s", file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    record["wall_s"] = round(time.perf_counter() - t0, 1)
    record["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    slowest = max(stages, key=lambda r: r["seconds"])
    record["figures"] = {"params_overrides": overrides, "install_s": round(install_s, 1) if install_s else None,
                         "stages": stages, "stages_total_s": round(sum(r["seconds"] for r in stages), 1),
                         "slowest_stage": slowest["stage"], "slowest_share": round(
                             slowest["seconds"] / sum(r["seconds"] for r in stages), 3)}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "demo_stages.json").write_text(json.dumps(record, indent=2) + "\n")
    md = table(stages, install_s)
    (out_dir / "demo_stages.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
