"""Choosing the hardest candidates (ioa.select): pure functions."""
from __future__ import annotations

import pytest

from ioa.select import hardest_per_module, repeat_targets, with_candidates
from ioa.types import Example


def ex(i: int, module: str) -> Example:
    return Example(id=f"e{i}", module=module, prompt=f"q{i}", completion=f"c{i}", answer="1", difficulty=0.1)


def test_candidates_repeat_each_difficulty_in_place():
    assert with_candidates({"a": [0.1, 0.3], "b": [0.2]}, 3) == {"a": [0.1, 0.1, 0.1, 0.3, 0.3, 0.3], "b": [0.2] * 3}
    assert with_candidates({"a": [0.1]}, 1) == {"a": [0.1]}
    assert repeat_targets({"a": ["p1", "p2"]}, 2) == {"a": ["p1", "p1", "p2", "p2"]}


def test_hardest_per_module_keeps_the_highest_losses_in_their_order():
    examples = [ex(0, "a"), ex(1, "b"), ex(2, "a"), ex(3, "a"), ex(4, "b"), ex(5, "a")]
    losses = [0.5, 2.0, 0.1, 0.9, 1.0, 0.7]
    kept = hardest_per_module(examples, losses, {"a": 2, "b": 1})
    assert [e.id for e in kept] == ["e1", "e3", "e5"]  # a: 0.9 and 0.7 (not 0.5, 0.1); b: 2.0; original order


def test_ties_go_to_the_earlier_example_and_unlisted_modules_keep_nothing():
    examples = [ex(0, "a"), ex(1, "a"), ex(2, "b")]
    assert [e.id for e in hardest_per_module(examples, [1.0, 1.0, 5.0], {"a": 1})] == ["e0"]
    assert hardest_per_module(examples, [1.0, 1.0, 5.0], {"a": 5}) == examples[:2]


def test_losses_must_match_the_examples():
    with pytest.raises(ValueError, match="2 examples but 1 losses"):
        hardest_per_module([ex(0, "a"), ex(1, "a")], [1.0], {"a": 1})
