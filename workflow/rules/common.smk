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
}
SHARDS = [f"{i:05d}" for i in range(config["decode"]["num_shards"])]
DECODED = "data/decoded"
