"""The paired bootstrap of `ioa compare` on hand-made cases whose answer is known."""
from __future__ import annotations

import random

import pytest

from ioa.stats import paired_bootstrap


def test_a_method_right_where_the_reference_is_wrong_is_ahead_by_exactly_one():
    seeds = [{"m": ([True] * 20, [False] * 20)} for _ in range(3)]
    ci = paired_bootstrap(seeds)
    assert (ci.mean, ci.low, ci.high, ci.verdict) == (1.0, 1.0, 1.0, "ahead")


def test_a_tied_pair_gives_an_interval_containing_zero():
    rng = random.Random(0)
    same = [rng.random() < 0.5 for _ in range(30)]
    ci = paired_bootstrap([{"m": (same, same)}] * 4)
    assert ci.mean == 0.0 and ci.low <= 0.0 <= ci.high and ci.verdict == "within noise"
    # independent coin flips for both methods: a true difference of 0, the interval covers it
    noisy = [{"m": ([rng.random() < 0.5 for _ in range(30)], [rng.random() < 0.5 for _ in range(30)])}
             for _ in range(5)]
    ci = paired_bootstrap(noisy)
    assert ci.low < 0.0 < ci.high and ci.verdict == "within noise"


def test_the_mean_is_the_mean_over_seeds_of_the_module_mean_difference():
    seeds = [{"a": ([True, True], [False, True]), "b": ([False] * 4, [False] * 4)},  # (+0.5 + 0) / 2
             {"a": ([True, False], [True, True])}]  # -0.5
    ci = paired_bootstrap(seeds, n_boot=200)
    assert ci.mean == pytest.approx((0.25 - 0.5) / 2) and ci.seeds == 2
    assert ci.low <= ci.mean <= ci.high


def test_a_clear_but_noisy_difference_is_ahead_and_deterministic():
    rng = random.Random(1)
    seeds = [{"m": ([rng.random() < 0.8 for _ in range(50)], [rng.random() < 0.3 for _ in range(50)])}
             for _ in range(5)]
    ci = paired_bootstrap(seeds)
    assert ci.verdict == "ahead" and 0.3 < ci.mean < 0.7 and ci.low > 0.2
    assert paired_bootstrap(seeds) == ci  # same input, same interval
    assert ci.to_dict()["verdict"] == "ahead"


def test_mismatched_items_and_empty_input():
    with pytest.raises(ValueError, match="module m"):
        paired_bootstrap([{"m": ([True], [True, False])}])
    assert paired_bootstrap([]) is None and paired_bootstrap([{"m": ([], [])}]) is None


def test_sign_test_counts_only_the_items_that_changed():
    from ioa.stats import item_changes, sign_test_p

    assert sign_test_p(0, 0) == 1.0 and sign_test_p(0, 5) == 1.0
    assert sign_test_p(5, 0) == pytest.approx(1 / 32)
    assert sign_test_p(4, 1) == pytest.approx(6 / 32)  # P(X >= 4), X ~ Bin(5, 1/2)
    earlier = [{"id": "a", "module": "m", "correct": True}, {"id": "b", "module": "m", "correct": False},
               {"id": "c", "module": "k", "correct": True}, {"id": "gone", "module": "k", "correct": True}]
    later = [{"id": "a", "module": "m", "correct": False}, {"id": "b", "module": "m", "correct": True},
             {"id": "c", "module": "k", "correct": False}, {"id": "new", "module": "k", "correct": False}]
    assert item_changes(earlier, later) == (2, 1)  # items scored only once do not count
    assert item_changes(earlier, later, {"k"}) == (1, 0)
