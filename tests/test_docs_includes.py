"""The include regions of the docs (dmc.docs_includes) and the typed-number rule
(dmc.docs_numbers), against small pages and files written by hand."""

import json

import pytest

from dmc.docs_includes import DocsIncludeError, render, section, stale_pages, value_text, write_pages
from dmc.docs_numbers import measured_numbers
from dmc.studies.headline_summary import table as summary_table


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "m.json").write_text(json.dumps({"esc50.dmc.acc_mean": 0.91333, "nested": {"a": [1.5, 2.25]}}))
    (tmp_path / "r" / "t.csv").write_text("config,metric,mean,std\ndefault,acc,0.5,0.125\nk5,acc,0.25,0.0625\n")
    (tmp_path / "r" / "t.md").write_text("# Title\n\nintro\n\n| a | b |\n|---|---|\n| x | 1 |\n\n## Part two\n\n"
                                         "| row | acc |\n|---|---|\n| DMC | 0.9 |\n| base | 0.7 |\n\n### Sub\n\nsub text\n\n"
                                         "## Part three\n\nlast\n")
    (tmp_path / "p.yaml").write_text("localize:\n  ciou_threshold: 0.3\n")
    return tmp_path


def test_values_of_json_csv_yaml_and_markdown_tables(repo):
    assert value_text(repo, "r/m.json esc50.dmc.acc_mean fmt=.3f", "x") == "0.913"
    assert value_text(repo, "r/m.json nested.a.1", "x") == "2.25"             # a dotted path into lists
    assert value_text(repo, "r/t.csv config=k5 mean fmt=.2f", "x") == "0.25"
    assert value_text(repo, 'r/t.csv config=default "fmt={mean:.3f} ± {std:.3f}"', "x") == "0.500 ± 0.125"
    assert value_text(repo, "p.yaml localize.ciou_threshold", "x") == "0.3"
    assert value_text(repo, "r/t.md table=2 row=base acc fmt=+.2f", "x") == "+0.70"
    (repo / "r" / "h.md").write_text("| DMC minus | pointing |\n|---|---|\n| base | **+0.191 [+0.157, +0.226]** (5/0) |\n")
    assert value_text(repo, "r/h.md 'DMC minus=base' pointing words=1-3", "x") == "+0.191 [+0.157, +0.226]"
    assert value_text(repo, "r/h.md 'DMC minus=base' pointing words=4", "x") == "(5/0)"


def test_a_wrong_key_row_or_file_names_the_place(repo):
    with pytest.raises(DocsIncludeError, match=r"page.md:3: r/m.json has no key 'esc50.dmc.acc_std'"):
        value_text(repo, "r/m.json esc50.dmc.acc_std", "page.md:3")
    with pytest.raises(DocsIncludeError, match=r"2 rows of r/t.csv match"):
        value_text(repo, "r/t.csv metric=acc mean", "x")
    with pytest.raises(DocsIncludeError, match=r"r/none.json is not a file"):
        value_text(repo, "r/none.json k", "x")
    with pytest.raises(DocsIncludeError, match=r"has 2 table\(s\), not a table 3"):
        render("<!-- include: r/t.md#table=3 -->\n<!-- end include -->\n", repo)


def test_sections_end_at_a_heading_of_their_level():
    text = "# T\n## A\na\n### A1\na1\n## B\nb\n"
    assert section(text, "a") == "a\n### A1\na1"
    assert section(text, "a1") == "a1"
    assert section(text, "c") is None


def test_render_fills_blocks_and_values_and_keeps_indentation(repo):
    page = ("Accuracy <!-- value: r/m.json esc50.dmc.acc_mean fmt=.3f -->0.5<!-- end --> here.\n\n"
            "* item\n\n  <!-- include: r/t.md#table=2 -->\n  stale\n  <!-- end include -->\n\n"
            "<!-- include: r/t.md#part-three -->\n<!-- end include -->\n")
    assert render(page, repo) == (
        "Accuracy <!-- value: r/m.json esc50.dmc.acc_mean fmt=.3f -->0.913<!-- end --> here.\n\n"
        "* item\n\n  <!-- include: r/t.md#table=2 -->\n\n  | row | acc |\n  |---|---|\n  | DMC | 0.9 |\n  | base | 0.7 |\n\n"
        "  <!-- end include -->\n\n"
        "<!-- include: r/t.md#part-three -->\n\nlast\n\n<!-- end include -->\n")


def test_a_stale_page_is_found_and_rewritten(repo):
    (repo / "docs").mkdir()
    page = repo / "docs" / "p.md"
    page.write_text("x <!-- value: r/t.csv config=default mean -->0.5<!-- end -->\n")
    (repo / "README.md").write_text("no regions\n")
    assert stale_pages(repo) == []
    (repo / "r" / "t.csv").write_text("config,metric,mean,std\ndefault,acc,0.75,0.1\n")   # a new result
    assert stale_pages(repo) == ["docs/p.md"]
    assert write_pages(repo) == ["docs/p.md"]
    assert page.read_text() == "x <!-- value: r/t.csv config=default mean -->0.75<!-- end -->\n"
    assert stale_pages(repo) == []


def test_measured_numbers_are_found_outside_regions_and_code():
    text = ("Accuracy 0.913 and +0.018, 23.8 % MFU, 5.3× faster, took 8 minutes, 310 ms, 1.8 GB.\n"
            "An 8 × 8 map, 192 videos, seed 0, torch 2.11.0, 2026-12-04, eq. 1-12, commit 8fd863d.\n"
            "`train.lr=0.001` and <!-- value: f.json k -->0.5<!-- end --> and [f](a/0.5.md) <!-- 0.7 -->\n"
            "```\n0.25 s\n```\n"
            "<!-- include: f.md -->\n0.9\n<!-- end include -->\n"
            "Python ≥ 3.10; 95 % intervals.\n")
    assert measured_numbers(text) == [(1, "0.913"), (1, "+0.018"), (1, "23.8 %"), (1, "5.3×"), (1, "8 minutes"),
                                      (1, "310 ms"), (1, "1.8 GB")]


def test_the_readme_table_copies_the_cells_of_headline_md():
    def section(title, rows, diff):
        return (f"## {title}\n\n| row | seeds | pointing | cIoU@0.5 | AUC | accuracy |\n|---|---|---|---|---|---|\n"
                + "".join(f"| {r} | 5 | 0.{i}00 [0.1, 0.2] | 0.{i}11 [0.1, 0.2] | 0.{i}22 [0.1, 0.2] | 0.{i}33 [0.1, 0.2] |\n"
                          for i, r in enumerate(rows, 1))
                + "\n| DMC minus | seeds | pointing | cIoU@0.5 | AUC | accuracy |\n|---|---|---|---|---|---|\n"
                + f"| no clustering (train.iterations=1) | 5 | {diff} (3/2) | -0.001 [-0.1, +0.1] (2/3) | x | **+0.2 [+0.1, +0.3]** (5/0) |\n\n")

    rows = ["DMC", "no clustering (train.iterations=1)", "random init, BatchNorm recalibrated",
            "audio-blind: trained visual map, uniform cluster weights", "centre prior",
            "control: mismatched audio (frame of A, audio of B)", "control: shuffled audio",
            "best constant count (the test corpus's own majority)"]
    md = section("Loc", rows, "+0.018 [-0.005, +0.042]") + section("Count", rows, "y") + section("Esc", rows, "z")
    lines = summary_table(md).splitlines()
    assert lines[0] == "| row | pointing | cIoU@0.5 | AUC | counting | ESC-like (30 classes) |"
    assert lines[2] == "| **DMC** | 0.100 [0.1, 0.2] | 0.111 [0.1, 0.2] | 0.122 [0.1, 0.2] | 0.133 [0.1, 0.2] | 0.133 [0.1, 0.2] |"
    assert lines[4] == ("| DMC − no clustering | +0.018 [−0.005, +0.042] | −0.001 [−0.1, +0.1] | x | "
                        "**+0.2 [+0.1, +0.3]** | **+0.2 [+0.1, +0.3]** |")
    assert lines[6] == "| audio-blind: trained visual map, uniform cluster weights | 0.400 [0.1, 0.2] | 0.411 [0.1, 0.2] | 0.422 [0.1, 0.2] |  |  |"
    assert lines[8] == "| centre prior / best constant count | 0.500 [0.1, 0.2] | 0.511 [0.1, 0.2] | 0.522 [0.1, 0.2] | 0.833 [0.1, 0.2] |  |"


def test_regions_inside_fenced_code_are_examples(repo):
    page = "```markdown\n<!-- value: r/m.json esc50.dmc.acc_mean --><!-- end -->\n```\nx <!-- value: r/m.json nested.a.0 --><!-- end -->\n"
    assert render(page, repo) == page.replace("0 --><!-- end -->\n", "0 -->1.5<!-- end -->\n")
    with pytest.raises(DocsIncludeError, match=r"^p.md:4: "):   # line numbers count the fence's lines
        render("```\n\n```\n<!-- value: r/m.json gone --><!-- end -->\n", repo, "p.md")


def test_csv_columns_show_mean_and_std(repo):
    (repo / "r" / "s.csv").write_text("config,seeds,acc.mean,acc.std,k,k_std,tau\ndefault,0 1,0.51234,0.0123,3,,20.0\n")
    assert render("<!-- include: r/s.csv#columns=config,acc,k,tau -->\n<!-- end include -->\n", repo) == (
        "<!-- include: r/s.csv#columns=config,acc,k,tau -->\n\n| config | acc | k | tau |\n|---|---|---|---|\n"
        "| default | 0.512 ± 0.012 | 3 | 20.0 |\n\n<!-- end include -->\n")


def test_dmc_docs_checks_then_writes(repo, capsys):
    from pathlib import Path

    from dmc.pipeline.cli import main

    params = str(Path(__file__).resolve().parents[1] / "params.yaml")
    (repo / "README.md").write_text("Accuracy <!-- value: r/m.json esc50.dmc.acc_mean fmt=.2f -->0.5<!-- end -->, pointing 0.97.\n")
    assert main(["--params", params, "docs", "--root", str(repo)]) == 1
    err = capsys.readouterr().err
    assert "README.md:1: '0.97' typed by hand" in err and "1 page(s) with stale regions (README.md" in err
    (repo / "README.md").write_text("Accuracy <!-- value: r/m.json esc50.dmc.acc_mean fmt=.2f -->0.5<!-- end -->.\n")
    assert main(["--params", params, "docs", "--root", str(repo), "--write"]) == 0
    assert (repo / "README.md").read_text() == "Accuracy <!-- value: r/m.json esc50.dmc.acc_mean fmt=.2f -->0.91<!-- end -->.\n"


def test_a_value_region_may_not_open_a_line(repo):
    """Python-Markdown takes a line opening with an HTML comment for an HTML block, which ends the
    paragraph (seen in the built site): such a region is refused, naming its line."""
    with pytest.raises(DocsIncludeError, match=r"^p.md:2: a value region must not open a line"):
        render("Accuracy\n  <!-- value: r/m.json esc50.dmc.acc_mean --><!-- end --> here.\n", repo, "p.md")


def test_a_new_block_before_a_value_does_not_make_it_open_a_line(repo):
    """Found filling a new include above a value region: the check looked at the page before its
    blocks were filled, at positions of the page after, and refused a value that opened no line."""
    page = ("<!-- include: r/t.md -->\n<!-- end include -->\n\n"
            "Accuracy is <!-- value: r/m.json esc50.dmc.acc_mean fmt=.3f -->0.5<!-- end --> here.\n")
    assert "Accuracy is <!-- value: r/m.json esc50.dmc.acc_mean fmt=.3f -->0.913<!-- end --> here." in render(page, repo)
