"""The heat-map rule and its agreement temperature, chosen on the validation split.

``python -m dmc.studies.heatmap_choice`` (``make heatmap-choice``; after ``make seeds``) scores each
candidate heat map of :mod:`dmc.localization.heatmaps` on the *val* videos (the split every choice reads;
the test split, which the pipeline reports, is never touched here) for the trained model of
every run of the seeds sweep, and writes ``results/studies/heatmap_choice/heatmap_choice.md|csv``: pointing
and AUC of cIoU, mean ± sample std over the seeds, beside the centre prior and beside the same
network untrained (the pipeline's random-init baseline, ``localization.random_init_model``, under
each run's seed and the same params, scored by the same candidate): the share of the pointing
that training adds. The choice is the candidate with
the highest mean pointing of the trained models (the issue's first localization target), ties
broken by AUC; the untrained column is reported, not used by the choice.

Candidates: every rule of :data:`dmc.localization.heatmaps.RULES` (the values ``localize.heatmap_rule``
takes; the forms are written in :mod:`dmc.localization.heatmaps`) at every tau of :data:`TAUS`.

Then, for the chosen rule and tau, the threshold at which cIoU binarises the normalised heat map
(``localize.ciou_threshold``): each of :data:`THRESHOLDS` scored on the same val pairs, the
choice the highest mean cIoU@0.5 of the trained models (ties by AUC, :func:`choose_threshold`),
written to ``results/studies/heatmap_choice/ciou_threshold.md|csv`` (:func:`threshold_out` of ``--out``) beside the untrained network and the centre
prior at every threshold, and each baseline at its own best threshold. The success criterion
of cIoU@0.5 (IoU >= 0.5) is the metric's and is not chosen.

The models come from ``results/tables/seeds_runs.csv`` (one DVC experiment per seed): each
experiment's ``dvc.lock`` names its ``models/dmc.pt`` by MD5, read from the local DVC cache
(``--models`` takes paths instead).
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from dmc.localization.heatmaps import RULES, center_prior, cluster_map, cluster_pairs, frames_to_tensor, upsample, weighted_heat
from dmc.localization.metrics import score_maps

TAUS = (0.0, 1.0, 5.0, 20.0)
# binarisation thresholds of the normalised heat map for cIoU (localize.ciou_threshold), scored for
# the chosen rule and tau
THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


@torch.no_grad()
def candidate_maps(model, frames: torch.Tensor, logmel: torch.Tensor, taus=TAUS) -> dict:
    """{(rule, tau): (B, h, w) coarse map} for a batch of pairs (frames in [-1, 1])."""
    pc = cluster_pairs(model, frames, logmel)
    per_cluster = {rule: cluster_map(rule, pc) for rule in RULES}        # {rule: (B, p, k)}
    return {(rule, tau): weighted_heat(m, pc, tau).numpy() for tau in taus for rule, m in per_cluster.items()}


def model_heats(model, frames: np.ndarray, logmel: np.ndarray, batch_size: int = 64) -> dict:
    """{(rule, tau): (N, H, W) heat maps at the frame size, normalised} of one model on the pairs."""
    model = model.eval()
    maps: dict = {}
    for i in range(0, len(frames), batch_size):
        f = frames_to_tensor(frames[i:i + batch_size])
        m = torch.from_numpy(np.asarray(logmel[i:i + batch_size], dtype=np.float32))[:, None]
        for key, coarse in candidate_maps(model, f, m).items():
            maps.setdefault(key, []).append(coarse)
    return {key: upsample(np.concatenate(parts), frames.shape[1:3]) for key, parts in maps.items()}


def score_model(model, frames: np.ndarray, logmel: np.ndarray, masks: list, threshold: float,
                batch_size: int = 64) -> dict:
    """{(rule, tau): {"pointing", "auc", ...}} of one model on the pairs."""
    return {key: score_maps(h, masks, threshold) for key, h in model_heats(model, frames, logmel, batch_size).items()}


def threshold_out(out: str | Path) -> Path:
    """Where the threshold table goes beside the rule table ``out``: ``heatmap_choice`` ->
    ``ciou_threshold`` in the same folder, any other name -> ``<name>_ciou_threshold``."""
    out = Path(out)
    name = out.name.replace("heatmap_choice", "ciou_threshold") if "heatmap_choice" in out.name \
        else f"{out.name}_ciou_threshold"
    return out.parent / name


def choose_threshold(table: pd.DataFrame) -> float:
    """The binarisation threshold with the highest mean val cIoU@0.5 of the trained models, ties by AUC
    (then the lower threshold)."""
    t = table.sort_values(["ciou50", "auc", "threshold"], ascending=[False, False, True])
    return float(t.iloc[0].threshold)


def models_of_seeds(runs_csv: str | Path, cache: str | Path = ".dvc/cache/files/md5") -> dict[int, Path]:
    """{seed: path of that run's models/dmc.pt in the DVC cache} for the default rows of a sweep."""
    runs = pd.read_csv(runs_csv)
    runs = runs[runs.config == "default"]
    out = {}
    for r in runs.itertuples():
        lock = yaml.safe_load(subprocess.run(["git", "show", f"{r.rev}:dvc.lock"], check=True,
                                             capture_output=True, text=True).stdout)
        md5 = next(o["md5"] for o in lock["stages"]["train"]["outs"] if o["path"] == "models/dmc.pt")
        out[int(r.seed)] = Path(cache) / md5[:2] / md5[2:]
    return out


def study_setup(description: str, out: str, argv=None):
    """The command line shared by the val studies (this one and :mod:`dmc.studies.count_choice`):
    (args, params, ground truth, {seed: model path})."""
    from dmc.pipeline.graph import DECODED
    from dmc.io.ground_truth import GroundTruth
    from dmc.pipeline.params import load_params

    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--runs", default="results/tables/seeds_runs.csv")
    ap.add_argument("--models", nargs="*", help="model files instead of the seeds sweep's")
    ap.add_argument("--out", default=out)
    ap.add_argument("--decoded", default=DECODED)
    ap.add_argument("--ground-truth", help="default: params data.ground_truth")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    gt = GroundTruth(args.ground_truth or params["data"]["ground_truth"],
                     (params["synth"]["width"], params["synth"]["height"]))
    models = ({i: Path(p) for i, p in enumerate(args.models)} if args.models else models_of_seeds(args.runs))
    return args, params, gt, models


def made_at(args, models: dict) -> str:
    """The default a val study was made at: the commit, and the models it scored."""
    from dmc.pipeline.provenance import git_commit

    which = f"--models {' '.join(str(m) for m in args.models)}" if args.models else f"the seeds runs of {args.runs}"
    return f"{git_commit()}, {args.params}, models of seeds {sorted(models)} ({which})"


def write_study(out: str | Path, table: pd.DataFrame, per_run: pd.DataFrame, lines: list[str],
                header: str | None = None) -> None:
    """``<out>.csv`` (per candidate), ``<out>_runs.csv`` (per run) and ``<out>.md`` (first line:
    ``header`` when given; each written to a temporary name, then renamed), and the Markdown printed."""
    from dmc.atomic import atomic_file

    out = Path(out)
    lines = [header, "", *lines] if header else lines
    with atomic_file(out.with_suffix(".csv")) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_file(out.parent / f"{out.name}_runs.csv") as tmp:
        per_run.to_csv(tmp, index=False)
    with atomic_file(out.with_suffix(".md")) as tmp:
        Path(tmp).write_text("\n".join(lines))
    print("\n".join(lines))


def main(argv=None) -> None:
    from dmc.localization.localize import _ShardReader, random_init_model, split_rows
    from dmc.model.training import load_model

    import sys

    from dmc.pipeline.provenance import STUDIES, command_line, header

    args, params, gt, models = study_setup(__doc__.splitlines()[0], str(STUDIES / "heatmap_choice" / "heatmap_choice"),
                                           argv)
    command = command_line("python -m dmc.studies.heatmap_choice", sys.argv[1:] if argv is None else argv)
    decoded = Path(args.decoded)
    rows = split_rows(decoded, params, "val", gt)
    frames, logmel = _ShardReader(decoded)(rows)
    size = frames.shape[1:3]
    masks = [gt.mask(r.video, r.frame_time_s, size) for r in rows.itertuples()]
    keep = [i for i, m in enumerate(masks) if m.any()]
    frames, logmel, masks = frames[keep], logmel[keep], [masks[i] for i in keep]
    lp = params["localize"]
    thr = lp["ciou_threshold"]
    records, heats = [], {}
    for seed, path in sorted(models.items()):
        heats[seed] = {"dmc": model_heats(load_model(path)[0], frames, logmel),
                       "random_init": model_heats(random_init_model({**params, "seed": seed}), frames, logmel)}
        for key, h in heats[seed]["dmc"].items():
            s, u = score_maps(h, masks, thr), score_maps(heats[seed]["random_init"][key], masks, thr)
            records.append({"rule": key[0], "tau": key[1], "seed": seed, "pointing": s["pointing"], "auc": s["auc"],
                            "random_init_pointing": u["pointing"]})
    prior = center_prior(size, lp["center_sigma"])
    p = score_maps([prior] * len(masks), masks, thr)
    per_run = pd.DataFrame(records)
    table = per_run.groupby(["rule", "tau"], sort=False).agg(
        pointing=("pointing", "mean"), pointing_std=("pointing", "std"), auc=("auc", "mean"),
        auc_std=("auc", "std"), random_init_pointing=("random_init_pointing", "mean"),
        random_init_pointing_std=("random_init_pointing", "std"), n=("seed", "size")).reset_index()
    best = table.sort_values(["pointing", "auc"], ascending=False).iloc[0]
    current = (lp["heatmap_rule"], lp["agreement_temperature"])
    lines = [f"# Heat-map rule on the val split ({len(masks)} pairs of {rows.video.nunique()} videos; "
             f"models of seeds {sorted(models)})", "",
             f"AUC with the heat map binarised at {thr:g} (localize.ciou_threshold); pointing needs no threshold.", "",
             "| rule | tau | pointing | AUC | pointing, same net untrained | n |", "|---|---|---|---|---|---|"]
    for r in table.itertuples():
        mark = " **(chosen)**" if (r.rule, r.tau) == (best.rule, best.tau) else ""
        lines.append(f"| {r.rule}{mark} | {r.tau:g} | {r.pointing:.3f} ± {r.pointing_std:.3f} | "
                     f"{r.auc:.3f} ± {r.auc_std:.3f} | {r.random_init_pointing:.3f} ± {r.random_init_pointing_std:.3f} | {r.n} |")
    lines += [f"| centre prior | | {p['pointing']:.3f} | {p['auc']:.3f} | | |", "",
              f"Chosen (highest mean pointing, ties by AUC): {best.rule}, tau = {best.tau:g}; "
              f"the pipeline uses {current[0]}, tau = {current[1]:g}.", ""]
    write_study(args.out, table, per_run, lines, header(
        "heatmap_choice", "which heat-map rule and agreement temperature tau point at the sounding objects best "
        "on the val split (mean val pointing of the trained models)?", made_at(args, models), command))

    # the binarisation threshold of cIoU, for the chosen rule and tau
    key, records = (best.rule, float(best.tau)), []
    for t in THRESHOLDS:
        pr = score_maps([prior] * len(masks), masks, t)
        for seed in sorted(models):
            s = score_maps(heats[seed]["dmc"][key], masks, t)
            u = score_maps(heats[seed]["random_init"][key], masks, t)
            records.append({"threshold": t, "seed": seed, "ciou50": s["ciou50"], "auc": s["auc"],
                            "random_init_ciou50": u["ciou50"], "random_init_auc": u["auc"],
                            "center_prior_ciou50": pr["ciou50"], "center_prior_auc": pr["auc"]})
    per_run = pd.DataFrame(records)
    cols = [c for c in per_run.columns if c not in ("threshold", "seed")]
    table = per_run.groupby("threshold").agg(**{f"{c}{suffix}": (c, how) for c in cols
                                                for suffix, how in (("", "mean"), ("_std", "std"))}).reset_index()
    chosen = choose_threshold(table)
    lines = [f"# cIoU binarisation threshold on the val split ({len(masks)} pairs; {best.rule}, tau = {best.tau:g}; "
             f"models of seeds {sorted(models)})", "",
             "| threshold | cIoU@0.5 | AUC | cIoU@0.5, same net untrained | AUC, untrained | centre prior cIoU@0.5 "
             "| centre prior AUC |", "|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        mark = " **(chosen)**" if r.threshold == chosen else ""
        lines.append(f"| {r.threshold:g}{mark} | {r.ciou50:.3f} ± {r.ciou50_std:.3f} | {r.auc:.3f} ± {r.auc_std:.3f} | "
                     f"{r.random_init_ciou50:.3f} ± {r.random_init_ciou50_std:.3f} | "
                     f"{r.random_init_auc:.3f} ± {r.random_init_auc_std:.3f} | {r.center_prior_ciou50:.3f} | "
                     f"{r.center_prior_auc:.3f} |")
    best_of = {c: table.loc[table[c].idxmax()] for c in ("random_init_ciou50", "center_prior_ciou50")}
    lines += ["", f"Chosen (highest mean cIoU@0.5 of the trained models, ties by AUC): {chosen:g} "
              f"({table.set_index('threshold').ciou50[chosen]:.3f}); the pipeline uses {thr:g}. Each baseline "
              f"at its own best threshold: untrained {best_of['random_init_ciou50'].random_init_ciou50:.3f} "
              f"(at {best_of['random_init_ciou50'].threshold:g}), centre prior "
              f"{best_of['center_prior_ciou50'].center_prior_ciou50:.3f} (at {best_of['center_prior_ciou50'].threshold:g}).", ""]
    write_study(threshold_out(args.out), table, per_run, lines, header(
        "heatmap_choice", "which cIoU binarisation threshold gives the highest mean val cIoU@0.5 with the chosen "
        "heat-map rule?", made_at(args, models), command))


if __name__ == "__main__":
    main()
