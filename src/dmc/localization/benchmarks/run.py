"""``dmc localize --benchmark``: read a published benchmark, score every map source with the
published protocol, write the table (baselines in the same table) and the list of clips not scored.

Map sources: the content-free baselines (:mod:`.baselines`) always; with a model, DMC's heat map
(``localize.heatmap_rule`` at ``localize.agreement_temperature``, as ``dmc localize``) and the same
network untrained (:meth:`dmc.model.network.DMC.random_init`). ``boxes_only``: no media are read
(the content-free baselines need none), so a bare annotation file can be scored.

DSOL's MUSIC files are also scored class-aware (:func:`add_classaware`, maps and orchestration in
:mod:`.music_classaware`, metrics in :mod:`dmc.localization.classaware`): that table comes first in
the report and the JSON's ``classaware``; the class-blind table of this module stays beside it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dmc.atomic import atomic_file
from dmc.localization.benchmarks import baselines, protocol
from dmc.localization.benchmarks.layout import Benchmark, BenchmarkError, with_media

KINDS = ("flickr", "vggss", "music-solo", "music-duet")
FOLLOWS = {"flickr": "LVS utils.py testset_gt / EZ-VSL datasets.py bbox2gtmap (consensus of the annotators)",
           "vggss": "EZ-VSL datasets.py load_all_bboxes + bbox2gtmap (binary union, clipped boxes)",
           "music-solo": "DSOL music-exp/eval_duet.py boxes and classes (class-aware; class-blind union beside)",
           "music-duet": "DSOL music-exp/eval_duet.py boxes and classes (class-aware; class-blind union beside)"}


@dataclass
class BenchmarkResult:
    bench: Benchmark
    per_clip: pd.DataFrame      # name, method, ciou
    table: dict                 # method -> summarize()
    threshold: float | None
    classaware: dict | None = None                 # MUSIC: method -> classaware.summarize()
    per_clip_classaware: pd.DataFrame | None = None


def add_classaware(res: BenchmarkResult, seed: int, sigma: float,
                   class_models: dict[str, list[np.ndarray]] | None = None) -> BenchmarkResult:
    """A MUSIC benchmark's class-aware scores (:mod:`.music_classaware`) beside its class-blind table."""
    from dmc.localization.benchmarks import music_classaware

    res.per_clip_classaware, res.classaware = music_classaware.score(res.bench, seed, sigma, class_models)
    return res


def kind_of(root: str | Path) -> str:
    """The benchmark a folder holds, from its files (one of them, else an error naming the folder)."""
    root = Path(root)
    marks = {"vggss": root / "vggss.json", "flickr": root / "Annotations", "music-solo": root / "solotest.json",
             "music-duet": root / "duettest.json"}
    found = [k for k, p in marks.items() if p.exists()]
    if len(found) != 1:
        raise BenchmarkError(f"{root}: expected exactly one of vggss.json, Annotations/, solotest.json, "
                             f"duettest.json (found {', '.join(found) or 'none'})")
    return found[0]


def write_not_applicable(out_dir: str | Path, metrics_path: str | Path | None) -> None:
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    data = {"benchmark": None, "not_applicable": "params data.localization_benchmark is null"}
    for path in filter(None, (Path(out_dir) / "not_applicable.json", metrics_path)):
        with atomic_file(path) as tmp:
            Path(tmp).write_text(json.dumps(data, indent=2) + "\n")


def load(kind: str, root: str | Path | None, annotations: str | Path | None = None,
         test_list: str | Path | None = None) -> Benchmark:
    """The benchmark's entries with media under ``root`` (None: boxes only)."""
    from dmc.localization.benchmarks.flickr import read_flickr, read_test_list
    from dmc.localization.benchmarks.music import read_music
    from dmc.localization.benchmarks.vggss import read_vggss

    ids = read_test_list(test_list) if test_list else None
    base = Path(root) if root is not None else None
    if kind == "flickr":
        if base is None and annotations is None:
            raise BenchmarkError("flickr: give --root (with Annotations/) or --annotations")
        bench = read_flickr(base or Path("."), ids, annotations)
    elif kind == "vggss":
        ann = annotations or (base / "vggss.json" if base is not None else None)
        if ann is None:
            raise BenchmarkError("vggss: give --annotations (vggss.json) or a --root holding vggss.json")
        bench = read_vggss(ann, ids)
    elif kind in ("music-solo", "music-duet"):
        default = "solotest.json" if kind == "music-solo" else "duettest.json"
        ann = annotations or (base / default if base is not None else None)
        if ann is None:
            raise BenchmarkError(f"{kind}: give --annotations ({default}) or a --root holding it")
        bench = read_music(ann, kind)
    else:
        raise BenchmarkError(f"unknown benchmark {kind!r} (one of {', '.join(KINDS)})")
    return with_media(bench, base)


def model_maps(bench: Benchmark, cfg, model_path, device, extended: bool = False):
    """{"dmc": coarse maps, "random_init": ...} of the entries whose media decode; an entry that
    fails here is named in ``bench.problems`` and dropped. ``extended``: also the maps of each frame
    with another clip's audio (a derangement seeded by ``seed``: SLAVC's mismatched-audio negatives),
    returned as a second dict (else None)."""
    import torch

    from dmc.io.logmel import LogMel
    from dmc.localization.benchmarks.media import load_pair
    from dmc.localization.controls import derangement
    from dmc.localization.heatmaps import analyse_arrays
    from dmc.model.network import DMC
    from dmc.model.training import load_model

    frames, waves, kept = [], [], []
    for e in bench.entries:
        try:
            f, w = load_pair(e, cfg.decode)
        except Exception as exc:  # noqa: BLE001 - a clip that does not decode is the clip's fault
            bench.problems.append(f"{e.name}: unreadable media ({type(exc).__name__}: {exc})")
            continue
        frames.append(f)
        waves.append(w)
        kept.append(e)
    bench.entries = kept
    if len(kept) < (2 if extended else 1):
        return {"dmc": [], "random_init": []}, ({"dmc": [], "random_init": []} if extended else None)
    with torch.no_grad():
        mels = LogMel.from_params(cfg.decode.as_dict())(torch.from_numpy(np.stack(waves))).numpy()
    lp, params = cfg.localize, cfg.as_dict()
    out, neg = {}, ({} if extended else None)
    perm = derangement(len(kept), cfg.seed) if extended else None
    for method, model in (("dmc", load_model(model_path)[0]), ("random_init", DMC.random_init(params))):
        an = analyse_arrays(model, np.stack(frames), mels, lp.agreement_temperature, lp.batch_size, device,
                            lp.heatmap_rule)
        out[method] = list(an.coarse)
        if extended:
            an = analyse_arrays(model, np.stack(frames), mels[perm], lp.agreement_temperature, lp.batch_size,
                                device, lp.heatmap_rule)
            neg[method] = list(an.coarse)
    return out, neg


def _confidence(heat: np.ndarray) -> float:
    """SLAVC's confidence of a map at 224 px, before the per-map normalisation (which would give
    every map the same range): the mean of its top quarter."""
    heat = np.asarray(heat, dtype=np.float64)
    return protocol.confidence(heat if heat.shape == (protocol.SIZE, protocol.SIZE) else protocol.upsample(heat))


def score(bench: Benchmark, seed: int, threshold: float | None = None, sigma: float = 0.25,
          models: dict[str, list[np.ndarray]] | None = None,
          content_free: tuple[str, ...] = baselines.CONTENT_FREE,
          negatives: dict[str, list[np.ndarray]] | None = None) -> BenchmarkResult:
    """Per-clip cIoU of every map source (``threshold`` None: the median threshold) and the table.
    ``negatives`` (the models' maps with mismatched audio): SLAVC's extended set, AP and max-F1
    added to the table (a content-free map is the same with any audio; the random map is redrawn)."""
    fixed = {"center_prior": baselines.center_prior(sigma=sigma), "whole_image": baselines.whole_image()}
    preds = {m: protocol.prepare(fixed[m], threshold) for m in content_free if m in fixed}
    rows = []
    for i, e in enumerate(bench.entries):
        raw = {m: fixed[m] for m in preds}
        if "random" in content_free:
            raw["random"] = baselines.random_map(e.name, seed)
        raw.update({method: heats[i] for method, heats in (models or {}).items()})
        for m, heat in raw.items():
            pred = preds[m] if m in preds else protocol.prepare(heat, threshold)
            row = {"name": e.name, "method": m, "ciou": protocol.ciou(pred, e.gt)}
            if negatives is not None:
                row["confidence"] = _confidence(heat)
                neg = (negatives[m][i] if m in negatives else
                       baselines.random_map(e.name + "/mismatched", seed) if m == "random" else heat)
                row["confidence_mismatched"] = _confidence(neg)
            rows.append(row)
    columns = ["name", "method", "ciou", *(("confidence", "confidence_mismatched") if negatives is not None else ())]
    per_clip = pd.DataFrame(rows, columns=columns)
    order = [*(models or {}), *content_free]
    table = {}
    for m in order:
        sub = per_clip[per_clip.method == m]
        table[m] = protocol.summarize(sub.ciou.to_numpy())
        if negatives is not None and len(sub):
            table[m].update(extended_scores(bench, sub))
    return BenchmarkResult(bench, per_clip, table, threshold)


def extended_scores(bench: Benchmark, sub: pd.DataFrame) -> dict:
    """AP and max-F1 (cIoU >= 0.5) over the clips and one mismatched-audio negative each (no box)."""
    n = len(sub)
    n_boxes = [e.n_boxes for e in bench.entries][:n] + [0] * n
    ious = [*sub.ciou, *[float("nan")] * n]
    conf = [*sub.confidence, *sub.confidence_mismatched]
    return {"ap": protocol.average_precision(n_boxes, ious, conf), "max_f1": protocol.max_f1(n_boxes, ious, conf)}


def to_json(res: BenchmarkResult, source: str) -> dict:
    b = res.bench
    return {"benchmark": b.name, "source": source, "n_listed": b.n_listed, "n_scored": len(b.entries),
            "clipped_boxes": b.clipped, "not_scored": list(b.problems), "notes": list(b.notes),
            "protocol": {"size": protocol.SIZE, "threshold": "median" if res.threshold is None else res.threshold,
                         "extended": any("ap" in s for s in res.table.values()),
                         "ground_truth": FOLLOWS[b.name],
                         "follows": "EZ-VSL utils.py Evaluator / test.py (LVS test.py + utils.py)"},
            "methods": {m: {k: _number(v) for k, v in s.items()} for m, s in res.table.items()},
            **({} if res.classaware is None else {"classaware": _classaware_json(res)})}


def _classaware_json(res: BenchmarkResult) -> dict:
    from dmc.localization import classaware
    from dmc.localization.benchmarks.music import CLASSES, RELATIVE

    return {"follows": "DSOL music-exp/eval_duet.py (duet), tools.py (solo) via dmc.localization.classaware",
            "classes": list(CLASSES), "relative": RELATIVE[res.bench.name], "nsa_threshold": classaware.NSA_THRESHOLD,
            "content_free_maps": "the same map for every class",
            "methods": {m: {k: _number(v) for k, v in s.items()} for m, s in res.classaware.items()}}


def _number(v):
    """4 decimals; nan (nothing scored) as null, which JSON and DVC's metrics read."""
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, 4)
    return v


def markdown(res: BenchmarkResult) -> str:
    b = res.bench
    thr = "median (top half of each map)" if res.threshold is None else f"fixed {res.threshold:g}"
    lines = [f"# {b.name}: {len(b.entries)} scored / {b.n_listed} listed", ""]
    if res.classaware is not None:
        lines += _classaware_markdown(res) + ["", "## Class-blind (the union of every box of the frame)", ""]
    lines += [f"Threshold: {thr}; cIoU@0.5 = share of clips with cIoU >= 0.5; AUC of the success rate "
             "over 0, 0.05, .., 1."]
    ext = any("ap" in s for s in res.table.values())
    if ext:
        lines += ["", "Extended set (SLAVC): each clip and its frame with another clip's audio (no sounding "
                      "object); AP and max-F1 at cIoU >= 0.5 over the confidence (mean of the top quarter of the map)."]
    lines += ["", "| method | cIoU@0.5 (%) | AUC (%) | mean cIoU (%) |" + (" AP (%) | max-F1 (%) |" if ext else "")
              + " clips |", "|---|---:|---:|---:|" + ("---:|---:|" if ext else "") + "---:|"]
    pct = lambda v: "n/a" if v is None or math.isnan(v) else f"{100 * v:.1f}"   # noqa: E731
    for m, s in res.table.items():
        extra = f" {pct(s['ap'])} | {pct(s['max_f1'])} |" if ext and "ap" in s else ""
        lines.append(f"| {m} | {pct(s['ciou50'])} | {pct(s['auc'])} | {pct(s['ciou_mean'])} |{extra} {s['n']} |")
    if b.notes:
        lines += ["", f"Scored, with a note ({len(b.notes)}):", ""] + [f"- {p}" for p in b.notes]
    if b.problems:
        lines += ["", f"Not scored ({len(b.problems)}):", ""] + [f"- {p}" for p in b.problems]
    return "\n".join(lines) + "\n"


def _classaware_markdown(res: BenchmarkResult) -> list[str]:
    from dmc.localization import classaware
    from dmc.localization.benchmarks.music import RELATIVE

    pct = lambda v: "n/a" if v is None or math.isnan(v) else f"{100 * v:.1f}"   # noqa: E731
    lines = ["## Class-aware (DSOL)", "",
             f"Each sounding class's map binarised at > {RELATIVE[res.bench.name]:g} x its maximum (DSOL's r of this "
             "file); cIoU@0.3 = share of frames whose mean cIoU over their sounding classes is >= 0.3; AUC of the "
             f"success rate over 0, 0.05, .., 1; NSA = share of a silent class's map <= {classaware.NSA_THRESHOLD:g}, "
             "mean over the classes without a box. Content-free baselines: the same map for every class.", "",
             "| method | cIoU@0.3 (%) | AUC (%) | NSA (%) | frames |", "|---|---:|---:|---:|---:|"]
    for m, s in res.classaware.items():
        lines.append(f"| {m} | {pct(s['ciou30'])} | {pct(s['auc'])} | {pct(s['nsa'])} | {s['n_images']} |")
    return lines


def write(res: BenchmarkResult, out_dir: str | Path, metrics_path: str | Path | None, source: str) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = to_json(res, source)
    name = res.bench.name
    with atomic_file(out_dir / f"{name}.md") as tmp:
        Path(tmp).write_text(markdown(res))
    with atomic_file(out_dir / f"{name}_per_clip.csv") as tmp:
        res.per_clip.to_csv(tmp, index=False, float_format="%.6f")
    if res.per_clip_classaware is not None:
        with atomic_file(out_dir / f"{name}_classaware_per_clip.csv") as tmp:
            res.per_clip_classaware.to_csv(tmp, index=False, float_format="%.6f")
    for path in filter(None, (out_dir / f"{name}.json", metrics_path)):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as tmp:
            Path(tmp).write_text(json.dumps(data, indent=2) + "\n")
    return data
