# Decode the training videos into shards of (frame, log-mel segment) pairs: one job per
# shard, each decoding its clips in DECODE_SHARD_WORKERS processes (its threads: the decode workers
# split over the shards), so `--cores N` runs up to N / DECODE_SHARD_WORKERS shards at once and
# their start-up costs overlap; then merge the index.


rule decode_shard:
    input:
        videos=config["data"]["videos"],
        code=CODE["decode"],
    output:
        directory(f"{DECODED}/shard-{{shard}}"),
    wildcard_constraints:
        shard=r"\d{5}",
    params:
        step=graph.params_of("decode", config),
    threads: DECODE_SHARD_WORKERS
    resources:
        mem_mb=4000,
    conda:
        "../envs/dmc.yaml"
    log:
        "logs/decode_shard/{shard}.log",
    shell:
        "dmc decode --shard {wildcards.shard} --videos {input.videos:q} --out {output:q} --workers {threads:q} 2>&1 | tee {log:q}"


rule decode_index:
    input:
        expand(f"{DECODED}/shard-{{shard}}", shard=SHARDS),
    output:
        index=f"{DECODED}/index.csv",
        report=f"{DECODED}/report.csv",
        summary=f"{DECODED}/summary.json",
    params:
        step=graph.params_of("decode", config),
        out_dir=lambda w, output: os.path.dirname(output.index),
    conda:
        "../envs/dmc.yaml"
    log:
        "logs/decode_index.log",
    shell:
        "dmc decode-index {input:q} --out-dir {params.out_dir:q} 2>&1 | tee {log:q}"


rule decode:
    input:
        rules.decode_index.output,


# The multi-source test corpus (synth_multi), decoded like the training videos, for scoring only.
rule decode_multi:
    input:
        videos=graph.MULTI_VIDEOS,
        code=CODE["decode_multi"],
    output:
        index=f"{graph.DECODED_MULTI}/index.csv",
    params:
        step=graph.params_of("decode_multi", config),
        out=lambda w, output: os.path.dirname(output.index),
    threads: DECODE_WORKERS
    resources:
        mem_mb=4000,
    conda:
        "../envs/dmc.yaml"
    log:
        "logs/decode_multi.log",
    shell:
        "dmc decode --videos {input.videos:q} --out-dir {params.out:q} --workers {threads:q} 2>&1 | tee {log:q}"
