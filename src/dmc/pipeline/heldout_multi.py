"""The untouched multi-source test corpus, scored once per run (issue 33, items 2-5).

``dmc heldout-multi`` (Snakemake rule ``heldout_multi``, DVC stage ``heldout_multi``; inference only)
scores the trained model of a run on the multi-source corpus of :mod:`dmc.pipeline.multicorpus`
(``data/decoded_multi``, ``data/synth_multi/{ground_truth,stems}``, its own seed), which no choice
reads. Everything fitted is fitted on the TRAINING corpus's train + val pairs (``data/decoded`` with
``data.ground_truth``): the cluster -> class mapping of every row (:func:`dmc.localization.multisource_eval.learn_mapping`;
DMC's is written beside the model, ``models/dmc.class_mapping.json``), the count rule's cut points
(DMC's score and the visible-object count), the majority count, the BatchNorm statistics of the
random-init baseline (train videos, :func:`dmc.pipeline.heldout.random_init_bn_model`).

Rows (as the headline's, where they apply; :mod:`dmc.pipeline.heldout`):

* ``dmc``: the trained model with the clip's own audio (its mixture; each stem alone for the
  stem-conditioned scores);
* ``audio_blind``: the trained model at tau = 0 (uniform cluster weights: no audio), its own mapping;
* ``random_init_bn``: the untrained network, BatchNorm recalibrated on the training clips, its own mapping;
* ``random_init_bn_blind`` and ``center_prior``: union-of-sounding-boxes scores only;
* ``mismatched`` (control): the frame of clip A with the mixture of clip B
  (:func:`dmc.localization.controls.mismatched_rows`), scored on A's objects with DMC's mapping.

Scores: the class-aware cIoU@0.3 / AUC and NSA (DSOL's, and over the drawn silent classes), the
distinct-source recall (:mod:`dmc.localization.multisource_eval`), the stem-conditioned pointing /
cIoU / wrong-source rate (every clip of the corpus has two sounding sources), the headline's
pointing and cIoU against the union of the sounding boxes, and the audio-dependence gap
``dmc`` - ``mismatched``. Counting (every clip has two sources here; :mod:`dmc.localization.counting`): the
hard shares with ties broken fairly (``fractional``), a row whose clip scores are all equal reported
as degenerate (accuracy null), the visible-object count with cut points fitted on the training
corpus, the majority count and the best constant (an oracle).

Outputs (``results/heldout_multi/``): ``pairs.csv`` (union-box scores per pair), ``ca_pairs.csv`` /
``stems.csv`` (per pair / per stem, column ``method``), ``ca_clips.csv`` (per clip numerators and
denominators of every class-aware metric, column ``method``: what :mod:`dmc.studies.headline_multi`
resamples by seed and clip), ``clips.csv`` (counts), ``details.json``, ``table.md`` (clip-bootstrap
intervals, one run); the flat metrics ``results/heldout_multi_metrics.json`` (``heldout_multi.*``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from dmc.atomic import atomic_dir, atomic_file
from dmc.config import Params
from dmc.localization import bootstrap as B
from dmc.localization import counting as C
from dmc.localization import multisource as ms
from dmc.localization import multisource_eval as E
from dmc.localization.classmaps import gated_shares
from dmc.localization.heatmaps import center_prior, cluster_map, cluster_pairs, frames_to_tensor
from dmc.localization.metrics import LOC_FIELDS, summarize

CA_METHODS = ("dmc", "audio_blind", "random_init_bn", "mismatched")
LOC_METHODS = ("dmc", "audio_blind", "random_init_bn", "random_init_bn_blind", "center_prior", "mismatched")
COUNT_METHODS = ("dmc", "shuffled_audio", "random_init_bn", "visible_count", "majority", "best_constant")
STEM_METHODS = ("dmc", "audio_blind", "random_init_bn")
TIE_MODE = "fractional"
CONTROL_SEED = 101   # as dmc.pipeline.heldout: the derangement is default_rng(seed + CONTROL_SEED)
#: metric -> (numerator, denominator) columns of :func:`dmc.localization.multisource_eval.clip_rows`
RATIO_COLUMNS = {"ca_ciou30": ("ca_hit30", "ca_images"), "ca_auc": ("ca_auc_num", "ca_images"),
                 "ca_ciou_mean": ("ca_ciou_sum", "ca_images"), "nsa": ("nsa_sum", "nsa_images"),
                 "nsa_drawn": ("nsa_drawn_sum", "nsa_drawn_images"), "recall": ("recall_hits", "recall_sources"),
                 "recall_pointing": ("recall_pointing_hits", "recall_sources"),
                 "stem_pointing": ("stem_pointing", "stem_n"), "stem_ciou_mean": ("stem_ciou_sum", "stem_n"),
                 "stem_ciou30": ("stem_ciou30", "stem_n"), "wrong_source_rate": ("stem_wrong", "stem_n")}


@torch.no_grad()
def model_pass(model, frames: np.ndarray, mels: np.ndarray, tau: float, rule: str, bs: int, device,
               gate: str = "none") -> dict:
    """Per pair: the cluster maps (a_ij, or g_ij with ``gate``: :mod:`dmc.localization.classmaps`) at
    ``tau`` (``shares``) and at 0 (``shares0``), the heat maps
    at both (``heat``, ``blind``; sum_j w_j m_ij as :func:`dmc.localization.heatmaps.weighted_heat`), the hard
    shares of both modalities with ties broken by :data:`TIE_MODE` and the share of tied vectors."""
    model = model.to(device).eval()
    out = {k: [] for k in ("shares", "shares0", "heat", "blind", "shares_a", "shares_v", "tied_a", "tied_v")}
    for i in range(0, len(frames), bs):
        f = frames_to_tensor(np.asarray(frames[i:i + bs])).to(device)
        m = torch.from_numpy(np.asarray(mels[i:i + bs], dtype=np.float32))[:, None].to(device)
        pc = cluster_pairs(model, f, m)
        mp = cluster_map(rule, pc).cpu().numpy().astype(np.float64)                 # (B, p, k)
        for t, sk, hk in ((tau, "shares", "heat"), (0.0, "shares0", "blind")):
            w = torch.softmax(t * pc.agree, dim=-1).cpu().numpy()                   # w_j
            a = gated_shares(mp, w, gate)                                           # a_ij or g_ij
            out[sk].append(np.moveaxis(a, -1, 1).reshape(len(a), -1, *pc.shape))
            out[hk].append((mp * w[:, None, :]).sum(-1).reshape(len(a), *pc.shape))
        for mod, key in ((pc.aud, "a"), (pc.vis, "v")):
            s = mod.assign.float().cpu().numpy()
            out[f"shares_{key}"].append(C.fair_hard_shares(s, TIE_MODE))
            out[f"tied_{key}"].append((C.tied(s).sum(-1) > 1).mean(-1))
    return {k: np.concatenate(v) for k, v in out.items()}


def _chunked_pass(model, reader, rows: pd.DataFrame, lp, device, chunk: int = 512) -> dict:
    """:func:`model_pass` over index rows read in chunks (the training corpus need not fit in memory)."""
    parts = []
    for i in range(0, len(rows), chunk):
        frames, mels = reader(rows.iloc[i:i + chunk])
        parts.append(model_pass(model, frames, mels, lp.agreement_temperature, lp.heatmap_rule, lp.batch_size,
                                device, lp.class_map_gate))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def clip_score(p: dict, videos_of_pairs, videos) -> np.ndarray:
    """Per clip (in ``videos`` order) the count score of :mod:`dmc.localization.multisource`."""
    return ms.clip_scores(ms.source_score(p["shares_a"], p["shares_v"]), videos_of_pairs).reindex(videos).to_numpy()


def training_classes(gt) -> list[str]:
    """The class vocabulary of the mapping: the classes drawn in the training corpus, sorted."""
    return sorted(gt.boxes["class"].astype(str).unique())


def run(cfg: Params, decoded_dev, decoded_multi, model_path, gt_dev, gt_multi, stems_root, mapping_out, out_dir,
        metrics_path, device="cpu", log=print) -> dict:
    """Score one run on the multi-source corpus; write the mapping, the tables and the flat metrics."""
    from dmc.io.ground_truth import GroundTruth
    from dmc.io.multi_truth import pair_objects, stem_logmels
    from dmc.localization.controls import mismatched_rows
    from dmc.localization.localize import _ShardReader
    from dmc.localization.mapping_file import write_mapping
    from dmc.model.dataset import ShardDataset
    from dmc.model.training import load_model
    from dmc.pipeline.heldout import random_init_bn_model, score_heats, scored_pairs

    lp = cfg.localize
    tau, rule, bs, thr = lp.agreement_temperature, lp.heatmap_rule, lp.batch_size, lp.ciou_threshold
    src, params = (cfg.synth.width, cfg.synth.height), cfg.as_dict()
    decoded_dev, decoded_multi = Path(decoded_dev), Path(decoded_multi)
    gt_t, gt_d = GroundTruth(gt_multi, src), GroundTruth(gt_dev, src)

    # -- the multi-source corpus: pairs, objects, stems ------------------------------------------------
    rows, frames, mels = scored_pairs(decoded_multi, gt_t, gt_multi, "multi-source")
    size = frames.shape[1:3]
    wh = (size[1], size[0])
    objects = pair_objects(gt_t, rows, size)
    stem_files = pd.read_csv(Path(gt_multi) / "objects.csv", keep_default_na=False)
    stems, stem_mels, notes = stem_logmels(objects, rows.segment.to_numpy(), stem_files, stems_root,
                                           {**params["decode"]})
    for n in notes:
        log(f"heldout_multi: stem left out: {n}")
    masks = [gt_t.mask(r.video, r.frame_time_s, size) for r in rows.itertuples()]
    videos = sorted(rows.video.unique())

    # -- the models and their passes -------------------------------------------------------------------
    dev_reader = _ShardReader(decoded_dev)
    trained = load_model(model_path)[0].to(device)
    untrained = random_init_bn_model(cfg, decoded_dev, device, dev_reader)
    partner, partners = mismatched_rows(rows, cfg.seed + CONTROL_SEED)
    gate = lp.class_map_gate
    tr = model_pass(trained, frames, mels, tau, rule, bs, device, gate)
    mm = model_pass(trained, frames, mels[partner], tau, rule, bs, device, gate)
    ri = model_pass(untrained, frames, mels, tau, rule, bs, device, gate)
    stem_frames = frames[stems["pair"].to_numpy()] if len(stems) else None
    st = {m: model_pass(mod, stem_frames, stem_mels, tau, rule, bs, device, gate) for m, mod in
          (("dmc", trained), ("random_init_bn", untrained))} if len(stems) else {}

    # -- every choice from the training corpus's train + val pairs ---------------------------------------
    fit = pd.concat([ShardDataset.of_split(decoded_dev, params, s).index for s in ("train", "val")])
    fit = fit[fit.video.isin(gt_d.clips.index)].sort_values(["video", "segment"]).reset_index(drop=True)
    fit_frames_size = dev_reader(fit.iloc[:1])[0].shape[1:3]
    fit_objects = pair_objects(gt_d, fit, fit_frames_size)
    classes = training_classes(gt_d)
    fit_wh = (fit_frames_size[1], fit_frames_size[0])
    ftr = _chunked_pass(trained, dev_reader, fit, lp, device)
    fri = _chunked_pass(untrained, dev_reader, fit, lp, device)
    label = "training corpus train + val"
    mapping = {"dmc": E.learn_mapping(ftr["shares"], fit_objects, fit_wh, classes, label),
               "audio_blind": E.learn_mapping(ftr["shares0"], fit_objects, fit_wh, classes, label),
               "random_init_bn": E.learn_mapping(fri["shares"], fit_objects, fit_wh, classes, label)}
    mapping["mismatched"] = mapping["dmc"]
    fit_videos = sorted(fit.video.unique())
    fit_y = np.array([gt_d.n_sources(v) for v in fit_videos], dtype=int)
    K = lp.max_sources
    cuts = {"dmc": ms.fit_cuts(clip_score(ftr, fit.video, fit_videos), fit_y, K),
            "random_init_bn": ms.fit_cuts(clip_score(fri, fit.video, fit_videos), fit_y, K)}
    fit_visible = C.visible_counts(gt_d.boxes).reindex(fit_videos).to_numpy()
    majority = ms.majority_count(fit_y)

    # -- class-aware, recall and stem-conditioned scores --------------------------------------------------
    shares = {"dmc": tr["shares"], "audio_blind": tr["shares0"], "random_init_bn": ri["shares"],
              "mismatched": mm["shares"]}
    ca_pairs, ca_clips, stem_tables = [], [], []
    for m in CA_METHODS:
        pt = E.pair_table(shares[m], objects, rows.video, mapping[m], wh)
        stem = None
        if m in STEM_METHODS and len(stems):
            heat = st["dmc"]["blind"] if m == "audio_blind" else st[m]["heat"]
            stem = E.stem_table(heat, stems, objects, rows.video, wh, thr).assign(method=m)
            stem_tables.append(stem)
        ca_pairs.append(pt.assign(method=m))
        ca_clips.append(E.clip_rows(pt, stem).reset_index().assign(method=m))
    ca_pairs, ca_clips = pd.concat(ca_pairs, ignore_index=True), pd.concat(ca_clips, ignore_index=True)
    stems_out = pd.concat(stem_tables, ignore_index=True) if stem_tables else pd.DataFrame()

    # -- the headline's scores against the union of the sounding boxes ------------------------------------
    coarse = {"dmc": tr["heat"], "audio_blind": tr["blind"], "random_init_bn": ri["heat"],
              "random_init_bn_blind": ri["blind"], "mismatched": mm["heat"]}
    prior = center_prior(size, lp.center_sigma)
    pairs = pd.DataFrame({"video": rows.video, "segment": rows.segment, "frame_time_s": rows.frame_time_s,
                          "audio_from": rows.video.to_numpy()[partner]})
    loc = {}
    for m in LOC_METHODS:
        ious, hits = score_heats(coarse.get(m), masks, size, thr, prior if m == "center_prior" else None, bs)
        pairs[f"{m}_ciou"], pairs[f"{m}_pointing"] = np.round(ious, 4), hits
        loc[m] = summarize(ious, hits)

    # -- counting ---------------------------------------------------------------------------------------
    y = np.array([gt_t.n_sources(v) for v in videos], dtype=int)
    scores = {"dmc": clip_score(tr, rows.video, videos), "shuffled_audio": clip_score(mm, rows.video, videos),
              "random_init_bn": clip_score(ri, rows.video, videos)}
    preds = {m: ms.predict_counts(scores[m], cuts["random_init_bn" if m == "random_init_bn" else "dmc"], K)
             for m in scores}
    test_visible = C.visible_counts(gt_t.boxes).reindex(videos).to_numpy()
    preds["visible_count"], visible_cuts = C.visible_count_predictions(fit_visible, fit_y, test_visible, K)
    preds["majority"] = np.full(len(videos), majority)
    preds["best_constant"] = np.full(len(videos), ms.majority_count(y))
    degenerate = {m: C.is_degenerate(s) for m, s in scores.items()}
    ties = {"dmc": (tr, ftr), "shuffled_audio": (mm, ftr), "random_init_bn": (ri, fri)}
    tie_share = {m: {"test_audio": float(t["tied_a"].mean()), "test_visual": float(t["tied_v"].mean()),
                     "train_audio": float(f["tied_a"].mean())} for m, (t, f) in ties.items()}
    clips = pd.DataFrame({"video": videos, "n_sources": y, "visible": test_visible,
                          **{f"pred_{m}": p for m, p in preds.items()}})

    # -- flat metrics ------------------------------------------------------------------------------------
    flat = {f"heldout_multi.{m}.{f}": _clean(loc[m][f]) for m in LOC_METHODS for f in LOC_FIELDS}
    for m in CA_METHODS:
        r = E.ratios(ca_clips[ca_clips.method == m].drop(columns=["method", "video"]))
        flat.update({f"heldout_multi.class_aware.{m}.{k}": _clean(v) for k, v in r.items()})
    flat.update({f"heldout_multi.count.{m}.acc": None if degenerate.get(m) else _clean(ms.accuracy(y, p))
                 for m, p in preds.items()})
    flat.update({f"heldout_multi.count.{m}.degenerate": bool(d) for m, d in degenerate.items()})
    flat["heldout_multi.audio_gap.pointing"] = _clean(loc["dmc"]["pointing"] - loc["mismatched"]["pointing"])
    flat["heldout_multi.audio_gap.ca_ciou30"] = _diff(flat, "ca_ciou30")
    flat["heldout_multi.n_clips"], flat["heldout_multi.n_pairs"] = len(videos), len(rows)
    flat["heldout_multi.n_stems"] = len(stems)
    details = {"multi_corpus": str(decoded_multi), "ground_truth": str(gt_multi), "stems": str(stems_root),
               "clips": len(videos), "pairs": len(rows), "stems_scored": len(stems), "stems_left_out": notes,
               "frame_size": list(size), "classes": classes, "mapping_fitted_on": label,
               "cluster_to_class": {m: list(mapping[m].cluster_to_class) for m in ("dmc", "audio_blind",
                                                                                    "random_init_bn")},
               "multisource_cuts": {m: [_clean(c) for c in v] for m, v in cuts.items()},
               "visible_count_cuts": [_clean(c) for c in visible_cuts], "majority_count_train_val": majority,
               "tie_mode": TIE_MODE, "tie_share": tie_share, "count_degenerate": degenerate,
               "control_seed": cfg.seed + CONTROL_SEED, "audio_partner": partners, "class_map_gate": gate}
    write_mapping(mapping_out, mapping["dmc"])
    with atomic_file(metrics_path) as tmp:
        tmp.write_text(json.dumps(flat, indent=2) + "\n")
    with atomic_dir(out_dir) as tmp:
        pairs.to_csv(tmp / "pairs.csv", index=False)
        ca_pairs.to_csv(tmp / "ca_pairs.csv", index=False)
        ca_clips.to_csv(tmp / "ca_clips.csv", index=False)
        stems_out.to_csv(tmp / "stems.csv", index=False)
        clips.to_csv(tmp / "clips.csv", index=False)
        (tmp / "details.json").write_text(json.dumps(details, indent=2) + "\n")
        (tmp / "table.md").write_text(run_table(pairs, ca_clips, clips, degenerate, cfg.seed, lp))
    log(f"heldout_multi: {len(videos)} clips, {len(rows)} pairs, {len(stems)} stems; class-aware cIoU@0.3 "
        + ", ".join(f"{m} {flat[f'heldout_multi.class_aware.{m}.ca_ciou30']}" for m in CA_METHODS))
    return flat


def _diff(flat: dict, metric: str):
    a, b = flat[f"heldout_multi.class_aware.dmc.{metric}"], flat[f"heldout_multi.class_aware.mismatched.{metric}"]
    return None if a is None or b is None else round(a - b, 4)


def _clean(x):
    x = float(x)
    return None if not np.isfinite(x) else round(x, 4)


def clip_sums(ca_clips: pd.DataFrame, method: str, metric: str, videos: list) -> tuple[np.ndarray, np.ndarray]:
    """(num (clips x 1), den (clips,)) of a class-aware metric of a method, clips in ``videos`` order
    (for :mod:`dmc.localization.bootstrap`)."""
    num, den = RATIO_COLUMNS[metric]
    c = ca_clips[ca_clips.method == method].set_index("video").reindex(videos)
    if num not in c:
        return np.full((len(videos), 1), np.nan), np.zeros(len(videos))
    return c[num].fillna(0).to_numpy(dtype=np.float64)[:, None], c[den].fillna(0).to_numpy(dtype=np.float64)


def _ci(point, reps) -> str:
    if not np.isfinite(point):
        return "n/a"
    lo, hi = B.interval(reps)
    return f"{point:.3f} [{lo:.3f}, {hi:.3f}]"


TABLE_METRICS = ("ca_ciou30", "ca_auc", "nsa", "nsa_drawn", "recall", "stem_pointing", "stem_ciou30",
                 "wrong_source_rate")


def run_table(pairs: pd.DataFrame, ca_clips: pd.DataFrame, clips: pd.DataFrame, degenerate: dict, seed: int,
              lp) -> str:
    """This run's numbers on the multi-source corpus with clip-bootstrap 95 % intervals (one seed)."""
    from dmc.pipeline.heldout import count_sums

    videos = sorted(pairs.video.unique())
    counts = B.draw_counts(len(videos), seed=0)
    lines = [f"# The multi-source test corpus, one run (seed {seed}): {len(videos)} clips, {len(pairs)} pairs", "",
             f"Point estimate [clip-bootstrap 95 % interval, {B.REPLICATES} replicates]; n/a: no such clip "
             "(or no stem for the row). Mapping and cut points fitted on the training corpus's train + val "
             "pairs. The seeds and hierarchical intervals are the headline's (python -m dmc.studies.headline).",
             "", "| method | " + " | ".join(TABLE_METRICS) + " |", "|---" * (len(TABLE_METRICS) + 1) + "|"]
    for m in CA_METHODS:
        cells = []
        for k in TABLE_METRICS:
            num, den = clip_sums(ca_clips, m, k, videos)
            cells.append(_ci(B.ratio(num, den)[0] if den.sum() > 0 else np.nan, B.ratio(num, den, counts)[:, 0]))
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += ["", f"Against the union of the sounding boxes (cIoU at heat >= {lp.ciou_threshold}):", "",
              "| method | pointing | cIoU@0.5 | AUC | mean cIoU |", "|---|---|---|---|---|"]
    for m in LOC_METHODS:
        num, den = B.loc_clip_sums(pairs, m, videos)
        point, reps = B.ratio(num, den), B.ratio(num, den, counts)
        lines.append(f"| {m} | " + " | ".join(_ci(point[j], reps[:, j]) for j in range(4)) + " |")
    lines += ["", "| count method | accuracy |", "|---|---|"]
    cc = B.draw_counts(len(clips), seed=0)
    for m in COUNT_METHODS:
        if degenerate.get(m):
            lines.append(f"| {m} | degenerate (every clip has the same score: a constant count) |")
            continue
        num, den = count_sums(clips, m)
        lines.append(f"| {m} | {_ci(B.ratio(num, den)[0], B.ratio(num, den, cc)[:, 0])} |")
    return "\n".join(lines) + "\n"


def not_applicable(out_dir, metrics_path, mapping_out) -> None:
    """Null metrics: the training corpus has no ground truth (no mapping, no cut points can be fitted)."""
    from dmc.localization.mapping_file import ClassMapping, write_mapping

    flat = {f"heldout_multi.{m}.{f}": None for m in LOC_METHODS for f in LOC_FIELDS}
    flat.update({f"heldout_multi.class_aware.{m}.{k}": None for m in CA_METHODS for k in RATIO_COLUMNS})
    flat.update({f"heldout_multi.count.{m}.acc": None for m in COUNT_METHODS})
    flat["heldout_multi.n_clips"] = flat["heldout_multi.n_pairs"] = 0
    write_mapping(mapping_out, ClassMapping([], [], [], "none: data.ground_truth is null", ""))
    with atomic_file(metrics_path) as tmp:
        tmp.write_text(json.dumps(flat, indent=2) + "\n")
    with atomic_dir(out_dir) as tmp:
        (tmp / "table.md").write_text("# The multi-source test corpus: not applicable (data.ground_truth is null)\n")


def main_step(args, cfg: Params, device) -> None:
    """``dmc heldout-multi``: the pipeline step (a training corpus without ground truth: null metrics)."""
    from dmc.localization.mapping_file import mapping_path

    gt_dev = args.ground_truth or cfg.data.ground_truth
    mapping_out = args.mapping or mapping_path(args.model)
    if not gt_dev:
        not_applicable(args.out_dir, args.metrics, mapping_out)
        print("heldout_multi: data.ground_truth is null: multi-source scores not applicable (written as null)",
              file=sys.stderr)
        return
    run(cfg, args.decoded, args.multi_decoded, args.model, gt_dev, args.multi_ground_truth, args.stems, mapping_out,
        args.out_dir, args.metrics, device, log=lambda m: print(m, file=sys.stderr))
