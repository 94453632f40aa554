"""The plot of ``dmc compare``: per metric, each seed's difference (dots), the mean over seeds
(diamond) and its hierarchical-bootstrap 95 % interval (bar), against the line of no difference."""

from __future__ import annotations

import pandas as pd


def plot(table: pd.DataFrame, change: str):
    """A matplotlib Figure (no pyplot: no global backend state) of the rows of
    :func:`dmc.pipeline.comparison.differences`."""
    from matplotlib.figure import Figure

    rows = table.iloc[::-1].reset_index(drop=True)        # the first metric on top
    fig = Figure(figsize=(7.5, 0.55 * len(rows) + 1.6))
    ax = fig.subplots()
    ax.axvline(0.0, color="0.5", lw=1, ls="--")
    for y, r in rows.iterrows():
        seeds = [float(x) for x in str(r.per_seed).split()] if isinstance(r.per_seed, str) else []
        ax.scatter(seeds, [y] * len(seeds), s=18, color="tab:blue", alpha=0.7)
        if r["diff"] == r["diff"]:
            color = {"higher": "tab:green", "lower": "tab:red"}.get(r.verdict, "black")
            ax.plot([r.lo, r.hi], [y, y], color=color, lw=2.5)
            ax.plot([r["diff"]], [y], marker="D", color=color, ms=6)
    ax.set_yticks(range(len(rows)), list(rows.label), fontsize=8)
    ax.set_xlabel(f"{change} − default")
    n = int(table.n_seeds.max()) if len(table) else 0
    ax.set_title(f"change − default over {n} seeds: dots each seed, diamond the mean, bar its 95 % interval",
                 fontsize=8)
    fig.tight_layout()
    return fig
