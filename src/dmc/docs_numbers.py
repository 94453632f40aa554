"""Which tokens of a docs page look like a measurement typed by hand.

**The rule.** A *measured number* is a token whose form only a measurement (or a value chosen
from one) takes in these pages:

* a decimal number: ``0.913``, ``+0.018``, ``23.8`` (accuracies, scores, differences, ratios);
* a percentage: ``91 %``, ``23.8%``;
* a multiple: ``5.3×``, ``12×`` (the sign attached, no number after it: ``8 × 8``, ``2×2`` are sizes);
* a duration or a size: ``8 minutes``, ``27 s``, ``310 ms``, ``1.8 GB``, ``640 MiB``.

Plain integers are not flagged: in these pages they count things the config defines (clips,
seeds, epochs, clusters, cores), name seeds or equations, or are dates and sizes of maps. A
measured integer (a count read off a result) still belongs in an include region; the reviewer
checks those.

Outside the rule: the generated regions of :mod:`dmc.docs_includes` (their content comes from
committed files), HTML comments, code (fenced blocks and inline code: commands, parameter
assignments, file excerpts; never paste a measurement into code -- include it), and link
targets. What is left and still matches must be on :data:`ALLOWED`: a short list of
non-measurements, each with its reason. A parameter value in prose is better written in code
(``localize.ciou_threshold``) or included from params.yaml with a value region.
"""

from __future__ import annotations

import re
from pathlib import Path

from dmc.docs_includes import BLOCK, INLINE

_NUM = r"\d+(?:\.\d+)?"
_UNITS = r"(?:ms|s|min|minutes?|hours?|h|seconds?|[KMGT]i?B|kB)"
MEASURED = re.compile(
    rf"(?<![\w.]){_NUM}\s?%"                              # percentage
    rf"|(?<![\w.]){_NUM}×(?!\s?\d)"                       # multiple (2×2, 256×256: sizes)
    rf"|(?<![\w.]){_NUM}\s?{_UNITS}(?!\w)"               # duration, size
    rf"|(?<![\w.])[+\-−]?\d+\.\d+(?!\w|\.\d)")          # decimal (a version x.y.z is not one)

# (regex matched against the line, reason): a token on a line where one of these matches, and
# inside that match, is not a measurement.
ALLOWED: tuple[tuple[str, str], ...] = (
    (r"0, 0\.05, …, 1", "the fixed grid of cIoU thresholds of the AUC (Senocak et al.'s protocol), a definition"),
    (r"c?IoU ?(?:@ ?|≥ ?)0\.5", "the definition of the metric ciou50 (cIoU@0.5: Senocak et al.'s success at 0.5)"),
    (r"(?:Python ≥|glibc) \d+\.\d+", "a software version"),
    (r"decodes to \d+(?:\.\d+)? s", "the published clip length of a data set, checked by dmc fetch"),
    (r"95 % (?:[\w-]+ )?intervals?", "the confidence level of the bootstrap intervals, a definition"),
)

_FENCE = re.compile(r"^[ \t]*(```|~~~).*?^[ \t]*\1", re.S | re.M)
_CODE = re.compile(r"`(?:[^`\n]|\n(?![ \t]*\n))+`")   # a code span may wrap, not across a blank line
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_LINK_TARGET = re.compile(r"\]\([^)\s]*\)")


def _blank(m: re.Match) -> str:
    """Keep the line count (for line numbers), drop the content."""
    return "\n" * m.group(0).count("\n")


def prose(text: str) -> str:
    """The text with regions, comments, code and link targets blanked (line numbers kept)."""
    text = BLOCK.sub(_blank, text)
    text = INLINE.sub("", text)
    text = _FENCE.sub(_blank, text)
    text = _COMMENT.sub(_blank, text)
    text = _CODE.sub(lambda m: "``" + _blank(m), text)
    return _LINK_TARGET.sub("]()", text)


def measured_numbers(text: str) -> list[tuple[int, str]]:
    """(line number, token) of every measured-looking number outside regions, code and the allow-list."""
    found = []
    for lineno, line in enumerate(prose(text).splitlines(), 1):
        allowed = [m.span() for pattern, _ in ALLOWED for m in re.finditer(pattern, line)]
        for m in MEASURED.finditer(line):
            if not any(a <= m.start() and m.end() <= b for a, b in allowed):
                found.append((lineno, m.group(0).strip()))
    return found


def pages_with_numbers(pages: list[Path], root: Path) -> dict[str, list[tuple[int, str]]]:
    """Each page (relative path) with its typed measured numbers; pages without any are left out."""
    out = {}
    for page in pages:
        if hits := measured_numbers(page.read_text()):
            out[str(page.relative_to(root))] = hits
    return out
