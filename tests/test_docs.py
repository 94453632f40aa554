"""The documentation: the README is a front page, every relative link of the README, the
CHANGELOG and the docs pages resolves to a file of the repository, and the mkdocs site builds
with --strict (warnings, e.g. a missing anchor or a docstring reference, fail it)."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def pages() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]


def broken_links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text())
    bad = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0]
        if path and not (page.parent / path).exists():
            bad.append(target)
    return bad


def anchors(page: Path) -> set[str]:
    """The anchors mkdocs gives a page: its headings' slugs (the toc extension's) and <a id=...>."""
    from markdown.extensions.toc import slugify

    text = FENCE.sub("", page.read_text())
    found = {slugify(h.strip(), "-") for h in re.findall(r"^#+ (.*)$", text, re.M)}
    return found | set(re.findall(r'<a (?:id|name)="([^"]+)"', text))


def broken_anchors(page: Path) -> list[str]:
    """Links from a page outside the site (README, CHANGELOG) into a docs page's section."""
    text = FENCE.sub("", page.read_text())
    bad = []
    for target in LINK.findall(text):
        path, _, anchor = target.partition("#")
        if anchor and path.endswith(".md") and not re.match(r"^[a-z]+:", path):
            doc = page.parent / path
            if doc.exists() and anchor not in anchors(doc):
                bad.append(target)
    return bad


def test_readme_is_a_front_page():
    assert len((ROOT / "README.md").read_text().splitlines()) < 200


def test_every_relative_link_resolves_to_a_file():
    bad = {str(p.relative_to(ROOT)): b for p in pages() if (b := broken_links(p))}
    assert not bad, bad


def test_links_into_the_docs_name_existing_sections():
    bad = {p.name: b for p in (ROOT / "README.md", ROOT / "CHANGELOG.md") if (b := broken_anchors(p))}
    assert not bad, bad


def test_the_link_check_sees_a_broken_link(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("[ok](p.md) [anchor](#x) [web](https://example.org) [gone](nothing/here.md#a)\n"
                    "```\n[in code](not/checked.md)\n```\n")
    assert broken_links(page) == ["nothing/here.md#a"]
    (tmp_path / "doc.md").write_text("# A title\n\n## Some section: 8 × 8\n")
    page.write_text("[ok](doc.md#a-title) [ok2](doc.md#some-section-8-8) [bad](doc.md#gone)\n")
    assert broken_anchors(page) == ["doc.md#gone"]


def test_mkdocs_builds_strict(tmp_path):
    # no -q: mkdocs counts the warnings that --strict turns into a failure only at the default log level
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp_path / "site" / "api" / "hear" / "index.html").exists()


def test_every_include_region_matches_its_committed_file():
    """A number of the docs comes from a committed file (dmc.docs_includes): `dmc docs --write` after a new result."""
    from dmc.docs_includes import stale_pages

    assert stale_pages(ROOT) == [], "stale include regions: run `dmc docs --write`"


def test_no_measured_number_is_typed_by_hand():
    """README.md and every docs page: a measurement is included from its file (docs/contributing.md)."""
    from dmc.docs_includes import pages as doc_pages
    from dmc.docs_numbers import pages_with_numbers

    assert pages_with_numbers(doc_pages(ROOT), ROOT) == {}


def test_the_readme_headline_table_is_generated_from_headline_md():
    from dmc.studies.headline_summary import table

    assert (ROOT / "results" / "headline_summary.md").read_text() == table((ROOT / "results" / "headline.md").read_text())


def test_docs_index_repeats_the_readme_front_page():
    """docs/index.md is the site's copy of the README's introduction and "Two commands" (link targets aside)."""
    def front(page):
        text = page.read_text()
        text = text[:text.index("\n## ", text.index("## Two commands"))]
        return re.sub(r"\]\([^)]*\)", "]()", re.sub(r"\n{2,}", "\n\n", text)).strip()

    assert front(ROOT / "docs" / "index.md") == front(ROOT / "README.md")
