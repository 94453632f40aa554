"""The headline's multi-source table (issue 33): every headline model scored on the multi-source test
corpus, with hierarchical intervals (seeds, then clips) and seed sign counts; issue 33's targets.

:func:`dmc.studies.headline.score_runs` scores each headline run (the default and each
``sweeps.headline`` configuration, e.g. ``train.iterations=1``, under ``sweeps.headline_seeds``) on the
multi-source corpus with :func:`dmc.pipeline.heldout_multi.run` (the ``heldout_multi`` stage's function:
the mapping and cut points fitted on the training corpus's train + val pairs) into
``results/headline_multi_runs/<config>_s<seed>/``. This module reads those per-clip files (and the test
corpus's ``results/headline_runs``) and writes ``results/headline_multi.md|csv``.

Every number is a ratio of sums over clips (:data:`dmc.pipeline.heldout_multi.RATIO_COLUMNS`); a row's level
is the mean over its seeds, a difference DMC - row is the mean over seeds of the per-seed difference on the
same clips. Intervals: :func:`dmc.localization.bootstrap.hierarchical_difference` (seeds drawn with
replacement, then each drawn seed's clips; a level is its difference from 0), 95 %, with the number of
seeds in which the difference is positive / negative. A difference is claimed only when its interval
excludes 0. A counting row whose every clip score is equal in some seed (uniform assignments: the count is
a constant) is reported as degenerate, not as a counting result.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from dmc.atomic import atomic_file
from dmc.localization import bootstrap as B
from dmc.pipeline.heldout import count_sums
from dmc.pipeline.heldout_multi import clip_sums

DEFAULT = "default"
NO_CLUSTERING = "train.iterations=1"
MULTI_RUNS_DIR = Path("results") / "headline_multi_runs"
BOOT_SEED = 3          # default_rng seed of the hierarchical draws (the headline's are 0, 1, 2)
CA_ROWS = [  # (label, configuration, method of dmc.pipeline.heldout_multi)
    ("DMC", DEFAULT, "dmc"),
    ("no clustering (train.iterations=1; its per-head maps)", NO_CLUSTERING, "dmc"),
    ("random init, BatchNorm recalibrated", DEFAULT, "random_init_bn"),
    ("audio-blind: trained visual map, uniform cluster weights", DEFAULT, "audio_blind"),
    ("control: mismatched audio (frame of A, mixture of B)", DEFAULT, "mismatched"),
]
CA_METRICS = ("ca_ciou30", "ca_auc", "nsa", "nsa_drawn", "recall", "stem_pointing", "stem_ciou30",
              "wrong_source_rate")
METRIC_NAMES = {"ca_ciou30": "class-aware cIoU@0.3", "ca_auc": "class-aware AUC", "nsa": "NSA (DSOL)",
                "nsa_drawn": "NSA (drawn silent)", "recall": "distinct-source recall",
                "stem_pointing": "stem pointing", "stem_ciou30": "stem cIoU@0.3",
                "wrong_source_rate": "wrong-source rate", "pointing": "pointing", "acc": "accuracy"}


def load_runs(runs_dir: Path) -> dict:
    """{(config, seed): {"ca_clips", "pairs", "clips", "details"}} of every scored multi-source run."""
    out = {}
    for d in sorted(Path(runs_dir).glob("*_s*")):
        if not (d / "details.json").is_file():
            continue
        det = json.loads((d / "details.json").read_text())
        out[(det["config"], int(det["seed"]))] = {"ca_clips": pd.read_csv(d / "ca_clips.csv"),
                                                   "pairs": pd.read_csv(d / "pairs.csv"),
                                                   "clips": pd.read_csv(d / "clips.csv"), "details": det}
    return out


def _zero(s):
    num, den = s
    return np.zeros_like(np.asarray(num, dtype=np.float64)), den


def interval(a: list, b: list | None = None, replicates: int = B.REPLICATES) -> dict:
    """Mean over seeds of A (- B) with its hierarchical 95 % interval and seed sign counts."""
    d = B.hierarchical_difference(a, b if b is not None else [_zero(x) for x in a], replicates, BOOT_SEED)
    return {"value": float(d.point[0]), "lo": float(d.lo[0]), "hi": float(d.hi[0]), "n_seeds": len(a),
            "seeds_positive": int(d.higher[0]), "seeds_negative": int(d.lower[0])}


def _videos(run: dict) -> list:
    return sorted(run["ca_clips"].video.unique())


def ca_sums(run: dict, method: str, metric: str):
    return clip_sums(run["ca_clips"], method, metric, _videos(run))


def gap_sums(pairs: pd.DataFrame, metric: str = "pointing", videos: list | None = None):
    """Per clip (own - mismatched) numerators of ``metric`` (one of :data:`B.LOC_METRICS`: pointing hits,
    cIoU@0.5 successes, AUC's weighted successes) and the pairs with a sounding region: the
    audio-dependence gap as a ratio of sums (the same pairs, so the same denominator). ``videos``:
    the clips in this order (default: the table's own, sorted)."""
    videos = sorted(pairs.video.unique()) if videos is None else videos
    own, den = B.loc_clip_sums(pairs, "dmc", videos)
    mm, _ = B.loc_clip_sums(pairs, "mismatched", videos)
    j = B.LOC_METRICS.index(metric)
    return (own[:, j] - mm[:, j])[:, None], den


def _common(runs: dict, config_a: str, config_b: str) -> list[int]:
    return sorted({s for c, s in runs if c == config_a} & {s for c, s in runs if c == config_b})


def tables(runs: dict, test_runs: dict | None = None, replicates: int = B.REPLICATES) -> pd.DataFrame:
    """One row per (corpus, kind, row, metric): levels and DMC differences with hierarchical intervals."""
    out = []

    def add(corpus, kind, row, metric, seeds, a, b=None):
        if seeds:
            out.append({"corpus": corpus, "kind": kind, "row": row, "metric": metric,
                        "seeds": " ".join(map(str, seeds)), **interval(a, b, replicates)})

    for label, config, method in CA_ROWS:
        seeds = sorted(s for c, s in runs if c == config)
        for m in CA_METRICS:
            add("multi", "level", label, m, seeds, [ca_sums(runs[(config, s)], method, m) for s in seeds])
    for label, config, method in CA_ROWS[1:]:
        seeds = _common(runs, DEFAULT, config)
        for m in CA_METRICS:
            add("multi", "DMC minus", label, m, seeds, [ca_sums(runs[(DEFAULT, s)], "dmc", m) for s in seeds],
                [ca_sums(runs[(config, s)], method, m) for s in seeds])
    for corpus, rs in (("multi", runs), ("test", test_runs or {})):
        for config in (DEFAULT, NO_CLUSTERING):
            seeds = sorted(s for c, s in rs if c == config)
            add(corpus, "audio gap", config, "pointing", seeds, [gap_sums(rs[(config, s)]["pairs"]) for s in seeds])
        seeds = _common(rs, DEFAULT, NO_CLUSTERING)
        add(corpus, "audio gap DMC minus", NO_CLUSTERING, "pointing", seeds,
            [gap_sums(rs[(DEFAULT, s)]["pairs"]) for s in seeds], [gap_sums(rs[(NO_CLUSTERING, s)]["pairs"]) for s in seeds])
    for corpus, rs in (("test", test_runs or {}), ("multi", runs)):
        seeds = sorted(s for c, s in rs if c == DEFAULT)
        for base in ("visible_count", "best_constant"):
            if seeds and all(f"pred_{base}" in rs[(DEFAULT, s)]["clips"] for s in seeds):
                add(corpus, "count DMC minus", base, "acc", seeds,
                    *_count_pair(rs, [(DEFAULT, "dmc"), (DEFAULT, base)], seeds))
        nc = _common(rs, DEFAULT, NO_CLUSTERING)
        if nc:
            add(corpus, "count DMC minus", NO_CLUSTERING, "acc", nc,
                *_count_pair(rs, [(DEFAULT, "dmc"), (NO_CLUSTERING, "dmc")], nc))
            out[-1]["degenerate"] = _degenerate(rs, NO_CLUSTERING, nc)
    return pd.DataFrame(out)


def _count_pair(rs: dict, which, seeds):
    def sums(config, method, s):
        c = rs[(config, s)]["clips"].sort_values("video").reset_index(drop=True)
        return count_sums(c, method)
    return [[sums(c, m, s) for s in seeds] for c, m in which]


def _degenerate(rs: dict, config: str, seeds) -> bool:
    return any(rs[(config, s)]["details"].get("count_degenerate", {}).get("dmc") for s in seeds)


def _ci(r, signed=False) -> str:
    f = "+.3f" if signed else ".3f"
    bold = "**" if signed and (r["lo"] > 0 or r["hi"] < 0) else ""
    return (f"{bold}{r['value']:{f}} [{r['lo']:{f}}, {r['hi']:{f}}]{bold}"
            + (f" ({r['seeds_positive']}/{r['seeds_negative']})" if signed else ""))


def _get(t: pd.DataFrame, corpus, kind, row, metric):
    r = t[(t.corpus == corpus) & (t.kind == kind) & (t.row == row) & (t.metric == metric)] if len(t) else t
    return None if not len(r) else r.iloc[0]


def targets(t: pd.DataFrame) -> list[str]:
    """Issue 33's targets, each with the numbers that decide it."""
    out = ["## Targets of issue 33 (hierarchical 95 % intervals: seeds, then clips; seeds above / below 0)", "",
           "| claim | target | measured | met |", "|---|---|---|---|"]

    def row(claim, target, measured, met):
        out.append(f"| {claim} | {target} | {measured} | "
                   f"{'not measured' if met is None else 'yes' if met else 'no'} |")

    d = _get(t, "multi", "DMC minus", CA_ROWS[1][0], "ca_ciou30")
    row("DMC − no clustering, class-aware cIoU@0.3 (multi-source corpus)", "> 0, interval excluding 0",
        _ci(d, True) if d is not None else "–", None if d is None else bool(d.lo > 0))
    p, w = _get(t, "multi", "level", "DMC", "stem_pointing"), _get(t, "multi", "level", "DMC", "wrong_source_rate")
    row("stem-conditioned pointing on two-source clips", "≥ 0.8, wrong-source rate ≤ 0.15",
        f"pointing {_ci(p)}; wrong source {_ci(w)}" if p is not None and w is not None else "–",
        None if p is None or w is None else bool(p.value >= 0.8 and w.value <= 0.15))
    n, n2 = _get(t, "multi", "level", "DMC", "nsa_drawn"), _get(t, "multi", "level", "DMC", "nsa")
    row("NSA on silent objects (drawn silent classes; DSOL's, with absent classes, beside)", "≥ 0.9",
        f"{_ci(n)}; DSOL's {_ci(n2)}" if n is not None and n2 is not None else "–",
        None if n is None else bool(n.value >= 0.9))
    c = _get(t, "test", "count DMC minus", "visible_count", "acc")
    row("counting − visible-object count (untouched test corpus: 1-3 sources)", "> 0, interval excluding 0",
        _ci(c, True) if c is not None else "–", None if c is None else bool(c.lo > 0))
    for corpus, name in (("test", "untouched test corpus"), ("multi", "multi-source corpus")):
        g = _get(t, corpus, "audio gap DMC minus", NO_CLUSTERING, "pointing")
        row(f"audio-dependence gap (own − mismatched pointing), DMC − no clustering, {name}", "reported",
            _ci(g, True) if g is not None else "–", None if g is None else True)
    return out + [""]


def markdown(t: pd.DataFrame, runs: dict, runs_dir: Path = MULTI_RUNS_DIR) -> str:
    det = next(iter(runs.values()))["details"]
    lines = ["# Headline on the multi-source test corpus", "",
             f"Multi-source corpus: {det['clips']} clips from its own seed (`synth.multi_seed`), {det['pairs']} "
             f"(frame, audio segment) pairs, {det['stems_scored']} stems; no choice read it (the cluster -> class "
             "mapping and the cut points of every run were fitted on the training corpus's train + val pairs). "
             "Mean over the seeds [hierarchical 95 % interval: seeds drawn with replacement, then each drawn "
             f"seed's clips; {B.REPLICATES} replicates]. Made by `python -m dmc.studies.headline` from "
             f"`{Path(runs_dir).as_posix()}/`.", ""]
    lv = t[t.kind == "level"] if len(t) else t
    if len(lv):
        lines += ["## Class-aware, stem-conditioned and recall scores", "",
                  "| row | seeds | " + " | ".join(METRIC_NAMES[m] for m in CA_METRICS) + " |",
                  "|---|---|" + "---|" * len(CA_METRICS)]
        for r in dict.fromkeys(lv.row):
            x = lv[lv.row == r].set_index("metric")
            lines.append(f"| {r} | {x.n_seeds.iloc[0]} | " + " | ".join(
                _ci(x.loc[m]) if m in x.index and np.isfinite(x.loc[m, "value"]) else "n/a" for m in CA_METRICS) + " |")
        d = t[t.kind == "DMC minus"]
        lines += ["", "DMC minus each row, paired by seed and clip [hierarchical 95 % interval] "
                      "(seeds with DMC above / below):", "",
                  "| DMC minus | " + " | ".join(METRIC_NAMES[m] for m in CA_METRICS) + " |",
                  "|---|" + "---|" * len(CA_METRICS)]
        for r in dict.fromkeys(d.row):
            x = d[d.row == r].set_index("metric")
            lines.append(f"| {r} | " + " | ".join(
                _ci(x.loc[m], True) if m in x.index and np.isfinite(x.loc[m, "value"]) else "n/a"
                for m in CA_METRICS) + " |")
    g = t[t.kind.str.startswith("audio gap") | t.kind.str.startswith("count")] if len(t) else t
    if len(g):
        lines += ["", "## Audio-dependence gap and counting", "", "| corpus | what | row | value |", "|---|---|---|---|"]
        for _, r in g.iterrows():
            if r.get("degenerate") is True:     # a constant count: the number, never bold, and why
                lines.append(f"| {r.corpus} | {r.kind} | {r.row} (degenerate) | "
                             f"{_ci(r).replace(' (', ' ')} (not a counting result) |")
            else:
                lines.append(f"| {r.corpus} | {r.kind} | {r.row} | {_ci(r, r.kind != 'audio gap')} |")
    lines += ["", "Bold: the interval of the difference excludes 0 (only then is a difference claimed). "
                  "(degenerate): the no-clustering network's count is a constant in some seed (uniform "
                  "assignments tie, every clip gets the same score), so the row is shown but is not a "
                  "counting result and claims nothing.", ""]
    return "\n".join(lines + targets(t)) + "\n"


def write(runs: dict, test_runs: dict | None, out: Path, replicates: int = B.REPLICATES,
          runs_dir: Path = MULTI_RUNS_DIR) -> pd.DataFrame:
    t = tables(runs, test_runs, replicates)
    with atomic_file(Path(out) / "headline_multi.csv") as tmp:
        t.to_csv(tmp, index=False, float_format="%.4f")
    with atomic_file(Path(out) / "headline_multi.md") as tmp:
        Path(tmp).write_text(markdown(t, runs, runs_dir))
    return t
