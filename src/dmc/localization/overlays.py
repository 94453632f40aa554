"""Heat-map overlays: frames with heat maps and boxes, side by side in one PNG."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from dmc.atomic import atomic_file


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


def safe_name(name: str) -> str:
    """A video's relative path as one file name."""
    return name.replace("/", "__").replace("\\", "__")
