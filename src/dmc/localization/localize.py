"""The localization step: DMC's heat maps and source counts on the held-out videos.

Parts: heat maps (:mod:`dmc.localization.heatmaps`), metrics (:mod:`dmc.localization.metrics`), the synthetic
ground truth (:mod:`dmc.io.ground_truth`), drawing (:mod:`dmc.localization.overlays`) and multi-source
counting (:mod:`dmc.localization.multisource`).  This module runs them over the decoded shards:
:func:`run_benchmark` scores the trained model and two baselines in the same run: the same
network at random init (seeded as ``dmc.evaluation.features.method_features``:
``torch.manual_seed(seed); DMC.from_params(...)``) and a centre prior
(:func:`dmc.localization.heatmaps.center_prior`); :func:`localize_videos` draws heat maps of any video.

The step computes apart from writing: :func:`localize_benchmark` returns a :class:`LocalizationResult`
(flat metrics, tables, details, overlay panels) and writes nothing;
:func:`dmc.localization.writing.write_localization` writes it. :func:`run_benchmark` does both.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import torch

from dmc.config import Localize, Params
from dmc.localization import multisource as ms
from dmc.io.ground_truth import GroundTruth, box_mask
from dmc.localization.heatmaps import Analysis, analyse_arrays, center_prior, concat, upsample
from dmc.localization.metrics import LOC_FIELDS, SUCCESS_THRESHOLDS, ciou, pointing_hit, score_maps, summarize
from dmc.localization.overlays import Panel, draw_panels, safe_name
from dmc.io.shards import shard_arrays

LOC_METHODS = ("dmc", "random_init", "center_prior")
MS_METHODS = ("dmc", "random_init", "majority")


# ---------------------------------------------------------------------------------------
# the pipeline step: held-out videos of the decoded shards, trained vs baselines
# ---------------------------------------------------------------------------------------
def random_init_model(params: dict):
    """The same network untrained, as for the feature baseline (:meth:`dmc.model.network.DMC.random_init`)."""
    from dmc.model.network import DMC

    return DMC.random_init(params)


def _load_split(decoded_dir: Path, params: dict):
    """Index rows (fit, report): the count rule's cut points are fitted on the train and val
    splits; every number is reported on the test split, which no choice reads (dmc.model.dataset.split_of)."""
    from dmc.model.dataset import ShardDataset

    fit = pd.concat([ShardDataset.of_split(decoded_dir, params, s).index for s in ("train", "val")])
    return fit, ShardDataset.of_split(decoded_dir, params, "test").index


def split_rows(decoded_dir: Path, params: dict, split: str, gt: GroundTruth) -> pd.DataFrame:
    """Index rows of one split (``dmc.model.dataset.split_of``) whose videos have ground truth, renumbered."""
    from dmc.model.dataset import ShardDataset

    rows = ShardDataset.of_split(decoded_dir, params, split).index
    return rows[rows.video.isin(gt.clips.index)].reset_index(drop=True)


class _ShardReader:
    """uint8 frames and log-mel of index rows, from the memory-mapped shards (each opened once)."""

    def __init__(self, decoded_dir: Path):
        self.root, self.maps = Path(decoded_dir), {}

    def __call__(self, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        if not len(rows):
            raise ValueError("no rows to read")
        shards, where = rows.shard.to_numpy(), rows.row.to_numpy()
        frames = mels = None
        for shard in dict.fromkeys(shards):
            if shard not in self.maps:
                self.maps[shard] = shard_arrays(self.root / shard)
            f, m = self.maps[shard]
            if frames is None:
                frames = np.empty((len(rows), *f.shape[1:]), np.uint8)
                mels = np.empty((len(rows), *m.shape[1:]), np.float32)
            sel = np.nonzero(shards == shard)[0]
            frames[sel], mels[sel] = f[where[sel]], m[where[sel]]
        return frames, mels


def _analyse_rows(models: dict, reader: _ShardReader, rows: pd.DataFrame, tau: float, bs: int, device,
                  keep: list[int] = (), rule: str = "proximity") -> tuple[dict, dict, tuple]:
    """:class:`Analysis` per model over the rows, streamed in batches; the frames of the rows
    in ``keep`` and the frame size are returned too."""
    parts, kept, size = {m: [] for m in models}, {}, None
    for i in range(0, len(rows), bs):
        frames, mels = reader(rows.iloc[i:i + bs])
        size = frames.shape[1:3]
        kept.update({j: frames[j - i] for j in keep if i <= j < i + bs})
        for m, net in models.items():
            parts[m].append(analyse_arrays(net, frames, mels, tau, bs, device, rule))
    return {m: concat(v) for m, v in parts.items()}, kept, size


def _clean(x):
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return round(float(x), 4) if isinstance(x, (float, np.floating)) else x


def correspondence_accuracy(an: Analysis, videos, seed: int) -> float:
    """Held-out audiovisual correspondence: share of pairs with S(own audio, frame) > S(audio of
    another video, frame), one negative per pair drawn as in training (:func:`dmc.model.loss.mismatch_indices`,
    seeded by ``seed``); nan with fewer than two videos."""
    from dmc.model.loss import mismatch_indices, similarity

    ids = torch.as_tensor(pd.factorize(pd.Series(list(videos)))[0])
    if len(set(ids.tolist())) < 2:
        return float("nan")
    neg = mismatch_indices(ids, generator=torch.Generator().manual_seed(seed + 7))
    ca, cv = torch.from_numpy(an.centers_a), torch.from_numpy(an.centers_v)
    return float((similarity(ca, cv) > similarity(ca[neg], cv)).float().mean())


@dataclass(frozen=True)
class Overlay:
    """One PNG of :func:`dmc.localization.overlays.draw_panels`: file name, panels, title."""
    name: str
    panels: list
    title: str


@dataclass(frozen=True)
class LocalizationResult:
    """What the localize step computed, nothing written yet (:mod:`dmc.localization.writing`)."""
    flat: dict             # the flat metrics (``--metrics``, DVC)
    table: pd.DataFrame    # table.csv: one row per method
    markdown: str          # table.md
    tables: dict           # file name -> per-pair / per-clip table (empty without ground truth)
    details: dict          # details.json
    overlays: list         # Overlay per drawn pair (overlays/)
    message: str           # the one-line summary of the run


def localize_benchmark(cfg: Params, decoded_dir: str | Path, model_path: str | Path, gt_dir: str | Path | None,
                       device: str | torch.device = "cpu") -> LocalizationResult:
    """DMC and the baselines on the held-out videos: metrics, tables, overlay panels (nothing written).

    With ground truth (``gt_dir``, the synthetic corpus): localization and multi-source scores.
    Without (a real corpus, ``gt_dir`` None): heat-map overlays and the held-out correspondence;
    the box and count metrics are null (not applicable).
    """
    from dmc.model.training import load_model

    lp = cfg.localize
    # the dataset split (dmc.model.dataset.split_of) and the random-init network (DMC.from_params) are
    # built from params dicts, as the studies and a checkpoint's stored config give them: the dict, explicitly
    params = cfg.as_dict()
    decoded_dir = Path(decoded_dir)
    gt = None
    if gt_dir:
        cuts = lp.multisource_cuts
        if cuts is not None and (len(cuts) != lp.max_sources - 1 or list(cuts) != sorted(cuts)):
            from dmc.errors import ParamsError

            raise ParamsError(f"params.yaml: localize.multisource_cuts: needs localize.max_sources - 1 = "
                              f"{lp.max_sources - 1} increasing numbers, got {list(cuts)}")
        gt = GroundTruth(gt_dir, (cfg.synth.width, cfg.synth.height))
    train_rows, val_rows = _load_split(decoded_dir, params)   # val_rows: the test split, reported
    train_rows = train_rows.reset_index(drop=True)
    val_rows = val_rows.reset_index(drop=True)
    if not len(val_rows):
        raise ValueError(f"{decoded_dir}: no test video (train.test_fraction = {cfg.train.test_fraction})")
    if gt is not None:
        known = val_rows.video.isin(gt.clips.index)
        if not known.any():
            raise ValueError(f"{gt_dir}: none of the {val_rows.video.nunique()} held-out videos has ground truth")
        val_rows = val_rows[known].reset_index(drop=True)
        train_rows = train_rows[train_rows.video.isin(gt.clips.index)].reset_index(drop=True)

    models = {"dmc": load_model(model_path)[0], "random_init": random_init_model(params)}
    tau, bs = lp.agreement_temperature, lp.batch_size
    reader = _ShardReader(decoded_dir)
    shown = _overlay_rows(val_rows, lp.clips_for_overlays)
    analyses, shown_frames, size = _analyse_rows(models, reader, val_rows, tau, bs, device, shown,
                                                 lp.heatmap_rule)
    corr = {m: correspondence_accuracy(analyses[m], val_rows.video, cfg.seed) for m in models}
    prior = center_prior(size, lp.center_sigma)
    shown_heats = {(m, j): upsample(analyses[m].coarse[j:j + 1], size)[0] for m in models for j in shown}
    val_videos = sorted(val_rows.video.unique())

    if gt is None:
        flat = _not_applicable()
        details = {}
        tables = {}
    else:
        flat, details, tables = _scores(lp, gt, models, reader, analyses, train_rows, val_rows, size, prior,
                                        device)
        flat.update(_val_localization(cfg, params, gt, models["dmc"], reader, decoded_dir, size, device))
    flat.update({f"correspondence.{m}.acc": _clean(corr[m]) for m in models})
    flat["correspondence.n_pairs"] = int(len(val_rows))

    rows = [{"method": m, **{f: flat[f"localization.{m}.{f}"] for f in LOC_FIELDS},
             "multisource_acc": flat.get(f"multisource.{m}.acc"),
             "correspondence_acc": flat.get(f"correspondence.{m}.acc")} for m in LOC_METHODS]
    rows.append({"method": "majority", "multisource_acc": flat["multisource.majority.acc"]})
    table = pd.DataFrame(rows)
    confusions = details.get("confusion", {})
    markdown = _markdown(table, {m: np.array(c) for m, c in confusions.items()}, flat, lp, len(val_videos),
                         gt is not None)
    details = {
        "held_out_videos": len(val_videos), "held_out_pairs": len(val_rows), "frame_size": list(size),
        "ground_truth": str(gt_dir) if gt is not None else None,
        **({"box_metrics": "not applicable: no ground truth (params data.ground_truth is null)"}
           if gt is None else {}),
        **details}
    overlays = _overlays(val_rows, shown_frames, shown_heats, prior, gt, lp.ciou_threshold)
    msg = f"localize: {len(val_videos)} test-split videos, {len(val_rows)} pairs: correspondence " + ", ".join(
        f"{m} {corr[m]:.3f}" for m in models)
    if gt is not None:
        msg += "; " + "; ".join(f"{m} pointing {flat[f'localization.{m}.pointing']:.3f} auc "
                                f"{flat[f'localization.{m}.auc']:.3f}" for m in LOC_METHODS)
        msg += "; multi-source acc " + ", ".join(f"{m} {flat[f'multisource.{m}.acc']:.3f}" for m in MS_METHODS)
    else:
        msg += "; no ground truth: box and count metrics not applicable"
    return LocalizationResult(flat, table, markdown, tables, details, overlays, msg)


def run_benchmark(cfg: Params, decoded_dir: str | Path, model_path: str | Path, gt_dir: str | Path | None,
                  out_dir: str | Path, metrics_path: str | Path, device: str | torch.device = "cpu",
                  log=print) -> dict:
    """:func:`localize_benchmark`, written by :func:`dmc.localization.writing.write_localization`
    (metrics to ``metrics_path``, table, details and overlays under ``out_dir``); returns the flat metrics."""
    from dmc.localization.writing import write_localization

    result = localize_benchmark(cfg, decoded_dir, model_path, gt_dir, device)
    write_localization(result, out_dir, metrics_path)
    log(result.message)
    return result.flat


def _val_localization(cfg: Params, params: dict, gt, model, reader, decoded_dir, size, device) -> dict:
    """``localization.val.dmc.*``: the trained model's heat maps scored on the *val* split, the
    numbers a sweep reads to choose a configuration (e.g. the visual map, ``make ablation``)
    while the test split stays for reporting. Empty when no val video has ground truth."""
    lp = cfg.localize
    rows = split_rows(decoded_dir, params, "val", gt)
    if not len(rows):
        return {}
    an = _analyse_rows({"dmc": model}, reader, rows, lp.agreement_temperature, lp.batch_size, device,
                       rule=lp.heatmap_rule)[0]["dmc"]
    heats = upsample(an.coarse, size)
    masks = [gt.mask(r.video, r.frame_time_s, size) for r in rows.itertuples()]
    s = score_maps(heats, masks, lp.ciou_threshold)
    return {f"localization.val.dmc.{f}": _clean(s[f]) for f in LOC_FIELDS}


def _not_applicable() -> dict:
    """The box and count metrics of a corpus without ground truth: null, no pairs scored."""
    flat = {f"localization.{m}.{f}": None for m in LOC_METHODS for f in LOC_FIELDS}
    flat.update({f"multisource.{m}.acc": None for m in MS_METHODS})
    flat["localization.n_pairs"] = 0
    flat["multisource.n_clips"] = 0
    return flat


def _scores(lp: Localize, gt, models, reader, analyses, train_rows, val_rows, size, prior, device):
    """Localization and multi-source scores against the ground truth: (flat metrics, details,
    {file name: per-pair / per-clip table})."""
    bs, thr = lp.batch_size, lp.ciou_threshold
    masks = [gt.mask(r.video, r.frame_time_s, size) for r in val_rows.itertuples()]
    per_pair = {"video": val_rows.video, "segment": val_rows.segment, "frame_time_s": val_rows.frame_time_s}
    loc = {}
    for method in LOC_METHODS:
        ious, hits = [], []
        for i in range(0, len(val_rows), bs):
            if method == "center_prior":
                heats = np.broadcast_to(prior, (min(bs, len(val_rows) - i), *size))
            else:
                heats = upsample(analyses[method].coarse[i:i + bs], size)
            for h, g in zip(heats, masks[i:i + bs]):
                ious.append(ciou(h, g, thr))
                hits.append(pointing_hit(h, g))
        loc[method] = summarize(ious, hits)
        per_pair[f"{method}_ciou"] = np.round(ious, 4)
        per_pair[f"{method}_pointing"] = np.asarray(hits, dtype=int)

    # -- multi-source detection ------------------------------------------------------------
    K = lp.max_sources
    val_videos = sorted(val_rows.video.unique())
    y_val = np.array([gt.n_sources(v) for v in val_videos])
    y_train_videos = sorted(train_rows.video.unique())
    y_train = np.array([gt.n_sources(v) for v in y_train_videos], dtype=int)
    train_an = {}
    if len(train_rows) and lp.multisource_cuts is None:
        train_an = _analyse_rows(models, reader, train_rows, lp.agreement_temperature, bs, device)[0]
    mres, cuts_used = {}, {}
    for method in ("dmc", "random_init"):
        s_val = ms.clip_scores(ms.source_score(analyses[method].shares_a, analyses[method].shares_v), val_rows.video)
        if lp.multisource_cuts is not None:
            cuts = [float(c) for c in lp.multisource_cuts]
        elif method in train_an:                         # fitted on the training videos
            a = train_an[method]
            s_tr = ms.clip_scores(ms.source_score(a.shares_a, a.shares_v), train_rows.video)
            cuts = ms.fit_cuts(s_tr.reindex(y_train_videos).to_numpy(), y_train, K)
        else:                                            # no training video with ground truth
            cuts = [float("inf")] * (K - 1)
        mres[method] = ms.predict_counts(s_val.reindex(val_videos).to_numpy(), cuts, K)
        cuts_used[method] = [_clean(c) for c in cuts]
    majority = ms.majority_count(y_train) if len(y_train) else 1
    mres["majority"] = np.full(len(val_videos), majority)
    ms_acc = {m: ms.accuracy(y_val, p) for m, p in mres.items()}
    confusions = {m: ms.confusion(y_val, p, K) for m, p in mres.items()}

    flat = {f"localization.{m}.{f}": _clean(loc[m][f]) for m in LOC_METHODS for f in LOC_FIELDS}
    flat.update({f"multisource.{m}.acc": _clean(ms_acc[m]) for m in MS_METHODS})
    flat["localization.n_pairs"] = int(sum(g.any() for g in masks))
    flat["multisource.n_clips"] = int(len(val_videos))
    details = {"ciou_threshold": thr, "success_thresholds": SUCCESS_THRESHOLDS.round(2).tolist(),
               "multisource_cuts": cuts_used, "majority_count": majority,
               "confusion": {m: c.tolist() for m, c in confusions.items()}}
    rows = [{"method": m, "actual": a + 1, "predicted": p + 1, "count": int(c[a, p])}
            for m, c in confusions.items() for a in range(K) for p in range(K)]
    tables = {"pairs.csv": pd.DataFrame(per_pair), "multisource_confusion.csv": pd.DataFrame(rows),
              "multisource_clips.csv": pd.DataFrame({"video": val_videos, "n_sources": y_val,
                                                     **{f"pred_{m}": p for m, p in mres.items()}})}
    return flat, details, tables


def _markdown(table: pd.DataFrame, confusions: dict, flat: dict, lp: Localize, n_clips: int, scored: bool) -> str:
    def fmt(x):
        return "" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.3f}"

    lines = ["# Sound localization and multi-source detection (dev-test split of the training corpus; "
             "the untouched test corpus: results/heldout/)", ""]
    if scored:
        lines += [f"{flat['localization.n_pairs']} (frame, audio segment) pairs, {flat['multisource.n_clips']} "
                  f"clips; cIoU at heat >= {lp.ciou_threshold}.", ""]
    else:
        lines += [f"{flat['correspondence.n_pairs']} (frame, audio segment) pairs, {n_clips} clips. No ground "
                  "truth (params data.ground_truth is null): box and count metrics are not applicable; the "
                  "overlays show where each method looks.", ""]
    lines += ["| method | cIoU@0.5 | AUC | mean cIoU | pointing | multi-source acc | held-out correspondence |",
              "|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.method} | " + " | ".join(
            fmt(getattr(r, f)) if scored or f == "correspondence_acc" else "n/a"
            for f in (*LOC_FIELDS, "multisource_acc", "correspondence_acc")) + " |")
    if confusions:
        lines += ["", "Multi-source confusion (rows: actual count, columns: predicted)", ""]
    K = lp.max_sources
    for m, c in confusions.items():
        lines += [f"**{m}**", "", "| actual \\ predicted | " + " | ".join(str(k + 1) for k in range(K)) + " |",
                  "|---" * (K + 1) + "|"]
        lines += [f"| {a + 1} | " + " | ".join(str(int(x)) for x in c[a]) + " |" for a in range(K)]
        lines.append("")
    return "\n".join(lines)


def _overlay_rows(rows: pd.DataFrame, n_clips: int) -> list[int]:
    """Row numbers of the pairs drawn: the middle segment of each of the first ``n_clips`` videos."""
    picked = []
    for video in sorted(rows.video.unique())[:n_clips]:
        idx = np.nonzero((rows.video == video).to_numpy())[0]
        picked.append(int(idx[len(idx) // 2]))
    return picked


def _overlays(rows: pd.DataFrame, frames: dict, heats: dict, prior: np.ndarray,
              gt: GroundTruth | None, thr: float) -> list[Overlay]:
    """One overlay per pair in ``frames`` ({row number: frame}): the frame, then each method's map;
    with ground truth, the boxes (sounding green, silent red) and each map's cIoU and pointing."""
    out = []
    for i in sorted(frames):
        r = rows.iloc[i]
        size = frames[i].shape[:2]
        boxes = sounding = None
        title = f"{r.video} t={r.frame_time_s:.1f} s"
        if gt is not None:
            boxes, sounding = gt.scaled(r.video, r.frame_time_s, size)
            g = box_mask(boxes[sounding], size)
            title += f": {int(sounding.sum())} sounding (green), {int((~sounding).sum())} silent (red)"
        panels = [Panel("frame", frames[i], None, boxes, sounding)]
        for m in LOC_METHODS:
            h = prior if m == "center_prior" else heats[(m, i)]
            label = m if gt is None else f"{m}: cIoU {ciou(h, g, thr):.2f}, {'hit' if pointing_hit(h, g) else 'miss'}"
            panels.append(Panel(label, frames[i], h, boxes, sounding))
        out.append(Overlay(f"{safe_name(r.video)}_seg{int(r.segment)}.png", panels, title))
    return out


# ---------------------------------------------------------------------------------------
# any video: overlays only
# ---------------------------------------------------------------------------------------
def localize_videos(paths: Iterable[str | Path], model_path: str | Path, cfg: Params, out_dir: str | Path,
                    device: str | torch.device = "cpu", names: Iterable[str] | None = None,
                    err=None) -> tuple[int, int]:
    """Decode each video as ``dmc decode`` does and write ``<out_dir>/<name>.png`` (heat maps over
    up to ``localize.clips_for_overlays`` evenly spaced segments).  Videos that cannot be
    decoded (no audio stream, ...) get one line on ``err`` and are skipped.

    Returns (processed, skipped).
    """
    from dmc.io.decoding import DecodeError, decode_video
    from dmc.io.logmel import LogMel
    from dmc.model.training import load_model

    d, lp = cfg.decode, cfg.localize
    model = load_model(model_path)[0]
    frontend = LogMel.from_params(d.as_dict())   # dmc.io's front end takes the decode section as a dict
    out_dir = Path(out_dir)
    done = skipped = 0
    paths = [Path(p) for p in paths]
    names = list(names) if names is not None else [p.name for p in paths]
    for path, name in zip(paths, names):
        try:
            clip = decode_video(path, d.segment_seconds, d.frame_size, d.sample_rate)
        except (DecodeError, OSError) as exc:
            print(f"dmc localize: {path}: skipped: {exc}", file=err or sys.stderr)
            skipped += 1
            continue
        with torch.no_grad():
            mels = frontend(torch.from_numpy(clip.waves)).numpy()
        n = len(clip.frames)
        pick = np.unique(np.linspace(0, n - 1, min(n, lp.clips_for_overlays)).round().astype(int))
        an = analyse_arrays(model, clip.frames[pick], mels[pick], lp.agreement_temperature, lp.batch_size,
                            device, lp.heatmap_rule)
        heats = upsample(an.coarse, clip.frames.shape[1:3])
        seg = d.segment_seconds
        draw_panels(out_dir / f"{safe_name(name)}.png",
                    [Panel(f"{i * seg:g}-{(i + 1) * seg:g} s", clip.frames[i], h) for i, h in zip(pick, heats)],
                    title=name)
        done += 1
    return done, skipped
