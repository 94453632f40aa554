# Validate params.yaml before any job runs (one-line error naming the key); the schema is
# workflow/schemas/params.schema.yaml, the same one `dmc check-params` uses.
# Paths, the code inputs of each step and the params keys each step depends on come from the
# pipeline table in src/dmc/pipeline/graph.py, the same table dvc.yaml is generated from.
from dmc.pipeline import graph
from dmc.pipeline.params import validate_params

validate_params(config, source="params.yaml")

CODE = {s.name: graph.code_deps(s.name) for s in graph.STEPS}  # computed import closures
SHARDS = [f"{i:05d}" for i in range(config["decode"]["num_shards"])]
# threads of a decode job = its worker processes: params compute.decode_workers (capped at --cores)
# split over the shard jobs (decode_shard), or all of them for one process decoding every shard
# (decode_test); dmc.cores
from dmc.cores import decode_threads, workflow_cores
DECODE_WORKERS = decode_threads(config, workflow_cores(workflow), 1)
DECODE_SHARD_WORKERS = decode_threads(config, workflow_cores(workflow), len(SHARDS))
DECODED = graph.DECODED
MODEL = graph.MODEL
EVALSETS = graph.EVALSET_DIR
FEATURES = graph.FEATURES
DATASETS = list(graph.EVALSETS)
METHODS = list(graph.METHODS)

# Steps DVC reports up to date (after dvc checkout / pull / exp apply, git checkout) are
# current for Snakemake too: no `snakemake --touch` to remember (src/dmc/pipeline/dvcsync.py).
from dmc.pipeline import dvcsync

dvcsync.agree(workflow, config)
