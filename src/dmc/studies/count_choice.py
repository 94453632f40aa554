"""The multi-source count rule, chosen on the validation split.

``python -m dmc.studies.count_choice`` (``make count-choice``; after ``make seeds``) scores candidate
count scores (:data:`CANDIDATES`) for the trained model of every run of the seeds sweep: each
score's cut points are fitted on the *train* videos (:func:`dmc.localization.multisource.fit_cuts`, the
pipeline's exact monotone fit), the counts are predicted for the *val* videos and compared with
their ground truth. The test split, which the pipeline reports, is never read. Writes
``results/studies/count_choice/count_choice.md|csv`` (per run: ``count_choice_runs.csv``): val count accuracy,
mean ± sample std over the seeds, beside the majority count of the train videos. The choice is
the candidate with the highest mean val accuracy; ties go to the earlier candidate in
:data:`CANDIDATES` (the pipeline's rule first).

Candidates, per (frame, audio segment) pair, averaged over a clip's pairs
(:func:`dmc.localization.multisource.clip_scores`), with ``N = exp(H(pi))`` the effective number of clusters
of a modality's hard shares ``pi`` (:mod:`dmc.localization.multisource`):

* ``effective_av``: ``(N^a + N^v) / 2``, the pipeline's rule (:func:`dmc.localization.multisource.source_score`);
* ``effective_a``, ``effective_v``: one modality's N;
* ``agreeing_<t>``: the counting rule of the task sketch, the number of clusters j whose audio and
  visual centers agree (``cos(c_j^a, c_j^v) > t``) and that hold audio mass (hard audio share > 0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dmc.localization import multisource as ms

AGREEMENT_THRESHOLDS = (0.5, 0.8)
CANDIDATES = ("effective_av", "effective_a", "effective_v",
              *(f"agreeing_{t:g}" for t in AGREEMENT_THRESHOLDS))


def candidate_scores(an) -> dict[str, np.ndarray]:
    """{candidate: (B,) score per pair} of a :class:`dmc.localization.heatmaps.Analysis`."""
    na, nv = ms.effective_number(an.shares_a), ms.effective_number(an.shares_v)
    out = {"effective_av": (na + nv) / 2, "effective_a": na, "effective_v": nv}
    for t in AGREEMENT_THRESHOLDS:
        out[f"agreeing_{t:g}"] = ((an.agreement > t) & (an.shares_a > 0)).sum(-1).astype(np.float64)
    return out


def score_rules(fit_an, fit_videos, y_fit: dict, val_an, val_videos, y_val: dict, max_sources: int) -> dict:
    """{candidate: val accuracy}: cut points fitted on the fit pairs' clips, applied to the val clips.
    ``y_fit``, ``y_val``: {video: ground-truth count}."""
    fit_s, val_s = candidate_scores(fit_an), candidate_scores(val_an)
    fit_ids, val_ids = sorted(y_fit), sorted(y_val)
    truth_fit = np.array([y_fit[v] for v in fit_ids], dtype=int)
    truth_val = np.array([y_val[v] for v in val_ids], dtype=int)
    out = {}
    for name in CANDIDATES:
        s_fit = ms.clip_scores(fit_s[name], fit_videos).reindex(fit_ids).to_numpy()
        cuts = ms.fit_cuts(s_fit, truth_fit, max_sources)
        s_val = ms.clip_scores(val_s[name], val_videos).reindex(val_ids).to_numpy()
        out[name] = ms.accuracy(truth_val, ms.predict_counts(s_val, cuts, max_sources))
    out["majority"] = ms.accuracy(truth_val, np.full(len(truth_val), ms.majority_count(truth_fit)))
    return out


def choose(table: pd.DataFrame) -> str:
    """The candidate with the highest mean val accuracy (ties: the earlier in CANDIDATES)."""
    cands = table[table.rule.isin(CANDIDATES)].set_index("rule").reindex(list(CANDIDATES))
    return str(cands.accuracy.idxmax())


def main(argv=None) -> None:
    import sys

    from dmc.pipeline.provenance import STUDIES, command_line, header
    from dmc.studies.heatmap_choice import made_at, study_setup, write_study
    from dmc.localization.heatmaps import analyse_arrays
    from dmc.localization.localize import _ShardReader, split_rows
    from dmc.model.training import load_model

    args, params, gt, models = study_setup(__doc__.splitlines()[0], str(STUDIES / "count_choice" / "count_choice"), argv)
    command = command_line("python -m dmc.studies.count_choice", sys.argv[1:] if argv is None else argv)
    lp = params["localize"]
    reader = _ShardReader(Path(args.decoded))
    splits = {}
    for split in ("train", "val"):        # never "test"
        rows = split_rows(Path(args.decoded), params, split, gt)
        splits[split] = (rows, *reader(rows), {v: int(gt.n_sources(v)) for v in rows.video.unique()})
    records = []
    for seed, path in sorted(models.items()):
        model = load_model(path)[0]
        an = {s: analyse_arrays(model, frames, mels, lp["agreement_temperature"], lp["batch_size"])
              for s, (_, frames, mels, _) in splits.items()}
        acc = score_rules(an["train"], splits["train"][0].video, splits["train"][3],
                          an["val"], splits["val"][0].video, splits["val"][3], lp["max_sources"])
        records += [{"rule": r, "seed": seed, "accuracy": a} for r, a in acc.items()]
    per_run = pd.DataFrame(records)
    table = per_run.groupby("rule", sort=False).agg(accuracy=("accuracy", "mean"), accuracy_std=("accuracy", "std"),
                                                    n=("seed", "size")).reset_index()
    best = choose(table)
    n_train, n_val = len(splits["train"][3]), len(splits["val"][3])
    lines = [f"# Count rule on the val split ({n_val} val videos; cut points fitted on {n_train} train "
             f"videos; models of seeds {sorted(models)})", "",
             "| rule | val count accuracy | n |", "|---|---|---|"]
    for r in table.itertuples():
        mark = " **(chosen)**" if r.rule == best else ""
        lines.append(f"| {r.rule}{mark} | {r.accuracy:.3f} ± {r.accuracy_std:.3f} | {r.n} |")
    lines += ["", f"Chosen (highest mean val accuracy, ties to the pipeline's rule): {best}; the pipeline "
              f"uses effective_av.", ""]
    write_study(args.out, table, per_run, lines, header(
        "count_choice", "which clip score counts the sounding objects best on the val split (cut points fitted "
        "on the train split)?", made_at(args, models), command))


if __name__ == "__main__":
    main()
