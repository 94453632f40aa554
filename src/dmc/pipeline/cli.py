"""The ``dmc`` command: every pipeline step is a subcommand, run by Snakemake or by hand.

This module only assembles the parsers and runs the handler: each step's parser and ``run`` live
in its entry module, :mod:`dmc.pipeline.steps`.<step> (the other subcommands in
:mod:`dmc.pipeline.tools`), so a step's code deps do not include the other steps' code.

Each subcommand reads and validates params.yaml first (``--params``), so a bad value is
refused, naming the key, before any work starts; the handlers get the validated params as typed
objects (:class:`dmc.config.Params`, built once here).
"""

from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path

from dmc.pipeline import tools
from dmc.pipeline.params import ParamsError, load_config
from dmc.pipeline.steps import (benchmark_layout, decode, evalset, evaluate, extract, heldout, heldout_multi, localize,
                                 synth, train)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="dmc", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    sub = ap.add_subparsers(dest="command", required=True)
    tools.add_parsers(sub)                       # check-params, fetch, dvc-yaml, docs
    for step in (synth, decode, train, evalset, extract, evaluate, localize, heldout, heldout_multi, benchmark_layout):
        step.add_parsers(sub)                    # decode adds decode-index too
    tools.add_sweep_parser(sub)
    tools.add_compare_parser(sub)
    tools.add_verify_parser(sub)
    return ap


# Failures of the storage rather than of the code (disk full, quota, permissions, a file
# where a folder is needed): one line naming the path instead of a traceback.
_OUTPUT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR,
                  errno.EISDIR, errno.EEXIST}


def _os_error_line(exc: OSError) -> str:
    paths = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    reason = exc.strerror or str(exc)
    if exc.errno == errno.EEXIST and exc.filename is not None and not Path(exc.filename).is_dir():
        reason = "exists and is not a folder"
    return f"{paths}: {reason}" if paths else reason


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        params = load_config(args.params, sweeps=args.command in ("sweep", "check-params"))
    except ParamsError as exc:
        print(f"dmc: invalid parameters: {exc}", file=sys.stderr)
        return 2
    try:
        args.func(args, params)
    except ParamsError as exc:
        print(f"dmc: invalid parameters: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # one clear line for known failures; tracebacks for bugs
        from dmc.errors import DmcError

        if isinstance(exc, (DmcError, FileNotFoundError)):
            print(f"dmc {args.command}: {exc}", file=sys.stderr)
            return 1
        if isinstance(exc, OSError) and exc.errno in _OUTPUT_ERRNOS:
            print(f"dmc {args.command}: {_os_error_line(exc)}", file=sys.stderr)
            return 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
