"""The untouched test corpus, scored once per run: DMC, the baselines and the audio controls.

``dmc heldout`` (Snakemake rule ``heldout``, DVC stage ``heldout``; inference only)
scores the trained model of a run on the test corpus of :mod:`dmc.pipeline.testcorpus`
(``data/decoded_test``, its own seed), which no choice reads. Everything fitted here is
fitted on the training corpus (``data/decoded``): the count rule's cut points (train and val
videos, as ``dmc localize``), the BatchNorm statistics of the random-init baseline (train
videos), the majority count (train and val videos).

Localization (per (frame, audio segment) pair, against the frame's sounding boxes; the heat
maps of :mod:`dmc.localization.heatmaps` with ``localize.heatmap_rule``, ``agreement_temperature`` tau and
``ciou_threshold``):

* ``dmc``: the trained model with the clip's own audio;
* ``audio_blind``: the trained visual map with uniform cluster weights (tau = 0): no audio;
* ``random_init_bn``: the same network untrained, its BatchNorm statistics recomputed on the
  training clips (:func:`dmc.model.baselines.recalibrate_batchnorm`), with the clip's own audio;
* ``random_init_bn_blind``: that untrained network's map at tau = 0;
* ``random_init``: the untrained network as ``dmc localize`` and ``dmc extract`` use it (eval mode,
  BatchNorm running statistics at their initial 0 / 1), for comparison with the earlier tables;
* ``center_prior``: the Gaussian at the frame centre;
* ``mismatched`` (control): the trained model, the frame of clip A with the audio of clip B
  (:func:`dmc.localization.controls.mismatched_rows`, never a clip with itself), scored on A's boxes.

Counting (per clip, :mod:`dmc.localization.multisource`, the hard shares with ties shared fairly,
:func:`dmc.localization.counting.fair_hard_shares`; a row whose clip scores are all equal is degenerate: its
accuracy is null and its table cell says so): ``dmc``; ``shuffled_audio`` (control: A's frames,
B's audio, DMC's cut points); ``random_init_bn`` and ``random_init`` (their own cut points);
``visible_count`` (every drawn object counted, cut points fitted on the training corpus's train and val
videos: the strongest audio-free rule, :mod:`dmc.localization.counting`); ``majority`` (the most
common count of the training corpus's train and val videos) and ``best_constant`` (the most
common count of the test corpus itself: the best any constant can do there, an oracle).

ESC-like (the ESC-50-like set's 5 folds, :func:`dmc.evaluation.evaluate_esc50`, per-clip
predictions): ``dmc``, ``random_init_bn`` and ``random_init`` audio features.

The audio-dependence gap ``heldout.audio_gap.*``: ``dmc`` - ``mismatched`` on every localization field.

Outputs: ``pairs.csv``, ``clips.csv``, ``esc50_clips.csv`` (what :mod:`dmc.studies.headline` pairs
across runs by clip and seed), ``table.md`` (this run with clip-bootstrap 95 % intervals),
``details.json`` and the flat metrics ``results/heldout_metrics.json`` (``heldout.*``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from dmc.config import Localize, Params
from dmc.localization import bootstrap as B
from dmc.localization import multisource as ms
from dmc.localization.counting import fair_hard_shares, is_degenerate, visible_count_predictions, visible_counts
from dmc.atomic import atomic_dir, atomic_file
from dmc.localization.heatmaps import center_prior, cluster_map, cluster_pairs, frames_to_tensor, upsample, weighted_heat
from dmc.localization.metrics import LOC_FIELDS, ciou, pointing_hit, summarize

LOC_METHODS = ("dmc", "audio_blind", "random_init_bn", "random_init_bn_blind", "random_init", "center_prior",
               "mismatched")
COUNT_METHODS = ("dmc", "shuffled_audio", "random_init_bn", "random_init", "visible_count", "majority",
                 "best_constant")
SCORED_COUNTS = ("dmc", "shuffled_audio", "random_init_bn", "random_init")   # from a model's clip scores
TIE_MODE = "fractional"   # dmc.localization.counting.fair_hard_shares: a tie shared, never sent to cluster 0
ESC_METHODS = ("dmc", "random_init_bn", "random_init")
CONTROL_SEED = 101   # the derangement of the controls: default_rng(seed + CONTROL_SEED)


@torch.no_grad()
def analyse(model, frames: np.ndarray, mels: np.ndarray, tau: float, rule: str, bs: int, device) -> dict:
    """Coarse heat maps at ``tau`` (``heat``) and at 0 (``blind``: uniform cluster weights), and the
    hard shares of both modalities, of uint8 frames (N, S, S, 3) with log-mel (N, T, n_mels)."""
    model = model.to(device).eval()
    out = {"heat": [], "blind": [], "shares_a": [], "shares_v": []}
    for i in range(0, len(frames), bs):
        f = frames_to_tensor(np.asarray(frames[i:i + bs])).to(device)
        m = torch.from_numpy(np.asarray(mels[i:i + bs], dtype=np.float32))[:, None].to(device)
        pc = cluster_pairs(model, f, m)
        mp = cluster_map(rule, pc)
        out["heat"].append(weighted_heat(mp, pc, tau).cpu().numpy())
        out["blind"].append(weighted_heat(mp, pc, 0.0).cpu().numpy())
        out["shares_a"].append(fair_hard_shares(pc.aud.assign.float().cpu().numpy(), TIE_MODE))
        out["shares_v"].append(fair_hard_shares(pc.vis.assign.float().cpu().numpy(), TIE_MODE))
    return {k: np.concatenate(v) for k, v in out.items()}


def score_heats(coarse: np.ndarray | None, masks: list, size, thr: float, prior: np.ndarray | None = None,
                bs: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(cIoU, pointing hit) per pair of coarse maps (or the constant ``prior``) against masks."""
    ious, hits = [], []
    for i in range(0, len(masks), bs):
        n = len(masks[i:i + bs])
        heats = np.broadcast_to(prior, (n, *size)) if prior is not None else upsample(coarse[i:i + bs], size)
        for h, g in zip(heats, masks[i:i + bs]):
            ious.append(ciou(h, g, thr))
            hits.append(pointing_hit(h, g))
    return np.asarray(ious, dtype=np.float64), np.asarray(hits, dtype=int)


def scored_pairs(decoded: Path, gt, gt_dir, corpus: str):
    """(rows, frames, log-mels) of a scored corpus's decoded pairs whose video has ground truth
    (``gt``, a :class:`dmc.io.ground_truth.GroundTruth` of ``gt_dir``), in (video, segment) order;
    fewer than two such videos is an error naming ``decoded``."""
    from dmc.localization.localize import _ShardReader
    from dmc.model.dataset import ShardDataset

    rows = ShardDataset(decoded).index
    rows = rows[rows.video.isin(gt.clips.index)].sort_values(["video", "segment"]).reset_index(drop=True)
    if rows.video.nunique() < 2:
        raise ValueError(f"{decoded}: fewer than two {corpus} videos with ground truth in {gt_dir}")
    frames, mels = _ShardReader(decoded)(rows)
    return rows, frames, mels


def training_batches(reader, rows: pd.DataFrame, bs: int, device):
    """(frames, log-mel) tensors of the rows, in batches (for the BatchNorm recalibration)."""
    for i in range(0, len(rows), bs):
        frames, mels = reader(rows.iloc[i:i + bs])
        yield (frames_to_tensor(frames).to(device),
               torch.from_numpy(np.asarray(mels, dtype=np.float32))[:, None].to(device))


def random_init_bn_model(cfg: Params, decoded_dev: Path, device, reader=None):
    """The untrained network of the run's seed, BatchNorm statistics recomputed on the train split."""
    from dmc.model.baselines import recalibrate_batchnorm
    from dmc.model.dataset import ShardDataset
    from dmc.localization.localize import _ShardReader, random_init_model

    params = cfg.as_dict()   # the network and the split are built from params dicts (DMC.from_params, split_of)
    model = random_init_model(params).to(device)
    rows = ShardDataset.of_split(decoded_dev, params, "train").index.reset_index(drop=True)
    reader = reader or _ShardReader(decoded_dev)
    return recalibrate_batchnorm(model, training_batches(reader, rows, cfg.localize.batch_size, device)).eval()


def _fit_cuts(model, reader, rows, gt, lp: Localize, device) -> list[float]:
    """Cut points of the count rule on the training corpus's train and val videos."""
    if lp.multisource_cuts is not None:
        return [float(c) for c in lp.multisource_cuts]
    frames, mels = reader(rows)
    a = analyse(model, frames, mels, lp.agreement_temperature, lp.heatmap_rule, lp.batch_size, device)
    videos = sorted(rows.video.unique())
    s = ms.clip_scores(ms.source_score(a["shares_a"], a["shares_v"]), rows.video).reindex(videos).to_numpy()
    return ms.fit_cuts(s, np.array([gt.n_sources(v) for v in videos], dtype=int), lp.max_sources)


def esc_predictions(models: dict, evalset: Path, cfg: Params, device) -> pd.DataFrame:
    """Per ESC-like clip: fold, target and each model's prediction (5-fold protocol)."""
    from dmc.evaluation.protocols import evaluate_esc50
    from dmc.evaluation.features import embed_logmel

    f = cfg.features
    logmel = np.load(evalset / "logmel.npy", mmap_mode="r", allow_pickle=False)
    meta = pd.read_csv(evalset / "clips.csv", keep_default_na=False).drop(columns=["esc10"], errors="ignore")
    out = None
    for name, model in models.items():
        layer = f.layer or model.audio.num_pools + 1
        X = embed_logmel(model.audio, logmel, layer, f.pooling, f.batch_size, device, desc=name)
        r = evaluate_esc50(X, meta, cfg.evaluate.C_grid, dataset="esc50")
        if out is None:
            out = pd.DataFrame({"clip": np.arange(len(r["y_true"])), "fold": r["fold"], "target": r["y_true"]})
        out[f"pred_{name}"] = r["y_pred"]
    return out


def run(cfg: Params, decoded_dev, decoded_test, model_path, gt_dev, gt_test, evalset_esc50, out_dir, metrics_path,
        device="cpu", log=print) -> dict:
    """Score one run on the test corpus; write the tables and the flat metrics; return them."""
    from dmc.localization.controls import mismatched_rows
    from dmc.model.dataset import ShardDataset
    from dmc.io.ground_truth import GroundTruth
    from dmc.localization.localize import _ShardReader
    from dmc.model.training import load_model

    lp = cfg.localize
    tau, rule, bs, thr = lp.agreement_temperature, lp.heatmap_rule, lp.batch_size, lp.ciou_threshold
    src = (cfg.synth.width, cfg.synth.height)
    params = cfg.as_dict()   # the dataset split and the random-init network are built from params dicts
    decoded_dev, decoded_test = Path(decoded_dev), Path(decoded_test)
    gt_t, gt_d = GroundTruth(gt_test, src), GroundTruth(gt_dev, src)
    rows, frames, mels = scored_pairs(decoded_test, gt_t, gt_test, "test-corpus")
    size = frames.shape[1:3]
    masks = [gt_t.mask(r.video, r.frame_time_s, size) for r in rows.itertuples()]

    dev_reader = _ShardReader(decoded_dev)
    trained = load_model(model_path)[0].to(device)
    untrained = random_init_bn_model(cfg, decoded_dev, device, dev_reader)
    from dmc.localization.localize import random_init_model

    inactive = random_init_model(params).to(device)
    partner, partners = mismatched_rows(rows, cfg.seed + CONTROL_SEED)
    tr = analyse(trained, frames, mels, tau, rule, bs, device)
    mm = analyse(trained, frames, mels[partner], tau, rule, bs, device)
    ri = analyse(untrained, frames, mels, tau, rule, bs, device)
    r0 = analyse(inactive, frames, mels, tau, rule, bs, device)
    coarse = {"dmc": tr["heat"], "audio_blind": tr["blind"], "random_init_bn": ri["heat"],
              "random_init_bn_blind": ri["blind"], "random_init": r0["heat"], "mismatched": mm["heat"]}
    prior = center_prior(size, lp.center_sigma)
    pairs = pd.DataFrame({"video": rows.video, "segment": rows.segment, "frame_time_s": rows.frame_time_s,
                          "audio_from": rows.video.to_numpy()[partner]})
    loc = {}
    for m in LOC_METHODS:
        ious, hits = score_heats(coarse.get(m), masks, size, thr, prior if m == "center_prior" else None, bs)
        pairs[f"{m}_ciou"], pairs[f"{m}_pointing"] = np.round(ious, 4), hits
        loc[m] = summarize(ious, hits)

    # -- counting: cut points and majority from the training corpus (train + val videos) -----------
    fit = pd.concat([ShardDataset.of_split(decoded_dev, params, s).index for s in ("train", "val")])
    fit = fit[fit.video.isin(gt_d.clips.index)].reset_index(drop=True)
    cuts = {"dmc": _fit_cuts(trained, dev_reader, fit, gt_d, lp, device),
            "random_init_bn": _fit_cuts(untrained, dev_reader, fit, gt_d, lp, device),
            "random_init": _fit_cuts(inactive, dev_reader, fit, gt_d, lp, device)}
    videos = sorted(rows.video.unique())
    y = np.array([gt_t.n_sources(v) for v in videos], dtype=int)
    K = lp.max_sources

    scores = {}

    def counts(name, shares_a, shares_v, c):
        scores[name] = ms.clip_scores(ms.source_score(shares_a, shares_v), rows.video).reindex(videos).to_numpy()
        return ms.predict_counts(scores[name], c, K)

    majority = ms.majority_count([gt_d.n_sources(v) for v in sorted(fit.video.unique())])
    best_constant = ms.majority_count(y)
    fit_videos = sorted(fit.video.unique())
    visible = visible_counts(gt_t.boxes).reindex(videos).to_numpy()
    visible_pred, visible_cuts = visible_count_predictions(
        visible_counts(gt_d.boxes).reindex(fit_videos).to_numpy(), [gt_d.n_sources(v) for v in fit_videos],
        visible, K)
    preds = {"dmc": counts("dmc", tr["shares_a"], tr["shares_v"], cuts["dmc"]),
             "shuffled_audio": counts("shuffled_audio", mm["shares_a"], mm["shares_v"], cuts["dmc"]),
             "random_init_bn": counts("random_init_bn", ri["shares_a"], ri["shares_v"], cuts["random_init_bn"]),
             "random_init": counts("random_init", r0["shares_a"], r0["shares_v"], cuts["random_init"]),
             "visible_count": visible_pred,
             "majority": np.full(len(videos), majority), "best_constant": np.full(len(videos), best_constant)}
    # every clip with the same score: the count is a constant whatever the cuts (e.g. uniform assignments)
    degenerate = {m: is_degenerate(scores[m]) for m in SCORED_COUNTS}
    clips = pd.DataFrame({"video": videos, "n_sources": y, "visible": visible,
                          **{f"pred_{m}": p for m, p in preds.items()}})

    esc = esc_predictions({"dmc": trained, "random_init_bn": untrained, "random_init": inactive}, Path(evalset_esc50),
                          cfg, device) \
        if evalset_esc50 else None

    flat = {f"heldout.{m}.{f}": _clean(loc[m][f]) for m in LOC_METHODS for f in LOC_FIELDS}
    flat.update({f"heldout.count.{m}.acc": None if degenerate.get(m) else _clean(ms.accuracy(y, p))
                 for m, p in preds.items()})
    flat.update({f"heldout.count.{m}.degenerate": bool(d) for m, d in degenerate.items()})
    # the audio-dependence gap: own audio - mismatched audio (issue 33 item 5)
    flat.update({f"heldout.audio_gap.{f}": _clean(loc["dmc"][f] - loc["mismatched"][f]) for f in LOC_FIELDS})
    if esc is not None:
        flat.update({f"heldout.esc50.{m}.acc": _clean(float((esc[f"pred_{m}"] == esc.target).mean()))
                     for m in ESC_METHODS})
    flat["heldout.n_clips"], flat["heldout.n_pairs"] = len(videos), int(sum(g.any() for g in masks))
    details = {"test_corpus": str(decoded_test), "ground_truth": str(gt_test), "clips": len(videos),
               "pairs": len(rows), "pairs_with_sounding_region": flat["heldout.n_pairs"], "frame_size": list(size),
               "multisource_cuts": {m: [_clean(c) for c in v] for m, v in cuts.items()},
               "majority_count_train_val": majority, "best_constant_count_test": best_constant,
               "visible_count_cuts": [_clean(c) for c in visible_cuts], "tie_mode": TIE_MODE,
               "count_degenerate": degenerate,
               "control_seed": cfg.seed + CONTROL_SEED, "audio_partner": partners}
    with atomic_file(metrics_path) as tmp:
        tmp.write_text(json.dumps(flat, indent=2) + "\n")
    with atomic_dir(out_dir) as tmp:
        pairs.to_csv(tmp / "pairs.csv", index=False)
        clips.to_csv(tmp / "clips.csv", index=False)
        if esc is not None:
            esc.to_csv(tmp / "esc50_clips.csv", index=False)
        (tmp / "details.json").write_text(json.dumps(details, indent=2) + "\n")
        (tmp / "table.md").write_text(run_table(pairs, clips, esc, cfg.seed, lp, degenerate))
    log(f"heldout: {len(videos)} test-corpus clips, {len(rows)} pairs; pointing " + ", ".join(
        f"{m} {loc[m]['pointing']:.3f}" for m in LOC_METHODS) + "; counting " + ", ".join(
        f"{m} {_fmt(flat[f'heldout.count.{m}.acc'])}" for m in COUNT_METHODS))
    return flat


def not_applicable(out_dir, metrics_path) -> None:
    """Null metrics and a one-line table: the training corpus has no ground truth."""
    flat = {f"heldout.{m}.{f}": None for m in LOC_METHODS for f in LOC_FIELDS}
    flat.update({f"heldout.count.{m}.acc": None for m in COUNT_METHODS})
    flat.update({f"heldout.esc50.{m}.acc": None for m in ESC_METHODS})
    flat.update({f"heldout.audio_gap.{f}": None for f in LOC_FIELDS})
    flat["heldout.n_clips"] = flat["heldout.n_pairs"] = 0
    with atomic_file(metrics_path) as tmp:
        tmp.write_text(json.dumps(flat, indent=2) + "\n")
    with atomic_dir(out_dir) as tmp:
        (tmp / "table.md").write_text("# The untouched test corpus: not applicable (data.ground_truth is null)\n")


def _clean(x):
    x = float(x)
    return None if not np.isfinite(x) else round(x, 4)


def count_sums(clips: pd.DataFrame, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Per clip: (correct (clips x 1), ones) of a count method, for :mod:`dmc.localization.bootstrap`."""
    return (clips[f"pred_{method}"] == clips.n_sources).to_numpy(dtype=np.float64)[:, None], np.ones(len(clips))


def esc_sums(esc: pd.DataFrame, method: str) -> tuple[np.ndarray, np.ndarray]:
    return (esc[f"pred_{method}"] == esc.target).to_numpy(dtype=np.float64)[:, None], np.ones(len(esc))


def _ci(point, reps) -> str:
    lo, hi = B.interval(reps)
    return f"{point:.3f} [{lo:.3f}, {hi:.3f}]"


def _fmt(x) -> str:
    return "degenerate" if x is None else f"{x:.3f}"


def run_table(pairs: pd.DataFrame, clips: pd.DataFrame, esc: pd.DataFrame | None, seed: int, lp: Localize,
              degenerate: dict | None = None) -> str:
    """This run's numbers on the test corpus with clip-bootstrap 95 % intervals (one seed)."""
    videos = sorted(pairs.video.unique())
    counts = B.draw_counts(len(videos), seed=0)
    lines = [f"# The untouched test corpus, one run (seed {seed}): {len(videos)} clips, {len(pairs)} pairs", "",
             f"Point estimate [clip-bootstrap 95 % interval, {B.REPLICATES} replicates]; cIoU at heat >= "
             f"{lp.ciou_threshold}. The mean over seeds with paired differences is the headline "
             "(python -m dmc.studies.headline).", "",
             "| method | pointing | cIoU@0.5 | AUC | mean cIoU |", "|---|---|---|---|---|"]
    for m in LOC_METHODS:
        num, den = B.loc_clip_sums(pairs, m, videos)
        point, reps = B.ratio(num, den), B.ratio(num, den, counts)
        lines.append(f"| {m} | " + " | ".join(_ci(point[j], reps[:, j]) for j in range(4)) + " |")
    own, other = B.loc_clip_sums(pairs, "dmc", videos), B.loc_clip_sums(pairs, "mismatched", videos)
    gap, gap_reps = B.ratio(*own) - B.ratio(*other), B.ratio(*own, counts) - B.ratio(*other, counts)
    lines.append("| audio-dependence gap: dmc - mismatched (paired by clip) | "
                 + " | ".join(_ci(gap[j], gap_reps[:, j]) for j in range(4)) + " |")
    lines += ["", "| count method | accuracy |", "|---|---|"]
    cc = B.draw_counts(len(clips), seed=0)
    for m in COUNT_METHODS:
        if (degenerate or {}).get(m):
            lines.append(f"| {m} | degenerate (every clip has the same score: a constant count) |")
            continue
        num, den = count_sums(clips, m)
        lines.append(f"| {m} | {_ci(B.ratio(num, den)[0], B.ratio(num, den, cc)[:, 0])} |")
    if esc is not None:
        lines += ["", "| ESC-like features | accuracy |", "|---|---|"]
        ec = B.draw_counts(len(esc), seed=0)
        for m in ESC_METHODS:
            num, den = esc_sums(esc, m)
            lines.append(f"| {m} | {_ci(B.ratio(num, den)[0], B.ratio(num, den, ec)[:, 0])} |")
    return "\n".join(lines) + "\n"


def main_step(args, cfg: Params, device) -> None:
    """``dmc heldout``: the pipeline step (with a training corpus without ground truth: null metrics)."""
    gt_dev = args.ground_truth or cfg.data.ground_truth
    if not gt_dev:   # a real training corpus (or the shortcut control): no boxes to fit the count rule on
        not_applicable(args.out_dir, args.metrics)
        print("heldout: data.ground_truth is null: test-corpus scores not applicable (written as null)",
              file=sys.stderr)
        return
    run(cfg, args.decoded, args.test_decoded, args.model, gt_dev, args.test_ground_truth, args.esc50 or None,
        args.out_dir, args.metrics, device, log=lambda m: print(m, file=sys.stderr))
