# dmc-pipeline: Snakemake entry point. Wiring only: every rule calls the `dmc` CLI.
# Parameters: params.yaml (the same file DVC reads). Rules: workflow/rules/*.smk.
from snakemake.utils import min_version

min_version("8.0")


configfile: "params.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/synth.smk"
include: "workflow/rules/decode.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/localize.smk"


rule all:
    input:
        rules.synth.input,
        rules.decode.input,
        rules.train.output,
        rules.evaluate.output,
        rules.localize.output,
