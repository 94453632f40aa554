"""The published DSOL figures: the docs table is the committed file's content, row for row."""

from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def test_docs_table_matches_published_file():
    pub = pd.read_csv(ROOT / "results/published/dsol.csv", dtype=str, keep_default_na=False)
    assert list(pub.columns) == ["method", "dataset", "class_aware_ciou30", "auc", "nsa", "source"]
    page = (ROOT / "docs/multisource.md").read_text()
    table = page.split("## Published, other data, not reproduced", 1)[1]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    expect = [f"| {r.method} | {r.dataset} | {r.class_aware_ciou30} | {r.auc} | {r.nsa} |".replace("|  |", "| |")
              for r in pub.itertuples()]
    assert [r.replace("|  |", "| |") for r in rows] == expect     # the include region of the file
