"""The README's headline table: a compact view of ``results/headline.md``.

One row per method and one column per headline metric (the untouched test corpus's pointing,
cIoU@0.5 and AUC, counting accuracy, ESC-like accuracy), each cell the mean over seeds with its
hierarchical 95 % interval (seeds, then clips) as :mod:`dmc.studies.headline` wrote them; the row "DMC − no
clustering" holds the paired differences, bold when the interval excludes 0. Nothing is
computed here: every cell is copied from a table of headline.md (so both show the same
rounding), and the README (which includes
``results/headline_summary.md``, :mod:`dmc.docs_includes`) shows the committed numbers.

``python -m dmc.studies.headline_summary [--headline results/headline.md] [--out results/headline_summary.md]``;
:func:`dmc.studies.headline.write` writes it beside ``headline.md`` too.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

COLUMNS = (("loc", "pointing", "pointing"), ("loc", "cIoU@0.5", "cIoU@0.5"), ("loc", "AUC", "AUC"),
           ("count", "accuracy", "counting"), ("esc", "accuracy", "ESC-like (30 classes)"))
KINDS = ("loc", "count", "esc")   # the order of the sections of headline.md: each a levels and a differences table
NO_CLUSTERING = "no clustering (train.iterations=1)"
# (label, {kind: row of headline.md}): one row of the summary; a kind absent gives an empty cell
ROWS = (("**DMC**", {k: "DMC" for k in KINDS}),
        ("no clustering (`train.iterations=1`)", {k: NO_CLUSTERING for k in KINDS}),
        (None, {}),  # DMC − no clustering: the differences
        ("random init, BatchNorm recalibrated", {k: "random init, BatchNorm recalibrated" for k in KINDS}),
        ("audio-blind: trained visual map, uniform cluster weights",
         {"loc": "audio-blind: trained visual map, uniform cluster weights"}),
        ("control: mismatched audio (frame of A, audio of B) / shuffled audio",
         {"loc": "control: mismatched audio (frame of A, audio of B)", "count": "control: shuffled audio"}),
        ("centre prior / best constant count",
         {"loc": "centre prior", "count": "best constant count (the test corpus's own majority)"}))


def _cell(text: str) -> str:
    """A cell of headline.md without its seed counts "(3/2)", with true minus signs."""
    return re.sub(r"\s*\(\d+/\d+\)$", "", text.strip()).replace("-", "−")


def table(headline_md: str) -> str:
    """The Markdown table of the README from the tables of headline.md (cells copied, not recomputed)."""
    from dmc.docs_includes import md_tables, table_rows

    tables = [table_rows(t) for t in md_tables(headline_md)]
    levels = {k: {r["row"]: r for r in tables[2 * i]} for i, k in enumerate(KINDS)}
    diffs = {k: {r["DMC minus"]: r for r in tables[2 * i + 1]} for i, k in enumerate(KINDS)}
    out = ["| row | " + " | ".join(name for _, _, name in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for label, cells in ROWS:
        if label is None:
            values = [_cell(diffs[kind][NO_CLUSTERING][metric]) for kind, metric, _ in COLUMNS]
            out.append("| DMC − no clustering | " + " | ".join(values) + " |")
            continue
        values = [_cell(levels[kind][cells[kind]][metric]) if kind in cells else "" for kind, metric, _ in COLUMNS]
        out.append(f"| {label} | " + " | ".join(values) + " |")
    return "\n".join(out) + "\n"


def write(headline_md: Path, out: Path) -> None:
    from dmc.atomic import atomic_file

    text = table(headline_md.read_text())
    with atomic_file(out) as tmp:
        tmp.write_text(text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dmc.studies.headline_summary", description=__doc__.splitlines()[0])
    ap.add_argument("--headline", default="results/headline.md")
    ap.add_argument("--out", default="results/headline_summary.md")
    args = ap.parse_args(argv)
    write(Path(args.headline), Path(args.out))
    print(f"headline_summary: {args.headline} -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
