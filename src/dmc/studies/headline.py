"""The headline: DMC beside its baselines and controls on the untouched test corpus, mean over
seeds, with clip-bootstrap 95 % intervals and paired differences.

``python -m dmc.studies.headline`` (``make headline``):

1. **runs** (``--queue --run``): the default and each configuration of ``sweeps.headline``
   (one key at a time, e.g. ``train.iterations: [1]``, the network without clustering) under
   every seed of ``sweeps.headline_seeds``, queued as DVC experiments that reproduce the
   ``train`` stage (``dvc exp run --queue train -S seed=S [-S key=value]``); runs already among
   the experiments are not queued again.
2. **scoring** (default): each run's trained model (named by MD5 in its experiment's
   ``dvc.lock``, read from the local DVC cache) is scored on the untouched test corpus by
   :func:`dmc.pipeline.heldout.run`, the function of the pipeline's ``heldout`` step, under that run's
   params: ``results/headline_runs/<config>_s<seed>/`` (per-pair, per-clip tables, one run's
   table). A run belongs to a configuration when its experiment's params agree with
   params.yaml on every key the ``train`` step reads, but for the seed and that configuration's
   key, and its ``dvc.lock`` records for ``train`` the same code (MD5 of each source file) as
   this checkout: a model trained by other code is not mixed in. The committed run (HEAD) counts
   too. Where the run's commit already holds the pipeline's own scoring of that model by this code
   (its ``heldout`` / ``heldout_multi`` stage, e.g. the experiments of ``dmc compare``), those files are
   taken instead of scoring again (:func:`step_outputs`). ``--models-dir`` scores model files instead;
   with ``--with-experiments`` the runs missing from the folder come from the experiments.
   With the multi-source corpus decoded (``--multi-decoded``), each run is also scored there by
   :func:`dmc.pipeline.heldout_multi.run`: ``results/headline_multi_runs/<config>_s<seed>/``.
3. **tables**: ``results/headline.md|csv``, the README's compact ``results/headline_summary.md`` (and ``results/headline_runs.csv``, one row per run):
   every localization, counting and ESC-like metric as the mean over the seeds with its
   hierarchical 95 % interval (:func:`dmc.localization.bootstrap.hierarchical_difference`: the seeds drawn
   with replacement, then each drawn seed's clips) and, in a last table, its
   clip-bootstrap 95 % interval (:mod:`dmc.localization.bootstrap`: the clips drawn with replacement, the
   same draw for every seed and method; 2000 replicates from fixed seeds), and DMC minus each
   baseline, paired by clip and seed, with the interval of the difference and the number of
   seeds in which the difference is positive. A difference is called a difference only when
   its hierarchical interval excludes 0. The audio-dependence gap of each trained row (own audio
   minus mismatched audio) and the difference of the gaps DMC - no clustering (:func:`audio_gaps`). ``results/headline_multi.md|csv``: the same over the
   multi-source corpus (:mod:`dmc.studies.headline_multi`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from dmc.localization import bootstrap as B
from dmc.atomic import atomic_file
from dmc.pipeline.provenance import same_code
from dmc.pipeline.heldout import COUNT_METHODS, ESC_METHODS, LOC_METHODS, count_sums, esc_sums
from dmc.studies.headline_multi import MULTI_RUNS_DIR, gap_sums
from dmc.studies.headline_multi import interval as gap_interval
from dmc.studies.headline_multi import load_runs as load_multi_runs
from dmc.studies.headline_multi import write as write_multi

DEFAULT = "default"
OUT = Path("results")
RUNS_DIR = OUT / "headline_runs"
BOOT_SEED = {"loc": 0, "count": 1, "esc": 2}   # default_rng seeds of the three clip draws
HIER_SEED = {"loc": 10, "count": 11, "esc": 12}   # default_rng seeds of the hierarchical draws (seeds, then clips)

LOC_ROWS = [  # (label, configuration, method of dmc.pipeline.heldout)
    ("DMC", DEFAULT, "dmc"),
    ("no clustering (train.iterations=1)", "train.iterations=1", "dmc"),
    ("random init, BatchNorm recalibrated", DEFAULT, "random_init_bn"),
    ("audio-blind: trained visual map, uniform cluster weights", DEFAULT, "audio_blind"),
    ("audio-blind: untrained visual map (BatchNorm recalibrated)", DEFAULT, "random_init_bn_blind"),
    ("random init, BatchNorm inactive (running mean 0 / var 1; the earlier baseline)", DEFAULT, "random_init"),
    ("centre prior", DEFAULT, "center_prior"),
    ("control: mismatched audio (frame of A, audio of B)", DEFAULT, "mismatched"),
]
COUNT_ROWS = [
    ("DMC", DEFAULT, "dmc"),
    ("no clustering (train.iterations=1)", "train.iterations=1", "dmc"),
    ("random init, BatchNorm recalibrated", DEFAULT, "random_init_bn"),
    ("random init, BatchNorm inactive (running mean 0 / var 1; the earlier baseline)", DEFAULT, "random_init"),
    ("control: shuffled audio", DEFAULT, "shuffled_audio"),
    ("visible-object count (every drawn object; cut points fitted on train + val)", DEFAULT, "visible_count"),
    ("majority count (training corpus, train + val)", DEFAULT, "majority"),
    ("best constant count (the test corpus's own majority)", DEFAULT, "best_constant"),
]
GAP_ROWS = [  # (label, configuration): the trained rows whose audio dependence is reported
    ("DMC", DEFAULT),
    ("no clustering (train.iterations=1)", "train.iterations=1"),
]
GAP_METRICS = ("pointing", "ciou50", "auc")
GAP_DIFF = "DMC − no clustering (difference of the gaps)"
ESC_ROWS = [
    ("DMC", DEFAULT, "dmc"),
    ("no clustering (train.iterations=1)", "train.iterations=1", "dmc"),
    ("random init, BatchNorm recalibrated", DEFAULT, "random_init_bn"),
    ("random init, BatchNorm inactive (running mean 0 / var 1; the earlier baseline)", DEFAULT, "random_init"),
]


@dataclass(frozen=True)
class Run:
    config: str
    seed: int
    name: str
    rev: str
    model_md5: str
    path: str = ""     # a model file given by --models-dir (else the DVC cache, by MD5)


def sh(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed: {(proc.stderr or proc.stdout).strip()[-300:]}")
    return proc.stdout


def _dotted(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(_dotted(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


def configs(params: dict) -> list[tuple[str, dict]]:
    """(label, overrides) of the headline's configurations, the default first."""
    from dmc.pipeline.experiments import _label

    out = [(DEFAULT, {})]
    for key, values in ((params.get("sweeps") or {}).get("headline") or {}).items():
        out += [(_label(key, v), {key: v}) for v in values]
    return out


def train_keys(params: dict) -> list[str]:
    """The leaf params keys the train step reads (graph.STEPS), but the seed."""
    from dmc.pipeline.graph import step

    flat = _dotted({k: v for k, v in params.items() if k != "sweeps"})
    keys = [k for k in flat if any(k == s or k.startswith(s + ".") for s in step("train").params)]
    return sorted(k for k in keys if k != "seed")


def _commit(rev: str) -> str:
    return sh(["git", "rev-parse", rev]).strip()


def _md5_at(commit: str, path: str) -> str | None:
    """MD5 of ``path`` at ``commit`` (a full SHA, :func:`_commit`; cached in
    :func:`dmc.pipeline.provenance.file_md5_at`): every run's code check asks for the same files."""
    from dmc.pipeline.provenance import file_md5_at

    return file_md5_at(commit, path)


def _is_source(path: str) -> bool:
    return path.startswith("src/")


def find_runs(params: dict, code_rev: str = "HEAD", log=print) -> list[Run]:
    """Finished experiments (refs/exps) and the committed run (HEAD) that are runs of the headline
    (see the module doc); their train code must be that of commit ``code_rev``."""
    refs = sh(["git", "for-each-ref", "--format=%(refname) %(objectname)", "refs/exps"]).split("\n")
    base = _dotted({k: v for k, v in params.items() if k != "sweeps"})
    keys = train_keys(params)
    labels = dict(configs(params))
    seeds = set(params["sweeps"]["headline_seeds"])
    found: dict[tuple[str, int], Run] = {}
    code_commit = _commit(code_rev)
    candidates = [(ref.rsplit("/", 1)[-1], rev) for ref, rev in (line.split() for line in filter(None, refs))
                  if ref.count("/") >= 4]                          # refs/exps/<baseline>/<name>
    candidates.append(("HEAD", sh(["git", "rev-parse", "HEAD"]).strip()))   # the committed run
    for name, rev in candidates:
        try:
            exp = _dotted(yaml.safe_load(sh(["git", "show", f"{rev}:params.yaml"])))
            lock = yaml.safe_load(sh(["git", "show", f"{rev}:dvc.lock"]))
        except RuntimeError:
            continue
        train = (lock.get("stages") or {}).get("train") or {}
        outs = {o["path"]: o.get("md5") for o in train.get("outs") or []}
        if "models/dmc.pt" not in outs or exp.get("seed") not in seeds:
            continue
        if not same_code(train.get("deps") or [], lambda p: _md5_at(code_commit, p), _is_source):
            continue                                              # trained by other code
        changed = {k for k in keys if exp.get(k) != base.get(k)}
        label = next((lab for lab, over in labels.items() if changed == set(over)
                      and all(exp.get(k) == v for k, v in over.items())), None)
        if label is None:
            continue
        ts = sh(["git", "log", "-1", "--format=%ct", rev]).strip()
        run = Run(label, int(exp["seed"]), name, rev, outs["models/dmc.pt"])
        key = (label, run.seed)
        if key not in found or ts > found[key][1]:
            found[key] = (run, ts)
    runs = sorted((r for r, _ in found.values()), key=lambda r: (list(labels).index(r.config), r.seed))
    log(f"headline: {len(runs)} runs: " + ", ".join(f"{r.config} s{r.seed}" for r in runs))
    return runs


def runs_of_dir(params: dict, folder: Path, log=print) -> list[Run]:
    """Runs given as model files ``<config>_s<seed>.pt`` (e.g. ``default_s0.pt``,
    ``train.iterations=1_s0.pt``), trained elsewhere (another machine, a GPU) with params.yaml's
    values and that configuration's key; the model's own config is checked against them."""
    import hashlib

    import torch

    labels = dict(configs(params))
    runs = []
    for path in sorted(Path(folder).glob("*_s*.pt")):
        label, _, seed = path.stem.rpartition("_s")
        if label not in labels or not seed.isdigit():
            continue
        cfg = torch.load(path, map_location="cpu", weights_only=True)["config"]
        want = run_params(params, Run(label, int(seed), "", "", ""))
        bad = [k for k, v in cfg["train"].items() if want["train"].get(k) != v]
        if bad or cfg["model"]["preset"] != want["model"]["preset"]:
            raise ValueError(f"{path}: trained with other params than {label} ({', '.join(bad) or 'model.preset'})")
        runs.append(Run(label, int(seed), path.name, "", hashlib.md5(path.read_bytes()).hexdigest(), str(path)))
    log(f"headline: {len(runs)} model files in {folder}")
    return runs


def train_models(params: dict, decoded: Path, folder: Path, log=print) -> None:
    """Train every run of the headline missing from ``folder`` as ``<config>_s<seed>.pt`` (with
    ``train.device`` of params.yaml, e.g. on a GPU machine), for :func:`runs_of_dir`."""
    from dmc.model.training import Trainer

    folder = Path(folder)
    for label, _ in configs(params):
        for seed in params["sweeps"]["headline_seeds"]:
            out = folder / f"{label}_s{seed}.pt"
            if out.is_file():
                continue
            log(f"headline: training {label} seed {seed} -> {out}")
            p = run_params(params, Run(label, int(seed), "", "", ""))
            Trainer(p, decoded, out, folder / f"{label}_s{seed}_log.csv", folder / f"ck_{label}_s{seed}",
                    folder / f"{label}_s{seed}_metrics.json").fit()


def queue(params: dict, done: set, log=print) -> int:
    """Queue the runs not among ``done`` ((config, seed)): ``dvc exp run --queue train -S ...``."""
    n = 0
    for label, over in configs(params):
        for seed in params["sweeps"]["headline_seeds"]:
            if (label, seed) in done:
                continue
            cmd = ["dvc", "exp", "run", "--queue", "train", "-S", f"seed={seed}"]
            cmd += [x for k, v in over.items() for x in ("-S", f"{k}={json.dumps(v)}")]
            log("$ " + " ".join(cmd))
            sh(cmd)
            n += 1
    return n


def run_params(params: dict, run: Run) -> dict:
    import copy

    p = copy.deepcopy(params)
    p["seed"] = run.seed
    for key, value in dict(configs(params))[run.config].items():
        node = p
        *head, last = key.split(".")
        for k in head:
            node = node[k]
        node[last] = value
    return p


def cache_path(md5: str, cache: Path = Path(".dvc/cache")) -> Path:
    return cache / "files" / "md5" / md5[:2] / md5[2:]


def step_outputs(run: Run, stage: str, folder: str, out: Path, log=print, want: dict | None = None) -> bool:
    """Copy a run's own scoring into ``out`` when its commit holds it: the pipeline's ``stage`` (heldout,
    heldout_multi) ran in that experiment (or the committed run) on this very model (its dvc.lock
    records the model's MD5 among the stage's dependencies) with this checkout's code (every source file
    among them) and, given ``want`` (the run's params), with the same value of every parameter its
    dvc.lock records for the stage, and ``folder``'s files are in git there. The step is the function the study would call
    (dmc.pipeline.heldout.run, dmc.pipeline.heldout_multi.run) with the same arguments, so scoring again
    would write the same files. Returns False (score it here) otherwise."""
    if not run.rev:
        return False
    try:
        lock = yaml.safe_load(sh(["git", "show", f"{run.rev}:dvc.lock"])) or {}
    except RuntimeError:
        return False
    st = (lock.get("stages") or {}).get(stage) or {}
    deps = {d["path"]: d.get("md5") for d in st.get("deps") or []}
    if deps.get("models/dmc.pt") != run.model_md5:
        return False
    head = _commit("HEAD")
    if not same_code(st.get("deps") or [], lambda p: _md5_at(head, p), _is_source):
        return False                                              # scored by other code
    if want is not None:
        recorded = _dotted((st.get("params") or {}).get("params.yaml") or {})
        flat = _dotted(want)
        if any(flat.get(k) != v for k, v in recorded.items()):
            return False                                          # scored with other params
    try:
        names = [n for n in sh(["git", "ls-tree", "--name-only", f"{run.rev}:{folder}"]).split("\n")
                 if n and not n.startswith(".")]                # not the workflow's .snakemake_timestamp
    except RuntimeError:
        return False
    if "details.json" not in names:
        return False
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        data = subprocess.run(["git", "show", f"{run.rev}:{folder}/{name}"], capture_output=True, check=True).stdout
        with atomic_file(out / name) as tmp:
            Path(tmp).write_bytes(data)
    log(f"headline: {run.config} seed {run.seed}: {stage}'s files taken from {run.name} ({run.rev[:10]})")
    return True


def _stamp(done: Path, r: Run) -> None:
    d = json.loads(done.read_text())
    d.update({"experiment": r.name, "rev": r.rev, "model_md5": r.model_md5, "config": r.config, "seed": r.seed})
    done.write_text(json.dumps(d, indent=2) + "\n")


def score_runs(params: dict, runs: list[Run], args, log=print) -> None:
    """Score each run's model on the test corpus (dmc.pipeline.heldout.run), unless already scored."""
    from dmc.config import Params
    from dmc.pipeline.heldout import run as heldout_run
    from dmc.model.training import pick_device

    device = pick_device(params["localize"]["device"])
    for r in runs:
        out = Path(args.runs_dir) / f"{r.config}_s{r.seed}"
        done = out / "details.json"
        if done.is_file() and json.loads(done.read_text()).get("model_md5") == r.model_md5 and not args.rescore:
            continue
        if step_outputs(r, "heldout", "results/heldout", out, log, run_params(params, r)):
            _stamp(done, r)
            continue
        model = Path(r.path) if r.path else cache_path(r.model_md5)
        if not model.is_file():
            raise FileNotFoundError(f"{model}: the model of experiment {r.name} ({r.config}, seed {r.seed}) is not "
                                    "in the local DVC cache")
        log(f"headline: scoring {r.config} seed {r.seed} ({r.name})")
        heldout_run(Params.from_dict(run_params(params, r)), args.decoded, args.test_decoded, model, params["data"]["ground_truth"],
                    args.test_ground_truth, args.esc50 or None, out, out / "metrics.json", device, log=log)
        _stamp(done, r)
    if getattr(args, "multi_decoded", None) and (Path(args.multi_decoded) / "index.csv").is_file():
        score_multi(params, runs, args, device, log)


def scored_alike(done: Path, r: Run, params: dict) -> bool:
    """A multi-source scoring in ``done`` (details.json) is this run's: the same model, scored with the same
    class-map gate (files made before the gate existed were made without one)."""
    return scored_with(done, r.model_md5, run_params(params, r)["localize"].get("class_map_gate", "none"))


def scored_with(done: Path, model_md5: str, gate: str) -> bool:
    """details.json ``done`` records this model's MD5 and this class-map gate (none when it records no gate)."""
    if not done.is_file():
        return False
    d = json.loads(done.read_text())
    return d.get("model_md5") == model_md5 and d.get("class_map_gate", "none") == gate


def score_multi(params: dict, runs: list[Run], args, device, log=print) -> None:
    """Score each run's model on the multi-source corpus (dmc.pipeline.heldout_multi.run: the mapping and
    cut points fitted on the training corpus's train + val pairs), unless already scored. The mapping is
    written beside a model file (``--models-dir``) or, for a model in the DVC cache, into the run's folder."""
    from dmc.config import Params
    from dmc.localization.mapping_file import mapping_path
    from dmc.pipeline.heldout_multi import run as multi_run

    for r in runs:
        out = Path(args.multi_runs_dir) / f"{r.config}_s{r.seed}"
        done = out / "details.json"
        if scored_alike(done, r, params) and not args.rescore:
            continue
        if step_outputs(r, "heldout_multi", "results/heldout_multi", out, log, run_params(params, r)):
            _stamp(done, r)
            continue
        model = Path(r.path) if r.path else cache_path(r.model_md5)
        mapping = mapping_path(model) if r.path else out.parent / f"{out.name}.class_mapping.json"
        log(f"headline: scoring {r.config} seed {r.seed} on the multi-source corpus")
        multi_run(Params.from_dict(run_params(params, r)), args.decoded, args.multi_decoded, model,
                  params["data"]["ground_truth"], args.multi_ground_truth, args.stems, mapping, out,
                  out / "metrics.json", device, log=log)
        _stamp(done, r)


# ---------------------------------------------------------------------------------------------
# the tables
# ---------------------------------------------------------------------------------------------
def load_runs(runs_dir: Path) -> dict:
    """{(config, seed): {"pairs", "clips", "esc"}} of every scored run under ``runs_dir``."""
    out = {}
    for d in sorted(Path(runs_dir).glob("*_s*")):
        det = json.loads((d / "details.json").read_text())
        esc = d / "esc50_clips.csv"
        out[(det["config"], int(det["seed"]))] = {
            "pairs": pd.read_csv(d / "pairs.csv"), "clips": pd.read_csv(d / "clips.csv"),
            "esc": pd.read_csv(esc) if esc.is_file() else None, "details": det}
    return out


def _sums(kind: str, run: dict, method: str, units: list):
    if kind == "loc":
        return B.loc_clip_sums(run["pairs"], method, units)
    frame = run["clips"] if kind == "count" else run["esc"]
    key = "video" if kind == "count" else "clip"
    frame = frame.set_index(key).reindex(units).reset_index()
    return (count_sums if kind == "count" else esc_sums)(frame, method)


def _has(kind: str, run: dict, method: str) -> bool:
    """Whether a scored run holds the method (runs scored by earlier code lack the newer count rows)."""
    if kind == "loc":
        return f"{method}_pointing" in run["pairs"]
    frame = run["clips"] if kind == "count" else run["esc"]
    return frame is not None and f"pred_{method}" in frame


def _zero(sums):
    """The same units with zero numerators: A - zero is A's level (a level's hierarchical interval)."""
    num, den = sums
    return np.zeros_like(np.asarray(num, dtype=np.float64)), den


def _units(kind: str, runs: dict) -> list:
    first = next(iter(runs.values()))
    if kind == "loc":
        return sorted(first["pairs"].video.unique())
    return sorted(first["clips"].video) if kind == "count" else list(first["esc"]["clip"])


def tables(runs: dict, replicates: int = B.REPLICATES) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(levels, differences): one row per (kind, row label, metric) with n seeds, mean and interval;
    one row per (kind, baseline, metric) of DMC minus it, paired by clip and seed."""
    kinds = {"loc": (LOC_ROWS, list(B.LOC_METRICS)), "count": (COUNT_ROWS, ["acc"]), "esc": (ESC_ROWS, ["acc"])}
    levels, diffs = [], []
    for kind, (rows, metrics) in kinds.items():
        if kind == "esc" and any(r["esc"] is None for r in runs.values()):
            continue
        units = _units(kind, runs)
        counts = B.draw_counts(len(units), replicates, BOOT_SEED[kind])
        per, degenerate = {}, {}
        for label, config, method in rows:
            seeds = sorted(s for c, s in runs if c == config and _has(kind, runs[(c, s)], method))
            if not seeds:
                continue
            per[label] = {s: _sums(kind, runs[(config, s)], method, units) for s in seeds}
            degenerate[label] = kind == "count" and any(
                runs[(config, s)]["details"].get("count_degenerate", {}).get(method) for s in seeds)
            point, reps = B.seed_mean(list(per[label].values()), counts)
            hier = B.hierarchical_difference(list(per[label].values()), [_zero(x) for x in per[label].values()],
                                             replicates, HIER_SEED[kind])
            for j, m in enumerate(metrics):
                lo, hi = B.interval(reps[:, j])
                levels.append({"kind": kind, "row": label, "config": config, "method": method, "metric": m,
                               "n_seeds": len(seeds), "seeds": " ".join(map(str, seeds)), "n_units": len(units),
                               "mean": point[j], "lo": hier.lo[j], "hi": hier.hi[j], "clip_lo": lo, "clip_hi": hi,
                               "degenerate": degenerate[label]})
        dmc = per.get("DMC", {})
        for label, _, _ in rows[1:]:
            if label not in per:
                continue
            common = sorted(set(dmc) & set(per[label]))
            if not common:
                continue
            point, reps, per_seed = B.paired_difference([dmc[s] for s in common], [per[label][s] for s in common],
                                                        counts)
            hier = B.hierarchical_difference([dmc[s] for s in common], [per[label][s] for s in common], replicates,
                                             HIER_SEED[kind])
            for j, m in enumerate(metrics):
                lo, hi = B.interval(reps[:, j])
                h_lo, h_hi = hier.lo[j], hier.hi[j]
                diffs.append({"kind": kind, "baseline": label, "metric": m, "n_seeds": len(common),
                              "seeds": " ".join(map(str, common)), "diff": point[j], "lo": h_lo, "hi": h_hi,
                              "clip_lo": lo, "clip_hi": hi,
                              "seeds_positive": int((per_seed[:, j] > 0).sum()),
                              "seeds_negative": int((per_seed[:, j] < 0).sum()),
                              "degenerate": degenerate.get(label, False) or degenerate.get("DMC", False),
                              "reading": "DMC higher" if h_lo > 0 else "DMC lower" if h_hi < 0
                              else "no difference resolved"})
    return pd.DataFrame(levels), pd.DataFrame(diffs)


def audio_gaps(runs: dict, replicates: int = B.REPLICATES) -> pd.DataFrame:
    """The audio-dependence gap (issue 33, item 5): one row per (row, metric) of :data:`GAP_ROWS` and
    :data:`GAP_METRICS`, the run's own model with its own audio minus the same model with another clip's
    audio (``dmc`` - ``mismatched`` of ``pairs.csv``, the same pairs), and one per metric of the difference
    of the gaps DMC - no clustering, paired by seed number and by clip.

    A gap is a ratio of sums over clips (:func:`dmc.studies.headline_multi.gap_sums`: per clip own minus
    mismatched numerators over the pairs with a sounding region); ``diff`` is its mean over seeds, ``lo`` /
    ``hi`` the hierarchical 95 % interval (seeds, then clips) and ``seeds_positive`` / ``seeds_negative``
    the seed sign counts, by :func:`dmc.studies.headline_multi.interval` (so with the draws of the
    test-corpus rows of ``results/headline_multi.md``)."""
    units = _units("loc", runs)
    per = {}
    for label, config in GAP_ROWS:
        seeds = sorted(s for c, s in runs if c == config and _has("loc", runs[(c, s)], "mismatched"))
        per[label] = {s: {m: gap_sums(runs[(config, s)]["pairs"], m, units) for m in GAP_METRICS} for s in seeds}
    out = []

    def add(row, seeds, a, b=None):
        for m in GAP_METRICS:
            r = gap_interval([x[m] for x in a], None if b is None else [x[m] for x in b], replicates)
            out.append({"kind": "loc", "row": row, "metric": m, "n_seeds": len(seeds),
                        "seeds": " ".join(map(str, seeds)), "diff": r["value"], "lo": r["lo"], "hi": r["hi"],
                        "seeds_positive": r["seeds_positive"], "seeds_negative": r["seeds_negative"]})

    for label, _ in GAP_ROWS:
        if per[label]:
            add(label, sorted(per[label]), list(per[label].values()))
    dmc, nc = (per[label] for label, _ in GAP_ROWS)
    common = sorted(set(dmc) & set(nc))
    if common:
        add(GAP_DIFF, common, [dmc[s] for s in common], [nc[s] for s in common])
    return pd.DataFrame(out)


def gap_table(gaps: pd.DataFrame | None) -> list[str]:
    """The section of headline.md with :func:`audio_gaps`' rows (after the six tables the docs include by
    number)."""
    if gaps is None or not len(gaps):
        return []
    out = ["## Audio dependence (own audio − mismatched audio)", "",
           "Each trained row's maps with its own audio minus the same model's maps with another clip's audio "
           "(the mismatched control of its own run), on the same (frame, audio segment) pairs; the last row is "
           "the difference of the two gaps, paired by seed and clip [hierarchical 95 % interval] (seeds with "
           "the value above / below 0):", "",
           "| own − mismatched | seeds | " + " | ".join(METRIC_NAMES[m] for m in GAP_METRICS) + " |",
           "|---|---|" + "---|" * len(GAP_METRICS)]
    for row in dict.fromkeys(gaps.row):
        r = gaps[gaps.row == row].set_index("metric")
        cells = []
        for m in GAP_METRICS:
            x = r.loc[m]
            mark = "**" if x.lo > 0 or x.hi < 0 else ""
            cells.append(f"{mark}{_ci(x['diff'], x.lo, x.hi, True)}{mark} ({x.seeds_positive}/{x.seeds_negative})")
        out.append(f"| {row} | {r.n_seeds.iloc[0]} | " + " | ".join(cells) + " |")
    return out + [""]


def _ci(mean, lo, hi, signed=False) -> str:
    f = "+.3f" if signed else ".3f"
    return f"{mean:{f}} [{lo:{f}}, {hi:{f}}]"


KIND_TITLES = {"loc": "Localization (per (frame, audio segment) pair; intervals: seeds, then clips, drawn with replacement)",
               "count": "Counting the sounding objects (per clip)",
               "esc": "ESC-like audio features (30 categories, 5 folds; per ESC-like clip)"}
METRIC_NAMES = {"pointing": "pointing", "ciou50": "cIoU@0.5", "auc": "AUC", "ciou_mean": "mean cIoU", "acc": "accuracy"}


def markdown(levels: pd.DataFrame, diffs: pd.DataFrame, runs: dict, frozen: str | None,
             gaps: pd.DataFrame | None = None, runs_csv: Path = OUT / "headline_runs.csv") -> str:
    det = next(iter(runs.values()))["details"]
    lines = ["# Headline: DMC, its baselines and controls on the untouched test corpus", "",
             f"Test corpus: {det['clips']} clips from its own seed (`synth.test_seed`), "
             f"{det['pairs_with_sounding_region']} (frame, audio segment) pairs with a sounding object; "
             "no choice read it. Mean over the seeds of each row [hierarchical 95 % interval: "
             f"{B.REPLICATES} replicates, the seeds drawn with replacement, then each drawn seed's clips, "
             "paired by seed and clip; the clip-bootstrap intervals, seeds held fixed, are in the last table]. "
             f"Made by `python -m dmc.studies.headline` from the runs in `{Path(runs_csv).as_posix()}`"
             + (f"; the default was frozen at commit {frozen}." if frozen else "."), ""]
    for kind, title in KIND_TITLES.items():
        lv = levels[levels.kind == kind] if len(levels) else levels
        if not len(lv):
            continue
        metrics = list(dict.fromkeys(lv.metric))
        lines += [f"## {title}", "", "| row | seeds | " + " | ".join(METRIC_NAMES[m] for m in metrics) + " |",
                  "|---|---|" + "---|" * len(metrics)]
        for row in dict.fromkeys(lv.row):
            r = lv[lv.row == row].set_index("metric")
            lines.append(f"| {row} | {r.n_seeds.iloc[0]} | " + " | ".join(
                "degenerate" if _is_degenerate(r.loc[m]) else _ci(r.loc[m, "mean"], r.loc[m, "lo"], r.loc[m, "hi"])
                for m in metrics) + " |")
        d = diffs[diffs.kind == kind] if len(diffs) else diffs
        if len(d):
            lines += ["", "DMC minus each row, paired by seed and clip [hierarchical 95 % interval of the difference] "
                          "(seeds with DMC above / below):", "",
                      "| DMC minus | seeds | " + " | ".join(METRIC_NAMES[m] for m in metrics) + " |",
                      "|---|---|" + "---|" * len(metrics)]
            for b in dict.fromkeys(d.baseline):
                r = d[d.baseline == b].set_index("metric")
                cells = []
                for m in metrics:
                    x = r.loc[m]
                    if _is_degenerate(x):
                        cells.append("degenerate")
                        continue
                    mark = "**" if x.lo > 0 or x.hi < 0 else ""
                    cells.append(f"{mark}{_ci(x['diff'], x.lo, x.hi, True)}{mark} ({x.seeds_positive}/{x.seeds_negative})")
                lines.append(f"| {b} | {r.n_seeds.iloc[0]} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += gap_table(gaps)
    lines += ["Bold: the hierarchical interval of the difference excludes 0 (only then is a difference claimed). "
              "`degenerate`: every clip got the same count score in some seed (uniform assignments: the count "
              "is a constant), so the row is not a counting result.", ""]
    lines += targets(levels, diffs, gaps)
    lines += clip_table(diffs)
    return "\n".join(lines) + "\n"


def _is_degenerate(x) -> bool:
    return bool(x.get("degenerate", False)) if hasattr(x, "get") else False


def clip_table(diffs: pd.DataFrame) -> list[str]:
    """The last table: every difference with its clip-bootstrap interval (seeds held fixed) beside the
    hierarchical one, so the seed-to-seed spread can be seen."""
    if not len(diffs) or "clip_lo" not in diffs:
        return []
    out = ["## Clip-bootstrap intervals (seeds held fixed) beside the hierarchical ones", "",
           "| kind | DMC minus | metric | difference | clip bootstrap | hierarchical | seeds above / below |",
           "|---|---|---|---|---|---|---|"]
    for _, x in diffs.iterrows():
        out.append(f"| {x.kind} | {x.baseline} | {METRIC_NAMES[x.metric]} | {x['diff']:+.3f} | "
                   f"[{x.clip_lo:+.3f}, {x.clip_hi:+.3f}] | [{x.lo:+.3f}, {x.hi:+.3f}] | "
                   f"{x.seeds_positive}/{x.seeds_negative} |")
    return out + [""]


def _level(levels, kind, row, metric):
    r = levels[(levels.kind == kind) & (levels.row == row) & (levels.metric == metric)]
    return None if not len(r) else r.iloc[0]


def _diff(diffs, kind, baseline, metric):
    r = diffs[(diffs.kind == kind) & (diffs.baseline == baseline) & (diffs.metric == metric)]
    return None if not len(r) else r.iloc[0]


def _row_label(rows, method, config=DEFAULT) -> str:
    return next(lab for lab, c, m in rows if m == method and c == config)


def targets(levels: pd.DataFrame, diffs: pd.DataFrame, gaps: pd.DataFrame | None = None) -> list[str]:
    """Issue 26's targets (and issue 33's on this corpus), each with the numbers that decide it."""
    out = ["## Targets of issue 26 (the untouched test corpus, mean over seeds, 95 % intervals)", "",
           "| claim | target | measured | met |", "|---|---|---|---|"]

    def row(claim, target, measured, met):
        out.append(f"| {claim} | {target} | {measured} | {'yes' if met else 'no' if met is not None else 'not measured'} |")

    d = _diff(diffs, "loc", _row_label(LOC_ROWS, "audio_blind"), "pointing")
    row("DMC pointing − audio-blind saliency (trained map, uniform weights)", "> 0, interval excluding 0",
        _ci(d["diff"], d.lo, d.hi, True) if d is not None else "–", None if d is None else bool(d.lo > 0))
    mm, ab = _level(levels, "loc", _row_label(LOC_ROWS, "mismatched"), "pointing"), _level(levels, "loc", _row_label(LOC_ROWS, "audio_blind"), "pointing")
    row("mismatched-audio pointing", "within the audio-blind level's interval",
        f"{mm['mean']:.3f} against audio-blind {_ci(ab['mean'], ab.lo, ab.hi)}" if mm is not None and ab is not None
        else "–", None if mm is None or ab is None else bool(ab.lo <= mm["mean"] <= ab.hi))
    nc = [_diff(diffs, k, "no clustering (train.iterations=1)", m) for k, m in
          (("loc", "pointing"), ("loc", "ciou50"), ("loc", "auc"), ("count", "acc"))]
    nc = [(x.metric, x) for x in nc if x is not None]
    row("DMC vs no clustering, localization and counting", "difference reported with its interval",
        "; ".join(f"{METRIC_NAMES[m]} " + ("degenerate" if _is_degenerate(x) else _ci(x['diff'], x.lo, x.hi, True))
                  for m, x in nc) or "–",
        None if not nc else True)
    c = _diff(diffs, "count", _row_label(COUNT_ROWS, "best_constant"), "acc")
    row("counting − best constant count", "≥ +0.2", _ci(c["diff"], c.lo, c.hi, True) if c is not None else "–",
        None if c is None else bool(c["diff"] >= 0.2))
    v = _diff(diffs, "count", _row_label(COUNT_ROWS, "visible_count"), "acc")
    row("counting − visible-object count (issue 33)", "> 0, interval excluding 0",
        _ci(v["diff"], v.lo, v.hi, True) if v is not None else "–", None if v is None else bool(v.lo > 0))
    e = _diff(diffs, "esc", _row_label(ESC_ROWS, "random_init_bn"), "acc")
    row("ESC-like DMC − BN-recalibrated random init", "reported with its interval",
        _ci(e["diff"], e.lo, e.hi, True) if e is not None else "–", None if e is None else True)
    g = [] if gaps is None or not len(gaps) else [x for _, x in gaps[gaps.row == GAP_DIFF].iterrows()]
    row("audio-dependence gap DMC − no clustering (untouched test corpus; issue 33)", "reported",
        "; ".join(f"{METRIC_NAMES[x.metric]} {_ci(x['diff'], x.lo, x.hi, True)}" for x in g) or "–",
        True if g else None)
    return out + [""]


def write(runs: dict, out: Path, runs_list: list[Run] | None, frozen: str | None, replicates=B.REPLICATES) -> None:
    levels, diffs = tables(runs, replicates)
    gaps = audio_gaps(runs, replicates)
    with atomic_file(out / "headline.csv") as tmp:
        pd.concat([levels.assign(table="level"), diffs.assign(table="difference"),
                   gaps.assign(table="audio gap")]).to_csv(tmp, index=False, float_format="%.4f")
    with atomic_file(out / "headline.md") as tmp:
        Path(tmp).write_text(markdown(levels, diffs, runs, frozen, gaps, out / "headline_runs.csv"))
    from dmc.studies.headline_summary import write as write_summary

    write_summary(out / "headline.md", out / "headline_summary.md")   # the README's table (included)
    if runs_list is not None:
        with atomic_file(out / "headline_runs.csv") as tmp:
            pd.DataFrame([r.__dict__ for r in runs_list]).to_csv(tmp, index=False)


def main(argv=None) -> int:
    from dmc.pipeline.params import load_params

    ap = argparse.ArgumentParser(prog="python -m dmc.studies.headline", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--queue", action="store_true", help="queue the runs not yet among the experiments")
    ap.add_argument("--run", action="store_true", help="run the queue and wait (dvc exp run --run-all)")
    ap.add_argument("--no-score", action="store_true", help="only (re)write the tables from the scored runs")
    ap.add_argument("--rescore", action="store_true", help="score runs again even when already scored")
    ap.add_argument("--decoded", default="data/decoded")
    ap.add_argument("--test-decoded", default="data/decoded_test")
    ap.add_argument("--test-ground-truth", default="data/synth_test/ground_truth")
    ap.add_argument("--esc50", default="data/evalsets/esc50")
    ap.add_argument("--multi-decoded", default="data/decoded_multi",
                    help="the multi-source test corpus, decoded ('' or missing: not scored)")
    ap.add_argument("--multi-ground-truth", default="data/synth_multi/ground_truth")
    ap.add_argument("--stems", default="data/synth_multi/stems")
    ap.add_argument("--multi-runs-dir", default=str(MULTI_RUNS_DIR))
    ap.add_argument("--runs-dir", default=str(RUNS_DIR))
    ap.add_argument("--out-dir", default=str(OUT))
    ap.add_argument("--frozen", help="the commit at which the default was frozen (written into the table)")
    ap.add_argument("--models-dir", help="score model files <config>_s<seed>.pt of this folder instead of the "
                                         "DVC experiments' models")
    ap.add_argument("--train-models", action="store_true", help="with --models-dir: first train the runs missing "
                                                                "there (dmc train's Trainer, train.device)")
    ap.add_argument("--with-experiments", action="store_true",
                    help="with --models-dir: the runs missing from the folder are taken from the experiments and "
                         "the committed run (HEAD), as without --models-dir")
    ap.add_argument("--train-code-rev", default="HEAD",
                    help="runs count only when their train stage's source files are those of this commit")
    args = ap.parse_args(argv)
    params = load_params(args.params, sweeps=True)
    log = lambda m: print(m, file=sys.stderr)   # noqa: E731
    runs_list = None
    if args.models_dir:
        if args.train_models:
            train_models(params, Path(args.decoded), Path(args.models_dir), log)
        runs_list = runs_of_dir(params, Path(args.models_dir), log)
        if args.with_experiments:
            have = {(r.config, r.seed) for r in runs_list}
            runs_list += [r for r in find_runs(params, args.train_code_rev, log) if (r.config, r.seed) not in have]
    elif not args.no_score or args.queue:
        runs_list = find_runs(params, args.train_code_rev, log)
    if args.queue:
        log(f"headline: {queue(params, {(r.config, r.seed) for r in runs_list}, log)} runs queued")
    if args.run:
        sh(["dvc", "exp", "run", "--run-all", "--jobs", "1"])
        runs_list = find_runs(params, args.train_code_rev, log)
    if not args.no_score:
        score_runs(params, runs_list, args, log)
    runs = load_runs(Path(args.runs_dir))
    if not runs:
        print("dmc headline: no scored run", file=sys.stderr)
        return 1
    write(runs, Path(args.out_dir), runs_list, args.frozen)
    log(f"headline: {len(runs)} runs -> {Path(args.out_dir) / 'headline.md'}")
    multi = load_multi_runs(Path(args.multi_runs_dir))
    if multi:
        write_multi(multi, runs, Path(args.out_dir), runs_dir=Path(args.multi_runs_dir))
        log(f"headline: {len(multi)} multi-source runs -> {Path(args.out_dir) / 'headline_multi.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
