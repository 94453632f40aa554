# Audio features of the evaluation sets: log-mel patches once per data set, then one
# feature array per method (DMC, the same network at random init, log-mel statistics).


rule evalset_logmel:
    input:
        data=lambda w: config["data"][w.dataset],
        code=CODE["evalset"],
    output:
        logmel=f"{EVALSETS}/{{dataset}}/logmel.npy",
        clips=f"{EVALSETS}/{{dataset}}/clips.csv",
    wildcard_constraints:
        dataset="|".join(DATASETS),
    params:
        step=graph.params_of("evalset", config),
        out_dir=lambda w, output: os.path.dirname(output.logmel),
    conda:
        "../envs/dmc.yaml"
    log:
        "logs/evalset_logmel/{dataset}.log",
    shell:
        "dmc evalset {wildcards.dataset} --root {input.data:q} --out-dir {params.out_dir:q} 2>&1 | tee {log:q}"


rule extract:
    input:
        logmel=f"{EVALSETS}/{{dataset}}/logmel.npy",
        model=lambda w: MODEL if w.method == "dmc" else [],
        code=CODE["extract"],
    output:
        f"{FEATURES}/{{dataset}}/{{method}}.npy",
    wildcard_constraints:
        dataset="|".join(DATASETS),
        method="|".join(METHODS),
    params:
        step=graph.params_of("extract", config),
        model=lambda w, input: input.model or MODEL,   # read by the dmc method only (the others ignore it)
    resources:
        gpu=lambda w: 1 if w.method != "logmel_stats" and config["train"]["device"] != "cpu" else 0,
    conda:
        "../envs/dmc.yaml"
    log:
        "logs/extract/{dataset}/{method}.log",
    shell:
        "dmc extract {wildcards.dataset} --method {wildcards.method} --logmel {input.logmel:q} "
        "--model {params.model:q} --out {output:q} 2>&1 | tee {log:q}"


rule extract_all:
    input:
        expand(f"{FEATURES}/{{dataset}}/{{method}}.npy", dataset=DATASETS, method=METHODS),
