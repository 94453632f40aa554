import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))   # tests/media.py, tests/helpers
torch.set_num_threads(2)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def params():
    from dmc.params import load_params

    return load_params(ROOT / "params.yaml")
