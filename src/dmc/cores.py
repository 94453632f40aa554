"""How many worker processes a step runs: params ``compute.*`` ("auto" or a count) resolved."""

from __future__ import annotations

import os


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, as taskset / Slurm / containers set it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:          # macOS, Windows: no affinity call
        return max(1, os.cpu_count() or 1)


def resolve_workers(setting) -> int:
    """``"auto"`` (or None: the key absent) -> the available cores; a positive int as it is."""
    if setting in (None, "auto"):
        return available_cores()
    n = int(setting)
    if n < 1:
        raise ValueError(f"worker count must be >= 1 or 'auto', got {setting!r}")
    return n


def decode_workers(params) -> int:
    """``compute.decode_workers`` of a params dict (or :class:`dmc.config.Params`), resolved."""
    if isinstance(params, dict):
        return resolve_workers((params.get("compute") or {}).get("decode_workers"))
    return resolve_workers(params.compute.decode_workers if params.compute is not None else None)


def decode_threads(params, cores: int | None, shards: int) -> int:
    """Workers of one Snakemake decode job: ``compute.decode_workers`` (capped at ``--cores``) split
    over the ``shards`` jobs, rounded up, at least 1. 16 cores and 4 shards: 4 jobs of 4 workers at
    once, so the jobs' start-up costs overlap; 2 cores and 4 shards: 1 (two single-worker jobs at
    once). ``cores`` None (a cluster run without --cores): not capped."""
    workers = decode_workers(params)
    if cores:
        workers = min(workers, int(cores))
    return max(1, -(-workers // max(1, shards)))


def workflow_cores(workflow) -> int | None:
    """Snakemake's ``--cores`` (None when the run gives none, e.g. on a cluster executor)."""
    try:
        return workflow.cores
    except Exception:       # snakemake.exceptions.WorkflowError
        return None
