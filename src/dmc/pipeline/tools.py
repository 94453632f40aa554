"""The ``dmc`` subcommands that are not pipeline steps: ``check-params``, ``fetch`` (download a
published evaluation set), ``dvc-yaml`` (generate / check dvc.yaml), ``docs`` (fill / check the
docs' include regions), ``sweep`` (seeds and ablations as DVC experiments) and ``compare`` (a change
against the default under N seeds)."""

from __future__ import annotations

import sys
from pathlib import Path

from dmc.names import ANNOTATION_FILES, SWEEPS


def add_parsers(sub) -> None:
    c = sub.add_parser("check-params", help="validate params.yaml and exit")
    c.set_defaults(func=check_params)

    c = sub.add_parser("fetch", help="download a published evaluation set (pinned URL), unpack, convert to the "
                                     "layout params.yaml expects, verify, then move it into place; or a "
                                     "localization benchmark's public annotation file (into the --out folder)")
    c.add_argument("dataset", choices=["esc50", "dcase", *ANNOTATION_FILES])
    c.add_argument("--out", required=True, help="output folder (replaced only when verified)")
    c.add_argument("--url", action="append", help="another source (mirror, file://); dcase: give the "
                                                  "development set, then the test set")
    c.add_argument("--sha256", action="append", help="expected SHA-256 of each --url archive")
    c.add_argument("--expect-files", type=int, help="expected number of audio files (default: the release's)")
    c.set_defaults(func=fetch)

    c = sub.add_parser("dvc-yaml", help="check (default) or --write dvc.yaml, generated from src/dmc/pipeline/graph.py")
    c.add_argument("--write", action="store_true", help="regenerate the file instead of checking it")
    c.add_argument("--file", default="dvc.yaml")
    c.set_defaults(func=dvc_yaml)

    c = sub.add_parser("docs", help="check (default, or --check) or --write the include regions of README.md and "
                                    "docs/*.md from the committed result files, and find numbers typed by hand")
    c.add_argument("--write", action="store_true", help="regenerate the regions instead of checking them")
    c.add_argument("--check", action="store_true", help="check only (the default)")
    c.add_argument("--root", default=".", help="the repository (default: .)")
    c.set_defaults(func=docs)


def add_verify_parser(sub) -> None:
    c = sub.add_parser("verify", help="compare data/synth, data/decoded, data/evalsets, the test corpus "
                                      "(data/synth_test, data/decoded_test) and the results (models/dmc.pt, the "
                                      "metrics files, the training log without its timing columns) with the "
                                      "committed per-file manifests (results/manifest) and name each differing "
                                      "file and part, and the model's training mode")
    c.add_argument("--write", action="store_true", help="write the manifests of the current files instead")
    c.add_argument("--reference", help="a folder holding another run's data/ folders (e.g. another clone): "
                                       "measure each difference (largest absolute difference of arrays and samples)")
    c.add_argument("--manifest-dir", default="results/manifest")
    c.add_argument("--root", default=".", help="the repository whose data/ folders are checked (default: .)")
    c.add_argument("--only", action="append", choices=["synth", "decoded", "evalsets", "synth_test", "decoded_test",
                                                       "results"],
                   help="check (or write) only this manifest; repeatable")
    c.set_defaults(func=verify)


def verify(args, p):
    from dmc.io.manifest import RESULTS, ROOTS, VerifyError
    from dmc.io.verify_all import verify as verify_files, write_all

    root = Path(args.root)
    names = args.only or [*ROOTS, RESULTS]
    if args.write:
        # a manifest records the params its data depend on (json): the dict read from params.yaml
        for path in write_all(root, p.as_dict(), Path(args.manifest_dir), names):
            print(f"verify: wrote {path}", file=sys.stderr)
        return
    notes, diffs = verify_files(root, p.as_dict(), Path(args.manifest_dir), Path(args.reference) if args.reference else None,
                                names)
    for line in notes:
        print(f"verify: {line}")
    for d in diffs:
        print(f"verify: {d}")
    if diffs:
        kinds = sorted({d.kind for d in diffs})
        raise VerifyError(f"{len(diffs)} file(s) differ from {args.manifest_dir} ({', '.join(kinds)}); "
                          f"docs/data.md \"Checking a host\" says what each kind means; docs/reproducibility.md "
                          f"the model, metrics and log kinds")
    print(f"verify: every file matches {args.manifest_dir}")


def add_sweep_parser(sub) -> None:
    c = sub.add_parser("sweep", help="seeds / ablation grid (params sweeps) as DVC experiments: queue, run, "
                                     "aggregate dvc.api.exp_show() into <sweep>.md|csv (seeds: results/tables, "
                                     "the others: results/studies/<sweep>)")
    c.add_argument("sweep", choices=SWEEPS)
    c.add_argument("--queue", action="store_true", help="queue the runs (dvc exp run --queue -S ...)")
    c.add_argument("--run", action="store_true", help="run the queue and wait (dvc exp run --run-all)")
    c.add_argument("--aggregate", action="store_true", help="write the tables from dvc.api.exp_show()")
    c.add_argument("--jobs", type=int, default=1, help="experiments run at once (default 1)")
    c.add_argument("--rows-json", help="aggregate these saved rows of dvc.api.exp_show() (a JSON list) instead")
    c.add_argument("--out-dir", help="tables folder (default: results/tables for seeds, beside the evaluation's "
                                     "tables, which DVC tracks by file; results/studies/<sweep> for the others)")
    c.set_defaults(func=sweep)


def add_compare_parser(sub) -> None:
    c = sub.add_parser("compare", help="the committed default against a change (SET key=value ...) under N seeds as "
                                       "DVC experiments (done runs reused), paired by seed and clip: differences with "
                                       "hierarchical-bootstrap intervals and verdicts in results/compare/<slug>/")
    c.add_argument("sets", nargs="+", metavar="SET", help="key=value of params.yaml (value read as YAML); several "
                                                          "SETs make one change")
    c.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1 of each setting (default 5, at least 2)")
    c.add_argument("--jobs", type=int, help="experiments run at once (default: one per 4 cores, at least 1)")
    c.add_argument("--out-dir", help="folder of the comparisons (default results/compare)")
    c.set_defaults(func=compare)


def compare(args, p):
    from dmc.pipeline.compare import run_compare
    from dmc.pipeline.provenance import command_line

    argv = [*args.sets, "--seeds", str(args.seeds), *(["--jobs", str(args.jobs)] if args.jobs else []),
            *(["--out-dir", args.out_dir] if args.out_dir else [])]
    run_compare(p.as_dict(), args.sets, args.seeds, args.jobs, out_root=args.out_dir,
                log=lambda m: print(m, file=sys.stderr), command=command_line("dmc compare", argv))


def check_params(args, p):
    print(f"{args.params}: ok")


def fetch(args, p):
    from dmc.io.fetch import fetch

    if args.dataset not in ("esc50", "dcase"):
        from dmc.io.annotations import fetch_annotations

        if args.url and len(args.url) > 1:
            from dmc.io.fetch import FetchError

            raise FetchError(f"{args.dataset}: one file, give at most one --url")
        fetch_annotations(args.dataset, args.out, url=(args.url or [None])[0], sha256=(args.sha256 or [None])[0])
        return
    fetch(args.dataset, args.out, urls=args.url, sha256=args.sha256, expect_files=args.expect_files)


def dvc_yaml(args, p):
    from dmc.pipeline.graph import dvc_yaml

    text, path = dvc_yaml(), Path(args.file)
    if args.write:
        from dmc.atomic import atomic_file

        with atomic_file(path) as tmp:
            tmp.write_text(text)
        print(f"dvc-yaml: wrote {path}", file=sys.stderr)
    elif not path.is_file() or path.read_text() != text:
        raise SystemExit(f"dmc dvc-yaml: {path} differs from the pipeline table in src/dmc/pipeline/graph.py: "
                         "run `dmc dvc-yaml --write`")
    else:
        print(f"{path}: matches src/dmc/pipeline/graph.py", file=sys.stderr)


def docs(args, p):
    from dmc.docs_includes import DocsIncludeError, pages, stale_pages, write_pages
    from dmc.docs_numbers import pages_with_numbers

    root = Path(args.root)
    if args.write:
        for page in write_pages(root):
            print(f"docs: rewrote {page}", file=sys.stderr)
    stale = stale_pages(root)
    typed = pages_with_numbers(pages(root), root)
    for page, hits in typed.items():
        for line, token in hits:
            print(f"docs: {page}:{line}: {token!r} typed by hand (include it: docs/contributing.md)", file=sys.stderr)
    if stale or typed:
        raise DocsIncludeError(f"{len(stale)} page(s) with stale regions ({', '.join(stale) or 'none'}; run "
                               f"`dmc docs --write`), {sum(map(len, typed.values()))} number(s) typed by hand")
    print("docs: every region matches its file; no number typed by hand", file=sys.stderr)


def sweep(args, p):
    from dmc.pipeline.experiments import default_out_dir, run_sweep

    steps = (args.queue, args.run, args.aggregate)
    queue, run, aggregate = steps if any(steps) else (True, True, True)
    out_dir = args.out_dir or default_out_dir(args.sweep)
    command = " ".join(["dmc sweep", args.sweep, *(["--rows-json", args.rows_json] if args.rows_json else []),
                        *(["--out-dir", args.out_dir] if args.out_dir else [])])
    # the grids are dotted keys set on the params dict (dmc.pipeline.experiments): the dict, explicitly
    run_sweep(p.as_dict(), args.sweep, queue=queue, run=run, aggregate_to=out_dir if aggregate else None,
              jobs=args.jobs, rows_json=args.rows_json, log=lambda m: print(m, file=sys.stderr), command=command)
