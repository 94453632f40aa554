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
    threads: 8  # capped at --cores by Snakemake
    resources:
        mem_mb=8000,
        gpu=1 if config["train"]["device"] != "cpu" else 0,
    shell:
        "dmc train --decoded {DECODED} --out {output.model:q} --train-log {output.log:q} --metrics {output.metrics:q}"
