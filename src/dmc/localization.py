"""Sound localization with DMC, scored on the synthetic ground truth.

Heat map
--------
For a (frame, audio segment) pair, with û_ij^v the visual conv-map vector i projected
into shared space j (:meth:`dmc.clustering.MultimodalClustering.project`) and c_j^a,
c_j^v the audio / visual centers of the pair:

    w_j    = softmax_j( tau * cos(c_j^a, c_j^v) )                 agreement of cluster pair j
    heat_i = sum_j w_j * max(0, <û_ij^v, c_j^a / ||c_j^a||>)      = sum_j w_j (-d_ij^{v->a})_+

i.e. how close visual position i lies to the *audio* centers, in the spaces where the
audio and the visual components of this pair agree (d^{v->a} is the clustering distance
d_ij = -<u_ij, c_j/||c_j||> of :func:`dmc.clustering.distances`, visual vectors against
audio centers: "the visual components matched by the audio").  The coarse (h, w) map is
upsampled bilinearly (``align_corners=False``) to the frame size and min-max normalised
to [0, 1] (a constant map becomes all zeros).  tau = ``localize.agreement_temperature``
(default 1).

Why this one: on the held-out videos of the embedded default (trained model of
``dvc repro``, 96 pairs) it was the most specific of the candidates measured — pointing
game 0.33 against a 0.13 chance rate, mean heat 0.64 on sounding objects, 0.18 on silent
ones, 0.37 on background — while the visual-assignment forms of the task sketch,
sum_j w_j s_ij^v (0.22) and sum_j w_j s_ij^v (-d_ij^v)_+ (0.24), are weaker: with the
reference temperature (z = 1) the soft assignments s_ij^v are nearly uniform over the
clusters, so they carry little of the position's content, whereas the cross-modal
proximity carries it directly.

Metrics (numpy, per pair; the ground truth is the union of the SOUNDING objects' boxes
in the frame nearest the pair's frame time)
-----------------------------------------------------------------------------------------
* boxes are in pixels of the written frame (``synth.width`` x ``synth.height``, x1/y1
  exclusive); frames were resized to ``decode.frame_size`` without cropping, so boxes are
  scaled linearly (:func:`scale_boxes`); a frame pixel belongs to a box when its centre
  lies inside the scaled box (:func:`box_mask`).
* cIoU (Senocak et al. 2018, as in their and LVS's evaluation code): the heat map is
  binarised at ``localize.ciou_threshold`` (a value on the normalised map, default 0.5);
  cIoU = |pred ∩ gt| / (|gt| + |pred \\ gt|), i.e. the IoU with the sounding region.
  ``ciou50`` = share of pairs with cIoU >= 0.5; ``auc`` = area under the success-rate
  curve (share of pairs with cIoU >= t) over t = 0, 0.05, .., 1 (21 thresholds,
  trapezoids); ``ciou_mean`` = mean cIoU.
* pointing game: the heat map's argmax pixel (the first one on ties) lies in a sounding
  object's box.

Baselines in the same run: the same network at random init (seeded as
``dmc.features.method_features``: ``torch.manual_seed(seed); DMC.from_params(...)``) and a
centre prior (an isotropic Gaussian at the frame centre, sigma = ``localize.center_sigma``
x frame size, min-max normalised).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterable, NamedTuple

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from . import multisource as ms
from .atomic import atomic_dir, atomic_file
from .clustering import distances
from .shards import shard_arrays

SUCCESS_THRESHOLDS = np.linspace(0.0, 1.0, 21)
LOC_METHODS = ("dmc", "random_init", "center_prior")
MS_METHODS = ("dmc", "random_init", "majority")
LOC_FIELDS = ("ciou50", "auc", "ciou_mean", "pointing")


# ---------------------------------------------------------------------------------------
# heat maps
# ---------------------------------------------------------------------------------------
class Analysis(NamedTuple):
    """DMC's view of a batch of pairs (numpy arrays).

    coarse:   (B, h, w) heat map at the visual conv-map resolution (not normalised)
    shares_a: (B, k) hard shares of the audio vectors per cluster (:func:`dmc.multisource.hard_shares`)
    shares_v: (B, k) same for the visual vectors
    agreement: (B, k) cos(c_j^a, c_j^v)
    """

    coarse: np.ndarray
    shares_a: np.ndarray
    shares_v: np.ndarray
    agreement: np.ndarray


@torch.no_grad()
def analyse_batch(model, frames: torch.Tensor, logmel: torch.Tensor, temperature: float = 1.0) -> Analysis:
    """frames (B, 3, H, W) in [-1, 1], log-mel (B, 1, T, n_mels) -> :class:`Analysis` (same as DMC.forward)."""
    cl = model.clustering
    uv, (h, w) = model.encode_visual(frames)
    uhat_v = cl.project(uv)                                  # (B, p_v, k, d)
    vis = cl.cluster(uhat_v)
    aud = cl(model.encode_audio(logmel))
    ca, cv = aud.centers.float(), vis.centers.float()
    agree = F.cosine_similarity(ca, cv, dim=-1, eps=1e-8)    # (B, k)
    weight = torch.softmax(temperature * agree, dim=-1)
    near = (-distances(uhat_v.float(), ca)).clamp_min(0)     # <û_ij^v, c_j^a/||c_j^a||>_+  (B, p_v, k)
    heat = (near * weight[:, None, :]).sum(-1).reshape(-1, h, w)
    return Analysis(heat.cpu().numpy(), ms.hard_shares(aud.assign.float().cpu().numpy()),
                    ms.hard_shares(vis.assign.float().cpu().numpy()), agree.cpu().numpy())


def normalize_maps(maps: np.ndarray) -> np.ndarray:
    """Min-max normalise each map of (..., H, W) to [0, 1]; constant maps become 0."""
    maps = np.asarray(maps, dtype=np.float32)
    lo = maps.min(axis=(-2, -1), keepdims=True)
    span = maps.max(axis=(-2, -1), keepdims=True) - lo
    return np.where(span > 0, (maps - lo) / np.where(span > 0, span, 1), 0).astype(np.float32)


def upsample(coarse: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(B, h, w) coarse maps -> (B, H, W) bilinear (align_corners=False), normalised to [0, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(coarse, dtype=np.float32))[:, None]
    up = F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False)[:, 0].numpy()
    return normalize_maps(up)


def center_prior(size: tuple[int, int], sigma: float = 0.25) -> np.ndarray:
    """(H, W) Gaussian blob at the frame centre, sigma = ``sigma`` x the frame side, in [0, 1]."""
    H, W = size
    yy, xx = np.mgrid[:H, :W].astype(np.float64)
    g = np.exp(-(((yy - (H - 1) / 2) / (sigma * H)) ** 2 + ((xx - (W - 1) / 2) / (sigma * W)) ** 2) / 2)
    return normalize_maps(g)


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 frames (B, H, W, 3) -> float (B, 3, H, W) in [-1, 1], as :class:`dmc.data.ShardDataset`."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def analyse_arrays(model, frames: np.ndarray, logmel: np.ndarray, temperature: float = 1.0,
                   batch_size: int = 64, device: str | torch.device = "cpu") -> Analysis:
    """Batched :func:`analyse_batch` over uint8 frames (N, H, W, 3) and log-mel (N, T, n_mels)."""
    model = model.to(device).eval()
    parts = []
    for i in range(0, len(frames), batch_size):
        f = frames_to_tensor(np.asarray(frames[i:i + batch_size])).to(device)
        m = torch.from_numpy(np.asarray(logmel[i:i + batch_size], dtype=np.float32))[:, None].to(device)
        parts.append(analyse_batch(model, f, m, temperature))
    return Analysis(*(np.concatenate(x) for x in zip(*parts)))


# ---------------------------------------------------------------------------------------
# ground truth and metrics (numpy)
# ---------------------------------------------------------------------------------------
def scale_boxes(boxes, src_size: tuple[int, int], dst_size: tuple[int, int]) -> np.ndarray:
    """Boxes (n, 4) x0, y0, x1, y1 in a (W, H) = ``src_size`` frame -> the ``dst_size`` frame (floats)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    sx, sy = dst_size[0] / src_size[0], dst_size[1] / src_size[1]
    return b * np.array([sx, sy, sx, sy])


def box_mask(boxes, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool mask of the pixels whose centre lies in any box [x0, x1) x [y0, y1)."""
    H, W = shape
    cy, cx = np.arange(H) + 0.5, np.arange(W) + 0.5
    mask = np.zeros((H, W), dtype=bool)
    for x0, y0, x1, y1 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        mask |= ((cy >= y0) & (cy < y1))[:, None] & ((cx >= x0) & (cx < x1))[None, :]
    return mask


def ciou(heat: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> float:
    """IoU of (heat >= threshold) with the ground-truth mask (nan when the mask is empty)."""
    gt = np.asarray(gt, dtype=bool)
    if not gt.any():
        return float("nan")
    pred = np.asarray(heat) >= threshold
    return float((pred & gt).sum() / (gt.sum() + (pred & ~gt).sum()))


def pointing_hit(heat: np.ndarray, gt: np.ndarray) -> bool:
    """Does the (first) argmax pixel of the heat map lie in the ground-truth mask?"""
    return bool(np.asarray(gt, dtype=bool).flat[int(np.argmax(heat))])


def success_curve(ious, thresholds=SUCCESS_THRESHOLDS) -> np.ndarray:
    ious = np.asarray(ious, dtype=np.float64)
    return np.array([(ious >= t).mean() for t in thresholds])


def auc(ious, thresholds=SUCCESS_THRESHOLDS) -> float:
    """Area under the success-rate curve over IoU thresholds (trapezoids)."""
    y, x = success_curve(ious, thresholds), np.asarray(thresholds, dtype=np.float64)
    return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)))


def summarize(ious, hits) -> dict:
    """ciou50, auc, ciou_mean, pointing over the pairs with a ground truth (nan IoUs dropped)."""
    ious, hits = np.asarray(ious, dtype=np.float64), np.asarray(hits, dtype=bool)
    ok = ~np.isnan(ious)
    ious, hits = ious[ok], hits[ok]
    if not len(ious):
        return {f: float("nan") for f in LOC_FIELDS}
    return {"ciou50": float((ious >= 0.5).mean()), "auc": auc(ious), "ciou_mean": float(ious.mean()),
            "pointing": float(hits.mean())}


class GroundTruth:
    """boxes.csv / clips.csv of the synthetic corpus; boxes of the frame nearest a time."""

    def __init__(self, root: str | Path, src_size: tuple[int, int]):
        root = Path(root)
        for name in ("boxes.csv", "clips.csv"):
            if not (root / name).is_file():
                raise FileNotFoundError(f"{root / name}: ground truth not found (params.yaml data.ground_truth)")
        self.boxes = pd.read_csv(root / "boxes.csv", keep_default_na=False)
        self.clips = pd.read_csv(root / "clips.csv", keep_default_na=False).set_index("video")
        self.src_size = tuple(src_size)
        self._by_video = {v: g for v, g in self.boxes.groupby("video")}

    def n_sources(self, video: str) -> int | None:
        return int(self.clips.n_sources[video]) if video in self.clips.index else None

    def at(self, video: str, time_s: float) -> pd.DataFrame:
        """Boxes of ``video`` in the frame whose time_s is nearest ``time_s`` (empty if unknown)."""
        g = self._by_video.get(video)
        if g is None:
            return self.boxes.iloc[:0]
        times = np.unique(g.time_s.to_numpy(dtype=np.float64))
        t = times[np.argmin(np.abs(times - time_s))]
        return g[g.time_s.to_numpy(dtype=np.float64) == t]

    def scaled(self, video: str, time_s: float, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """(boxes (n, 4) in the (H, W) = ``size`` frame, sounding flags (n,))."""
        b = self.at(video, time_s)
        boxes = scale_boxes(b[["x0", "y0", "x1", "y1"]].to_numpy(), self.src_size, (size[1], size[0]))
        return boxes, b.sounding.to_numpy(dtype=int).astype(bool)

    def mask(self, video: str, time_s: float, size: tuple[int, int]) -> np.ndarray:
        boxes, sounding = self.scaled(video, time_s, size)
        return box_mask(boxes[sounding], size)


# ---------------------------------------------------------------------------------------
# overlays
# ---------------------------------------------------------------------------------------
class Panel(NamedTuple):
    """One image of an overlay figure: a frame (H, W, 3), a heat map in [0, 1] or None, and
    optional boxes (n, 4) in frame pixels with sounding flags (green: sounding, red: silent)."""

    title: str
    frame: np.ndarray
    heat: np.ndarray | None = None
    boxes: np.ndarray | None = None
    sounding: np.ndarray | None = None


def draw_panels(path: str | Path, panels: list[Panel], title: str = "") -> None:
    """One PNG with the panels side by side (matplotlib Agg canvas, no global pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    fig = Figure(figsize=(2.3 * len(panels), 2.7), dpi=100)
    FigureCanvasAgg(fig)
    for n, p in enumerate(panels):
        H, W = p.frame.shape[:2]
        ax = fig.add_subplot(1, len(panels), n + 1)
        ax.imshow(p.frame, extent=(0, W, H, 0), interpolation="nearest")
        if p.heat is not None:
            ax.imshow(p.heat, extent=(0, W, H, 0), cmap="jet", alpha=0.5, vmin=0, vmax=1, interpolation="bilinear")
        if p.boxes is not None:
            flags = p.sounding if p.sounding is not None else np.ones(len(p.boxes), bool)
            for (x0, y0, x1, y1), snd in zip(p.boxes, flags):
                ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=1.5,
                                       edgecolor="lime" if snd else "red"))
        ax.set_title(p.title, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png")


# ---------------------------------------------------------------------------------------
# the pipeline step: held-out videos of the decoded shards, trained vs baselines
# ---------------------------------------------------------------------------------------
def random_init_model(params: dict):
    """The same network untrained, as for the feature baseline (:meth:`dmc.model.DMC.random_init`)."""
    from .model import DMC

    return DMC.random_init(params)


def _load_split(decoded_dir: Path, val_fraction: float):
    from .data import ShardDataset

    train, val = ShardDataset.split(decoded_dir, val_fraction)
    return train.index, val.index


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


def _arrays_of(decoded_dir: Path, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """uint8 frames (N, S, S, 3) and log-mel (N, T, n_mels) of the index rows, in their order."""
    return _ShardReader(decoded_dir)(rows)


def _analyse_rows(models: dict, reader: _ShardReader, rows: pd.DataFrame, tau: float, bs: int, device,
                  keep: list[int] = ()) -> tuple[dict, dict, tuple]:
    """:class:`Analysis` per model over the rows, streamed in batches; the frames of the rows
    in ``keep`` and the frame size are returned too."""
    parts, kept, size = {m: [] for m in models}, {}, None
    for i in range(0, len(rows), bs):
        frames, mels = reader(rows.iloc[i:i + bs])
        size = frames.shape[1:3]
        kept.update({j: frames[j - i] for j in keep if i <= j < i + bs})
        for m, net in models.items():
            parts[m].append(analyse_arrays(net, frames, mels, tau, bs, device))
    return {m: Analysis(*(np.concatenate(x) for x in zip(*v))) for m, v in parts.items()}, kept, size


def _clean(x):
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return round(float(x), 4) if isinstance(x, (float, np.floating)) else x


def run_benchmark(params: dict, decoded_dir: str | Path, model_path: str | Path, gt_dir: str | Path,
                  out_dir: str | Path, metrics_path: str | Path, device: str | torch.device = "cpu",
                  log=print) -> dict:
    """Score DMC and the baselines on the held-out videos; write metrics, table, overlays.

    Returns the flat metrics written to ``metrics_path``.
    """
    from .training import load_model

    lp = params["localize"]
    cuts = lp["multisource_cuts"]
    if cuts is not None and (len(cuts) != lp["max_sources"] - 1 or list(cuts) != sorted(cuts)):
        from .params import ParamsError

        raise ParamsError(f"params.yaml: localize.multisource_cuts: needs localize.max_sources - 1 = "
                          f"{lp['max_sources'] - 1} increasing numbers, got {cuts}")
    decoded_dir, out_dir = Path(decoded_dir), Path(out_dir)
    gt = GroundTruth(gt_dir, (params["synth"]["width"], params["synth"]["height"]))
    train_rows, val_rows = _load_split(decoded_dir, params["train"]["val_fraction"])
    train_rows = train_rows.reset_index(drop=True)
    val_rows = val_rows.reset_index(drop=True)
    if not len(val_rows):
        raise ValueError(f"{decoded_dir}: no held-out video (train.val_fraction = {params['train']['val_fraction']})")
    known = val_rows.video.isin(gt.clips.index)
    if not known.any():
        raise ValueError(f"{gt_dir}: none of the {val_rows.video.nunique()} held-out videos has ground truth")
    val_rows = val_rows[known].reset_index(drop=True)
    train_rows = train_rows[train_rows.video.isin(gt.clips.index)].reset_index(drop=True)

    models = {"dmc": load_model(model_path)[0], "random_init": random_init_model(params)}
    tau, bs = lp["agreement_temperature"], lp["batch_size"]
    reader = _ShardReader(decoded_dir)
    shown = _overlay_rows(val_rows, lp["clips_for_overlays"])
    analyses, shown_frames, size = _analyse_rows(models, reader, val_rows, tau, bs, device, shown)

    # -- localization --------------------------------------------------------------------
    thr = lp["ciou_threshold"]
    masks = [gt.mask(r.video, r.frame_time_s, size) for r in val_rows.itertuples()]
    prior = center_prior(size, lp["center_sigma"])
    per_pair = {"video": val_rows.video, "segment": val_rows.segment, "frame_time_s": val_rows.frame_time_s}
    loc, shown_heats = {}, {}
    for method in LOC_METHODS:
        ious, hits = [], []
        for i in range(0, len(val_rows), bs):
            if method == "center_prior":
                heats = np.broadcast_to(prior, (min(bs, len(val_rows) - i), *size))
            else:
                heats = upsample(analyses[method].coarse[i:i + bs], size)
                shown_heats.update({(method, j): heats[j - i] for j in shown if i <= j < i + bs})
            for h, g in zip(heats, masks[i:i + bs]):
                ious.append(ciou(h, g, thr))
                hits.append(pointing_hit(h, g))
        loc[method] = summarize(ious, hits)
        per_pair[f"{method}_ciou"] = np.round(ious, 4)
        per_pair[f"{method}_pointing"] = np.asarray(hits, dtype=int)

    # -- multi-source detection ------------------------------------------------------------
    K = lp["max_sources"]
    val_videos = sorted(val_rows.video.unique())
    y_val = np.array([gt.n_sources(v) for v in val_videos])
    y_train_videos = sorted(train_rows.video.unique())
    y_train = np.array([gt.n_sources(v) for v in y_train_videos], dtype=int)
    train_an = {}
    if len(train_rows) and lp["multisource_cuts"] is None:
        train_an = _analyse_rows(models, reader, train_rows, tau, bs, device)[0]
    mres, cuts_used = {}, {}
    for method in ("dmc", "random_init"):
        s_val = ms.clip_scores(ms.source_score(analyses[method].shares_a, analyses[method].shares_v), val_rows.video)
        if lp["multisource_cuts"] is not None:
            cuts = [float(c) for c in lp["multisource_cuts"]]
        elif method in train_an:                         # fitted on the training videos
            a = train_an[method]
            s_tr = ms.clip_scores(ms.source_score(a.shares_a, a.shares_v), train_rows.video)
            cuts = ms.fit_cuts(s_tr.reindex(y_train_videos).to_numpy(), y_train, K)
        else:                                            # no training video with ground truth
            cuts = [float("inf")] * (K - 1)
        pred = ms.predict_counts(s_val.reindex(val_videos).to_numpy(), cuts, K)
        mres[method] = pred
        cuts_used[method] = [_clean(c) for c in cuts]
    majority = ms.majority_count(y_train) if len(y_train) else 1
    mres["majority"] = np.full(len(val_videos), majority)
    ms_metrics = {m: {"acc": ms.accuracy(y_val, p)} for m, p in mres.items()}
    confusions = {m: ms.confusion(y_val, p, K) for m, p in mres.items()}

    # -- outputs ---------------------------------------------------------------------------
    flat = {f"localization.{m}.{f}": _clean(loc[m][f]) for m in LOC_METHODS for f in LOC_FIELDS}
    flat.update({f"multisource.{m}.acc": _clean(ms_metrics[m]["acc"]) for m in MS_METHODS})
    flat["localization.n_pairs"] = int(sum(g.any() for g in masks))
    flat["multisource.n_clips"] = int(len(val_videos))
    with atomic_file(metrics_path) as tmp:
        tmp.write_text(json.dumps(flat, indent=2) + "\n")

    with atomic_dir(out_dir) as tmp:
        table = pd.DataFrame([{"method": m, **{f: _clean(loc[m][f]) for f in LOC_FIELDS},
                               "multisource_acc": _clean(ms_metrics[m]["acc"]) if m in ms_metrics else None}
                              for m in LOC_METHODS] +
                             [{"method": "majority", "multisource_acc": _clean(ms_metrics["majority"]["acc"])}])
        table.to_csv(tmp / "table.csv", index=False)
        (tmp / "table.md").write_text(_markdown(table, confusions, flat, lp, K))
        pd.DataFrame(per_pair).to_csv(tmp / "pairs.csv", index=False)
        rows = [{"method": m, "actual": a + 1, "predicted": p + 1, "count": int(c[a, p])}
                for m, c in confusions.items() for a in range(K) for p in range(K)]
        pd.DataFrame(rows).to_csv(tmp / "multisource_confusion.csv", index=False)
        clips = pd.DataFrame({"video": val_videos, "n_sources": y_val,
                              **{f"pred_{m}": p for m, p in mres.items()}})
        clips.to_csv(tmp / "multisource_clips.csv", index=False)
        (tmp / "details.json").write_text(json.dumps({
            "held_out_videos": len(val_videos), "held_out_pairs": len(val_rows), "frame_size": list(size),
            "ciou_threshold": thr, "success_thresholds": SUCCESS_THRESHOLDS.round(2).tolist(),
            "multisource_cuts": cuts_used, "majority_count": majority,
            "confusion": {m: c.tolist() for m, c in confusions.items()}}, indent=2) + "\n")
        _write_overlays(tmp / "overlays", val_rows, shown_frames, shown_heats, prior, gt, thr)
    log(f"localize: {len(val_videos)} held-out videos, {len(val_rows)} pairs: " + "; ".join(
        f"{m} pointing {loc[m]['pointing']:.3f} auc {loc[m]['auc']:.3f}" for m in LOC_METHODS)
        + "; multi-source acc " + ", ".join(f"{m} {ms_metrics[m]['acc']:.3f}" for m in MS_METHODS))
    return flat


def _markdown(table: pd.DataFrame, confusions: dict, flat: dict, lp: dict, K: int) -> str:
    def fmt(x):
        return "" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.3f}"

    lines = ["# Sound localization and multi-source detection (held-out videos)", "",
             f"{flat['localization.n_pairs']} (frame, audio segment) pairs, {flat['multisource.n_clips']} clips; "
             f"cIoU at heat >= {lp['ciou_threshold']}.", "",
             "| method | cIoU@0.5 | AUC | mean cIoU | pointing | multi-source acc |", "|---|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.method} | " + " | ".join(fmt(getattr(r, f)) for f in (*LOC_FIELDS, "multisource_acc"))
                     + " |")
    lines += ["", "Multi-source confusion (rows: actual count, columns: predicted)", ""]
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


def _write_overlays(folder: Path, rows: pd.DataFrame, frames: dict, heats: dict, prior: np.ndarray,
                    gt: GroundTruth, thr: float) -> None:
    """One PNG per pair in ``frames`` ({row number: frame}): the frame, then each method's map."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in sorted(frames):
        r = rows.iloc[i]
        size = frames[i].shape[:2]
        boxes, sounding = gt.scaled(r.video, r.frame_time_s, size)
        g = box_mask(boxes[sounding], size)
        panels = [Panel("frame", frames[i], None, boxes, sounding)]
        for m in LOC_METHODS:
            h = prior if m == "center_prior" else heats[(m, i)]
            panels.append(Panel(f"{m}: cIoU {ciou(h, g, thr):.2f}, {'hit' if pointing_hit(h, g) else 'miss'}",
                                frames[i], h, boxes, sounding))
        draw_panels(folder / f"{_safe(r.video)}_seg{int(r.segment)}.png", panels,
                    title=f"{r.video} t={r.frame_time_s:.1f} s: {int(sounding.sum())} sounding (green), "
                          f"{int((~sounding).sum())} silent (red)")


def _safe(name: str) -> str:
    return name.replace("/", "__").replace("\\", "__")


# ---------------------------------------------------------------------------------------
# any video: overlays only
# ---------------------------------------------------------------------------------------
def localize_videos(paths: Iterable[str | Path], model_path: str | Path, params: dict, out_dir: str | Path,
                    device: str | torch.device = "cpu", names: Iterable[str] | None = None,
                    err=None) -> tuple[int, int]:
    """Decode each video as ``dmc decode`` does and write ``<out_dir>/<name>.png`` (heat maps over
    up to ``localize.clips_for_overlays`` evenly spaced segments).  Videos that cannot be
    decoded (no audio stream, ...) get one line on ``err`` and are skipped.

    Returns (processed, skipped).
    """
    from .decoding import DecodeError, decode_video
    from .logmel import LogMel
    from .training import load_model

    d, lp = params["decode"], params["localize"]
    model = load_model(model_path)[0]
    frontend = LogMel.from_params(d)
    out_dir = Path(out_dir)
    done = skipped = 0
    paths = [Path(p) for p in paths]
    names = list(names) if names is not None else [p.name for p in paths]
    for path, name in zip(paths, names):
        try:
            clip = decode_video(path, d["segment_seconds"], d["frame_size"], d["sample_rate"])
        except (DecodeError, OSError) as exc:
            print(f"dmc localize: {path}: skipped: {exc}", file=err or sys.stderr)
            skipped += 1
            continue
        with torch.no_grad():
            mels = frontend(torch.from_numpy(clip.waves)).numpy()
        n = len(clip.frames)
        pick = np.unique(np.linspace(0, n - 1, min(n, lp["clips_for_overlays"])).round().astype(int))
        an = analyse_arrays(model, clip.frames[pick], mels[pick], lp["agreement_temperature"], lp["batch_size"],
                            device)
        heats = upsample(an.coarse, clip.frames.shape[1:3])
        seg = d["segment_seconds"]
        draw_panels(out_dir / f"{_safe(name)}.png",
                    [Panel(f"{i * seg:g}-{(i + 1) * seg:g} s", clip.frames[i], h) for i, h in zip(pick, heats)],
                    title=name)
        done += 1
    return done, skipped
