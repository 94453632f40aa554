"""Seeds and ablations as DVC experiments: queue them, run them, aggregate their metrics.

The grid lives in params.yaml (``sweeps``), nowhere else:

* ``seeds``: the default configuration (params.yaml as committed) under each seed.
* ``ablation``: one key at a time away from the default (with the default 10,
  ``train.temperature: [1, 10, 30]`` gives the configurations temperature=1 and temperature=30
  besides the default), each under every seed of ``ablation_seeds``. One-at-a-time rather than
  a full factorial: the runs grow with the sum of the values, not their product.

:func:`plan` turns the grid into runs, :func:`queue_command` into ``dvc exp run --queue -S``
command lines, and :func:`aggregate` reads the rows of ``dvc.api.exp_show()`` (one flat dict
per row: the workspace, the baseline commit, then its experiments, newest first; params and
metrics as columns by their dotted names, meta columns ``Experiment``, ``rev``, ``typ``,
``State`` ...) back into one row per run and one row per configuration with the mean and sample
standard deviation over its seeds.

An experiment is matched to its configuration by its *params*, not by its name: its
params.yaml is compared with the baseline commit's, and it belongs to the sweep when it
differs in nothing but the seed and at most one key of the grid, with a value of the grid.
Other experiments in the same repository are ignored; when a (configuration, seed) ran more
than once, the newest run counts.
"""

from __future__ import annotations

import json
import math
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from dmc.atomic import atomic_file
from dmc.errors import DmcError
from dmc.names import GRIDS, SWEEPS
from dmc.pipeline.params import get_dotted
from dmc.pipeline.provenance import STUDIES, git_commit, header

CONTROL = "control"
DEFAULT = "default"
IGNORED_KEYS = ("seed", "sweeps")   # never part of a configuration
# exp_show's State of a row: None (run in the workspace) or "Success" (run from the queue) when the
# experiment finished; rows in PENDING are not queued again
FINISHED = (None, "Success")
PENDING = (*FINISHED, "Queued", "Running")
META = ("Experiment", "rev", "typ", "Created", "parent", "State", "Executor")   # exp_show's columns besides params, metrics, deps
DMC, BASELINE = ".dmc.", ".random_init."


#: What each sweep asks (the first line of its table; the seeds sweep is the current default's
#: table, in results/tables, the others are studies, in results/studies/<sweep>).
QUESTIONS = {
    "seeds": "the default configuration under each seed.",
    "ablation": "what moves when one key at a time leaves the default (params.yaml sweeps.ablation, "
                "under sweeps.ablation_seeds)?",
    "control": "the shortcut control: does audiovisual correspondence fall to chance when the sounding "
               "objects are not drawn (params.yaml sweeps.control)?",
    "structure": "the clustering's structure, one key at a time (params.yaml sweeps.structure: squash "
                 "placement, first centers)?",
}


def default_out_dir(sweep: str) -> Path:
    """results/tables for the seeds sweep (the current default's table), results/studies/<sweep> else."""
    return Path("results/tables") if sweep == "seeds" else STUDIES / sweep


class SweepError(DmcError, ValueError):
    """A sweep cannot be planned, run or aggregated (one line saying why)."""


@dataclass(frozen=True)
class Run:
    config: str                      # "default" or "key=value"
    seed: int
    overrides: dict = field(default_factory=dict)   # dotted key -> value (besides the seed)


def _label(key: str, value: Any) -> str:
    return f"{key}={_fmt_value(value)}"


def _fmt_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return f"{value:.1f}"
    return str(value)


def configs(params: dict, sweep: str) -> list[tuple[str, dict]]:
    """(label, overrides) of each configuration of the sweep, the default first."""
    if sweep not in SWEEPS:
        raise SweepError(f"unknown sweep {sweep!r}; one of {', '.join(SWEEPS)}")
    if "sweeps" not in params:
        raise SweepError("params.yaml has no `sweeps` section")
    out = [(DEFAULT, {})]
    if sweep == CONTROL:     # the shortcut control: several keys at once (sweeps.control)
        return out + [(CONTROL, dict(params["sweeps"].get("control") or {}))]
    if sweep in GRIDS:
        for key, values in (params["sweeps"].get(sweep) or {}).items():
            default = get_dotted(params, key)
            out += [(_label(key, v), {key: v}) for v in values if not _same(v, default)]
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)
    return a == b


def sweep_seeds(params: dict, sweep: str) -> list[int]:
    """The seeds of a sweep: ``sweeps.seeds``; for the ablation and the control
    ``sweeps.ablation_seeds`` if set."""
    s = params["sweeps"]
    seeds = s["seeds"] if sweep == "seeds" else (s.get("ablation_seeds") or s["seeds"])
    return [int(x) for x in seeds]


def plan(params: dict, sweep: str, done: set | None = None) -> list[Run]:
    """Every run of the sweep: each configuration under each of its seeds, but those in ``done``
    ((config, seed) pairs already finished, e.g. the default's runs of the seeds sweep)."""
    done = done or set()
    return [Run(label, seed, dict(over)) for label, over in configs(params, sweep)
            for seed in sweep_seeds(params, sweep) if (label, seed) not in done]


def queue_command(run: Run) -> list[str]:
    """``dvc exp run --queue -S seed=.. [-S key=value]`` for one run (params.yaml overrides)."""
    cmd = ["dvc", "exp", "run", "--queue", "-S", f"seed={run.seed}"]
    for key, value in run.overrides.items():
        cmd += ["-S", f"{key}={json.dumps(value)}"]
    return cmd


def run_command(jobs: int = 1) -> list[str]:
    """Run every queued experiment and wait for them (dvc 3.x: ``exp run --run-all``)."""
    return ["dvc", "exp", "run", "--run-all", "--jobs", str(jobs)]


def exp_rows(cwd: str | Path = ".", log=print) -> list[dict]:
    """``dvc.api.exp_show()`` of the repository at ``cwd``: the experiments of its HEAD."""
    import dvc.api

    log(f"dvc.api.exp_show(repo={str(cwd)!r})")
    return dvc.api.exp_show(repo=str(cwd))


def sh(cmd: list[str], cwd: str | Path = ".", log=print) -> str:
    log("$ " + " ".join(cmd))
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise SweepError(f"`{' '.join(cmd)}` failed with exit status {proc.returncode}: {tail[0]}")
    return proc.stdout


# ---------------------------------------------------------------------------------------
# reading dvc.api.exp_show()
# ---------------------------------------------------------------------------------------
def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}, as exp_show names the params."""
    if not isinstance(d, dict):
        return {prefix: d} if prefix else {}
    out = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def _cell(value: Any) -> Any:
    """An exp_show cell as the value params.yaml holds: numbers come as floats and null as None
    already; booleans come as the strings "True" / "False"."""
    return {"True": True, "False": False}.get(value, value) if isinstance(value, str) else value


def experiment_rows(rows: list[dict], params: dict,
                    states: tuple = FINISHED) -> tuple[dict, list[dict]]:
    """(baseline params, one dict per experiment in ``states``, newest first) from the rows of
    ``dvc.api.exp_show()``.

    Params are the keys of ``params`` (params.yaml, flattened); each experiment dict has ``rev``,
    ``name``, ``created``, ``params`` and ``metrics`` (the numeric columns that are neither params
    nor meta). The baseline is the first row of type ``baseline`` that is not the workspace
    (HEAD); its experiments are the rows after it, up to the next baseline.
    """
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "typ" in r and "rev" in r for r in rows):
        raise SweepError("not the rows of dvc.api.exp_show() (a list of dicts with 'typ', 'rev', 'State', ...)")
    keys = set(_flatten(params))
    at = [i for i, r in enumerate(rows) if r["typ"] == "baseline" and r["rev"] != "workspace"]
    if not at:
        raise SweepError("dvc.api.exp_show() lists no baseline commit")
    base = rows[at[0]]
    exps = []
    for r in rows[at[0] + 1:]:
        if r["typ"] == "baseline":
            break
        if r.get("State") not in states:
            continue
        exps.append({"rev": r["rev"], "name": r.get("Experiment"), "created": r.get("Created") or "",
                     "params": {k: _cell(r[k]) for k in keys if k in r},
                     "metrics": {k: v for k, v in r.items() if k not in keys and k not in META
                                 and isinstance(v, (int, float)) and not isinstance(v, bool)}})
    return {k: _cell(base[k]) for k in keys if k in base}, exps


def match_config(exp_params: dict, base_params: dict, params: dict, sweep: str) -> str | None:
    """The configuration label of an experiment, or None when it is not part of the sweep."""
    def relevant(key):
        return key.split(".")[0] not in IGNORED_KEYS

    keys = {k for k in set(exp_params) | set(base_params) if relevant(k)}
    changed = sorted(k for k in keys if not _same(exp_params.get(k), base_params.get(k)))
    if not changed:
        return DEFAULT
    if sweep == CONTROL:
        control = params["sweeps"].get("control") or {}
        same = set(changed) == set(control) and all(_same(exp_params.get(k), v) for k, v in control.items())
        return CONTROL if same else None
    if len(changed) != 1:
        return None
    key = changed[0]
    grid = (params["sweeps"].get(sweep) or {}).get(key, []) if sweep in GRIDS else []
    value = exp_params.get(key)
    match = [v for v in grid if _same(value, v)]
    return _label(key, match[0]) if match else None      # labelled by the grid's value (exp_show: 32.0 for 32)


def collect(rows: list[dict], params: dict, sweep: str, states: tuple = FINISHED) -> pd.DataFrame:
    """One row per run of the sweep, oldest first: config, seed, rev, name, created and its metrics
    (the newest run of a (config, seed) only; seeds outside ``sweeps.seeds`` and
    ``sweeps.ablation_seeds`` are ignored). ``rows``: ``dvc.api.exp_show()``, newest first."""
    base_params, exps = experiment_rows(rows, params, states)
    seeds = set(sweep_seeds(params, sweep)) | set(params["sweeps"]["seeds"])   # the default row: every seed run
    runs = []
    for e in exps:
        config = match_config(e["params"], base_params, params, sweep)
        seed = e["params"].get("seed")
        if config is None or seed not in seeds:
            continue
        runs.append({"config": config, "seed": int(seed), "rev": e["rev"], "name": e["name"],
                     "created": e["created"], **e["metrics"]})
    df = pd.DataFrame(runs, columns=["config", "seed", "rev", "name", "created"] + sorted(
        {k for r in runs for k in r} - {"config", "seed", "rev", "name", "created"}))
    df = df.drop_duplicates(["config", "seed"], keep="first")     # exp_show lists the newest first
    return df.iloc[::-1].reset_index(drop=True)


# ---------------------------------------------------------------------------------------
# the tables
# ---------------------------------------------------------------------------------------
def with_deltas(runs: pd.DataFrame, metrics: Iterable[str]) -> tuple[pd.DataFrame, list[str]]:
    """Add ``<x>.dmc-random_init.<y>`` = dmc - random init, per run, for each listed
    ``<x>.dmc.<y>`` whose random-init partner is in the runs; returns (runs, metric columns)."""
    runs = runs.copy()
    cols = [m for m in metrics if m in runs.columns]
    for m in list(cols):
        if DMC in m and m.replace(DMC, BASELINE) in runs.columns:
            delta = m.replace(DMC, ".dmc-random_init.")
            runs[delta] = runs[m] - runs[m.replace(DMC, BASELINE)]
            cols.insert(cols.index(m) + 1, delta)
    return runs, cols


def summarise(runs: pd.DataFrame, metrics: Iterable[str], order: list[str]) -> pd.DataFrame:
    """One row per configuration (in ``order``): seeds, n and mean / std (ddof 1) of each metric."""
    runs, cols = with_deltas(runs, metrics)
    out = []
    for config in order:
        g = runs[runs.config == config]
        if not len(g):
            continue
        row = {"config": config, "n": len(g), "seeds": " ".join(str(s) for s in sorted(g.seed))}
        for c in cols:
            v = g[c].dropna()
            row[f"{c}.mean"] = v.mean() if len(v) else math.nan
            row[f"{c}.std"] = v.std(ddof=1) if len(v) > 1 else math.nan
        out.append(row)
    return pd.DataFrame(out, columns=["config", "n", "seeds"] + [f"{c}.{s}" for c in cols for s in ("mean", "std")])


def _pm(mean: float, std: float) -> str:
    if mean != mean:
        return "–"
    return f"{mean:.3f} ± {std:.3f}" if std == std else f"{mean:.3f}"


def markdown(table: pd.DataFrame, sweep: str) -> str:
    """The summary as a Markdown table, metrics as columns ("mean ± std" over the seeds)."""
    metrics = [c[:-len(".mean")] for c in table.columns if c.endswith(".mean")]
    head = ["configuration", "seeds"] + metrics
    lines = [f"<!-- dmc sweep {sweep}: mean ± sample std over seeds (n = number of seeds) -->",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in table.iterrows():
        cells = [f"`{r['config']}`", f"{r['n']} ({r['seeds']})"]
        cells += [_pm(r[f"{m}.mean"], r[f"{m}.std"]) for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def aggregate(rows: list[dict], params: dict, sweep: str, out_dir: str | Path,
              study_header: str | None = None) -> pd.DataFrame:
    """Write ``<out_dir>/<sweep>.csv`` (one row per configuration), ``<sweep>.md`` (first line:
    ``study_header`` when given) and ``<sweep>_runs.csv`` (one row per run) from the rows of
    ``dvc.api.exp_show()``."""
    runs = collect(rows, params, sweep)
    if not len(runs):
        raise SweepError(f"no finished experiment of the {sweep} sweep in dvc.api.exp_show() "
                         f"(queue them with `dmc sweep {sweep} --queue --run`)")
    order = [label for label, _ in configs(params, sweep)]
    table = summarise(runs, params["sweeps"]["metrics"], order)
    if len(table.columns) == 3:
        raise SweepError(f"none of sweeps.metrics ({', '.join(params['sweeps']['metrics'])}) "
                         f"is in the experiments' metrics")
    out = Path(out_dir)
    with atomic_file(out / f"{sweep}.csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    with atomic_file(out / f"{sweep}_runs.csv") as tmp:
        runs.to_csv(tmp, index=False, float_format="%.4f")
    with atomic_file(out / f"{sweep}.md") as tmp:
        Path(tmp).write_text((f"{study_header}\n\n" if study_header else "") + markdown(table, sweep))
    return table


def run_sweep(params: dict, sweep: str, *, queue: bool, run: bool, aggregate_to: str | Path | None,
              jobs: int = 1, rows_json: str | Path | None = None, cwd: str | Path = ".", log=print,
              command: str | None = None) -> None:
    """The steps of ``dmc sweep``: queue the runs, run the queue, aggregate the results (a study's
    table, every sweep but the seeds, starts with a header naming ``command`` and the commit)."""
    if queue:   # runs already finished, queued or running (same params, same baseline) are not queued again
        known = collect(exp_rows(cwd, log), params, sweep, states=PENDING)
        runs = plan(params, sweep, set(zip(known.config, known.seed)))
        for r in runs:
            sh(queue_command(r), cwd, log)
        log(f"sweep {sweep}: {len(runs)} experiments queued ({len(known)} finished, queued or running)")
    if run:
        sh(run_command(jobs), cwd, log)
    if aggregate_to is not None:
        if rows_json:
            rows = json.loads(Path(rows_json).read_text())
        else:
            rows = exp_rows(cwd, log)
        study = None if sweep == "seeds" else header(
            sweep, QUESTIONS[sweep], f"{git_commit(cwd)} (its params.yaml; each row changes the keys its label names)",
            command or f"dmc sweep {sweep}")
        table = aggregate(rows, params, sweep, aggregate_to, study)
        log(f"sweep {sweep}: {int(table.n.sum())} runs in {len(table)} configurations -> "
            f"{Path(aggregate_to) / (sweep + '.md')}")
