"""Docs include regions: the numbers of README.md and docs/*.md come from committed files.

Two kinds of region, both HTML comments (invisible on GitHub and in the mkdocs site), whose
content between the markers is generated and must never be edited by hand:

* **Block include** -- a whole file, a section of it or one of its tables::

      <!-- include: results/localization/table.md#table=1 -->
      (generated)
      <!-- end include -->

  ``PATH`` alone: the file's text; ``PATH#table=N``: its N-th Markdown table (1-based);
  ``PATH.csv#columns=A,B``: a table of these CSV columns (``A`` with ``A.mean`` and ``A.std``,
  or ``A`` and ``A_std``, shows "mean ± std"; values of more decimals to 3); ``PATH#SLUG``: the body of the section whose heading slugifies to SLUG (up to the next heading
  of the same or a higher level). The markers' indentation is given to every generated line, so
  a region can sit inside a list item.

* **Inline value** -- one value of a JSON, YAML, CSV or Markdown-table file::

      <!-- value: results/metrics.json esc50.dmc.acc_mean fmt=.3f -->0.913<!-- end -->

  Arguments (shell-quoted): ``KEY`` (a JSON / YAML key, dotted keys tried whole first, then as a
  path; a CSV / table column), ``COL=VALUE`` (table files: the row whose columns have these
  values; exactly one must match), ``table=N`` (Markdown files: the N-th table, default 1) and
  ``fmt=SPEC`` (a format spec such as ``.3f`` or ``+.3f`` applied to KEY's value, or a template
  ``{KEY:SPEC} [{KEY2:SPEC}]`` over the row's fields; without it the value as written) and
  ``words=N`` or ``words=N-M`` (those words of the value as written, ``**`` dropped: a part of a
  cell such as the mean of "0.685 [0.651, 0.721]", with the rounding of the table it comes from).

:func:`render` fills every region of a text; ``dmc docs --check`` fails when a page differs from
its rendering (a stale number), ``dmc docs --write`` rewrites the pages.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shlex
from pathlib import Path

from dmc.errors import DmcError

BLOCK = re.compile(r"^(?P<indent>[ \t]*)<!-- include: (?P<spec>[^\n]*?) -->\n(?P<body>.*?)^(?P=indent)<!-- end include -->",
                   re.M | re.S)
INLINE = re.compile(r"<!-- value: (?P<spec>[^\n]*?) -->(?P<body>[^\n]*?)<!-- end -->")
FENCE = re.compile(r"^[ \t]*(```|~~~).*?^[ \t]*\1[^\n]*$", re.S | re.M)
TEMPLATE_FIELD = re.compile(r"\{([^{}:]+)(?::([^{}]*))?\}")


class DocsIncludeError(DmcError):
    """A region names a file, section, row or key that does not exist, or is malformed."""


def pages(root: Path) -> list[Path]:
    """The pages whose regions are rendered and checked: README.md and every docs/**/*.md."""
    return [p for p in [root / "README.md", *sorted((root / "docs").rglob("*.md"))] if p.is_file()]


# --- reading the sources -------------------------------------------------------------------

def _read(root: Path, rel: str, where: str) -> str:
    path = root / rel
    if not path.is_file():
        raise DocsIncludeError(f"{where}: {rel} is not a file of the repository")
    return path.read_text()


def md_tables(text: str) -> list[list[str]]:
    """The Markdown tables of a text, each as its lines (consecutive lines starting with '|')."""
    tables, current = [], []
    for line in text.splitlines():
        if line.lstrip().startswith("|"):
            current.append(line.strip())
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def _split_row(line: str) -> list[str]:
    cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [c.strip().replace("\\|", "|") for c in cells]


def table_rows(lines: list[str]) -> list[dict[str, str]]:
    """A Markdown table's rows as dicts keyed by the header cells (the separator line dropped)."""
    header = _split_row(lines[0])
    return [dict(zip(header, _split_row(line))) for line in lines[2:]]


def _slug(heading: str) -> str:
    from markdown.extensions.toc import slugify

    return slugify(heading.strip(), "-")


def section(text: str, slug: str) -> str | None:
    """The body under the heading whose slug is ``slug``, up to the next heading of its level or higher."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(#+) (.*)$", line)
        if m and _slug(m.group(2)) == slug:
            level, body = len(m.group(1)), []
            for nxt in lines[i + 1:]:
                n = re.match(r"^(#+) ", nxt)
                if n and len(n.group(1)) <= level:
                    break
                body.append(nxt)
            return "\n".join(body)
    return None


def block_text(root: Path, spec: str, where: str) -> str:
    """The generated text of ``<!-- include: spec -->``."""
    rel, _, selector = spec.strip().partition("#")
    text = _read(root, rel, where)
    if not selector:
        return text.strip("\n")
    if m := re.fullmatch(r"columns=(.+)", selector):
        return csv_table(list(csv.DictReader(io.StringIO(text))), m.group(1).split(","), f"{where}: {rel}")
    if m := re.fullmatch(r"table=(\d+)", selector):
        tables, n = md_tables(text), int(m.group(1))
        if not 1 <= n <= len(tables):
            raise DocsIncludeError(f"{where}: {rel} has {len(tables)} table(s), not a table {n}")
        return "\n".join(tables[n - 1])
    body = section(text, selector)
    if body is None:
        raise DocsIncludeError(f"{where}: {rel} has no section whose heading's slug is {selector!r}")
    return body.strip("\n")


def _cell(row: dict[str, str], column: str, where: str) -> str:
    """A CSV cell as a table shows it: a value of more than 3 decimals to 3 decimals; ``X`` with ``X.mean`` and ``X.std``
    (a sweep's table) or ``X`` and ``X_std`` (a study's) as "mean ± std"."""
    def num(text: str) -> str:
        try:
            value = float(text)
        except ValueError:
            return text
        return f"{value:.3f}" if len(text.partition(".")[2]) > 3 else text   # "20.0", "0.3": as written

    for mean, std in ((f"{column}.mean", f"{column}.std"), (column, f"{column}_std")):
        if mean in row and std in row:   # one seed: no std
            return f"{num(row[mean])} ± {num(row[std])}" if row[std] != "" else num(row[mean])
    if column in row:
        return num(row[column])
    raise DocsIncludeError(f"{where} has no column {column!r}")


def csv_table(rows: list[dict[str, str]], columns: list[str], where: str) -> str:
    """A Markdown table of these CSV columns (header: the column names)."""
    out = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    out += ["| " + " | ".join(_cell(r, c, where) for c in columns) + " |" for r in rows]
    return "\n".join(out)


def _rows(root: Path, rel: str, table: int, where: str) -> list[dict[str, str]]:
    text = _read(root, rel, where)
    if rel.endswith(".csv"):
        return list(csv.DictReader(io.StringIO(text)))
    tables = md_tables(text)
    if not 1 <= table <= len(tables):
        raise DocsIncludeError(f"{where}: {rel} has {len(tables)} table(s), not a table {table}")
    return table_rows(tables[table - 1])


def _lookup(data, key: str, where: str, rel: str):
    """``key`` in ``data``: a key as written, else a path whose steps may themselves hold dots
    (``a.b.c`` finds ``data["a"]["b.c"]``; a digit step indexes a list)."""
    def walk(node, parts):
        if not parts:
            return True, node
        for i in range(len(parts), 0, -1):
            step = ".".join(parts[:i])
            if isinstance(node, dict) and step in node:
                found, value = walk(node[step], parts[i:])
                if found:
                    return True, value
            elif isinstance(node, list) and i == 1 and step.isdigit() and int(step) < len(node):
                return walk(node[int(step)], parts[1:])
        return False, None

    found, value = walk(data, key.split("."))
    if not found:
        raise DocsIncludeError(f"{where}: {rel} has no key {key!r}")
    return value


def _number(value):
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _format(value, spec: str, where: str) -> str:
    if not spec:
        return str(value)
    try:
        return format(_number(value), spec)
    except (ValueError, TypeError) as exc:
        raise DocsIncludeError(f"{where}: cannot format {value!r} with {spec!r}: {exc}") from None


def value_text(root: Path, spec: str, where: str) -> str:
    """The generated text of ``<!-- value: spec -->``."""
    try:
        args = shlex.split(spec)
    except ValueError as exc:
        raise DocsIncludeError(f"{where}: {exc}") from None
    if not args:
        raise DocsIncludeError(f"{where}: a value region names no file")
    rel, keys, where_cols, fmt, table, words = args[0], [], {}, "", 1, ""
    for arg in args[1:]:
        name, eq, val = arg.partition("=")
        if not eq:
            keys.append(arg)
        elif name == "fmt":
            fmt = val
        elif name == "table" and rel.endswith(".md"):
            table = int(val)
        elif name == "words":
            words = val
        else:
            where_cols[name] = val
    if len(keys) > 1 or (not keys and "{" not in fmt):
        raise DocsIncludeError(f"{where}: name one key, or a fmt template, not {keys}")
    if rel.endswith((".csv", ".md")):
        rows = [r for r in _rows(root, rel, table, where) if all(r.get(c) == v for c, v in where_cols.items())]
        if len(rows) != 1:
            raise DocsIncludeError(f"{where}: {len(rows)} rows of {rel} match {where_cols} (one needed)")
        data = rows[0]
    elif rel.endswith((".yaml", ".yml")):
        import yaml

        data = yaml.safe_load(_read(root, rel, where))
    else:
        data = json.loads(_read(root, rel, where))
    if "{" in fmt:
        return TEMPLATE_FIELD.sub(lambda m: _format(_lookup(data, m.group(1), where, rel), m.group(2) or "", where),
                                  fmt)
    value = _lookup(data, keys[0], where, rel)
    if words:   # words=N or N-M of a cell as written (bold markers dropped): "0.685 [0.651, 0.721]" -> "0.685"
        first, _, last = words.partition("-")
        value = " ".join(str(value).replace("**", "").split()[int(first) - 1:int(last or first)])
    return _format(value, fmt, where)


# --- rendering --------------------------------------------------------------------------------

def render(text: str, root: Path, page: str = "<text>") -> str:
    """The text with every region's content regenerated from its source file (regions inside
    fenced code are examples, left as they are)."""
    def segment(seg: str, offset: int) -> str:
        def line(m: re.Match) -> str:
            return f"{page}:{text.count(chr(10), 0, offset + m.start()) + 1}"

        def block(m: re.Match) -> str:
            indent = m.group("indent")
            body = block_text(root, m.group("spec"), line(m))
            lines = [(indent + ln).rstrip() if ln.strip() else "" for ln in body.splitlines()]
            return (f"{indent}<!-- include: {m.group('spec')} -->\n\n" + "\n".join(lines)
                    + f"\n\n{indent}<!-- end include -->")

        def inline(m: re.Match) -> str:       # m indexes ``blocks``: the segment with its blocks filled
            if not blocks[blocks.rfind("\n", 0, m.start()) + 1:m.start()].strip():
                # Markdown takes a line opening with "<!--" for an HTML block: the paragraph would end there
                raise DocsIncludeError(f"{line(m)}: a value region must not open a line (put a word before it)")
            return f"<!-- value: {m.group('spec')} -->{value_text(root, m.group('spec'), line(m))}<!-- end -->"

        blocks = BLOCK.sub(block, seg)
        return INLINE.sub(inline, blocks)

    parts, last = [], 0
    for m in FENCE.finditer(text):
        parts += [segment(text[last:m.start()], last), m.group(0)]
        last = m.end()
    return "".join(parts + [segment(text[last:], last)])


def stale_pages(root: Path) -> list[str]:
    """The pages (relative paths) whose regions differ from their sources."""
    return [str(p.relative_to(root)) for p in pages(root)
            if render(p.read_text(), root, str(p.relative_to(root))) != p.read_text()]


def write_pages(root: Path) -> list[str]:
    """Rewrite every page whose regions are stale; return their relative paths."""
    from dmc.atomic import atomic_file

    changed = []
    for p in pages(root):
        old = p.read_text()
        new = render(old, root, str(p.relative_to(root)))
        if new != old:
            with atomic_file(p) as tmp:
                tmp.write_text(new)
                tmp.chmod(p.stat().st_mode & 0o777)
            changed.append(str(p.relative_to(root)))
    return changed
