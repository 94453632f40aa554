# Linear-SVM evaluations (ESC-50: 5 predefined folds; DCASE: 60 sub-clips per recording),
# the metrics table DVC compares across runs, tables, confusion matrices.


rule evaluate:
    input:
        features=expand(f"{FEATURES}/{{dataset}}/{{method}}.npy", dataset=DATASETS, method=METHODS),
        clips=expand(f"{EVALSETS}/{{dataset}}/clips.csv", dataset=DATASETS),
        code=CODE["evaluate"],
    output:
        metrics=report("results/metrics.json", category="Metrics"),
        tables=report(expand("results/tables/{table}", table=graph.EVALUATE_TABLES), category="Tables"),
        figures=report(directory("results/figures"), patterns=["{name}.png"], category="Figures"),
        plots=directory("results/plots"),
    params:
        step=graph.params_of("evaluate", config),
        evalsets=lambda w, input: os.path.dirname(os.path.dirname(input.clips[0])),
        features=lambda w, input: os.path.dirname(os.path.dirname(input.features[0])),
    conda:
        "../envs/dmc.yaml"
    log:
        "logs/evaluate.log",
    shell:
        "dmc evaluate --evalsets {params.evalsets:q} --features {params.features:q} --out-dir results 2>&1 | tee {log:q}"
