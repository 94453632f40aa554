"""What a study's table is, said in its first line: the question, the default it was made at
(the git commit of the checkout), the command and the date.

Studies live in ``results/studies/<name>/`` (:data:`STUDIES`), apart from the current default's
run in ``results/``; ``results/studies/README.md`` lists them.
"""

from __future__ import annotations

import datetime
import platform
import shlex
import subprocess
from pathlib import Path

STUDIES = Path("results/studies")


def git_commit(cwd: str | Path = ".") -> str:
    """``commit <short sha>`` of the checkout at ``cwd`` (``, with uncommitted changes`` when its
    tracked files differ from it), or ``no git commit``."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()

    try:
        sha = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "no git commit"
    return f"commit {sha}" + (", with uncommitted changes" if dirty else "")


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
