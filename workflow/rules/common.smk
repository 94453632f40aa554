# Validate params.yaml before any job runs (one-line error naming the key); the schema is
# workflow/schemas/params.schema.yaml, the same one `dmc check-params` uses.
from pathlib import Path

from dmc.params import validate_params

validate_params(config, source="params.yaml")

# Source files of each step: inputs of its rules, so that changing the code reruns the
# step in Snakemake just as the matching `deps:` do in dvc.yaml.
CODE = {
    "synth": sorted(str(p) for p in Path("src/dmc/synth").glob("*.py")),
    "decode": ["src/dmc/decoding.py", "src/dmc/logmel.py", "src/dmc/shards.py"],
    "train": [f"src/dmc/{m}.py" for m in ("data", "training", "model", "subnets", "clustering", "loss")],
    "evalset": ["src/dmc/features.py", "src/dmc/datasets.py", "src/dmc/logmel.py"],
    "extract": ["src/dmc/features.py", "src/dmc/model.py", "src/dmc/subnets.py"],
    "evaluate": ["src/dmc/evaluation.py", "src/dmc/reporting.py"],
    "localize": [f"src/dmc/{m}.py" for m in ("localization", "multisource", "model", "subnets", "clustering", "data")],
}
SHARDS = [f"{i:05d}" for i in range(config["decode"]["num_shards"])]
DECODED = "data/decoded"
MODEL = "models/dmc.pt"
EVALSETS = "data/evalsets"
FEATURES = "data/features"
DATASETS = ["esc50", "dcase"]
METHODS = ["dmc", "random_init", "logmel_stats"]
