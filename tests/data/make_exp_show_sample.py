"""Record tests/data/dvc_exp_show_sample.json: ``dvc.api.exp_show()`` of a tiny git + DVC project
(one stage writing metrics from the seed and train.temperature) after real experiments:

  seed 0 and 1 at the default (train.temperature 1.0), seed 0 and 1 at train.temperature=10.0,
  then seed 1 at the default again with the stage changed (+0.1: the newer run must count),
  seed 2 at train.temperature=10.0 queued and run from the queue (its State: Success), and
  seed 2 at the default queued, not run (Queued).

    python tests/data/make_exp_show_sample.py     (from the repository root; needs dvc, git)

The file holds {"params": the project's params.yaml, "rows": exp_show's rows}.
"""

import copy
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
STAGE = '''import json, yaml
p = yaml.safe_load(open("params.yaml"))
s, z = p["seed"], p["train"]["temperature"]
json.dump({"esc50.dmc.acc_mean": 0.8 + 0.01 * s + 0.001 * z + BONUS, "esc50.random_init.acc_mean": 0.7 + 0.02 * s},
          open("metrics.json", "w"))
'''


def main() -> None:
    import dvc.api

    p = copy.deepcopy(yaml.safe_load((ROOT / "params.yaml").read_text()))
    p["seed"] = 0
    p["train"]["temperature"] = 1.0
    p["sweeps"]["seeds"] = [0, 1]
    p["sweeps"]["ablation_seeds"] = [0, 1, 2]
    p["sweeps"]["ablation"] = {"train.temperature": [1.0, 10.0]}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)

        def run(*cmd):
            subprocess.run(cmd, cwd=d, check=True, capture_output=True, text=True)

        (d / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
        (d / "metrics.py").write_text(STAGE.replace("BONUS", "0.0"))
        (d / "dvc.yaml").write_text(
            f"stages:\n  fake:\n    cmd: {sys.executable} metrics.py\n    deps: [metrics.py]\n"
            "    params: [seed, train.temperature]\n    metrics:\n      - metrics.json:\n          cache: false\n")
        run("git", "init", "-q")
        run("dvc", "init", "-q")
        run("git", "add", "-A")
        run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tiny project")
        # both keys every time: -S changes the workspace's params.yaml, which a run leaves changed
        for seed, z in ((0, 1.0), (1, 1.0), (0, 10.0), (1, 10.0)):
            run("dvc", "exp", "run", "-S", f"seed={seed}", "-S", f"train.temperature={z}")
        (d / "metrics.py").write_text(STAGE.replace("BONUS", "0.1"))
        run("dvc", "exp", "run", "-S", "seed=1", "-S", "train.temperature=1.0")
        run("git", "checkout", "metrics.py", "params.yaml")
        run("dvc", "exp", "run", "--queue", "-S", "seed=2", "-S", "train.temperature=10.0")
        run("dvc", "exp", "run", "--run-all")
        run("dvc", "exp", "run", "--queue", "-S", "seed=2", "-S", "train.temperature=1.0")
        rows = dvc.api.exp_show(repo=str(d))
    out = ROOT / "tests/data/dvc_exp_show_sample.json"
    out.write_text(json.dumps({"params": p, "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}: {len(rows)} rows")


if __name__ == "__main__":
    main()
