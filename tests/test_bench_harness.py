"""`make bench` (benchmarks/run.py): every benchmark writes its file with the required fields; the
docs' benchmark figures come from committed files; the 16-core model and the stage table by hand."""

import importlib.util
import json
import re
import subprocess
import sys

import pytest

from conftest import ROOT

BENCH = ROOT / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(BENCH))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(BENCH))
    return mod


def test_host_slug_is_the_cpu_model_and_core_count():
    run = _load("run")
    assert run.host_slug("Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz", 2) == "intel-xeon-platinum-8481c-2c"
    assert run.host_slug("AMD EPYC 7B13 64-Core Processor", 16) == "amd-epyc-7b13-16c"
    assert run.host_slug("", 4) == "unknown-4c"


def test_the_16_core_model_by_hand():
    decode = _load("decode")
    startup = {"decode_process_s": 2.0, "pool_start_s": 0.1, "pool_workers": 2}     # 0.05 s per worker
    m = decode.model_16_cores(per_clip_s=0.1, startup=startup, efficiency=1.0, clips=160, shards=4)
    # one core: 4 processes x 2 s + 160 clips x 0.1 s = 24 s; 16 cores: 4 jobs of 4 workers in one wave,
    # 2 s + 4 x 0.05 s + 16 s / 16 = 3.2 s
    assert (m["workers_per_job"], m["waves"]) == (4, 1)
    assert m["one_worker_s"] == 24.0 and m["pool_s"] == 3.2 and m["speedup"] == 7.5
    # one process for every shard: 2 s + 4 shards x 16 x 0.05 s + 1 s = 6.2 s
    assert m["pool_one_process_s"] == 6.2 and m["speedup_one_process"] == round(24 / 6.2, 2)
    half = decode.model_16_cores(per_clip_s=0.1, startup=startup, efficiency=0.5, clips=160, shards=4)
    assert half["pool_s"] == 4.2                        # the clips' part doubles at half the efficiency
    # 2 cores, 4 shards: single-worker jobs, two at once, two waves: 2 x 2 s + 16 s / 2 = 12 s
    two = decode.model_16_cores(per_clip_s=0.1, startup=startup, efficiency=1.0, clips=160, shards=4, cores=2)
    assert (two["workers_per_job"], two["waves"], two["pool_s"]) == (1, 2, 12.0)


def test_decode_threads_split_the_workers_over_the_shard_jobs():
    from dmc.cores import decode_threads

    p = {"compute": {"decode_workers": 16}}
    assert decode_threads(p, 16, 4) == 4 and decode_threads(p, 2, 4) == 1 and decode_threads(p, 6, 4) == 2
    assert decode_threads(p, None, 1) == 16 and decode_threads(p, 8, 1) == 8


def test_the_stage_table_by_hand():
    demo = _load("demo_stages")
    md = demo.table([{"stage": "synth", "seconds": 30.0}, {"stage": "decode", "seconds": 10.0}], install_s=None)
    assert md.splitlines()[2:] == ["| synth | 30.0 | 75 % |", "| decode | 10.0 | 25 % |", "| total | 40.0 | 100 % |"]
    with_install = demo.table([{"stage": "synth", "seconds": 30.0}], install_s=10.0)
    assert "| install (make install) | 10.0 | 25 % |" in with_install
    assert demo.parse_set(["synth.size=tiny", "evaluate.C_grid=[0.1, 1.0]"]) == \
        {"synth.size": "tiny", "evaluate.C_grid": [0.1, 1.0]}


# -- the docs' figures have committed files behind them ---------------------------------------------
REGION = re.compile(r"<!-- (?:include|value): (\S+?)(?:#\S*)?(?: [^>]*)? -->")


def _cited_bench_files():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return {(page.relative_to(ROOT).as_posix(), rel) for page in pages for rel in REGION.findall(page.read_text())
            if rel.startswith("benchmarks/results/")}


def test_every_benchmark_figure_the_docs_cite_has_a_committed_file_of_a_full_run():
    run = _load("run")
    cited = _cited_bench_files()
    assert ("docs/bench-results.md", "benchmarks/results/summary.md") in cited
    for page, rel in cited:
        path = ROOT / rel
        assert path.is_file(), f"{page} cites {rel}, which is not a file of the repository"
        tracked = subprocess.run(["git", "ls-files", "--error-unmatch", rel], cwd=ROOT, capture_output=True)
        assert tracked.returncode == 0 or not (ROOT / ".git").exists(), f"{page} cites {rel}, which git does not track"
        if path.suffix == ".json" and path.parent.name != "results":      # a make bench file (gpu.json apart)
            rec = json.loads(path.read_text())
            missing = [k for k in run.REQUIRED if k not in rec]
            assert not missing, f"{rel} lacks {missing}"
            assert not rec["quick"], f"{page} cites {rel}, a --quick run (its figures mean nothing)"


def test_the_summary_is_the_one_rendered_from_the_committed_files():
    summary = _load("summary")
    assert summary.SUMMARY.read_text() == summary.render(), "run python benchmarks/summary.py"
    # and every full-run file of benchmarks/results/<host>/ is in it, named
    for host, named in summary.result_files().items():
        for path in named.values():
            assert path.relative_to(ROOT).as_posix() in summary.SUMMARY.read_text()


# -- the harness ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_make_bench_quick_writes_every_file_with_the_required_fields(tmp_path):
    """Every benchmark at --quick sizes (a few minutes on 2 cores): the files, their fields, and
    the summary rendered from them."""
    run, summary = _load("run"), _load("summary")
    out = tmp_path / "results" / "somehost"
    proc = subprocess.run([sys.executable, str(BENCH / "run.py"), "--quick", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.json" for n in run.BENCHMARKS)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    for name in run.BENCHMARKS:
        rec = json.loads((out / f"{name}.json").read_text())
        assert [k for k in run.REQUIRED if k not in rec] == [], name
        assert rec["name"] == name and rec["quick"] is True and rec["commit"] == (head or None)
        assert rec["cores"] >= 1 and len(rec["load_average_start"]) == 3 and len(rec["load_average_end"]) == 3
        assert rec["host"] == run.host_slug() and rec["figures"]
    fig = json.loads((out / "decode.json").read_text())["figures"]
    assert set(fig["pipelines"]) == {"pool", "ours", "naive", "floor", "floor_portable"} and fig["workers"] == 2
    assert fig["startup"]["decode_process_s"] > fig["startup"]["interpreter_s"] > 0
    assert fig["model_16_cores"]["embedded_default"]["speedup"] > 0
    assert {"esc50", "dcase"} == set(json.loads((out / "evaluate.json").read_text())["figures"])
    # the summary renders every file (marked full runs here, to be picked up)
    for path in out.iterdir():
        rec = json.loads(path.read_text())
        path.write_text(json.dumps(dict(rec, quick=False)))
    text = summary.render(tmp_path / "results")
    for name in run.BENCHMARKS:
        assert summary.TITLES[name] in text and f"somehost/{name}.json" in text
