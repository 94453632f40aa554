# A published localization benchmark (data.localization_benchmark: Flickr-SoundNet test, VGG-SS,
# DSOL's MUSIC box files; docs/benchmarks-localization.md) scored with its official protocol.
# Default: the untouched test corpus written in VGG-SS layout, so `make demo` runs the path.


rule benchmark_layout:
    input:
        videos=graph.TEST_VIDEOS,
        ground_truth=graph.TEST_GROUND_TRUTH,
        code=CODE["benchmark_layout"],
    output:
        directory(graph.BENCHMARK_LAYOUT),
    params:
        step=graph.params_of("benchmark_layout", config),
    conda:
        "../envs/dmc.yaml"
    log:
        "logs/benchmark_layout.log",
    shell:
        "dmc benchmark-layout --videos {input.videos:q} --ground-truth {input.ground_truth:q} "
        "--out {output:q} 2>&1 | tee {log:q}"


rule benchmark:
    input:
        model=MODEL,
        root=config["data"]["localization_benchmark"] or [],
        code=CODE["benchmark"],
    output:
        metrics=report(graph.BENCHMARK_METRICS, category="Published benchmark"),
        results=report(directory(graph.BENCHMARK), patterns=["{name}.md"], category="Published benchmark"),
    params:
        step=graph.params_of("benchmark", config),
    resources:
        gpu=1 if config["localize"]["device"] != "cpu" else 0,
    conda:
        "../envs/dmc.yaml"
    log:
        "logs/benchmark.log",
    shell:
        "dmc localize --benchmark auto --model {input.model:q} --benchmark-out {output.results:q} "
        "--benchmark-metrics {output.metrics:q} 2>&1 | tee {log:q}"
