import copy
import hashlib
import sys
from pathlib import Path

import pytest
import torch
import yaml

sys.path.insert(0, str(Path(__file__).parent))   # tests/media.py
torch.set_num_threads(2)

ROOT = Path(__file__).resolve().parents[1]


def load_default_params() -> dict:
    from dmc.pipeline.params import load_params

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
    """96 synthetic videos (8 s, 4 segments each) decoded into 2 shards: shared by the
    training, feature and pipeline tests."""
    return decode_corpus(tmp_path_factory.mktemp("corpus"), 96, seed=3)


def decode_corpus(root: Path, n_videos: int, seed: int, num_shards: int = 2) -> Path:
    """Generate ``n_videos`` synthetic clips at the default synth settings and decode them."""
    from dmc.io.shards import build_index, videos_of_shard, write_shard
    from dmc.synth import generate_videos

    p = load_default_params()
    s = p["synth"]
    generate_videos(root / "videos", root / "ground_truth", n_videos=n_videos, seconds=s["video_seconds"],
                    width=s["width"], height=s["height"], fps=s["fps"], audio_rate=s["audio_rate"],
                    other_containers=s["other_containers"], max_sources=s["max_sources"],
                    max_distractors=s["max_distractors"], seed=seed)
    dirs = []
    for shard in range(num_shards):
        dirs.append(root / "decoded" / f"shard-{shard:05d}")
        write_shard(dirs[-1], root / "videos", videos_of_shard(root / "videos", shard, num_shards), p["decode"])
    build_index(dirs, root / "decoded", p["decode"])
    return root


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory):
    """DMC trained as `make demo` trains it (default params: the corpus of synth.videos, train.epochs,
    CPU): shared by the feature tests. A few minutes on 2 idle cores."""
    from dmc.model.training import Trainer

    d = tmp_path_factory.mktemp("trained")
    p = with_overrides(load_default_params(), train__checkpoint_every=0, train__device="cpu")
    decode_corpus(d / "corpus", p["synth"]["videos"], seed=p["synth"]["seed"])
    Trainer(p, d / "corpus" / "decoded", d / "dmc.pt", d / "log.csv", d / "ck").fit()
    return d / "dmc.pt"


def tree_hashes(root: Path) -> dict[str, str]:
    """SHA-256 of every data file under ``root`` (git's and Snakemake's marker files are not data:
    .snakemake_timestamp is in .dvcignore, so DVC neither stores nor restores it)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name not in (".gitignore", ".snakemake_timestamp")}
