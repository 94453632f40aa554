# Train DMC on the decoded shards. `dmc train` resumes from models/checkpoints/last.pt when
# it matches the current params and data; under torchrun the same command runs DDP.


rule train:
    input:
        index=f"{DECODED}/index.csv",
        code=CODE["train"],
    output:
        model=MODEL,
        log="results/train/log.csv",
        metrics=graph.TRAIN_METRICS,
    params:
        step=graph.params_of("train", config),
        decoded=lambda w, input: os.path.dirname(input.index),
    threads: 8  # capped at --cores by Snakemake
    resources:
        mem_mb=8000,
        gpu=1 if config["train"]["device"] != "cpu" else 0,
    conda:
        "../envs/dmc.yaml"
    log:
        "logs/train.log",
    shell:
        "dmc train --decoded {params.decoded:q} --out {output.model:q} --train-log {output.log:q} --metrics {output.metrics:q} 2>&1 | tee {log:q}"
