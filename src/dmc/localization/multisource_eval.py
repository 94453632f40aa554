"""Class-aware, stem-conditioned and recall scores of a model on multi-source clips, per clip.

Orchestration only (the maths lives in :mod:`dmc.localization.classaware`,
:mod:`dmc.localization.classmaps`, :mod:`dmc.localization.class_mapping` and
:mod:`dmc.localization.sources`); nothing is written here.

Inputs: uint8 frames (N, H, W, 3) and log-mel (N, T, n_mels) of N (frame, audio segment)
pairs, and the ground truth as an ``objects`` table with one row per object drawn in a pair's
frame: ``pair`` (0..N-1), ``class`` (a name of the mapping's ``classes``), ``sounding`` (0/1) and
``x0, y0, x1, y1`` (pixels of the (W, H) frame that was given).  Optional stems: log-mel
(M, T, n_mels) with a ``stems`` table of M rows ``pair`` and ``object`` (the row label in
``objects`` of the sounding source whose stem alone was played).

1. :func:`cluster_share_maps`: per pair the k cluster share maps a_ij (coarse) and the heat map.
2. :func:`learn_mapping`: the cluster -> class mapping from TRAINING pairs only.
3. :func:`pair_table` / :func:`stem_table`: one row per pair / per stem.
4. :func:`score_model` runs 1 and 3 for a model with a given mapping;
   :func:`clip_rows`: per clip numerators and denominators, so that every metric is a ratio of
   sums over clips (:func:`ratios`) and a bootstrap can resample clips and seeds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from dmc.localization import classaware as ca
from dmc.localization import class_mapping as cm
from dmc.localization.classmaps import class_maps, gated_shares
from dmc.localization.heatmaps import cluster_map, cluster_pairs, frames_to_tensor, upsample
from dmc.localization.mapping_file import ClassMapping
from dmc.localization.sources import IOU_HIT, RELATIVE, distinct_source_recall, stem_scores

BOX = ["x0", "y0", "x1", "y1"]
CIOU30 = ca.SUCCESS_THRESHOLDS[ca.CIOU30_INDEX]
AUC_W = ca.auc_weights()


@torch.no_grad()
def cluster_share_maps(model, frames: np.ndarray, mels: np.ndarray, tau: float, rule: str, bs: int = 64,
                       device="cpu", gate: str = "none") -> tuple[np.ndarray, np.ndarray]:
    """(shares (N, k, h, w): a_ij, or g_ij with ``gate`` "heat", of :mod:`dmc.localization.classmaps`,
    heat (N, h, w): sum_j w_j m_ij)."""
    model = model.to(device).eval()
    shares, heats = [], []
    for i in range(0, len(frames), bs):
        f = frames_to_tensor(np.asarray(frames[i:i + bs])).to(device)
        m = torch.from_numpy(np.asarray(mels[i:i + bs], dtype=np.float32))[:, None].to(device)
        pc = cluster_pairs(model, f, m)
        mp = cluster_map(rule, pc).cpu().numpy()                                  # (B, p, k)
        w = torch.softmax(tau * pc.agree, dim=-1).cpu().numpy()                   # (B, k)
        a = gated_shares(mp, w, gate)                                             # (B, p, k)
        shares.append(np.moveaxis(a, -1, 1).reshape(len(a), -1, *pc.shape))
        heats.append((mp * w[:, None, :]).sum(-1).reshape(len(a), *pc.shape))
    return np.concatenate(shares), np.concatenate(heats)


def _by_pair(objects: pd.DataFrame) -> dict:
    """Objects grouped by pair, once (a pair without objects gets an empty table)."""
    return {int(p): g for p, g in objects.groupby("pair")}


def _pair_objects(groups: dict, objects: pd.DataFrame, pair: int, classes: list[str]):
    o = groups.get(pair, objects.iloc[:0])
    unknown = set(o["class"]) - set(classes)
    if unknown:
        raise ValueError(f"pair {pair}: classes {sorted(unknown)} are not in the mapping's classes")
    return (o[BOX].to_numpy(dtype=np.float64), np.array([classes.index(c) for c in o["class"]], dtype=int),
            o["sounding"].to_numpy(dtype=int).astype(bool))


def learn_mapping(shares: np.ndarray, objects: pd.DataFrame, frame_wh: tuple[int, int], classes: list[str],
                  fitted_on: str = "train") -> ClassMapping:
    """The cluster -> class mapping from the share maps of TRAINING pairs (:mod:`dmc.localization.class_mapping`):
    one count per conv-map position inside a sounding box, for the cluster holding most of the heat there."""
    N, k, h, w = shares.shape
    W, H = frame_wh
    a = np.moveaxis(shares, 1, -1).reshape(N, h * w, k)
    mass = np.eye(k)[a.argmax(-1)] * (a.sum(-1, keepdims=True) > 0)            # no heat: no vote
    groups = _by_pair(objects)
    labels = np.stack([cm.position_labels(*_pair_objects(groups, objects, i, classes), (h, w), (H, W))
                       for i in range(N)])
    owner, M = cm.learn(mass, labels, len(classes))
    return ClassMapping(list(classes), owner.tolist(), M.tolist(), fitted_on,
                        "hungarian on row shares of hard share-map winners in sounding boxes")


def _resize(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(n, h, w) -> (n, H, W) bilinear, align_corners=False, values kept (not normalised)."""
    t = torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float64))[:, None]
    return F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False)[:, 0].numpy()


def pair_table(shares: np.ndarray, objects: pd.DataFrame, videos, mapping: ClassMapping, frame_wh: tuple[int, int],
               relative: float | None = None, iou_hit: float = IOU_HIT) -> pd.DataFrame:
    """One row per pair: class-aware cIoU and NSA (DSOL), distinct-source recall counts.

    ``relative``: DSOL's r for every pair, or None for r per pair by :func:`dmc.localization.classaware.scene_relative`
    (column ``relative``)."""
    W, H = frame_wh
    cmaps = class_maps(shares, mapping.cluster_to_class, len(mapping.classes))
    rows, groups = [], _by_pair(objects)
    for i, video in enumerate(np.asarray(videos)):
        boxes, cls, sounding = _pair_objects(groups, objects, i, mapping.classes)
        r_i = ca.scene_relative(int(sounding.sum()), len(sounding)) if relative is None else float(relative)
        s = ca.score_image(cmaps[i], ca.xyxy_to_xywh(boxes, (W, H)), cls, sounding, r_i)
        r = distinct_source_recall(_resize(shares[i], (H, W)), boxes[sounding], RELATIVE, iou_hit)
        rows.append({"video": video, "pair": i, "relative": r_i, "ca_ciou": s.ciou, "ca_nsa": s.nsa,
                     "ca_nsa_drawn": s.nsa_drawn, "n_sounding_classes": s.n_sounding, "n_silent_classes": s.n_silent,
                     "n_drawn_silent_classes": s.n_drawn_silent, "recall_hits": r.hits,
                     "recall_pointing_hits": r.pointing_hits, "recall_sources": r.sources})
    return pd.DataFrame(rows)


def stem_table(stem_heat: np.ndarray, stems: pd.DataFrame, objects: pd.DataFrame, videos, frame_wh: tuple[int, int],
               threshold: float) -> pd.DataFrame:
    """One row per stem: pointing / cIoU against its source's box, wrong-source hit (other sounding boxes)."""
    W, H = frame_wh
    heats = upsample(stem_heat, (H, W))
    videos = np.asarray(videos)
    rows, groups = [], _by_pair(objects)
    for heat, pair, obj in zip(heats, stems["pair"].to_numpy(), stems["object"].to_numpy()):
        o = groups.get(int(pair), objects.iloc[:0])
        o = o[o["sounding"].astype(int) == 1]
        if obj not in o.index:
            raise ValueError(f"stem of pair {pair}: object {obj!r} is not a sounding object of that pair")
        own, others = o.loc[obj, BOX].to_numpy(dtype=np.float64), o.drop(index=obj)[BOX].to_numpy(dtype=np.float64)
        s = stem_scores(heat, own, others, threshold)
        rows.append({"video": videos[pair], "pair": int(pair), "object": obj, "stem_pointing": int(s.pointing),
                     "stem_ciou": s.ciou, "stem_wrong": int(s.wrong_source)})
    return pd.DataFrame(rows, columns=["video", "pair", "object", "stem_pointing", "stem_ciou", "stem_wrong"])


def clip_rows(pairs: pd.DataFrame, stems: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per clip numerators / denominators of every metric (index: video, sorted)."""
    c = pairs["ca_ciou"].to_numpy(dtype=np.float64)
    ok = ~np.isnan(c)
    c0 = np.where(ok, c, -np.inf)
    nsa = pairs["ca_nsa"].to_numpy(dtype=np.float64)
    drawn = pairs["ca_nsa_drawn"].to_numpy(dtype=np.float64)
    per = pd.DataFrame({
        "video": pairs["video"].to_numpy(),
        "ca_images": ok.astype(int),                                           # images with a sounding class
        "ca_hit30": (c0 >= CIOU30).astype(int),                                # cIoU >= DSOL's 0.3
        "ca_auc_num": (c0[:, None] >= ca.SUCCESS_THRESHOLDS[None, :]).astype(float) @ AUC_W,
        "ca_ciou_sum": np.where(ok, c, 0.0),
        "nsa_images": (~np.isnan(nsa)).astype(int),
        "nsa_sum": np.where(np.isnan(nsa), 0.0, nsa),
        "nsa_drawn_images": (~np.isnan(drawn)).astype(int),
        "nsa_drawn_sum": np.where(np.isnan(drawn), 0.0, drawn),
        "recall_hits": pairs["recall_hits"], "recall_pointing_hits": pairs["recall_pointing_hits"],
        "recall_sources": pairs["recall_sources"]})
    out = per.groupby("video").sum().sort_index()
    if stems is not None:
        s = stems.assign(stem_n=1, stem_ciou30=(stems["stem_ciou"] >= CIOU30).astype(int))
        s = s.groupby("video")[["stem_n", "stem_pointing", "stem_ciou", "stem_ciou30", "stem_wrong"]].sum()
        out = out.join(s.rename(columns={"stem_ciou": "stem_ciou_sum"}), how="left").fillna(0)
    return out


def ratios(clips: pd.DataFrame) -> dict:
    """Every metric as a ratio of sums over the clips given (nan where a denominator is 0)."""
    t = clips.sum()

    def r(num, den):
        return float(t[num] / t[den]) if den in t and t[den] > 0 else float("nan")

    out = {"ca_ciou30": r("ca_hit30", "ca_images"), "ca_auc": r("ca_auc_num", "ca_images"),
           "ca_ciou_mean": r("ca_ciou_sum", "ca_images"), "nsa": r("nsa_sum", "nsa_images"),
           "nsa_drawn": r("nsa_drawn_sum", "nsa_drawn_images"),
           "recall": r("recall_hits", "recall_sources"), "recall_pointing": r("recall_pointing_hits", "recall_sources")}
    if "stem_n" in t:
        out.update({"stem_pointing": r("stem_pointing", "stem_n"), "stem_ciou_mean": r("stem_ciou_sum", "stem_n"),
                    "stem_ciou30": r("stem_ciou30", "stem_n"), "wrong_source_rate": r("stem_wrong", "stem_n")})
    return out


def score_model(model, frames: np.ndarray, mels: np.ndarray, objects: pd.DataFrame, videos, mapping: ClassMapping,
                tau: float, rule: str, ciou_threshold: float, relative: float | None = None,
                stem_mels: np.ndarray | None = None, stems: pd.DataFrame | None = None, bs: int = 64,
                device="cpu", gate: str = "none") -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame]:
    """(pair table, stem table or None, clip rows) of a model on multi-source pairs; the mapping must
    come from :func:`learn_mapping` on training pairs.  ``stems`` rows index ``stem_mels``; a stem is
    played with its pair's frame."""
    H, W = np.asarray(frames).shape[1:3]
    shares, _ = cluster_share_maps(model, frames, mels, tau, rule, bs, device, gate)
    pairs = pair_table(shares, objects, videos, mapping, (W, H), relative)
    stem = None
    if stems is not None and len(stems):
        if stem_mels is None or len(stem_mels) != len(stems):
            raise ValueError("stems need one log-mel per row of the stems table")
        stem_frames = np.asarray(frames)[stems["pair"].to_numpy()]
        _, heat = cluster_share_maps(model, stem_frames, stem_mels, tau, rule, bs, device)
        stem = stem_table(heat, stems, objects, videos, (W, H), ciou_threshold)
    return pairs, stem, clip_rows(pairs, stem)
