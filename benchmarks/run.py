"""`make bench`: every benchmark on the current code, each written to benchmarks/results/<host>/<name>.json.

Each benchmark script runs in its own process (``--json`` gives its figures), one after another,
so the ratios inside a file (pool vs one worker vs the PyAV floor, ours vs naive, streaming vs
in-memory) are measured side by side in one run. Every file holds, besides the figures:

* ``commit`` (``git rev-parse HEAD``) and ``dirty`` (uncommitted changes to tracked files: the
  figures are then of code no commit has), ``date`` (UTC), the ``command`` and its ``wall_s``;
* the host: ``cpu_model`` (/proc/cpuinfo), ``cores`` (os.cpu_count) and ``cores_available``
  (the affinity the run had), python / torch / PyAV versions;
* ``load_average_start`` and ``load_average_end`` (1, 5, 15 min, os.getloadavg): a run on a
  busy machine shows there, and its figures are not those of the machine.

``<host>`` is a slug of the CPU model and the core count (:func:`host_slug`), so runs of
different machines sit side by side. ``--quick`` runs every benchmark at small sizes into
``benchmarks/results/quick/<host>/`` (git-ignored): it checks the harness, its figures mean
nothing. Without ``--only`` every benchmark runs (see :data:`BENCHMARKS`).

    .venv/bin/python benchmarks/run.py [--quick] [--only decode ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dmc.pipeline.provenance import cpu_model  # noqa: F401  (also imported from here by the other benchmark scripts)

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent

#: name -> (script, arguments of the full run, arguments of --quick)
BENCHMARKS: dict[str, tuple[str, list[str], list[str]]] = {
    # dmc decode with the worker pool, one worker, a naive extract-to-disk pipeline and the PyAV
    # floor on the embedded default's clips; fixed start-up costs; the 16-core model
    "decode": ("decode.py", ["--repeats", "2"], ["--clips", "6", "--repeats", "1", "--workers", "2"]),
    # peak memory of dmc decode --shard for shards of 1x, 4x, 16x 100 clips, against the in-memory reference
    "decode_memory": ("decode_memory.py", ["--clips", "8000", "--per-shard", "100"],
                      ["--clips", "40", "--per-shard", "2", "--distinct", "2", "--factors", "1", "4"]),
    # training steps on the CPU, tiny and paper presets, in memory and through the loader
    "train_cpu": ("train.py", ["--device", "cpu", "--presets", "tiny", "paper", "--steps", "5"],
                  ["--device", "cpu", "--presets", "tiny", "--steps", "2", "--batch", "8", "--workers", "0"]),
    # eval-set decoding + features + SVM protocol on ESC-50- and DCASE-sized sets
    "evaluate": ("evaluate.py", [], ["--quick"]),
    # the localization step on the embedded default's clips, untrained network
    "localize": ("localize.py", ["--repeats", "2"], ["--clips", "16", "--repeats", "1"]),
}

REQUIRED = ("name", "commit", "dirty", "date", "host", "cpu_model", "cores", "cores_available",
            "load_average_start", "load_average_end", "quick", "command", "wall_s", "versions", "figures")


def host_slug(model: str | None = None, cores: int | None = None) -> str:
    """``Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz``, 2 cores -> ``intel-xeon-platinum-8481c-2c``."""
    model = model if model is not None else cpu_model()
    cores = cores if cores is not None else (os.cpu_count() or 1)
    m = re.sub(r"\((r|tm)\)|\bcpu\b|@.*$|\b\d+-core processor\b|\bprocessor\b", " ", model.lower())
    slug = re.sub(r"[^a-z0-9]+", "-", m).strip("-") or "unknown"
    return f"{slug}-{cores}c"


def git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def versions() -> dict:
    out = {"python": platform.python_version()}
    for mod in ("torch", "av", "numpy"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            out[mod] = None
    return out


def run_one(name: str, out_dir: Path, quick: bool, log_dir: Path) -> Path:
    script, full, small = BENCHMARKS[name]
    with tempfile.TemporaryDirectory() as tmp:
        fig_path = Path(tmp) / "figures.json"
        cmd = [sys.executable, str(HERE / script), *(small if quick else full), "--json", str(fig_path)]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")])))
        record = {"name": name, "commit": git("rev-parse", "HEAD") or None,
                  "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
                  "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                  "host": host_slug(), "cpu_model": cpu_model(), "cores": os.cpu_count(),
                  "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
                  "load_average_start": [round(x, 2) for x in os.getloadavg()], "quick": quick,
                  "command": ["python", f"benchmarks/{script}", *(small if quick else full)], "versions": versions()}
        print(f"== {name}: {' '.join(record['command'])}", file=sys.stderr, flush=True)
        t = time.perf_counter()
        log_path = log_dir / f"{name}.log"
        with open(log_path, "w") as log:
            proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        record["wall_s"] = round(time.perf_counter() - t, 1)
        record["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        if proc.returncode != 0 or not fig_path.is_file():
            tail = log_path.read_text()[-3000:]
            raise SystemExit(f"benchmark {name} failed ({proc.returncode}); its log {log_path}:\n{tail}")
        record["figures"] = json.loads(fig_path.read_text())
    out = out_dir / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"   {record['wall_s']:.0f} s, load {record['load_average_start'][0]} -> {record['load_average_end'][0]}: {out}",
          file=sys.stderr, flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, into benchmarks/results/quick/<host> (harness check)")
    ap.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="these benchmarks only")
    ap.add_argument("--out", type=Path, help="results folder (default benchmarks/results[/quick]/<host>)")
    args = ap.parse_args(argv)
    out_dir = args.out or (HERE / "results" / ("quick" if args.quick else "") / host_slug())
    load = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    if not args.quick and load > 0.5 * cores:
        print(f"warning: load average {load:.1f} on {cores} cores: the machine is busy, the figures will show it "
              f"(load_average_start / _end in each file)", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="dmc-bench-logs-") as logs:
        for name in args.only or BENCHMARKS:
            run_one(name, out_dir, args.quick, Path(logs))
    print(f"results in {out_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
