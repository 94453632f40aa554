# Sound localization on the held-out videos. With data.ground_truth (the synthetic corpus's
# boxes and source counts): localization and multi-source scores of DMC against the untrained
# network and a centre prior / majority count. With a real corpus (ground_truth null): heat-map
# overlays and the held-out audiovisual correspondence; box metrics are marked not applicable.


rule localize:
    input:
        model=MODEL,
        index=f"{DECODED}/index.csv",
        ground_truth=config["data"]["ground_truth"] or [],
        code=CODE["localize"],
    output:
        metrics=report(graph.LOCALIZATION_METRICS, category="Localization"),
        results=report(
            directory(graph.LOCALIZATION),
            patterns=["{name}.md", "overlays/{name}.png"],
            category="Localization",
        ),
    params:
        step=graph.params_of("localize", config),
        decoded=lambda w, input: os.path.dirname(input.index),
    resources:
        gpu=1 if config["localize"]["device"] != "cpu" else 0,
    conda:
        "../envs/dmc.yaml"
    log:
        "logs/localize.log",
    shell:
        "dmc localize --decoded {params.decoded:q} --model {input.model:q} "
        "--out-dir {output.results:q} --metrics {output.metrics:q} 2>&1 | tee {log:q}"
