"""The pipeline graph, written once: the steps, their files, params keys and code.

:data:`STEPS` is the single source of the pipeline's shape.  From it

* ``dvc.yaml`` is generated (``dmc dvc-yaml --write``; ``--check`` fails when the file on
  disk differs, so a hand edit or a stale file is caught by the tests);
* the Snakemake rules (workflow/rules/*.smk) take their shared paths, the code inputs of
  each step (:func:`code_deps`) and the params each step depends on (:func:`params_of`).

A step's **code deps** are computed, not listed: the step's entry module
(``dmc/pipeline/steps/<step>.py``: its subcommands' parsers and handlers), ``params.py`` and the
closure of the ``dmc`` modules they import, anywhere in a module (imports inside functions
count: they run when the step runs). ``cli.py`` only assembles the entry modules, so editing one
step's handler leaves the other stages current.
A step's **params** are the exact keys it reads (tests/test_pipeline_graph.py records them by
running the steps); keys it reads that cannot change a result (devices, DataLoader
workers, decode workers, checkpoint frequency) are listed under ``ignored`` and do not invalidate.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass, field
from pathlib import Path

from dmc.config import Synth
from dmc.names import DATASETS as EVALSETS, METHODS, TEST_CORPUS_SYNTH_KEYS   # evaluation sets, feature methods

PACKAGE = "dmc"
PARAMS_MODULE = f"{PACKAGE}.pipeline.params"    # loads and validates params.yaml for every step
SRC = Path(__file__).resolve().parents[1]        # src/dmc
ROOT = SRC.parents[1]                            # the repository (src layout)

# Evaluation data sets: params key data.<name> is the folder; one DVC stage `evalset@<name>`.

DECODED = "data/decoded"
MODEL = "models/dmc.pt"
TRAIN_LOG = "results/train/log.csv"
TRAIN_METRICS = "results/train/metrics.json"   # val and test correspondence of the final model
EVALSET_DIR = "data/evalsets"
FEATURES = "data/features"
# the tables `dmc evaluate` writes: files, not the folder, so that results/tables can also hold
# the seeds table (dmc sweep seeds), which `dvc repro` must not remove
EVALUATE_TABLES = tuple(f"{name}.{ext}" for name in ("summary", "esc50_folds", "dcase_scenes",
                                                                      "dcase_recordings") for ext in ("csv", "md"))
LOCALIZATION = "results/localization"
LOCALIZATION_METRICS = "results/localization_metrics.json"
# the untouched test corpus (synth.test_seed): made, decoded and scored by the last three steps only
TEST_VIDEOS = "data/synth_test/videos"
TEST_GROUND_TRUTH = "data/synth_test/ground_truth"
DECODED_TEST = "data/decoded_test"
HELDOUT = "results/heldout"
HELDOUT_METRICS = "results/heldout_metrics.json"
# the multi-source test corpus (synth.multi_seed; issue 33): mixtures and duets with per-source stems
MULTI_VIDEOS = "data/synth_multi/videos"
MULTI_STEMS = "data/synth_multi/stems"
MULTI_GROUND_TRUTH = "data/synth_multi/ground_truth"
DECODED_MULTI = "data/decoded_multi"
HELDOUT_MULTI = "results/heldout_multi"
HELDOUT_MULTI_METRICS = "results/heldout_multi_metrics.json"
CLASS_MAPPING = "models/dmc.class_mapping.json"   # dmc.localization.mapping_file.mapping_path(MODEL)
# what the training corpus (stage synth) reads of the synth section: all but the test corpora's keys
TRAINING_SYNTH_PARAMS = tuple(f"synth.{k}" for k in Synth.keys() if k not in TEST_CORPUS_SYNTH_KEYS)
# a published localization benchmark (data.localization_benchmark); default: the untouched test
# corpus written in VGG-SS layout, scored through the same path
BENCHMARK_LAYOUT = "data/benchmark_layout/vggss"
BENCHMARK = "results/benchmark"
BENCHMARK_METRICS = "results/benchmark_metrics.json"


@dataclass(frozen=True)
class Out:
    """An output as DVC sees it: ``kind`` outs | metrics | plots; ``cache`` False for small
    results that are committed to git rather than stored in the DVC cache."""

    path: str
    kind: str = "outs"
    cache: bool = True


@dataclass(frozen=True)
class Step:
    name: str
    commands: tuple[str, ...]    # `dmc` subcommands the step runs (parsers and handlers: :attr:`entry`)
    rules: tuple[str, ...]       # Snakemake rules of the step (DVC runs only these)
    targets: tuple[str, ...]     # Snakemake targets that make the step's outputs
    deps: tuple[str, ...]        # data inputs (DVC ${...} templating from params.yaml allowed)
    outs: tuple[Out, ...]
    params: tuple[str, ...]      # params keys that invalidate the step's outputs
    ignored: tuple[str, ...] = ()  # keys read that cannot change a result
    foreach: dict | None = None  # DVC foreach: key -> item (${key}, ${item} in the fields)
    comment: str = ""
    extra: dict = field(default_factory=dict)   # more DVC stage fields, verbatim
    module: str = ""             # entry module's name when it is not the step's (a step on other data)

    @property
    def entry(self) -> str:
        """The step's entry module, src/dmc/pipeline/steps/<name>.py: its subcommands' parsers and
        handlers. The CLI (cli.py) only assembles the entry modules and is no code dep of a step."""
        return f"{PACKAGE}.pipeline.steps.{self.module or self.name}"


STEPS: tuple[Step, ...] = (
    Step("synth", commands=("synth",), rules=("synth_videos", "synth_evalset", "synth"), targets=("synth",),
         deps=(), outs=(Out("data/synth/videos"), Out("data/synth/ground_truth"),
                        *(Out(f"data/synth/{name}") for name in EVALSETS)),
         params=TRAINING_SYNTH_PARAMS,
         comment="the embedded default corpus; unused when params.yaml points data.* elsewhere"),
    Step("decode", commands=("decode", "decode-index"), rules=("decode_shard", "decode_index", "decode"),
         targets=("decode",), deps=("${data.videos}",), outs=(Out(DECODED),),
         params=("decode",), ignored=("compute.decode_workers",)),
    Step("train", commands=("train",), rules=("train",), targets=("train",), deps=(DECODED,),
         outs=(Out(MODEL), Out(TRAIN_LOG, "plots", cache=False), Out(TRAIN_METRICS, "metrics", cache=False)),
         params=("seed", "model", "decode", "train.clusters", "train.dim", "train.iterations",
                 "train.temperature", "train.squash", "train.cluster_init", "train.margin", "train.batch_size",
                 "train.epochs", "train.lr", "train.weight_decay", "train.schedule", "train.warmup_steps", "train.val_fraction",
                 "train.test_fraction", "train.amp", "train.compile", "train.portable", "train.portable_threads"),
         ignored=("train.device", "train.num_workers", "train.checkpoint_every")),
    Step("evalset", commands=("evalset",), rules=("evalset_logmel",),
         targets=(f"{EVALSET_DIR}/${{key}}/logmel.npy",), deps=("${item}",), outs=(Out(f"{EVALSET_DIR}/${{key}}"),),
         params=("decode.sample_rate", "decode.n_mels", "decode.f_min", "decode.f_max", "decode.window_seconds",
                 "decode.hop_seconds", "decode.log_offset"),
         foreach={name: f"${{data.{name}}}" for name in EVALSETS},
         comment="one stage per evaluation set: data set name -> its folder in params.yaml"),
    Step("extract", commands=("extract",), rules=("extract", "extract_all"), targets=("extract_all",),
         deps=(MODEL, EVALSET_DIR), outs=(Out(FEATURES),),
         params=("seed", "model", "train.clusters", "train.dim", "train.iterations", "train.temperature",
                 "features.layer", "features.pooling", "features.batch_size", "train.portable",
                 "train.portable_threads"),
         # the random-init model is built with the clustering's structure, which the audio features skip
         ignored=("features.device", "train.squash", "train.cluster_init")),
    Step("evaluate", commands=("evaluate",), rules=("evaluate",), targets=("evaluate",),
         deps=(FEATURES, *(f"{EVALSET_DIR}/{name}/clips.csv" for name in EVALSETS)),
         outs=(Out("results/metrics.json", "metrics", cache=False),
               *(Out(f"results/tables/{t}", cache=False) for t in EVALUATE_TABLES),
               Out("results/figures", cache=False), Out("results/plots", "plots", cache=False)),
         params=("evaluate",)),
    Step("localize", commands=("localize",), rules=("localize",), targets=("localize",),
         deps=(MODEL, DECODED),
         outs=(Out(LOCALIZATION_METRICS, "metrics", cache=False), Out(LOCALIZATION, cache=False)),
         params=("seed", "model", "train.clusters", "train.dim", "train.iterations", "train.temperature",
                 "train.squash", "train.cluster_init", "train.val_fraction", "train.test_fraction", "synth.width",
                 "synth.height", "data.ground_truth", "localize.heatmap_rule",
                 "localize.agreement_temperature", "localize.ciou_threshold", "localize.center_sigma",
                 "localize.max_sources", "localize.multisource_cuts", "localize.clips_for_overlays",
                 "localize.batch_size", "train.portable", "train.portable_threads"),
         ignored=("localize.device",),
         comment="scores on data.ground_truth (the synthetic boxes, made with the videos, so a change "
                 "of them shows in data/decoded too); with a real corpus (null) heat-map overlays and "
                 "held-out correspondence only"),
    Step("synth_test", commands=("synth",), module="synth", rules=("synth_test",), targets=(TEST_VIDEOS,), deps=(),
         outs=(Out(TEST_VIDEOS), Out(TEST_GROUND_TRUTH)),
         params=("synth.seed", "synth.test_seed", "synth.test_videos", "synth.size", "synth.video_seconds",
                 "synth.width", "synth.height", "synth.fps", "synth.audio_rate", "synth.other_containers",
                 "synth.max_sources", "synth.max_distractors", "synth.control", "synth.variants",
                 "synth.portable_audio"),
         comment="the untouched test corpus from its own seed (synth.test_seed); only decode_test and heldout read it"),
    Step("decode_test", commands=("decode",), module="decode", rules=("decode_test",), targets=(f"{DECODED_TEST}/index.csv",),
         deps=(TEST_VIDEOS,), outs=(Out(DECODED_TEST),), params=("decode",),
         ignored=("compute.decode_workers",)),
    Step("synth_multi", commands=("synth",), module="synth", rules=("synth_multi",), targets=(MULTI_VIDEOS,), deps=(),
         outs=(Out(MULTI_VIDEOS), Out(MULTI_STEMS), Out(MULTI_GROUND_TRUTH)),
         params=("synth.seed", "synth.test_seed", "synth.multi_seed", "synth.multi_videos", "synth.size",
                 "synth.video_seconds", "synth.width", "synth.height", "synth.fps", "synth.audio_rate",
                 "synth.other_containers", "synth.variants", "synth.portable_audio"),
         comment="the multi-source test corpus (mixtures, duets, per-source stems) from its own seed "
                 "(synth.multi_seed); only decode_multi and the scoring read it"),
    Step("decode_multi", commands=("decode",), module="decode", rules=("decode_multi",),
         targets=(f"{DECODED_MULTI}/index.csv",), deps=(MULTI_VIDEOS,), outs=(Out(DECODED_MULTI),), params=("decode",),
         ignored=("compute.decode_workers",)),
    Step("heldout", commands=("heldout",), rules=("heldout",), targets=("heldout",),
         deps=(MODEL, DECODED, DECODED_TEST, TEST_GROUND_TRUTH, f"{EVALSET_DIR}/esc50"),
         outs=(Out(HELDOUT_METRICS, "metrics", cache=False), Out(HELDOUT, cache=False)),
         params=("seed", "model", "train.clusters", "train.dim", "train.iterations", "train.temperature",
                 "train.squash", "train.cluster_init", "train.val_fraction", "train.test_fraction", "synth.width",
                 "synth.height", "data.ground_truth", "localize.heatmap_rule", "localize.agreement_temperature",
                 "localize.ciou_threshold", "localize.center_sigma", "localize.max_sources",
                 "localize.multisource_cuts", "localize.batch_size", "features.layer", "features.pooling",
                 "features.batch_size", "evaluate.C_grid", "train.portable", "train.portable_threads"),
         ignored=("localize.device",),
         comment="inference only: DMC, the baselines and the audio controls on the untouched test corpus "
                 "(per-pair / per-clip tables for dmc.studies.headline's paired clip bootstrap)"),
    Step("heldout_multi", commands=("heldout-multi",), rules=("heldout_multi",), targets=("heldout_multi",),
         deps=(MODEL, DECODED, DECODED_MULTI, MULTI_GROUND_TRUTH, MULTI_STEMS),
         outs=(Out(CLASS_MAPPING), Out(HELDOUT_MULTI_METRICS, "metrics", cache=False), Out(HELDOUT_MULTI, cache=False)),
         params=("seed", "model", "decode", "train.clusters", "train.dim", "train.iterations", "train.temperature",
                 "train.squash", "train.cluster_init", "train.val_fraction", "train.test_fraction", "synth.width",
                 "synth.height", "data.ground_truth", "localize.heatmap_rule", "localize.agreement_temperature",
                 "localize.ciou_threshold", "localize.center_sigma", "localize.max_sources",
                 "localize.batch_size", "localize.class_map_gate"),
         ignored=("localize.device",),
         comment="inference only: the cluster -> class mapping learned on the training corpus's train + val "
                 "pairs (written beside the model), then DMC, the baselines and the audio control scored "
                 "class-aware and stem-conditioned on the multi-source test corpus"),
)

STEPS += (
    Step("benchmark_layout", commands=("benchmark-layout",), rules=("benchmark_layout",), targets=(BENCHMARK_LAYOUT,),
         deps=(TEST_VIDEOS, TEST_GROUND_TRUTH), outs=(Out(BENCHMARK_LAYOUT),),
         params=("decode.segment_seconds", "decode.sample_rate", "synth.width", "synth.height"),
         comment="the untouched test corpus in VGG-SS's published layout (vggss.json, frames/, audio/)"),
    Step("benchmark", commands=("localize",), module="localize", rules=("benchmark",), targets=("benchmark",),
         deps=(MODEL, BENCHMARK_LAYOUT),
         outs=(Out(BENCHMARK_METRICS, "metrics", cache=False), Out(BENCHMARK, cache=False)),
         params=("seed", "model", "train.clusters", "train.dim", "train.iterations", "train.temperature",
                 "train.squash", "train.cluster_init", "data.localization_benchmark", "localize.heatmap_rule",
                 "localize.agreement_temperature", "localize.center_sigma", "localize.batch_size",
                 "localize.class_map_gate", "decode.segment_seconds", "decode.frame_size", "decode.sample_rate", "decode.n_mels", "decode.f_min",
                 "decode.f_max", "decode.window_seconds", "decode.hop_seconds", "decode.log_offset", "train.portable",
                 "train.portable_threads"),
         ignored=("localize.device",),
         comment="data.localization_benchmark scored with the published protocol (dmc localize --benchmark auto): "
                 "DMC, the random-init network and the content-free baselines in one table"),
)

PLOTS = [
    {"training curves": {"template": "linear", "x": "epoch", "y": {TRAIN_LOG: ["train_loss", "val_loss"]}}},
    {"held-out correspondence accuracy": {"template": "linear", "x": "epoch",
                                          "y": {TRAIN_LOG: ["train_acc", "val_acc"]}}},
    {"results/plots": {"template": "confusion", "x": "actual", "y": "predicted"}},
]


#: Top-level metrics (no stage makes them): ``dmc compare``'s differences, one key per comparison, so that
#: ``dvc exp show`` and ``dvc metrics show`` display them (dmc.pipeline.compare)
TOP_METRICS = ["results/compare/metrics.json"]


def step(name: str) -> Step:
    for s in STEPS:
        if s.name == name:
            return s
    raise KeyError(f"no pipeline step {name!r} (steps: {', '.join(s.name for s in STEPS)})")


# -- params ---------------------------------------------------------------------------------------
def lookup(params: dict, key: str):
    node = params
    for part in key.split("."):
        node = node[part]
    return node


def params_of(name: str, config: dict) -> dict:
    """{key: value} of the params keys step ``name`` depends on (Snakemake rules' ``params:``)."""
    return {key: lookup(config, key) for key in step(name).params}


# -- code deps: the import closure of a step's subcommands -----------------------------------------
def _module_file(module: str) -> Path | None:
    """src/dmc/x.py or src/dmc/x/__init__.py for ``dmc.x`` (None when not a module of the package)."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = SRC.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(nodes, package: str) -> set[str]:
    """dmc modules named by the import statements among ``nodes`` (a module or function body)."""
    found = set()
    for node in nodes:
        for n in ast.walk(node):
            if isinstance(n, ast.Import):
                found.update(a.name for a in n.names)
            elif isinstance(n, ast.ImportFrom):
                if n.level:
                    base = package.split(".")
                    base = base[:len(base) - (n.level - 1)]
                    mod = ".".join(base + ([n.module] if n.module else []))
                else:
                    mod = n.module or ""
                found.add(mod)
                found.update(f"{mod}.{a.name}" for a in n.names)   # `from . import x`: x may be a module
    return {m for m in found if _module_file(m) is not None}


def _with_parents(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def module_closure(modules: set[str]) -> set[str]:
    """The modules and every dmc module they import, transitively (parent packages included)."""
    todo, seen = set().union(*(_with_parents(m) for m in modules)) if modules else set(), set()
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        path = _module_file(m)
        tree = ast.parse(path.read_text(), str(path))
        pkg = m if path.name == "__init__.py" else m.rpartition(".")[0]
        for dep in _imports([tree], pkg):
            todo |= _with_parents(dep) - seen
    return seen


def step_modules(name: str) -> set[str]:
    """dmc modules a run of step ``name`` can import: its entry module, :data:`PARAMS_MODULE` (the
    CLI validates params.yaml with it before the step runs) and their import closure."""
    return module_closure({step(name).entry, PARAMS_MODULE})


def code_deps(name: str) -> list[str]:
    """Source files of step ``name``, relative to the repository root, sorted."""
    return list(_code_deps(name))


@functools.lru_cache(maxsize=None)
def _code_deps(name: str) -> tuple[str, ...]:
    mods = step_modules(name)
    return tuple(sorted(_module_file(m).relative_to(ROOT).as_posix() for m in mods))


# -- dvc.yaml ---------------------------------------------------------------------------------------
HEADER = """\
# GENERATED from src/dmc/pipeline/graph.py by `dmc dvc-yaml --write`; do not edit by hand
# (tests/test_pipeline_graph.py fails when this file and the table differ).
#
# One DVC stage per pipeline step, each driving Snakemake for that step's rules only:
# * DVC decides WHETHER a step must run (content hashes of deps, params, outs);
#   Snakemake decides HOW (one job per shard, --cores N, cluster profiles).
# * `--allowed-rules` confines Snakemake to this step's rules: upstream files, already
#   reproduced by the earlier DVC stages, are taken as given, whatever their mtimes.
# * `--forceall` makes Snakemake redo the step whenever DVC runs the stage, since DVC only
#   runs it when something it depends on really changed.
# * deps: the step's data inputs, then its code: the dmc modules its subcommands import.
#   params: the exact keys the step reads (keys that cannot change a result are left out).
# ${...} values come from params.yaml (DVC templating).
"""


def _stage(s: Step) -> dict:
    cmd = (f"snakemake --cores all --forceall --allowed-rules {' '.join(s.rules)} -- "
           + " ".join(s.targets))
    stage = {"cmd": cmd, "deps": [*s.deps, *code_deps(s.name)], "params": list(s.params)}
    for kind in ("outs", "metrics", "plots"):
        entries = [o.path if o.cache else {o.path: {"cache": False}} for o in s.outs if o.kind == kind]
        if entries:
            stage[kind] = entries
    stage.update(s.extra)
    if s.foreach:
        return {"foreach": dict(s.foreach), "do": stage}
    return stage


def dvc_yaml() -> str:
    """The text of dvc.yaml."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(str, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v))

    def dump(obj) -> str:
        return yaml.dump(obj, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=110, indent=2)

    parts = [HEADER, "stages:\n"]
    for s in STEPS:
        if s.comment:
            parts.append(f"  # {s.name}: {s.comment}\n")
        body = dump({s.name: _stage(s)})
        parts.append("".join("  " + line + "\n" for line in body.splitlines()) + "\n")
    parts.append(dump({"metrics": TOP_METRICS}))
    parts.append(dump({"plots": PLOTS}))
    return "".join(parts)
