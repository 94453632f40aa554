# The untouched test corpus (issue 26): synthetic videos from their own seed (synth.test_seed),
# decoded like the training videos and scored once per run, inference only, by `dmc heldout`:
# DMC, the baselines (random init with recalibrated BatchNorm, audio-blind maps, centre prior,
# majority and best constant count) and the audio controls (mismatched / shuffled audio).
# No rule that trains or chooses reads these files.


rule synth_test:
    input:
        code=CODE["synth_test"],
    output:
        videos=directory(graph.TEST_VIDEOS),
        ground_truth=directory(graph.TEST_GROUND_TRUTH),
    params:
        step=graph.params_of("synth_test", config),
    resources:
        mem_mb=2000,
    conda:
        "../envs/dmc.yaml"
    log:
        "logs/synth_test.log",
    shell:
        "dmc synth test --out {output.videos:q} --ground-truth {output.ground_truth:q} 2>&1 | tee {log:q}"


rule decode_test:
    input:
        videos=graph.TEST_VIDEOS,
        code=CODE["decode_test"],
    output:
        index=f"{graph.DECODED_TEST}/index.csv",
    params:
        step=graph.params_of("decode_test", config),
        out=lambda w, output: os.path.dirname(output.index),
    threads: DECODE_WORKERS
    resources:
        mem_mb=4000,
    conda:
        "../envs/dmc.yaml"
    log:
        "logs/decode_test.log",
    shell:
        "dmc decode --videos {input.videos:q} --out-dir {params.out:q} --workers {threads:q} 2>&1 | tee {log:q}"


rule heldout:
    input:
        model=MODEL,
        index=f"{DECODED}/index.csv",
        test_index=f"{graph.DECODED_TEST}/index.csv",
        test_ground_truth=graph.TEST_GROUND_TRUTH,
        esc50=f"{EVALSETS}/esc50/logmel.npy",
        code=CODE["heldout"],
    output:
        metrics=report(graph.HELDOUT_METRICS, category="Untouched test corpus"),
        results=report(directory(graph.HELDOUT), patterns=["{name}.md"], category="Untouched test corpus"),
    params:
        step=graph.params_of("heldout", config),
        decoded=lambda w, input: os.path.dirname(input.index),
        test_decoded=lambda w, input: os.path.dirname(input.test_index),
        esc50=lambda w, input: os.path.dirname(input.esc50),
    resources:
        gpu=1 if config["localize"]["device"] != "cpu" else 0,
    conda:
        "../envs/dmc.yaml"
    log:
        "logs/heldout.log",
    shell:
        "dmc heldout --decoded {params.decoded:q} --model {input.model:q} --test-decoded {params.test_decoded:q} "
        "--test-ground-truth {input.test_ground_truth:q} --esc50 {params.esc50:q} "
        "--out-dir {output.results:q} --metrics {output.metrics:q} 2>&1 | tee {log:q}"


# The multi-source test corpus (issue 33): the cluster -> class mapping learned on the training
# corpus's train + val pairs and written beside the model; class-aware, stem-conditioned, recall
# and counting scores of DMC, the baselines and the mismatched-audio control (dmc.pipeline.heldout_multi).
rule heldout_multi:
    input:
        model=MODEL,
        index=f"{DECODED}/index.csv",
        multi_index=f"{graph.DECODED_MULTI}/index.csv",
        multi_ground_truth=graph.MULTI_GROUND_TRUTH,
        stems=graph.MULTI_STEMS,
        code=CODE["heldout_multi"],
    output:
        mapping=graph.CLASS_MAPPING,
        metrics=report(graph.HELDOUT_MULTI_METRICS, category="Multi-source test corpus"),
        results=report(directory(graph.HELDOUT_MULTI), patterns=["{name}.md"], category="Multi-source test corpus"),
    params:
        step=graph.params_of("heldout_multi", config),
        decoded=lambda w, input: os.path.dirname(input.index),
        multi_decoded=lambda w, input: os.path.dirname(input.multi_index),
    resources:
        gpu=1 if config["localize"]["device"] != "cpu" else 0,
    conda:
        "../envs/dmc.yaml"
    log:
        "logs/heldout_multi.log",
    shell:
        "dmc heldout-multi --decoded {params.decoded:q} --model {input.model:q} --mapping {output.mapping:q} "
        "--multi-decoded {params.multi_decoded:q} --multi-ground-truth {input.multi_ground_truth:q} "
        "--stems {input.stems:q} --out-dir {output.results:q} --metrics {output.metrics:q} 2>&1 | tee {log:q}"
