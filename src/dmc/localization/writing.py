"""Writing the localize step's results: :func:`write_localization` of a
:class:`~dmc.localization.localize.LocalizationResult` (computed by
:func:`~dmc.localization.localize.localize_benchmark`, which writes nothing).

The flat metrics go to one JSON file (``--metrics``, DVC); the table, details, per-pair /
per-clip tables and overlays to one folder, replaced as a whole. Every file is written
atomically (:mod:`dmc.atomic`).
"""

from __future__ import annotations

import json
from pathlib import Path

from dmc.atomic import atomic_dir, atomic_file
from dmc.localization.overlays import draw_panels


def write_localization(result, out_dir: str | Path, metrics_path: str | Path) -> None:
    """Write ``result``: ``metrics_path`` (flat metrics), then ``out_dir`` with ``table.csv``,
    ``table.md``, the per-pair / per-clip tables (with ground truth), ``details.json`` and
    ``overlays/*.png``."""
    with atomic_file(metrics_path) as tmp:
        tmp.write_text(json.dumps(result.flat, indent=2) + "\n")
    with atomic_dir(out_dir) as tmp:
        result.table.to_csv(tmp / "table.csv", index=False)
        (tmp / "table.md").write_text(result.markdown)
        for name, frame in result.tables.items():
            frame.to_csv(tmp / name, index=False)
        (tmp / "details.json").write_text(json.dumps(result.details, indent=2) + "\n")
        folder = tmp / "overlays"
        folder.mkdir(parents=True, exist_ok=True)
        for o in result.overlays:
            draw_panels(folder / o.name, o.panels, title=o.title)
