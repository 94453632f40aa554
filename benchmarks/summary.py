"""benchmarks/results/summary.md: the committed `make bench` files as Markdown tables (the docs include it).

Every figure in the summary is read from a result file of ``benchmarks/results/<host>/`` (the
files ``benchmarks/run.py`` and ``benchmarks/demo_stages.py`` write, quick runs excluded), and
each section names its file, commit, date and the load average the run saw. Nothing is typed
here: with no result file the summary says the figures are not measured.

    .venv/bin/python benchmarks/summary.py [--check]     (make bench writes it after the runs)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SUMMARY = RESULTS / "summary.md"
ORDER = ("decode", "decode_memory", "train_cpu", "evaluate", "localize", "demo_stages")


def result_files(root: Path = RESULTS) -> dict[str, dict[str, Path]]:
    """host -> name -> file of every full-run result under ``root`` (quick runs and gpu.json left out)."""
    out: dict[str, dict[str, Path]] = {}
    for path in sorted(root.glob("*/*.json")):
        if path.parent.name == "quick":
            continue
        try:
            rec = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and rec.get("name") in ORDER and not rec.get("quick"):
            out.setdefault(path.parent.name, {})[rec["name"]] = path
    return out


def _f(x, spec=".2f"):
    return "–" if x is None else format(x, spec)


def _header(rec: dict, rel: str) -> str:
    la, le = rec["load_average_start"], rec["load_average_end"]
    return (f"`{rel}`: commit `{(rec['commit'] or 'unknown')[:10]}`{' (uncommitted changes)' if rec['dirty'] else ''}, "
            f"{rec['date']}, {rec['wall_s']:.0f} s; load average {la[0]:.2f} at the start, {le[0]:.2f} at the end "
            f"({rec['cores']} cores)\n")


def decode(fig: dict) -> str:
    rows = ["| pipeline | wall s | CPU s | clips/s | MB written | files |", "|---|---:|---:|---:|---:|---:|"]
    names = {"pool": f"pool ({fig['workers']} workers)", "ours": "one worker", "naive": "naive (extract to disk)",
             "floor": "PyAV floor (one thread)", "floor_portable": "PyAV floor, FFmpeg's C code as ours"}
    for k, r in fig["pipelines"].items():
        rows.append(f"| {names.get(k, k)} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} | {r['clips_per_s']:.1f} | "
                    f"{r['bytes_written'] / 1e6:.2f} | {r['files_written']} |")
    s, m = fig["startup"], fig["model_16_cores"]
    text = (f"{fig['clips']} clips, {fig['video_seconds']:.0f} s of video; best of {fig['repeats']}.\n\n" + "\n".join(rows)
            + f"\n\n- pool vs one worker: **{fig['speedup_pool_vs_one_worker']:.2f}×** (parallel efficiency "
              f"{fig['pool_efficiency']:.2f}); one worker vs the PyAV floor: **{fig['ours_over_floor']:.2f}×** "
              f"({fig['ours_over_portable_floor']:.2f}× the floor with FFmpeg's C code); "
              f"one worker vs naive: {fig['speedup_ours_vs_naive']:.2f}× (CPU time {fig['speedup_cpu_ours_vs_naive']:.2f}×)\n"
              f"- fixed costs: interpreter {s['interpreter_s']:.2f} s; a `dmc decode` process of an empty folder "
              f"{s['decode_process_s']:.2f} s (imports and set-up {s['imports_and_setup_s']:.2f} s); a pool of "
              f"{s['pool_workers']} workers started in {s['pool_start_s']:.3f} s; per clip on one core "
              f"{fig['per_clip_s'] * 1000:.0f} ms\n")
    for name, mm in m.items():
        text += (f"- model at {mm['cores']} cores, {name.replace('_', ' ')} ({mm['clips']} clips in {mm['shards']} shards, "
                 f"{mm['workers_per_job']} workers per job, {mm['waves']} wave(s)): "
                 f"one worker {mm['one_worker_s']:.1f} s, pool {mm['pool_s']:.1f} s, **{mm['speedup']:.1f}×**; all shards "
                 f"in one process {mm['pool_one_process_s']:.1f} s, {mm['speedup_one_process']:.1f}× "
                 f"(efficiency assumed {mm['efficiency_assumed']:.2f}, as measured here)\n")
    return text


def decode_memory(fig: dict) -> str:
    rows = ["| shard | clips | `dmc decode` peak RSS MiB | wall s | shard MiB | in-memory reference peak RSS MiB | wall s |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for r in fig["shards"]:
        rows.append(f"| {r['factor']}× | {r['clips']} | {r['peak_rss_mib']:.0f} | {r['wall_s']:.1f} | {r['shard_mib']:.1f} | "
                    f"{r['in_memory_peak_rss_mib']:.0f} | {r['in_memory_wall_s']:.1f} |")
    return (f"A folder of {fig['clips_in_folder']} clips; listing {fig['listing']['list_videos_s'] * 1000:.0f} ms.\n\n"
            + "\n".join(rows) + f"\n\nGrowth from the smallest to the largest shard: `dmc decode` {fig['growth_mib']:+.0f} MiB, "
            f"in-memory reference {fig['in_memory_growth_mib']:+.0f} MiB.\n")


def train_cpu(fig: dict) -> str:
    rows = ["| preset | loader workers | frame | log-mel | batch | step s | samples/s | loader step s | data wait | peak MB |",
            "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in fig["rows"]:
        rows.append(f"| {r['preset']} | {r.get('loader_workers', fig['loader_workers'])} | {r['frame']} | {r['logmel']} | "
                    f"{r['batch']} | {r['step_s']:.3f} | {r['samples_per_s']:.1f} | {r['loader_step_s']:.3f} | "
                    f"{r['data_wait_share']:.1%} | {r['peak_mem_mb']:.0f} |")
    return (f"Device {fig['device']}, torch {fig['torch']}, {fig['torch_threads']} threads, "
            f"{fig['steps']} timed steps; data wait = (loader step − in-memory step) / loader step, both fed "
            f"the same uint8 batches.\n\n" + "\n".join(rows) + "\n")


def evaluate(fig: dict) -> str:
    rows = ["| set | clips | decode + log-mel s | features s | SVM s | total s | target s | accuracy |",
            "|---|---:|---:|---:|---:|---:|---|---:|"]
    for name, r in fig.items():
        targets = ", ".join(f"{k} < {v:.0f}" for k, v in r["targets_s"].items())
        rows.append(f"| {name} | {r['clips']} | {r['decode_logmel_s']:.1f} | {r['features_s']:.1f} | {r['svm_s']:.1f} | "
                    f"{r['total_s']:.1f} | {targets} | {r['accuracy']:.4f} |")
    return "\n".join(rows) + "\n"


def localize(fig: dict) -> str:
    return (f"{fig['clips']} clips, {fig['held_out_pairs']} held-out pairs, {fig['model']} ({fig['preset']}): "
            f"**{fig['seconds']:.2f} s** (best of {fig['repeats']}), {fig['torch_threads']} torch threads.\n")


def demo_stages(fig: dict) -> str:
    rows = [{"stage": "install", "seconds": fig["install_s"]}] if fig.get("install_s") else []
    rows += fig["stages"]
    total = sum(r["seconds"] for r in rows)
    lines = ["| stage | seconds | share |", "|---|---:|---:|"]
    lines += [f"| {r['stage']} | {r['seconds']:.1f} | {100 * r['seconds'] / total:.0f} % |" for r in rows]
    lines.append(f"| total | {total:.1f} | 100 % |")
    over = f" params edited: `{json.dumps(fig['params_overrides'])}`." if fig["params_overrides"] else ""
    return "\n".join(lines) + f"\n\nSlowest stage: {fig['slowest_stage']}.{over}\n"


TITLES = {"decode": "Decoding (`benchmarks/decode.py`)", "decode_memory": "Memory of decoding (`benchmarks/decode_memory.py`)",
          "train_cpu": "Training steps on the CPU (`benchmarks/train.py --device cpu`)",
          "evaluate": "Evaluation (`benchmarks/evaluate.py`)", "localize": "The localization step (`benchmarks/localize.py`)",
          "demo_stages": "Where `make demo` spends its time (`benchmarks/demo_stages.py`)"}
RENDER = {"decode": decode, "decode_memory": decode_memory, "train_cpu": train_cpu, "evaluate": evaluate,
          "localize": localize, "demo_stages": demo_stages}


def render(root: Path = RESULTS) -> str:
    files = result_files(root)
    out = ["<!-- generated by benchmarks/summary.py from the files named below: do not edit -->\n"]
    if not files:
        out.append("No `make bench` result file is committed: the CPU benchmarks are **not measured with the current "
                   "code** (run `make bench` on a quiet machine and commit `benchmarks/results/<host>/`).\n")
    for host, named in files.items():
        first = json.loads(next(iter(named.values())).read_text())
        out.append(f"### {host}\n\n{first['cpu_model']}, {first['cores']} cores.\n")
        for name in ORDER:
            if name in named:
                rec = json.loads(named[name].read_text())
                rel = named[name].relative_to(root.parent.parent).as_posix() if root == RESULTS else \
                    f"{host}/{named[name].name}"
                out.append(f"#### {TITLES[name]}\n\n" + _header(rec, rel) + "\n" + RENDER[name](rec["figures"]))
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail when the committed summary differs from the files")
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        if not SUMMARY.is_file() or SUMMARY.read_text() != text:
            print(f"{SUMMARY} is stale: run python benchmarks/summary.py", file=sys.stderr)
            return 1
        return 0
    SUMMARY.write_text(text)
    print(f"wrote {SUMMARY}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
