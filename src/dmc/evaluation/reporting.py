"""Reports of the evaluation: flat metrics.json, tables, confusion matrices.

``results`` is ``{dataset: {method: result}}`` with datasets ``esc50`` and ``esc10`` (the ESC-10
release; results of :func:`dmc.evaluation.protocols.evaluate_esc50`) and ``dcase``
(:func:`dmc.evaluation.protocols.evaluate_dcase`). A data set that was not evaluated (``data.<name>: null``)
or a fold that could not be (``folds_not_evaluated``) has null metrics and says why in the tables.
Our numbers are fractions in 0..1 in ``metrics.json`` and the CSV files, percentages in the
Markdown tables. The paper's numbers (:data:`PUBLISHED`) are shown beside ours in rows
labelled "published (paper), not reproduced": they are quoted, never computed here.
Every file is written atomically (:func:`dmc.atomic.atomic_file`). The ``evaluate`` step hands
:func:`write_evaluation` the result objects of :func:`dmc.evaluation.protocols.esc50_protocol` and
:func:`dmc.evaluation.protocols.dcase_protocol`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from dmc.atomic import atomic_file

from dmc.names import DATASETS, FOLD_DATASETS, METHODS

_FOLDS = ("acc_mean", "acc_std", "fold1", "fold2", "fold3", "fold4", "fold5", "n_folds", "C_edge_share")
#: how much of a data set was scored (dmc.evaluation.protocols: pooled accuracy, clips scored of those listed,
#: the folds whose clips were scored, partial data); kept as int / str / bool in metrics.json
_POOLED = ("acc_pooled", "n_scored", "n_listed", "folds_scored", "partial")
FIELDS = {
    "esc50": (*_FOLDS, "esc10_acc_mean", "esc10_acc_std", "group_acc_mean", *_POOLED,
              *(f"esc10_{f}" for f in _POOLED)),
    "esc10": (*_FOLDS, *_POOLED),
    "dcase": ("acc", "scene_acc_mean", "C_edge"),
}
_AS_IS = {f for f in _POOLED if f != "acc_pooled"} | {f"esc10_{f}" for f in _POOLED if f != "acc_pooled"}
OURS = "ours (this run)"
#: Numeric columns of the summary table -> metric key (``{}`` = method).
SUMMARY_COLUMNS = {
    "esc50_acc_mean": "esc50.{}.acc_mean", "esc50_acc_std": "esc50.{}.acc_std",
    "esc10_acc_mean": "esc50.{}.esc10_acc_mean", "esc10_acc_std": "esc50.{}.esc10_acc_std",
    "esc10_release_acc_mean": "esc10.{}.acc_mean", "esc10_release_acc_std": "esc10.{}.acc_std",
    "dcase_acc": "dcase.{}.acc", "dcase_scene_acc_mean": "dcase.{}.scene_acc_mean",
}
#: the pooled accuracy and counts of each fold-protocol column of the summary (column prefix ->
#: metric key prefix); with complete data and equal folds the pooled accuracy is the mean
SUMMARY_POOLED = {"esc50": "esc50.{}.", "esc10": "esc50.{}.esc10_", "esc10_release": "esc10.{}."}
PARTIAL_MARK = "PARTIAL"
PUBLISHED_LABEL = "published (paper), not reproduced"

#: Published accuracies (fractions), quoted from the paper's sources; NOT reproduced here.
PUBLISHED = {
    # ESC-50 accuracy, 5-fold: ESC-50 leaderboard (DMC 82.60 %) and the peers it lists.
    "esc50": {"DMC": 0.826, "SoundNet": 0.742, "L3-Net": 0.793, "Human": 0.813,
              "Random forest baseline": 0.443},
    # DCASE2014 (DCASE2013 scenes): DMC supplement Table 1, "mAP" = mean accuracy of the
    # 10 scenes. dagger: trained on more data than DMC; double dagger: DMC with supervision
    # from a trained vision network.
    "dcase": {"RG": 0.69, "LTT": 0.72, "RNH": 0.77, "Ensemble": 0.78, "SoundNet": 0.88,
              "L3": 0.91, "†L3": 0.93, "†AVTS": 0.94, "DMC": 0.94, "‡DMC": 0.96},
}


def metric_keys(methods=METHODS) -> list[str]:
    """The fixed, ordered keys of ``metrics.json`` for these methods."""
    return [f"{d}.{m}.{f}" for d in DATASETS for m in methods for f in FIELDS[d]]


def _methods(results: dict) -> list[str]:
    unknown = set(results) - set(DATASETS)
    if unknown:
        raise ValueError(f"unknown dataset(s) {sorted(unknown)}; expected {DATASETS}")
    extra = {m for d in results.values() for m in d} - set(METHODS)
    return list(METHODS) + sorted(extra)


def _values(dataset: str, r: dict | None) -> dict:
    """The raw metric values of one result (None where not available)."""
    if r is None:
        return {}
    if dataset not in FOLD_DATASETS:
        return {"acc": r["acc"], "scene_acc_mean": r["scene_acc_mean"], "C_edge": float(r["C_edge"])}
    below = set(r.get("folds_below_minimum", ()))
    out = {"acc_mean": r["acc_mean"], "acc_std": r["acc_std"], "n_folds": len([f for f in r["folds"] if f not in below]),
           "C_edge_share": r["C_edge_share"]}
    out.update({f"fold{f}": a for f, a in zip(r["folds"], r["fold_acc"]) if f not in below})
    out.update(_pooled(r))
    if r.get("esc10"):
        out.update(esc10_acc_mean=r["esc10"]["acc_mean"], esc10_acc_std=r["esc10"]["acc_std"])
        out.update({f"esc10_{k}": v for k, v in _pooled(r["esc10"]).items()})
    if "group_acc_mean" in r:
        out["group_acc_mean"] = r["group_acc_mean"]
    return out


def _pooled(r: dict) -> dict:
    """The pooled keys of one fold-protocol result (absent from results made before them)."""
    if "acc_pooled" not in r:
        return {}
    return {"acc_pooled": r["acc_pooled"], "n_scored": int(r["n_scored"]), "n_listed": int(r["n_listed"]),
            "folds_scored": ",".join(str(f) for f in r["folds_scored"]), "partial": bool(r["partial"])}


def flatten_metrics(results: dict) -> dict:
    """Flat ``{dataset.method.field: float | None}`` over :func:`metric_keys`, rounded to 4 places.

    Every key of the three standard methods is always present (None when a dataset, method
    or ESC-10 subset was not evaluated), so the key set does not depend on the run.
    """
    flat = {}
    for key in metric_keys(_methods(results)):
        dataset, method, field = key.split(".")
        value = _values(dataset, results.get(dataset, {}).get(method)).get(field)
        if value is None or field in _AS_IS:
            flat[key] = value
        else:
            flat[key] = round(float(value), 4)
    return flat


def _pct(x, std=None) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return ""
    return f"{100 * x:.1f}" + ("" if std is None or pd.isna(std) else f" ± {100 * std:.1f}")


def summary_table(results: dict) -> pd.DataFrame:
    """Method rows (ours, then published) x dataset columns, fractions; NaN where absent."""
    flat = flatten_metrics(results)
    rows = []
    for m in _methods(results):
        if not any(m in results.get(d, {}) for d in DATASETS):
            continue
        rows.append({"source": OURS, "method": m,
                     **{col: flat[key.format(m)] for col, key in SUMMARY_COLUMNS.items()},
                     **{f"{col}_{f}": flat[f"{key.format(m)}{f}"] for col, key in SUMMARY_POOLED.items()
                        for f in _POOLED}})
    for name in dict.fromkeys([*PUBLISHED["esc50"], *PUBLISHED["dcase"]]):
        rows.append({"source": PUBLISHED_LABEL, "method": name,
                     "esc50_acc_mean": PUBLISHED["esc50"].get(name),
                     "dcase_scene_acc_mean": PUBLISHED["dcase"].get(name)})
    pooled = [f"{col}_{f}" for col in SUMMARY_POOLED for f in _POOLED]
    return pd.DataFrame(rows, columns=["source", "method", *SUMMARY_COLUMNS, *pooled]).astype(
        {col: float for col in SUMMARY_COLUMNS} | {f"{col}_acc_pooled": float for col in SUMMARY_POOLED})


def _headline(table: pd.DataFrame, col: str) -> list[str]:
    """The accuracy cells of one fold-protocol column: the pooled accuracy (correct / scored) with
    the per-fold spread beside it and the clips scored of those listed (``85.0 ± 2.8 (300/300)``);
    on partial data also the folds scored and the mark; a published row shows its number."""
    cells = []
    for _, row in table.iterrows():
        pooled = row.get(f"{col}_acc_pooled")
        if pooled is None or pd.isna(pooled):
            cells.append(_pct(row[f"{col}_acc_mean"], row[f"{col}_acc_std"]))
            continue
        text = _pct(pooled, row[f"{col}_acc_std"])
        counts = f"{int(row[f'{col}_n_scored'])}/{int(row[f'{col}_n_listed'])}"
        if _is_true(row[f"{col}_partial"]):
            folds = str(row[f"{col}_folds_scored"]).replace(",", ", ")
            text += f" ({PARTIAL_MARK}: {counts} clips scored, fold{'s' if ',' in folds else ''} {folds})"
        else:
            text += f" ({counts})"
        cells.append(text)
    return cells


def _is_true(value) -> bool:
    return isinstance(value, (bool, np.bool_)) and bool(value)


def _summary_markdown(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "source": table["source"], "method": table["method"],
        "ESC-50 acc (%)": _headline(table, "esc50"),
        "ESC-10 acc (%)": _headline(table, "esc10"),
        "ESC-10 release acc (%)": _headline(table, "esc10_release"),
        "DCASE2014 acc (%)": [_pct(a) for a in table["dcase_acc"]],
        "DCASE2014 mean scene acc (%)": [_pct(a) for a in table["dcase_scene_acc_mean"]],
    })


def fold_table(results: dict) -> pd.DataFrame:
    """One row per method, subset (ESC-50, its ESC-10 subset, the ESC-10 release) and fold:
    n_test, accuracy, chosen C, whether C was at an edge of the configured grid (then the
    grid was extended), and for a fold that could not be evaluated, why."""
    rows = []
    subsets = [(m, "ESC-50", r) for m, r in results.get("esc50", {}).items()]
    subsets += [(m, "ESC-10", r.get("esc10")) for m, r in results.get("esc50", {}).items()]
    subsets += [(m, "ESC-10 release", r) for m, r in results.get("esc10", {}).items()]
    subsets += [(m, "ESC-10", {"subset_not_evaluated": r["esc10_not_evaluated"]})
                for m, r in results.get("esc50", {}).items() if r.get("esc10_not_evaluated")]
    for m, subset, res in subsets:
        if not res:
            continue
        if "subset_not_evaluated" in res:
            rows.append({"method": m, "subset": subset, "fold": None, "n_test": None, "accuracy": None, "C": None,
                         "C_at_grid_edge": None, "not_evaluated": res["subset_not_evaluated"]})
            continue
        below = set(res.get("folds_below_minimum", ()))
        rows += [{"method": m, "subset": subset, "fold": f, "n_test": n, "accuracy": None if f in below else a,
                  "C": c, "C_at_grid_edge": e,
                  "not_evaluated": (f"not scored on its own: {n} test clips, fewer than the minimum "
                                    f"{res['min_fold_clips']} (evaluate.min_fold_clips_per_class); its clips "
                                    f"count in the pooled accuracy") if f in below else ""}
                 for f, n, a, c, e in zip(res["folds"], res["fold_n_test"], res["fold_acc"],
                                          res["fold_C"], res["fold_C_edge"])]
        rows += [{"method": m, "subset": subset, "fold": int(f), "n_test": None, "accuracy": None,
                  "C": None, "C_at_grid_edge": None, "not_evaluated": why}
                 for f, why in res.get("folds_not_evaluated", {}).items()]
    columns = ["method", "subset", "fold", "n_test", "accuracy", "C", "C_at_grid_edge", "not_evaluated"]
    return pd.DataFrame(rows, columns=columns)


def scene_table(results: dict) -> pd.DataFrame:
    """One row per method and DCASE scene: n_test recordings and accuracy."""
    rows = [{"method": m, "scene": s, "n_test": n, "accuracy": a}
            for m, r in results.get("dcase", {}).items()
            for s, n, a in zip(r["classes"], r["scene_n_test"], r["scene_acc"])]
    return pd.DataFrame(rows, columns=["method", "scene", "n_test", "accuracy"])


def recording_table(results: dict) -> pd.DataFrame:
    """One row per DCASE test recording: ``recording``, its true ``scene`` and ``pred_<method>``
    per method (what ``dmc compare`` resamples by recording); no rows when DCASE was not evaluated."""
    methods = results.get("dcase", {})
    if not methods:
        return pd.DataFrame(columns=["recording", "scene"])
    first = next(iter(methods.values()))
    table = pd.DataFrame({"recording": first["recordings"], "scene": [str(y) for y in first["y_true"]]})
    for method, r in methods.items():
        pred = dict(zip(r["recordings"], (str(y) for y in r["y_pred"])))
        table[f"pred_{method}"] = [pred.get(rec) for rec in table.recording]
    return table


def confusion_pairs(result: dict) -> tuple[list[str], list[str], list[str]]:
    """(class names, actual, predicted) as strings, one pair per test item."""
    names = [str(c) for c in result.get("class_names", result["classes"])]
    lookup = dict(zip(result["classes"], names))
    actual = [lookup.get(c, str(c)) for c in result["y_true"]]
    predicted = [lookup.get(c, str(c)) for c in result["y_pred"]]
    return names, actual, predicted


def confusion_matrix(names: list[str], actual: list[str], predicted: list[str]) -> np.ndarray:
    """Counts, rows = actual class, columns = predicted class, in the order of ``names``."""
    index = {n: i for i, n in enumerate(names)}
    cm = np.zeros((len(names), len(names)), dtype=np.int64)
    for a, p in zip(actual, predicted):
        cm[index[a], index[p]] += 1
    return cm


def _markdown(df: pd.DataFrame) -> str:
    cells = df.astype(object).where(df.notna(), "")
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in cells.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _write_text(path: Path, text: str) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _write_table(df: pd.DataFrame, stem: Path, markdown: pd.DataFrame | None = None) -> None:
    with atomic_file(stem.with_suffix(".csv")) as tmp:
        df.to_csv(tmp, index=False)
    _write_text(stem.with_suffix(".md"), _markdown(df if markdown is None else markdown))


def _plot_confusion(cm: np.ndarray, names: list[str], title: str, path: Path) -> None:
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    size = max(4.0, 0.22 * len(names) + 2.5)
    fig = Figure(figsize=(size, size))
    ax = fig.subplots()
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title)
    if len(names) <= 15:
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                    color="white" if v > cm.max() / 2 else "black")
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def write_results(results: dict, out_dir: str | Path) -> list[Path]:
    """Write metrics.json, tables/, figures/ and plots/ under ``out_dir``; returns the paths.

    ``plots/<dataset>_<method>_confusion.csv`` has columns ``actual,predicted`` (class names)
    with one row per test item (ESC-50 clip, DCASE test recording): DVC's "confusion" plot.
    """
    out = Path(out_dir)
    written = [out / "metrics.json"]
    _write_text(written[0], json.dumps(flatten_metrics(results), indent=2) + "\n")
    summary = summary_table(results)
    _write_table(summary, out / "tables" / "summary", _summary_markdown(summary))
    folds = fold_table(results)
    _write_table(folds, out / "tables" / "esc50_folds",
                 folds.assign(accuracy=[_pct(a) for a in folds["accuracy"]])
                 .rename(columns={"accuracy": "accuracy (%)"}))
    scenes = scene_table(results)
    _write_table(scenes, out / "tables" / "dcase_scenes",
                 scenes.assign(accuracy=[_pct(a) for a in scenes["accuracy"]])
                 .rename(columns={"accuracy": "accuracy (%)"}))
    _write_table(recording_table(results), out / "tables" / "dcase_recordings")
    written += [out / "tables" / f"{s}.{e}" for s in ("summary", "esc50_folds", "dcase_scenes", "dcase_recordings")
                for e in ("csv", "md")]
    for dataset in DATASETS:
        for method, result in results.get(dataset, {}).items():
            names, actual, predicted = confusion_pairs(result)
            stem = f"{dataset}_{method}_confusion"
            with atomic_file(out / "plots" / f"{stem}.csv") as tmp:
                pd.DataFrame({"actual": actual, "predicted": predicted}).to_csv(tmp, index=False)
            cm = confusion_matrix(names, actual, predicted)
            _plot_confusion(cm, names, f"{dataset} / {method}", out / "figures" / f"{stem}.png")
            written += [out / "plots" / f"{stem}.csv", out / "figures" / f"{stem}.png"]
    return written


def write_evaluation(results, out_dir: str | Path) -> list[Path]:
    """Write the results of the ``evaluate`` step (:class:`~dmc.evaluation.protocols.Esc50Result` and
    :class:`~dmc.evaluation.protocols.DcaseResult`, one per data set) with :func:`write_results`."""
    return write_results({r.dataset: r.methods for r in results}, out_dir)
