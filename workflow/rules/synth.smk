# The embedded default corpus: synthetic videos with ground truth, and evaluation sets laid
# out like ESC-50 and DCASE2013 scenes. Real data sets are plugged in by path in params.yaml.


rule synth_videos:
    input:
        code=CODE["synth"],
    output:
        videos=directory("data/synth/videos"),
        ground_truth=directory("data/synth/ground_truth"),
    params:
        step=graph.params_of("synth", config),
    resources:
        mem_mb=2000,
    conda:
        "../envs/dmc.yaml"
    log:
        "logs/synth_videos.log",
    shell:
        "dmc synth videos --out {output.videos:q} --ground-truth {output.ground_truth:q} 2>&1 | tee {log:q}"


rule synth_evalset:
    input:
        code=CODE["synth"],
    output:
        directory("data/synth/{evalset}"),
    wildcard_constraints:
        evalset="|".join(DATASETS),
    params:
        step=graph.params_of("synth", config),
    resources:
        mem_mb=2000,
    conda:
        "../envs/dmc.yaml"
    log:
        "logs/synth_evalset/{evalset}.log",
    shell:
        "dmc synth {wildcards.evalset} --out {output:q} 2>&1 | tee {log:q}"


rule synth:
    input:
        rules.synth_videos.output,
        expand("data/synth/{evalset}", evalset=DATASETS),


# The multi-source test corpus (issue 33, docs/multisource-corpus.md): mixtures and duets from their
# own seed (synth.multi_seed), with each sounding source's audio stem; decoded by decode_multi
# (workflow/rules/decode.smk). No rule that trains or chooses reads these files.
rule synth_multi:
    input:
        code=CODE["synth_multi"],
    output:
        videos=directory(graph.MULTI_VIDEOS),
        stems=directory(graph.MULTI_STEMS),
        ground_truth=directory(graph.MULTI_GROUND_TRUTH),
    params:
        step=graph.params_of("synth_multi", config),
    resources:
        mem_mb=2000,
    conda:
        "../envs/dmc.yaml"
    log:
        "logs/synth_multi.log",
    shell:
        "dmc synth multi --out {output.videos:q} --stems {output.stems:q} "
        "--ground-truth {output.ground_truth:q} 2>&1 | tee {log:q}"
