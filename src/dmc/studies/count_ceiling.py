"""How well can a perfect object detector count the sounding objects of the synthetic corpora?

Question: issue 33 asks DMC's count to beat the visible-object count (every drawn object, sounding or
silent, mapped to a count by cut points fitted on train + val). What is the best accuracy any rule
reading only the number of drawn objects can reach, given how the generator draws sounding and silent
objects? Default: params.yaml's ``synth.max_sources`` and ``synth.max_distractors`` and the
generator's classes. Command::

    python -m dmc.studies.count_ceiling

The number is exact, from the generator's distribution
(:func:`dmc.localization.count_ceiling.drawn_count_ceiling`), not measured; the measured visible-object
count of the untouched test corpus stands beside it in the docs. Output:
``results/studies/count_ceiling/count_ceiling.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dmc.atomic import atomic_file

OUT = Path("results/studies/count_ceiling")
QUESTION = ("What is the best counting accuracy of any rule that reads only the number of drawn objects "
            "(a perfect detector), given how the generator draws sounding and silent objects?")
COMMAND = "python -m dmc.studies.count_ceiling"


def compute(synth: dict, n_classes: int) -> dict:
    from dmc.localization.count_ceiling import drawn_count_ceiling

    acc, best = drawn_count_ceiling(synth["max_sources"], synth["max_distractors"], n_classes)
    return {"max_sources": synth["max_sources"], "max_distractors": synth["max_distractors"],
            "classes": n_classes, "ceiling": round(acc, 6), "best_count": {str(v): s for v, s in best.items()}}


def markdown(r: dict, made_at: str, date: str | None = None) -> str:
    from dmc.pipeline.provenance import header

    lines = [header("count_ceiling", QUESTION, made_at, COMMAND, date), "",
             f"Sounding objects uniform on 1..{r['max_sources']}, silent ones uniform on 0..{r['max_distractors']}, "
             f"independent, each of another of {r['classes']} classes (`dmc.synth.videos.plan_clip`).", "",
             "| drawn objects | best count |", "|---|---|"]
    lines += [f"| {v} | {s} |" for v, s in r["best_count"].items()]
    lines += ["", "| quantity | value |", "|---|---|", f"| ceiling | {r['ceiling']:.3f} |"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog=f"python -m {__name__}", description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    from dmc.pipeline.params import load_params
    from dmc.pipeline.provenance import git_commit
    from dmc.synth.videos import CLASS_NAMES

    r = compute(load_params(args.params)["synth"], len(CLASS_NAMES))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_file(out / "count_ceiling.json") as tmp:
        Path(tmp).write_text(json.dumps(r, indent=2) + "\n")
    text = markdown(r, git_commit())
    with atomic_file(out / "count_ceiling.md") as tmp:
        Path(tmp).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
