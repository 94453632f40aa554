"""Three-way train / val / test split of the videos by a stable hash of the path."""

import copy
import json
import os
import random
import subprocess
import sys
import zlib

import pytest
import yaml

from dmc.model.dataset import SPLITS, is_held_out, split_of, split_of_fractions
from dmc.pipeline.params import ParamsError, validate_params

VIDEOS = [f"clips/{c}/video_{i:05d}.mp4" for c in "abc" for i in range(2000)]


def test_split_is_a_pure_function_of_the_path(params):
    first = {v: split_of(v, params) for v in VIDEOS}
    shuffled = VIDEOS[:]
    random.Random(1).shuffle(shuffled)
    assert {v: split_of(v, params) for v in shuffled} == first
    # the same hash in another interpreter (no per-process hash seed involved)
    code = ("import json,sys; from dmc.model.dataset import split_of_fractions as f; "
            "print(json.dumps([f(v, 0.2, 0.2) for v in json.load(sys.stdin)]))")
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(VIDEOS[:300]), capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": "123"})
    assert json.loads(out.stdout) == [first[v] for v in VIDEOS[:300]]
    # pinned: CRC-32 of the path (a change of the hash would silently move videos between splits)
    h = (zlib.crc32(b"val:clips/a/video_00000.mp4") % 10_000) / 10_000
    assert split_of_fractions("clips/a/video_00000.mp4", 0.2, 0.2) == ("val" if h < 0.2 else "test" if h < 0.4
                                                                       else "train")


def test_splits_are_disjoint_and_cover_with_the_fractions(params):
    p = copy.deepcopy(params)
    p["train"]["val_fraction"], p["train"]["test_fraction"] = 0.15, 0.25
    groups = {s: {v for v in VIDEOS if split_of(v, p) == s} for s in SPLITS}
    assert set().union(*groups.values()) == set(VIDEOS)
    assert sum(map(len, groups.values())) == len(VIDEOS)          # each video in exactly one split
    n = len(VIDEOS)
    for split, share in (("val", 0.15), ("test", 0.25), ("train", 0.60)):
        assert abs(len(groups[split]) / n - share) < 0.03, (split, len(groups[split]) / n)


def test_validation_split_is_the_old_held_out_split(params):
    # the two-way split of before (still used by callers not yet on split_of) held out these
    assert all((split_of(v, params) == "val") == is_held_out(v, params["train"]["val_fraction"]) for v in VIDEOS)


def test_growing_test_fraction_only_moves_train_videos_to_test(params):
    small = {v: split_of_fractions(v, 0.2, 0.1) for v in VIDEOS}
    large = {v: split_of_fractions(v, 0.2, 0.3) for v in VIDEOS}
    for v in VIDEOS:
        assert small[v] == large[v] or (small[v], large[v]) == ("train", "test")


@pytest.mark.parametrize("val,test,message", [
    (0.5, 0.5, r"train\.test_fraction: train\.val_fraction \+ train\.test_fraction = 1 leaves no training"),
    (0.2, 0.0, r"train\.test_fraction: 0\.0 is less than or equal to the minimum of 0"),
    (0.2, "0.2", r"train\.test_fraction: '0\.2' is not of type 'number'"),
])
def test_bad_fractions_are_refused_naming_the_key(params, val, test, message):
    bad = copy.deepcopy(params)
    bad["train"]["val_fraction"], bad["train"]["test_fraction"] = val, test
    with pytest.raises(ParamsError, match=message):
        validate_params(bad)


def test_cli_refuses_bad_test_fraction(params, tmp_path):
    bad = copy.deepcopy(params)
    bad["train"]["test_fraction"] = 0.9
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(bad))
    proc = subprocess.run([sys.executable, "-m", "dmc.pipeline.cli", "--params", str(path), "check-params"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "train.test_fraction" in proc.stderr
