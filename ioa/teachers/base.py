"""The Teacher protocol: what the method needs from a teacher, small enough for procedural and LLM ones.

Methods take and return batches so that an API-backed teacher can run requests concurrently.
"""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

from ioa.types import Problem, Solution, Step


@runtime_checkable
class Teacher(Protocol):
    name: str

    def make_problems(self, module_id: str, difficulty: float, n: int, seed: int) -> list[Problem]:
        """`n` new problems for a module at a difficulty; the same seed gives the same problems."""
        ...

    def solve(self, problems: Sequence[Problem]) -> list[Solution]:
        """A worked solution with a final answer for each problem, raw output kept."""
        ...

    def decompose(self, problem: Problem) -> list[Step]:
        """The sub-questions of a composite problem, each tagged with the module it exercises."""
        ...
