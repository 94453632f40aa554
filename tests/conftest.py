import copy
import sys
from pathlib import Path

import pytest
import torch
import yaml

sys.path.insert(0, str(Path(__file__).parent))   # tests/media.py
torch.set_num_threads(2)

ROOT = Path(__file__).resolve().parents[1]


def load_default_params() -> dict:
    from dmc.params import load_params

    return load_params(ROOT / "params.yaml")


@pytest.fixture
def params():
    return load_default_params()


def with_overrides(params: dict, **dotted) -> dict:
    """A copy of ``params`` with ``a__b=value`` setting params["a"]["b"]."""
    out = copy.deepcopy(params)
    for key, value in dotted.items():
        *head, last = key.split("__")
        node = out
        for k in head:
            node = node[k]
        node[last] = value
    return out


def write_params(path: Path, params: dict) -> Path:
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory):
    """48 synthetic videos (8 s, 4 segments each) decoded into 2 shards: shared by the
    training, feature and pipeline tests."""
    from dmc.shards import build_index, videos_of_shard, write_shard
    from dmc.synth import generate_videos

    root = tmp_path_factory.mktemp("corpus")
    p = load_default_params()
    s = p["synth"]
    generate_videos(root / "videos", root / "ground_truth", n_videos=48, seconds=s["video_seconds"],
                    width=s["width"], height=s["height"], fps=s["fps"], audio_rate=s["audio_rate"],
                    other_containers=s["other_containers"], max_sources=s["max_sources"],
                    max_distractors=s["max_distractors"], seed=3)
    dirs = []
    for shard in range(2):
        dirs.append(root / "decoded" / f"shard-{shard:05d}")
        write_shard(dirs[-1], root / "videos", videos_of_shard(root / "videos", shard, 2), p["decode"])
    build_index(dirs, root / "decoded", p["decode"])
    return root
