# dmc-pipeline: Snakemake entry point. Wiring only: every rule calls the `dmc` CLI.
# Parameters: params.yaml (the same file DVC reads). Rules: workflow/rules/*.smk.
import os
import sys

from snakemake.utils import min_version

min_version("8.0")

# This checkout's own package, for the Snakefile and for every `dmc` command of the rules, even
# when the installed one (pip install -e) points at another checkout: `dvc exp run` runs queued
# experiments in copies of the repository, each of which must run the code it was queued with.
SRC = os.path.join(workflow.basedir, "src")
sys.path.insert(0, SRC)
shell.prefix("set -euo pipefail; export PYTHONPATH={SRC:q}${{PYTHONPATH:+:$PYTHONPATH}}; ")


configfile: "params.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/synth.smk"
include: "workflow/rules/decode.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/localize.smk"
include: "workflow/rules/heldout.smk"
include: "workflow/rules/benchmark.smk"


rule all:
    input:
        rules.synth.input,
        rules.decode.input,
        rules.train.output,
        rules.evaluate.output,
        rules.localize.output,
        rules.heldout.output,
        rules.decode_multi.output,
        rules.benchmark.output,
        rules.heldout_multi.output,
