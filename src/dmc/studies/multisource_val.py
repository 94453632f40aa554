"""Why DMC does not separate sources: issue 33 item 7, on validation data only.

Question: which of the clustering's knobs (k = ``train.clusters``, the clustering iterations
``train.iterations``, z = ``train.temperature``), the budget (``train.epochs``), multi-source
training data (``synth.mixtures``) or the maps' inference-time knobs (``localize.agreement_temperature``,
``localize.heatmap_rule``) moves the class-aware, stem-conditioned and counting scores of issue 33, measured on a **validation**
multi-source corpus (never the untouched one)?

Default: params.yaml (the committed default). Configurations, one key at a time: :data:`GRID` (runs made
elsewhere, under ``sweeps.headline_seeds``), :data:`TRAINED` (trained here under
``sweeps.headline_seeds``) and :data:`INFERENCE` (the default's models scored with another
``localize`` value): round 1, :func:`choose`. Round 2 (:data:`ROUND2`, :func:`choose_round2`): an
inference-time knob on the round-1 choice's models (``<choice>+<knob>``, compared with the choice)
and on the default's (compared with the default). Command::

    python -m dmc.studies.multisource_val --train --models-dir models/headline --with-experiments

Data: the validation corpus is drawn by the multi-source test corpus's own generator
(:func:`dmc.synth.multisource.generate_multisource`, the same settings,
:func:`dmc.pipeline.multicorpus.multi_corpus_settings`) from its own seed :data:`VAL_SEED` (refused
if it is a seed of the training corpus, the test corpus or the multi-source test corpus), into
``data/studies/multi_val`` (``videos``, ``stems``, ``ground_truth``, ``decoded``): clips from the
same distribution that no reported number is computed on. The cluster -> class mapping and the
count rule's cut points are fitted on the training corpus's train + val pairs, as in the pipeline
(:func:`dmc.pipeline.heldout_multi.run`, the ``heldout_multi`` stage's own function).

Runs: the committed run and finished DVC experiments (refs/exps, e.g. ``dmc compare``'s) whose train
code is this checkout's (:func:`dmc.studies.headline.find_runs`), and model files
``<config>_s<seed>.pt`` in ``--models-dir`` (:func:`dmc.studies.headline.runs_of_dir`). Each run is
scored once into ``results/studies/multisource_val/runs/<config>_s<seed>/`` (kept while the model's
MD5 is the same).

Output: ``results/studies/multisource_val/study.md|csv`` and ``choice.json`` (:func:`choose`): every configuration's level and its
difference from the default (mean over paired seeds of the per-seed difference on the same clips),
with hierarchical 95 % intervals (seeds, then clips: :func:`dmc.studies.headline_multi.interval`) and
the seed sign counts; the header (question, default, command, date, commit). What it shows is for the
choice of a configuration; only a configuration chosen here is then scored on the untouched corpus.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from dmc.atomic import atomic_file
from dmc.studies import headline as H
from dmc.studies import headline_multi as HM

VAL_SEED = 2500                      # the validation corpus's own seed (see the module doc)
# one key at a time away from the default: runs found among the experiments and --models-dir ...
GRID = {"train.clusters": [5], "train.iterations": [1]}
# ... and runs the study trains itself (--train) into MODELS under sweeps.headline_seeds with the
# train stage's own Trainer (only the model is needed, so not the whole dvc exp pipeline with its SVM
# evaluations: a dvc exp run costs several times a training on 2 cores):
# half of the training clips made as mixtures and duets (its own training corpus, generated and
# decoded here); z = 3 (train.temperature: harder assignments, the squash-free setting's next value
# in results/studies/none_temperature); twice the budget (train.epochs = 120, the cosine schedule
# stretched over it).
# k = 16 (added after the INFERENCE knobs' numbers were read, which showed the agreement weights
# trading NSA against stem pointing; the choice rule unchanged): more clusters than the 8 classes, so
# that a class can own two and a silent object need not share its cluster with a sounding one.
TRAINED = {"synth.mixtures": ["music_synthetic"], "train.temperature": [3.0], "train.epochs": [120],
           "train.clusters": [16]}
# ... and the maps' own inference-time knobs (localize.*: nothing is trained, the default's models are
# scored with another value; added after the first choice, with the rule unchanged): the agreement
# temperature tau of w_j = softmax_j(tau cos(c_j^a, c_j^v)), one value either side of the default's 20
# (sharper weights give a silent cluster less of the heat; softer ones more), and the two other
# heat-map rules (proximity: closeness to the *audio* centres, the rule most directly conditioned on
# what is heard; assignment: the visual soft assignments alone).
INFERENCE = {"localize.agreement_temperature": [5.0, 80.0], "localize.heatmap_rule": ["proximity", "assignment"]}
# Round 2, added after the round-1 choice, frozen, missed NSA >= 0.9 on the untouched corpus
# (results/studies/multisource_frozen; nothing of the untouched corpus is read here): the class maps'
# gate (localize.class_map_gate, an inference-time knob: DSOL gates its object maps by its sounding
# map, see dmc.localization.classmaps), scored with the round-1 choice's models (a configuration
# "<choice>+<knob>", compared with the choice) and with the default's (compared with the default, as
# in round 1, for the pipeline's own default). The rule is round 1's, unchanged: the round-1 choice
# is replaced only by a round-2 configuration that passes it against the choice.
ROUND2 = {"localize.class_map_gate": ["heat"]}
JOIN = "+"
ROOT = Path("data/studies/multi_val")
CORPORA = Path("data/studies")
MODELS = Path("models/studies/multisource_val")
OUT = Path("results/studies/multisource_val")
METRICS = ("ca_ciou30", "ca_auc", "nsa", "recall", "stem_pointing", "wrong_source_rate")


# The study's default is params.yaml with the class maps as round 1 scored them (ungated): the pipeline's
# default took round 2's gate afterwards, and round 1's runs keep their meaning; round 2 sets the gate
# through its own configurations.
BASE = {"localize": {"class_map_gate": "none"}}


def study_params(params: dict) -> dict:
    """params.yaml with :data:`BASE` and the study's grid as the headline's configurations (so the headline's
    run finders label the runs)."""
    p = json.loads(json.dumps(params))
    for section, values in BASE.items():
        p[section] = {**p[section], **values}
    grid: dict = {}
    for part in (GRID, TRAINED, INFERENCE, ROUND2):  # a key in several (k: 5 found, 16 trained) keeps every value
        for key, values in part.items():
            grid[key] = grid.get(key, []) + [v for v in values if v not in grid.get(key, [])]
    p.setdefault("sweeps", {})["headline"] = grid
    return p


def _relabel(runs: list, labels: list[str]) -> list:
    """The runs of each label's base (:func:`base_of`) relabelled as that label (the same model, scored with
    the label's inference-time value: :func:`score` applies it through the configuration's key), but a
    (label, seed) already among ``runs``."""
    import dataclasses

    have = {(r.config, r.seed) for r in runs}
    return [dataclasses.replace(r, config=label) for label in labels for r in runs
            if r.config == base_of(label) and (label, r.seed) not in have]


def inference_runs(runs: list) -> list:
    """The default's runs relabelled as each :data:`INFERENCE` configuration."""
    return _relabel(runs, [label for label, _ in inference_labels()])


def round2_labels(base: str) -> list[str]:
    """The round-2 configurations: each :data:`ROUND2` value on the default's models and on ``base``'s
    (the round-1 choice; ``<base>+<knob>``)."""
    from dmc.pipeline.experiments import _label

    knobs = [_label(key, value) for key, values in ROUND2.items() for value in values]
    return knobs + ([f"{base}{JOIN}{k}" for k in knobs] if base != H.DEFAULT else [])


def base_of(config: str) -> str:
    """The configuration a round-2 one is compared with: the part before the knob, or the default."""
    return config.rpartition(JOIN)[0] or H.DEFAULT


def round2_runs(runs: list, base: str) -> list:
    """The default's and ``base``'s runs relabelled as each round-2 configuration (the same models)."""
    return _relabel(runs, round2_labels(base))


def _round1(scored: dict) -> dict:
    """The scored runs without the round-2 configurations."""
    return {(c, s): v for (c, s), v in scored.items() if JOIN not in c and c not in round2_labels(H.DEFAULT)}


def config_params(params: dict, run: H.Run) -> dict:
    """The run's params: :func:`dmc.studies.headline.run_params` for each ``+``-joined part of its label."""
    import dataclasses

    p = params
    for part in run.config.split(JOIN):
        p = H.run_params(p, dataclasses.replace(run, config=part))
    return p


def training_corpus(params: dict, run: H.Run, log=print) -> tuple[Path, str]:
    """(decoded folder, ground truth) of the training corpus a run was trained on: the pipeline's, or,
    for a configuration that changes a ``synth`` key, its own under ``data/studies/train_<config>``
    (generated with ``dmc synth videos`` and ``dmc decode`` from a params file with that key, unless
    there; written beside, then renamed)."""
    p = config_params(params, run)
    if p["synth"] == params["synth"]:
        return Path("data/decoded"), params["data"]["ground_truth"]
    root = CORPORA / f"train_{run.config}"
    if not (root / "decoded" / "index.csv").is_file():
        CORPORA.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=root.name + ".", dir=CORPORA))
        pfile = tmp / "params.yaml"
        pfile.write_text(yaml.safe_dump({k: v for k, v in p.items() if k != "sweeps"}, sort_keys=False))
        log(f"multisource_val: generating the training corpus of {run.config} in {root}")
        H.sh(["dmc", "--params", str(pfile), "synth", "videos", "--out", str(tmp / "videos"),
              "--ground-truth", str(tmp / "ground_truth")])
        H.sh(["dmc", "--params", str(pfile), "decode", "--videos", str(tmp / "videos"), "--out-dir", str(tmp / "decoded")])
        if root.exists():
            shutil.rmtree(root)
        tmp.rename(root)
    return root / "decoded", str(root / "ground_truth")


def inference_labels() -> list[tuple[str, dict]]:
    from dmc.pipeline.experiments import _label

    return [(_label(key, value), {key: value}) for key, values in INFERENCE.items() for value in values]


def train_missing(params: dict, folder: Path = MODELS, log=print) -> None:
    """Train each :data:`TRAINED` configuration under ``sweeps.headline_seeds`` missing from ``folder`` as
    ``<config>_s<seed>.pt`` (dmc train's Trainer, on the configuration's own training corpus)."""
    from dmc.model.training import Trainer

    from dmc.pipeline.experiments import _label

    folder.mkdir(parents=True, exist_ok=True)
    for key, values in TRAINED.items():
        for value in values:
            for seed in params["sweeps"]["headline_seeds"]:
                run = H.Run(_label(key, value), seed, "", "", "")
                out = folder / f"{run.config}_s{seed}.pt"
                if out.is_file():
                    continue
                decoded, _ = training_corpus(params, run, log)
                log(f"multisource_val: training {run.config} seed {seed} -> {out}")
                Trainer(H.run_params(params, run), decoded, out, folder / f"{run.config}_s{seed}_log.csv",
                        folder / f"ck_{run.config}_s{seed}", folder / f"{run.config}_s{seed}_metrics.json").fit()


def val_settings(params: dict) -> dict:
    """generate_multisource's arguments for the validation corpus: the multi-source test corpus's,
    with :data:`VAL_SEED`; a seed shared with any other corpus is refused."""
    from dmc.pipeline.multicorpus import multi_corpus_settings
    from dmc.pipeline.params import ParamsError

    synth = dict(params["synth"])
    if VAL_SEED == synth["multi_seed"]:
        raise ParamsError(f"VAL_SEED {VAL_SEED} is synth.multi_seed (the untouched multi-source corpus)")
    return multi_corpus_settings({**synth, "multi_seed": VAL_SEED})


def make_corpus(params: dict, params_file: str, root: Path = ROOT, log=print) -> Path:
    """Generate and decode the validation corpus under ``root`` unless it is there (written into a
    temporary folder beside it, then renamed: an interrupted run leaves nothing a later one trusts)."""
    from dmc.synth.multisource import generate_multisource

    if (root / "decoded" / "index.csv").is_file():
        return root
    kw = val_settings(params)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=root.name + ".", dir=root.parent))
    log(f"multisource_val: generating {kw['n_videos']} validation clips (seed {kw['seed']}) in {root}")
    generate_multisource(tmp / "videos", tmp / "stems", tmp / "ground_truth", **kw)
    H.sh(["dmc", "--params", params_file, "decode", "--videos", str(tmp / "videos"), "--out-dir", str(tmp / "decoded")])
    if root.exists():
        shutil.rmtree(root)
    tmp.rename(root)
    return root


def score(params: dict, runs: list, root: Path, runs_dir: Path, rescore: bool = False, log=print) -> None:
    """Score each run on the validation corpus (dmc.pipeline.heldout_multi.run), unless already scored."""
    from dmc.config import Params
    from dmc.localization.mapping_file import mapping_path
    from dmc.model.training import pick_device
    from dmc.pipeline.heldout_multi import run as multi_run

    device = pick_device(params["localize"]["device"])
    # the configurations that score another configuration's model (never written beside that model)
    relabels = {label for label, _ in inference_labels()} | set(round2_labels(H.DEFAULT))
    for r in runs:
        relabelled = r.config in relabels or JOIN in r.config
        out = runs_dir / f"{r.config}_s{r.seed}"
        done = out / "details.json"
        if H.scored_with(done, r.model_md5, config_params(params, r)["localize"]["class_map_gate"]) and not rescore:
            continue
        model = Path(r.path) if r.path else H.cache_path(r.model_md5)
        if not model.is_file():
            raise FileNotFoundError(f"{model}: the model of {r.name} ({r.config}, seed {r.seed}) is not in the "
                                    "local DVC cache")
        # beside a model given by file, unless the model is the default's scored with an inference knob
        beside = r.path and not relabelled
        mapping = mapping_path(model) if beside else out.parent / f"{out.name}.class_mapping.json"
        log(f"multisource_val: scoring {r.config} seed {r.seed} ({r.name})")
        decoded, gt = training_corpus(params, r, log)    # the mapping and cut points: its training corpus
        multi_run(Params.from_dict(config_params(params, r)), decoded, root / "decoded", model, gt,
                  root / "ground_truth", root / "stems", mapping, out, out / "metrics.json", device, log=log)
        H._stamp(done, r)


def table(runs: dict, replicates: int = HM.B.REPLICATES) -> pd.DataFrame:
    """Levels of every configuration and its difference from the default (paired seeds), per metric,
    with hierarchical intervals; counting accuracy as DMC's count against the visible-object count."""
    rows = []
    configs = [H.DEFAULT] + sorted({c for c, _ in runs if c != H.DEFAULT})
    for config in configs:
        seeds = sorted(s for c, s in runs if c == config)
        for m in METRICS:
            rows.append({"config": config, "kind": "level", "metric": m, "seeds": " ".join(map(str, seeds)),
                         **HM.interval([HM.ca_sums(runs[(config, s)], "dmc", m) for s in seeds],
                                       replicates=replicates)})
        count = HM._count_pair(runs, [(config, "dmc")], seeds)[0]
        rows.append({"config": config, "kind": "level", "metric": "count_acc", "seeds": " ".join(map(str, seeds)),
                     "degenerate": HM._degenerate(runs, config, seeds), **HM.interval(count, replicates=replicates)})
        if config == H.DEFAULT:
            rows += _baselines(runs, seeds, replicates)
            continue
        base = base_of(config)          # the default, or for a round-2 "<choice>+<knob>" the choice
        kind = "minus default" if base == H.DEFAULT else "minus base"
        paired = HM._common(runs, config, base)
        common = {"config": config, "kind": kind, "base": base, "seeds": " ".join(map(str, paired))}
        for m in METRICS:
            rows.append({**common, "metric": m,
                         **HM.interval([HM.ca_sums(runs[(config, s)], "dmc", m) for s in paired],
                                       [HM.ca_sums(runs[(base, s)], "dmc", m) for s in paired], replicates)})
        a, b = HM._count_pair(runs, [(config, "dmc"), (base, "dmc")], paired)
        rows.append({**common, "metric": "count_acc", "degenerate": HM._degenerate(runs, config, paired),
                     **HM.interval(a, b, replicates)})
    return pd.DataFrame(rows)


# the strongest simple baselines beside the levels, from the default's runs (the same clips): the
# audio-blind map (trained visual map, uniform cluster weights) for the map metrics; for counting the
# visible-object count (every drawn object, cut points fitted on train + val) and the best constant
MAP_BASELINES = {"audio-blind map": "audio_blind"}
COUNT_BASELINES = {"visible-object count": "visible_count", "best constant": "best_constant"}


def _baselines(runs: dict, seeds: list, replicates: int) -> list[dict]:
    """Level of each baseline and the default minus it (paired by seed, the same clips)."""
    rows = []
    common = {"seeds": " ".join(map(str, seeds))}
    for name, method in MAP_BASELINES.items():
        for m in METRICS:
            base = [HM.ca_sums(runs[(H.DEFAULT, s)], method, m) for s in seeds]
            rows.append({"config": name, "kind": "level", "metric": m, **common,
                         **HM.interval(base, replicates=replicates)})
            rows.append({"config": name, "kind": "default minus", "metric": m, **common,
                         **HM.interval([HM.ca_sums(runs[(H.DEFAULT, s)], "dmc", m) for s in seeds], base, replicates)})
    for name, method in COUNT_BASELINES.items():
        a, b = HM._count_pair(runs, [(H.DEFAULT, "dmc"), (H.DEFAULT, method)], seeds)
        rows.append({"config": name, "kind": "level", "metric": "count_acc", **common,
                     **HM.interval(b, replicates=replicates)})
        rows.append({"config": name, "kind": "default minus", "metric": "count_acc", **common,
                     **HM.interval(a, b, replicates)})
    return rows


NAMES = {**HM.METRIC_NAMES, "count_acc": "counting accuracy"}

# The rule that picks the configuration, written before the numbers of the configurations trained
# here (mixtures, z, budget) were read (k's and the iterations' had been: worse than the default), and
# kept unchanged when the INFERENCE configurations (before their numbers were read) and k = 16 were added. Counting is
# no criterion: every validation clip has two sounding sources (the multi-source corpus's mixtures
# and duets), so the best constant is right on every clip. A configuration replaces the default
# only if its difference from the default is resolved in the good direction (interval excluding 0)
# on at least one of the metrics whose targets the default misses (stem pointing, NSA) and is resolved
# in the bad direction on none of the map metrics; of several, the one with the largest class-aware
# cIoU@0.3 level. Otherwise the default stays, and the untouched corpus's numbers are the headline's.
TARGET_METRICS = ("stem_pointing", "nsa")
LOWER_IS_BETTER = {"wrong_source_rate"}


def _passes(d: pd.DataFrame) -> bool:
    """The rule on one configuration's differences (indexed by metric) from the one it would replace."""
    good = lambda m: d.loc[m, "hi"] < 0 if m in LOWER_IS_BETTER else d.loc[m, "lo"] > 0  # noqa: E731
    bad = lambda m: d.loc[m, "lo"] > 0 if m in LOWER_IS_BETTER else d.loc[m, "hi"] < 0   # noqa: E731
    return any(good(m) for m in TARGET_METRICS) and not any(bad(m) for m in METRICS)


def _best(t: pd.DataFrame, diffs: pd.DataFrame) -> list:
    ok = [c for c in diffs.config.unique() if _passes(diffs[diffs.config == c].set_index("metric"))]
    levels = t[(t.kind == "level") & (t.metric == "ca_ciou30")].set_index("config").value
    return sorted(ok, key=lambda c: -levels[c])


def choose(t: pd.DataFrame) -> tuple[str, str]:
    """Round 1: (chosen configuration, the reason in words) by the rule above, among the configurations
    one key away from the default (the round-2 ones left out)."""
    diffs = t[(t.kind == "minus default") & ~t.config.isin(round2_labels(H.DEFAULT))]
    ok = _best(t, diffs)
    if not ok:
        return H.DEFAULT, ("no configuration is resolved better than the default on stem pointing or NSA "
                           "without being resolved worse on a map metric: the default stays")
    return ok[0], f"{ok[0]}: resolved better on a missed target's metric and worse on no map metric"


def choose_round2(t: pd.DataFrame, first: str) -> tuple[str, str]:
    """Round 2: the round-1 choice ``first``, or the round-2 configuration built on it that passes the
    same rule against it (of several, the largest class-aware cIoU@0.3 level)."""
    on_first = t.config.isin(round2_labels(first)) & (t.config.map(base_of) == first)
    diffs = t[t.kind.isin(["minus default", "minus base"]) & on_first]
    ok = _best(t, diffs)
    if not ok:
        return first, (f"no round-2 configuration is resolved better than {first} on stem pointing or NSA "
                       f"without being resolved worse on a map metric: {first} stays")
    return ok[0], (f"{ok[0]}: resolved better than {first} on a missed target's metric and worse on no map "
                   "metric")


def choices(t: pd.DataFrame) -> dict:
    """choice.json: the final choice (round 2 on top of round 1) and round 1's."""
    first, why1 = choose(t)
    chosen, why = choose_round2(t, first)
    return {"chosen": chosen, "reason": why, "round1": {"chosen": first, "reason": why1}}


QUESTION = ("Which of k (train.clusters), the clustering iterations (train.iterations), mixtures in the "
            "training corpus (synth.mixtures), z (train.temperature), the budget (train.epochs) and the "
            "maps' agreement temperature and heat-map rule (localize.agreement_temperature, "
            "localize.heatmap_rule), one key at a time from the default, moves the class-aware, stem-conditioned and counting scores, on a "
            "validation multi-source corpus? And (round 2) does gating the class maps by the heat map "
            "(localize.class_map_gate) move them, on the round-1 choice's models and on the default's?")
COMMAND = "python -m dmc.studies.multisource_val --train --models-dir models/headline --with-experiments"


def markdown(t: pd.DataFrame, made_at: str, date: str | None = None) -> str:
    from dmc.pipeline.provenance import header

    lines = [header("multisource_val", QUESTION, made_at, COMMAND, date), "",
             f"Validation multi-source corpus: seed {VAL_SEED} (`{ROOT}`), the untouched corpus's generator "
             "and settings; no number here is computed on the untouched corpus. Default: params.yaml at the "
             "commit above; DMC's maps of each configuration (the cluster -> class mapping and the count's cut "
             "points fitted on its own training corpus's train + val pairs); a `localize.*` configuration is "
             "the default's models scored with that value (nothing trained); `<choice>+localize.*` (round 2) is "
             "the round-1 choice's models scored with it, and its difference is from that choice.", "",
             "Mean over seeds [hierarchical 95 % interval: seeds, then clips]; a difference is the mean over "
             "paired seeds of the per-seed difference on the same clips, with (seeds above / below). Bold: "
             "the interval excludes 0. Wrong-source rate: lower is better. A counting row whose scores "
             "tie on every clip in some seed is marked degenerate (its count is a constant). Every "
             "validation clip has two sounding sources, so the best constant counts them all: counting is "
             "no criterion here.", "",
             "| configuration | " + " | ".join(NAMES[m] for m in (*METRICS, "count_acc")) + " |",
             "|---" * (len(METRICS) + 2) + "|"]

    def cell(sub, m, signed):
        if m not in sub.index:
            return "—"
        r = sub.loc[m]
        return HM._ci(r, signed=signed) + (" (degenerate)" if r.get("degenerate") is True else "")

    names = {"level": "{c}", "minus default": "{c} − default", "default minus": "default − {c}",
             "minus base": "{c} − {b}"}
    for config in t.config.unique():
        for kind, signed in (("level", False), ("minus default", True), ("default minus", True), ("minus base", True)):
            sub = t[(t.config == config) & (t.kind == kind)].set_index("metric")
            if not len(sub):
                continue
            seeds = sub.iloc[0]["seeds"]
            name = names[kind].format(c=config, b=base_of(config))
            if config in {**MAP_BASELINES, **COUNT_BASELINES} and kind == "level":
                name = f"baseline: {config}"
            lines.append(f"| {name} (seeds {seeds}) | " + " | ".join(
                cell(sub, m, signed) for m in (*METRICS, "count_acc")) + " |")
    c = choices(t)
    lines += ["", f"**Choice, round 1** (the rule in `dmc.studies.multisource_val.choose`, written before the numbers "
              "of the configurations trained here were read; kept when the inference-time ones, then k = 16, were "
              f"added): `{c['round1']['chosen']}` ({c['round1']['reason']}).", "",
              "**Choice, round 2** (`choose_round2`: the same rule, a configuration built on the round-1 choice "
              "against that choice; the round-2 configurations were added after the round-1 choice, frozen, was "
              f"scored on the untouched corpus): `{c['chosen']}` ({c['reason']})."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dmc.studies.multisource_val", description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--models-dir", help="model files <config>_s<seed>.pt (e.g. models/headline)")
    ap.add_argument("--with-experiments", action="store_true",
                    help="also the committed run and finished DVC experiments with this checkout's train code")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--train", action="store_true",
                    help=f"first train the TRAINED configurations missing from {MODELS} (seeds: sweeps.headline_seeds)")
    ap.add_argument("--train-only", action="store_true", help="only train (no scoring, no table)")
    ap.add_argument("--rescore", action="store_true")
    ap.add_argument("--replicates", type=int, default=HM.B.REPLICATES)
    args = ap.parse_args(argv)
    from dmc.pipeline.params import load_params

    params = study_params(load_params(args.params, sweeps=True))
    if args.train or args.train_only:
        train_missing(params)
        if args.train_only:
            return 0
    runs = []
    if args.with_experiments:
        runs += H.find_runs(params)
    if args.models_dir:
        have = {(r.config, r.seed) for r in runs}
        runs += [r for r in H.runs_of_dir(params, Path(args.models_dir)) if (r.config, r.seed) not in have]
    if MODELS.is_dir():
        runs += H.runs_of_dir(params, MODELS)
    runs += inference_runs(runs)
    if not runs:
        print("multisource_val: no runs (give --with-experiments and/or --models-dir)", file=sys.stderr)
        return 2
    root = make_corpus(params, args.params)
    out = Path(args.out)
    score(params, runs, root, out / "runs", args.rescore)
    # round 2 scores the round-1 choice's models (and the default's) with each ROUND2 knob
    first = choose(table(_round1(HM.load_runs(out / "runs")), args.replicates))[0]
    score(params, round2_runs(runs, first), root, out / "runs", args.rescore)
    scored = HM.load_runs(out / "runs")
    t = table(scored, args.replicates)
    from dmc.pipeline.provenance import git_commit

    text = markdown(t, git_commit())
    out.mkdir(parents=True, exist_ok=True)
    with atomic_file(out / "study.csv") as tmp:
        t.to_csv(tmp, index=False)
    with atomic_file(out / "study.md") as tmp:
        Path(tmp).write_text(text)
    c = choices(t)
    with atomic_file(out / "choice.json") as tmp:
        Path(tmp).write_text(json.dumps(c, indent=2) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
