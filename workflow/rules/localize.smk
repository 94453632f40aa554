# Sound localization and multi-source detection on the held-out videos, scored on the
# synthetic corpus's ground truth (boxes of the sounding objects, number of sources), with
# the untrained network and a centre prior / majority count as baselines. Defined only when
# data.ground_truth is set: real corpora have no boxes (`dmc localize --video` still draws
# heat maps of any video by hand).

LOCALIZE_TARGETS = []

if config["data"]["ground_truth"]:

    rule localize:
        input:
            model=MODEL,
            index=f"{DECODED}/index.csv",
            ground_truth=config["data"]["ground_truth"],
            code=CODE["localize"],
        output:
            metrics=report("results/localization_metrics.json", category="Localization"),
            results=report(
                directory("results/localization"),
                patterns=["{name}.md", "overlays/{name}.png"],
                category="Localization",
            ),
        params:
            seed=config["seed"],
            model=config["model"],
            train=config["train"],
            frame=[config["synth"]["width"], config["synth"]["height"]],
            ground_truth=config["data"]["ground_truth"],
            localize=config["localize"],
        resources:
            gpu=1 if config["localize"]["device"] != "cpu" else 0,
        shell:
            "dmc localize --decoded {DECODED} --model {input.model:q} --ground-truth {input.ground_truth:q} "
            "--out-dir {output.results:q} --metrics {output.metrics:q}"

    LOCALIZE_TARGETS = rules.localize.output
