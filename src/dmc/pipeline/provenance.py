"""What a study's table is, said in its first line: the question, the default it was made at
(the git commit of the checkout), the command and the date.

Studies live in ``results/studies/<name>/`` (:data:`STUDIES`), apart from the current default's
run in ``results/``; ``results/studies/README.md`` lists them.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import platform
import shlex
import subprocess
from pathlib import Path

STUDIES = Path("results/studies")


RESULT_DIRS = ("results/", "benchmarks/results/")   # what a run writes, not what makes it


def git_commit(cwd: str | Path = ".") -> str:
    """``commit <short sha>`` of the checkout at ``cwd``, or ``no git commit``; then ``, with
    uncommitted changes`` when tracked files outside :data:`RESULT_DIRS` (the code, params, docs)
    differ from it, or ``, with uncommitted result files only`` when only result files do (another
    study writing beside this one: the code was the commit's)."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout

    try:
        sha = git("rev-parse", "--short", "HEAD").strip()
        changed = git("status", "--porcelain", "--untracked-files=no", "--no-renames").splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "no git commit"
    # porcelain paths are relative to the top level: "XY path"
    paths = [line[3:].strip().strip('"') for line in changed if line.strip()]
    if not paths:
        return f"commit {sha}"
    if all(p.startswith(RESULT_DIRS) for p in paths):
        return f"commit {sha}, with uncommitted result files only"
    return f"commit {sha}, with uncommitted changes"


def file_md5_at(commit: str, path: str, cwd: str | Path = ".") -> str | None:
    """MD5 of ``path`` as committed at ``commit`` (a full SHA: cached, so a new commit never reads an
    old answer), or None where the commit has no such file."""
    return _file_md5_at(str(Path(cwd).resolve()), commit, path)


@functools.lru_cache(maxsize=None)
def _file_md5_at(cwd: str, commit: str, path: str) -> str | None:
    try:
        data = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=cwd, capture_output=True, check=True).stdout
    except subprocess.CalledProcessError:
        return None
    return hashlib.md5(data).hexdigest()


def same_code(deps, md5_of, counts=lambda path: True) -> bool:
    """Was a DVC stage run by this code? ``deps``: dvc.lock dependency entries (``path``, ``md5``);
    every one whose path ``counts`` (the code: git-tracked files, or ``src/``) must have the MD5
    ``md5_of(path)`` gives: this checkout's file (``dmc compare``: reuse a run only if nothing it
    depends on differs from the checkout) or a commit's (:func:`file_md5_at`: the headline study,
    runs trained by a given commit's code). False when no dependency counts."""
    code = [d for d in deps if counts(d.get("path", ""))]
    return bool(code) and all(md5_of(d["path"]) == d.get("md5") for d in code)


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what the platform says: for telling apart
    timings made on different machines (make bench's files, dmc compare's timing.json)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def command_line(program: str, argv: list[str]) -> str:
    return " ".join([program, *(shlex.quote(str(a)) for a in argv)])


def header(study: str, question: str, made_at: str, command: str, date: str | None = None) -> str:
    """The one-line header of a study's Markdown table."""
    date = date or datetime.date.today().isoformat()
    return (f"> **Study `{study}`**: {question} **Made at**: {made_at}. **Command**: `{command}`. "
            f"**Date**: {date}.")
