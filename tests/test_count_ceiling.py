"""The drawn-object count's ceiling (dmc.localization.count_ceiling.drawn_count_ceiling) against hand
computations, and the committed study against its own function."""

from __future__ import annotations

import json

import pytest
import yaml

from dmc.localization.count_ceiling import drawn_count_ceiling
from dmc.studies import count_ceiling as CC


def test_ceiling_by_hand_one_to_three_sources_zero_to_two_silent():
    # V = S + D with S on 1..3, D on 0..2, each pair 1/9: V = 1 -> S = 1 (1/9); V = 2 -> S in {1, 2}
    # (1/9 each); V = 3 -> S in {1, 2, 3}; V = 4 -> S in {2, 3}; V = 5 -> S = 3. The best rule is right
    # 1/9 at every V: 5/9; ties go to the smaller count
    acc, best = drawn_count_ceiling(3, 2, 8)
    assert acc == pytest.approx(5 / 9)
    assert best == {1: 1, 2: 1, 3: 1, 4: 2, 5: 3}


def test_without_silent_objects_the_count_is_the_drawn_number():
    acc, best = drawn_count_ceiling(3, 0, 8)
    assert acc == pytest.approx(1.0) and best == {1: 1, 2: 2, 3: 3}


def test_few_classes_clip_both_counts():
    # two classes: S = 3 is drawn as 2 sounding objects; D never fits beside two sources
    acc, best = drawn_count_ceiling(3, 1, 2)
    # pairs (S, D) each 1/6 -> (V, S'): (1,1) (2,1) (2,2) (2,2) (2,2) (2,2)
    assert best == {1: 1, 2: 2} and acc == pytest.approx(1 / 6 + 4 / 6)


def test_committed_study_is_its_function_of_params():
    from dmc.synth.videos import CLASS_NAMES

    committed = json.loads((CC.OUT / "count_ceiling.json").read_text())
    assert committed == CC.compute(yaml.safe_load(open("params.yaml"))["synth"], len(CLASS_NAMES))
    text = (CC.OUT / "count_ceiling.md").read_text()
    assert text.startswith("> **Study `count_ceiling`**: ") and f"| ceiling | {committed['ceiling']:.3f} |" in text
