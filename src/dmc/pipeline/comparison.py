"""The table of ``dmc compare``: a change against the default, paired by seed and by clip.

Input: one :class:`RunFiles` per (setting, seed), the per-unit files a pipeline run writes
(``results/heldout/pairs.csv``, ``clips.csv``, ``esc50_clips.csv``,
``results/tables/dcase_recordings.csv``) and its flat metrics (``results/metrics.json``,
``results/heldout_metrics.json``). For every headline metric (:data:`METRICS`, DMC's own numbers)
the difference change - default is the mean over the paired seeds of each seed's difference,
with the interval of :func:`dmc.localization.bootstrap.hierarchical_difference` (seeds drawn
with replacement, then each drawn seed's units, the same units for both settings) and a verdict:

* ``higher``: the whole interval lies above 0;
* ``lower``: the whole interval lies below 0;
* ``no difference resolved at N seeds``: the interval holds 0 (N: the paired seeds).

A metric whose per-unit file is missing from a run (a run made before the file existed), or
whose units differ between the two settings (a change of the test corpus), is resampled at
the seed level only (each seed one unit: its metric), and the table says so.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dmc.atomic import atomic_file
from dmc.localization import bootstrap as B

DEFAULT, CHANGE = "default", "change"
METHOD = "dmc"
#: default_rng seeds of the hierarchical draws, one per kind of unit
BOOT_SEED = {"esc": 0, "dcase": 1, "loc": 2, "count": 3}
UNITS = {"esc": "clips", "dcase": "recordings", "loc": "clips", "count": "clips"}
CLIPS_THEN = "seeds, then {units}"
SEEDS_ONLY = "seeds only: {why}"


@dataclass(frozen=True)
class Metric:
    key: str        # column of the CSV and key of the metrics JSON
    label: str
    kind: str       # esc | dcase | loc | count: which per-unit file
    column: int     # column of the kind's numerators
    flat: str       # the run's flat metrics key (seed-level resampling when the per-unit file is missing)


METRICS = (
    Metric("esc_acc", "ESC-like accuracy (5 folds pooled)", "esc", 0, "heldout.esc50.dmc.acc"),
    Metric("dcase_scene_acc", "DCASE-like mean scene accuracy", "dcase", 0, "dcase.dmc.scene_acc_mean"),
    Metric("pointing", "test corpus: pointing", "loc", 0, "heldout.dmc.pointing"),
    Metric("ciou50", "test corpus: cIoU@0.5", "loc", 1, "heldout.dmc.ciou50"),
    Metric("auc", "test corpus: AUC", "loc", 2, "heldout.dmc.auc"),
    Metric("count_acc", "test corpus: counting accuracy", "count", 0, "heldout.count.dmc.acc"),
)


@dataclass
class RunFiles:
    """One run's per-unit tables (None: not in the run) and its flat metrics."""

    pairs: pd.DataFrame | None = None       # results/heldout/pairs.csv
    clips: pd.DataFrame | None = None       # results/heldout/clips.csv
    esc: pd.DataFrame | None = None         # results/heldout/esc50_clips.csv
    dcase: pd.DataFrame | None = None       # results/tables/dcase_recordings.csv
    metrics: dict = field(default_factory=dict)


def dcase_sums(recordings: pd.DataFrame, method: str = METHOD) -> tuple[np.ndarray, np.ndarray]:
    """Per test recording r of scene c(r): (correct_r / n_c(r), 1 / n_c(r)), n_c: the scene's test
    recordings. The ratio of their sums is the mean over scenes of each scene's accuracy
    (``scene_acc_mean``): sum_r correct_r / n_c(r) = sum_c acc_c and sum_r 1 / n_c(r) = number of scenes."""
    n = recordings.groupby("scene")["scene"].transform("size").to_numpy(dtype=np.float64)
    correct = (recordings[f"pred_{method}"].astype(str) == recordings.scene.astype(str)).to_numpy(dtype=np.float64)
    return (correct / n)[:, None], 1.0 / n


def _frame(run: RunFiles, kind: str) -> tuple[pd.DataFrame | None, str]:
    return {"loc": (run.pairs, "video"), "count": (run.clips, "video"), "esc": (run.esc, "clip"),
            "dcase": (run.dcase, "recording")}[kind]


def unit_sums(run: RunFiles, kind: str, units: list | None = None) -> tuple[list, np.ndarray, np.ndarray] | None:
    """(units, num, den) of DMC's numbers in one run, units sorted (or as given); None when the
    run lacks the kind's per-unit file."""
    from dmc.pipeline.heldout import count_sums, esc_sums

    frame, key = _frame(run, kind)
    if frame is None or not len(frame):
        return None
    units = sorted(frame[key].astype(str).unique()) if units is None else units
    if kind == "loc":
        num, den = B.loc_clip_sums(frame.assign(video=frame.video.astype(str)), METHOD, units)
        return units, num, den
    frame = frame.assign(**{key: frame[key].astype(str)}).set_index(key).loc[units].reset_index()
    fn = {"count": count_sums, "esc": esc_sums, "dcase": dcase_sums}[kind]
    num, den = fn(frame, METHOD)
    return units, num, den


def _unit_pairs(change: RunFiles, default: RunFiles, kind: str) -> tuple[tuple, tuple] | str:
    """The two runs' (num, den) on the same units, or the reason they cannot be paired by unit."""
    a = unit_sums(change, kind)
    b = unit_sums(default, kind)
    if a is None or b is None:
        return f"a run has no per-{UNITS[kind][:-1]} file"
    if a[0] != b[0]:
        return f"the two settings' {UNITS[kind]} differ"
    return (a[1], a[2]), (b[1], b[2])


def _flat(run: RunFiles, metric: Metric) -> float:
    v = run.metrics.get(metric.flat)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def verdict(lo: float, hi: float, n_seeds: int) -> str:
    """higher / lower when the interval excludes 0, else no difference resolved at N seeds."""
    if lo != lo or hi != hi:
        return "not measured"
    if lo > 0:
        return "higher"
    if hi < 0:
        return "lower"
    return f"no difference resolved at {n_seeds} seeds"


def differences(runs: dict[tuple[str, int], RunFiles], replicates: int = B.REPLICATES) -> pd.DataFrame:
    """One row per metric of :data:`METRICS`: the paired seeds, each setting's mean over them, the
    difference change - default, its interval, the seeds with change above / below the default,
    how it was resampled and the verdict. ``runs``: {(``"default"`` | ``"change"``, seed): files}."""
    seeds = sorted({s for c, s in runs if c == DEFAULT} & {s for c, s in runs if c == CHANGE})
    rows = []
    for kind in dict.fromkeys(m.kind for m in METRICS):
        metrics = [m for m in METRICS if m.kind == kind]
        paired = [_unit_pairs(runs[(CHANGE, s)], runs[(DEFAULT, s)], kind) for s in seeds]
        why = next((p for p in paired if isinstance(p, str)), None)
        for m in metrics:
            if why is None:
                a = [(p[0][0][:, [m.column]], p[0][1]) for p in paired]
                b = [(p[1][0][:, [m.column]], p[1][1]) for p in paired]
                how = CLIPS_THEN.format(units=UNITS[kind])
            else:      # one unit per seed: the run's metric
                a = [(np.array([[_flat(runs[(CHANGE, s)], m)]]), np.ones(1)) for s in seeds]
                b = [(np.array([[_flat(runs[(DEFAULT, s)], m)]]), np.ones(1)) for s in seeds]
                how = SEEDS_ONLY.format(why=why)
            rows.append(_row(m, seeds, a, b, how, replicates))
    return pd.DataFrame(rows)


def _row(m: Metric, seeds: list[int], a: list, b: list, how: str, replicates: int) -> dict:
    row = {"metric": m.key, "label": m.label, "n_seeds": len(seeds), "seeds": " ".join(map(str, seeds)),
           "replicates": replicates}
    if not seeds or any(np.isnan(x[0]).any() for x in a + b):
        return {**row, "default": math.nan, "change": math.nan, "diff": math.nan, "lo": math.nan, "hi": math.nan,
                "seeds_higher": 0, "seeds_lower": 0, "per_seed": "", "resampled": how, "verdict": "not measured"}
    d = B.hierarchical_difference(a, b, replicates, BOOT_SEED[m.kind])
    return {**row, "default": float(np.mean([B.ratio(*x)[0] for x in b])),
            "change": float(np.mean([B.ratio(*x)[0] for x in a])), "diff": float(d.point[0]),
            "lo": float(d.lo[0]), "hi": float(d.hi[0]), "seeds_higher": int(d.higher[0]),
            "seeds_lower": int(d.lower[0]), "per_seed": " ".join(f"{x:+.4f}" for x in d.per_seed[:, 0]),
            "resampled": how, "verdict": verdict(float(d.lo[0]), float(d.hi[0]), len(seeds))}


# ---------------------------------------------------------------------------------------------
# the files
# ---------------------------------------------------------------------------------------------
def _num(x: float, signed: bool = False) -> str:
    return "–" if x != x else (f"{x:+.3f}" if signed else f"{x:.3f}")


def markdown(table: pd.DataFrame, header: str, change: str, missing: str = "") -> str:
    """The table as Markdown, after the study's header line."""
    n = int(table.n_seeds.max()) if len(table) else 0
    reps = int(table.replicates.max()) if len(table) else B.REPLICATES
    lines = [header, "",
             f"`{change}` minus the default, paired by seed and by clip: the mean over {n} seeds of each seed's "
             f"difference [95 % interval: hierarchical bootstrap, {reps} replicates, seeds drawn with "
             "replacement, then each drawn seed's clips or recordings; the same draw for both settings] "
             "(seeds with the change above / below the default)." + (f" {missing}" if missing else ""), "",
             "| metric | default | change | change − default [95 % interval] | seeds above / below | "
             "resampled | verdict |", "|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        bold = "**" if r.verdict in ("higher", "lower") else ""
        lines.append(f"| {r.label} | {_num(r.default)} | {_num(r.change)} | {bold}{_num(r['diff'], True)} "
                     f"[{_num(r.lo, True)}, {_num(r.hi, True)}]{bold} | {r.seeds_higher} / {r.seeds_lower} | "
                     f"{r.resampled} | {r.verdict} |")
    lines += ["", "A verdict is higher or lower only when the whole interval lies on one side of 0.", ""]
    return "\n".join(lines)


def metrics_json(table: pd.DataFrame) -> dict:
    """Flat numbers for ``dvc exp show`` / ``dvc metrics show``: ``<metric>.diff|lo|hi|seeds_higher|
    seeds_lower|verdict`` (verdict: 1 higher, -1 lower, 0 not resolved) and ``n_seeds``."""
    out = {"n_seeds": int(table.n_seeds.max()) if len(table) else 0}
    for _, r in table.iterrows():
        code = {"higher": 1, "lower": -1}.get(r.verdict, 0)
        for k in ("diff", "lo", "hi"):
            out[f"{r.metric}.{k}"] = None if r[k] != r[k] else round(float(r[k]), 4)
        out.update({f"{r.metric}.seeds_higher": int(r.seeds_higher), f"{r.metric}.seeds_lower": int(r.seeds_lower),
                    f"{r.metric}.verdict": code})
    return out


def write(table: pd.DataFrame, out_dir: Path, header: str, change: str, missing: str = "") -> list[Path]:
    """compare.md, compare.csv, metrics.json and compare.png (:mod:`dmc.pipeline.comparison_plot`)
    under ``out_dir``."""
    from dmc.pipeline.comparison_plot import plot

    out = Path(out_dir)
    paths = [out / "compare.md", out / "compare.csv", out / "metrics.json", out / "compare.png"]
    with atomic_file(paths[0]) as tmp:
        Path(tmp).write_text(markdown(table, header, change, missing))
    with atomic_file(paths[1]) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    with atomic_file(paths[2]) as tmp:
        Path(tmp).write_text(json.dumps(metrics_json(table), indent=2) + "\n")
    with atomic_file(paths[3]) as tmp:
        plot(table, change).savefig(tmp, format="png", dpi=100)
    return paths
