"""Choosing which worked examples to teach: the ones the student finds hardest now (pure functions).

The Identifier finds the modules the student does not know; inside a module, not every problem is
equally unknown (a sum without a carry is nearly free, one with two carries is not). With
`synthesis.candidates_per_example: k` the teacher writes k candidates for each example a round
trains on, the student scores each by its mean loss per completion token (no training), and each
module keeps its hardest `n` in their original order (a load ramp stays a ramp). The candidates
cost teacher calls, which the budget counts; only the kept examples count as examples.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from ioa.types import Example


def with_candidates(counts: Mapping[str, Sequence[float]], k: int) -> dict[str, list[float]]:
    """Each difficulty repeated k times in place: k candidates drawn at the difficulty of each example."""
    return {m: [d for d in ds for _ in range(k)] for m, ds in counts.items()}


def repeat_targets(targets: Mapping[str, Sequence[str]], k: int) -> dict[str, list[str]]:
    """The failed item each candidate answers, repeated alongside `with_candidates`."""
    return {m: [t for t in ts for _ in range(k)] for m, ts in targets.items()}


def hardest_per_module(examples: Sequence[Example], losses: Sequence[float],
                       keep: Mapping[str, int]) -> list[Example]:
    """The `keep[module]` examples of each module with the highest loss, in their original order.

    Ties go to the earlier example; a module missing from `keep` keeps nothing.
    """
    if len(examples) != len(losses):
        raise ValueError(f"{len(examples)} examples but {len(losses)} losses")
    chosen: set[int] = set()
    for module, n in keep.items():
        idx = [i for i, e in enumerate(examples) if e.module == module]
        idx.sort(key=lambda i: (-losses[i], i))
        chosen.update(idx[: max(0, n)])
    return [e for i, e in enumerate(examples) if i in chosen]
