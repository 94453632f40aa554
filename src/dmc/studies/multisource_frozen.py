"""The configuration chosen on validation, frozen and scored once on the untouched corpora (issue 33 item 7).

Question: with the configuration that :mod:`dmc.studies.multisource_val` chose on the validation
multi-source corpus (``results/studies/multisource_val/choice.json``) frozen, where do DMC, the same
network without clustering and the baselines stand on the untouched multi-source and test corpora,
and which of issue 33's targets does it meet?

Default: params.yaml with the chosen configuration's key (written to ``params.yaml`` in the output
folder, so the study reruns from its own file). Command::

    python -m dmc.studies.multisource_frozen      # make multisource-frozen

Models: the chosen configuration's five models of the validation study
(``models/studies/multisource_val/<config>_s<seed>.pt``, trained there on the training corpus) are
taken as the frozen default's (``default_s<seed>.pt`` in :data:`MODELS`); the rows the headline
needs beside them (the network without clustering, ``train.iterations=1``, at the frozen
configuration) are trained here with the train stage's Trainer
(:func:`dmc.studies.headline.train_models`). A model whose training params differ from the frozen
params is refused (:func:`dmc.studies.headline.runs_of_dir`).

Scoring: the headline's own code (:func:`dmc.studies.headline.main` with ``--models-dir``), into this
study's folder (``headline_runs/``, ``headline_multi_runs/``, ``headline.md|csv``,
``headline_multi.md|csv``): the same rows, hierarchical intervals (seeds, then clips) and targets table
as ``results/headline_multi.md``; and ``versus_default.md|csv``: the frozen DMC minus the pipeline
default's DMC on the same untouched clips, paired by seed (:func:`versus_default`), which says whether
the validation gain held; the default's runs it compares with are copied into ``default_multi_runs/``
(:func:`snapshot_default`), so the comparison reproduces from the folder after the default changes. Nothing here is a choice: the configuration was chosen on
validation, and the untouched corpora are read once, for the scores. With the default chosen
(``choice.json`` says ``default``) the study has nothing to do: the headline is the frozen result.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import yaml

from dmc.atomic import atomic_file
from dmc.studies import headline as H
from dmc.studies import headline_multi as HM
from dmc.studies import multisource_val as MV

OUT = Path("results/studies/multisource_frozen")
#: one folder per round of the validation study's choice (round 2 keeps round 1's evidence beside it)
OUT_BY_ROUND = {1: OUT, 2: Path("results/studies/multisource_frozen_round2")}
MODELS = Path("models/studies/multisource_frozen")
QUESTION = ("With the configuration chosen on the validation multi-source corpus frozen, where do DMC, the "
            "network without clustering and the baselines stand on the untouched corpora, and which of "
            "issue 33's targets does it meet?")
COMMAND = "python -m dmc.studies.multisource_frozen"


def chosen(choice_file: Path = MV.OUT / "choice.json", round: int = 2) -> str:
    """The validation study's choice after ``round`` (1: ``round1``; 2: the final ``chosen``)."""
    c = json.loads(Path(choice_file).read_text())
    return c["round1"]["chosen"] if round == 1 and "round1" in c else c["chosen"]


def frozen_params(params: dict, config: str) -> dict:
    """params.yaml with the chosen configuration's keys set (each ``+``-joined part as
    :func:`dmc.studies.headline.run_params` sets it), the headline's sweeps kept; a configuration the
    validation study does not know is refused."""
    from dmc.pipeline.params import ParamsError

    study = MV.study_params(params)
    labels = dict(H.configs(study))
    if not all(part in labels for part in config.split(MV.JOIN)):
        raise ParamsError(f"choice.json: {config!r} is not a configuration of dmc.studies.multisource_val")
    p = MV.config_params(study, H.Run(config, params["seed"], "", "", ""))
    p["sweeps"] = params["sweeps"]
    return p


def model_label(config: str) -> str:
    """The configuration whose trained models a choice uses: a round-2 ``<choice>+<knob>`` (an
    inference-time knob) uses the choice's."""
    return MV.base_of(config) if MV.JOIN in config else config


def take_models(config: str, folder: Path = MODELS, source: Path = MV.MODELS, seeds=()) -> None:
    """Copy the validation study's models of ``config`` (:func:`model_label`) as the frozen default's
    ``default_s<seed>.pt``."""
    folder.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        dst = folder / f"{H.DEFAULT}_s{seed}.pt"
        if dst.is_file():
            continue
        src = source / f"{model_label(config)}_s{seed}.pt"
        if not src.is_file():
            raise FileNotFoundError(f"{src}: the validation study's model of {config} seed {seed} is missing "
                                    "(make multisource-val trains it)")
        shutil.copyfile(src, dst)


def header(config: str, made_at: str, date: str | None = None, round: int = 1) -> str:
    from dmc.pipeline.provenance import header as study_header

    command = f"{COMMAND} --round {round}"   # (round 1's folder was made before rounds, by the bare command)
    chooser = "choose" if round == 1 else "choose_round2"
    return "\n".join([study_header(OUT_BY_ROUND[round].name, QUESTION, made_at, command, date), "",
                      f"Frozen configuration (round {round}): `{config}` (chosen by "
                      f"`dmc.studies.multisource_val.{chooser}` on the "
                      "validation multi-source corpus; [choice.json](../multisource_val/choice.json)), on top of "
                      "params.yaml at the commit above: [params.yaml](params.yaml). Its models: the validation "
                      "study's five; the network without clustering at the same configuration trained here. "
                      "Scores: [headline_multi.md](headline_multi.md) (multi-source corpus, with issue 33's "
                      "targets), [headline.md](headline.md) (the untouched test corpus) and "
                      "[versus_default.md](versus_default.md) (the frozen DMC minus the pipeline default's on the same "
                      "multi-source clips)."]) + "\n"


def versus_default(frozen: dict, default: dict, replicates: int = HM.B.REPLICATES) -> list[dict]:
    """The frozen configuration's DMC minus the pipeline default's DMC on the untouched multi-source corpus,
    per class-aware / stem metric, paired by seed and clip (the same clips; seed s against seed s), with
    hierarchical intervals: does the validation gain hold on data no choice read? ``frozen`` and ``default``
    are :func:`dmc.studies.headline_multi.load_runs` of the two studies' multi-source runs."""
    seeds = sorted(s for c, s in frozen if c == H.DEFAULT and (H.DEFAULT, s) in default)
    return [{"metric": m, "seeds": " ".join(map(str, seeds)),
             **HM.interval([HM.ca_sums(frozen[(H.DEFAULT, s)], "dmc", m) for s in seeds],
                           [HM.ca_sums(default[(H.DEFAULT, s)], "dmc", m) for s in seeds], replicates)}
            for m in HM.CA_METRICS]


def versus_markdown(rows: list[dict], config: str, default_dir: Path = HM.MULTI_RUNS_DIR,
                    other: str = "the pipeline's default", column: str = "frozen − default") -> str:
    lines = [f"DMC at `{config}` minus DMC at {other}, on the untouched multi-source corpus "
             f"(its runs as scored then: `{Path(default_dir).as_posix()}/`), paired by seed and clip [hierarchical 95 % "
             "interval] (seeds above / below). Read after the choice; it chooses nothing.", "",
             f"| metric | {column} |", "|---|---|"]
    lines += [f"| {HM.METRIC_NAMES[r['metric']]} | {HM._ci(r, signed=True)} |" for r in rows]
    return "\n".join(lines) + "\n"


RUN_FILES = ("ca_clips.csv", "pairs.csv", "clips.csv", "details.json")   # what headline_multi.load_runs reads


def snapshot_default(src: Path = HM.MULTI_RUNS_DIR, dst: Path = OUT / "default_multi_runs") -> Path:
    """Copy the pipeline default's scored multi-source runs (``default_s<seed>``, the files
    :func:`dmc.studies.headline_multi.load_runs` reads) into the study folder, so that the comparison with
    them reproduces from the folder's own files after the pipeline's default is scored again."""
    for run in sorted(Path(src).glob(f"{H.DEFAULT}_s*")):
        if not (run / "details.json").is_file():
            continue
        (dst / run.name).mkdir(parents=True, exist_ok=True)
        for name in RUN_FILES:
            with atomic_file(dst / run.name / name) as tmp:
                Path(tmp).write_bytes((run / name).read_bytes())
    return dst


def write_versus(out: Path, config: str, default_dir: Path, name: str = "versus_default", **words) -> None:
    """``<name>.md|csv``: the frozen DMC (``out/headline_multi_runs``) minus the runs in ``default_dir`` (the
    study folder's snapshot of the default's, or the previous round's); ``words``: :func:`versus_markdown`'s."""
    rows = versus_default(HM.load_runs(out / "headline_multi_runs"), HM.load_runs(default_dir))
    with atomic_file(out / f"{name}.csv") as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False, float_format="%.4f")
    with atomic_file(out / f"{name}.md") as tmp:
        Path(tmp).write_text(versus_markdown(rows, config, default_dir, **words))


def stamp(out: Path, first_line: str) -> None:
    """Open every Markdown file of the study folder with the study's header line (the headline's own
    tables are written without one); a header already there is replaced."""
    for md in sorted(Path(out).glob("*.md")):
        if md.name == "README.md":
            continue
        lines = md.read_text().splitlines()
        if lines and lines[0].startswith("> **Study `multisource_frozen"):
            lines = lines[2:] if len(lines) > 1 and not lines[1] else lines[1:]
        with atomic_file(md) as tmp:
            Path(tmp).write_text("\n".join([first_line, "", *lines]) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dmc.studies.multisource_frozen", description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--round", type=int, choices=sorted(OUT_BY_ROUND), default=max(OUT_BY_ROUND),
                    help="the validation study's choice after this round (choice.json)")
    ap.add_argument("--out", help="default: the round's folder (OUT_BY_ROUND)")
    ap.add_argument("--models-dir", default=str(MODELS),
                    help="the frozen models (a round-2 knob is inference-time: round 1's models serve)")
    args = ap.parse_args(argv)
    from dmc.pipeline.params import load_params
    from dmc.pipeline.provenance import git_commit

    params = load_params(args.params, sweeps=True)
    config = chosen(round=args.round)
    if config == H.DEFAULT:
        print("multisource_frozen: the validation study chose the default; its frozen scores are the headline's "
              "(results/headline_multi.md)")
        return 0
    out, models = Path(args.out or OUT_BY_ROUND[args.round]), Path(args.models_dir)
    out.mkdir(parents=True, exist_ok=True)
    p = frozen_params(params, config)
    pfile = out / "params.yaml"
    with atomic_file(pfile) as tmp:
        Path(tmp).write_text(yaml.safe_dump(p, sort_keys=False))
    take_models(config, models, seeds=params["sweeps"]["headline_seeds"])
    rc = H.main(["--params", str(pfile), "--models-dir", str(models), "--train-models",
                 "--runs-dir", str(out / "headline_runs"), "--multi-runs-dir", str(out / "headline_multi_runs"),
                 "--out-dir", str(out)])
    write_versus(out, config, snapshot_default(HM.MULTI_RUNS_DIR, out / "default_multi_runs"))
    if args.round > 1 and (OUT_BY_ROUND[args.round - 1] / "headline_multi_runs").is_dir():
        # the round's own gain on the untouched clips: this round's DMC minus the previous round's
        write_versus(out, config, OUT_BY_ROUND[args.round - 1] / "headline_multi_runs", "versus_previous",
                     other=f"`{chosen(round=args.round - 1)}` (round {args.round - 1})",
                     column=f"round {args.round} − round {args.round - 1}")
    text = header(config, git_commit(), round=args.round)
    with atomic_file(out / "README.md") as tmp:
        Path(tmp).write_text(text)
    stamp(out, text.splitlines()[0])
    return rc


def cli(argv=None) -> int:
    """:func:`main`, with a missing model or an unknown choice as one line naming it (exit 2)."""
    from dmc.errors import DmcError

    try:
        return main(argv)
    except (DmcError, FileNotFoundError) as exc:
        print(f"multisource_frozen: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(cli())
