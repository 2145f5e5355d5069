"""The Teacher protocol: what the method needs from a teacher, small enough for procedural and LLM ones,
and the optional capabilities some teachers have (checked with isinstance, each its own protocol).

Methods take and return batches so that an API-backed teacher can run requests concurrently.
"""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

from ioa.config import AdapterConfig
from ioa.students.base import Learner
from ioa.types import Module, Problem, Solution, Step


@runtime_checkable
class Teacher(Learner, Protocol):
    """A teacher is also a learner: it is probed like the student (`respond`) to measure P_T."""

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


@runtime_checkable
class MakesProblemsInBatches(Protocol):
    """Optional: many problems in one batch (an LLM teacher sends the requests concurrently)."""

    def make_problems_many(self, specs: Sequence[tuple[str, float, int]]) -> list[Problem]:
        """One problem per (module, difficulty, seed), in order."""
        ...


@runtime_checkable
class AdaptsSolutions(Protocol):
    """Optional: the teacher rewrites its solutions itself (an LLM teacher's Adapter), instead of the
    rule-based rewrite of ioa.adapt."""

    def adapt_many(self, problems: Sequence[Problem], solutions: Sequence[Solution], modules: Sequence[Module],
                   cfg: AdapterConfig) -> list[str]:
        """A student-fit completion per solution, with the transforms `cfg` enables."""
        ...


@runtime_checkable
class WritesTasks(Protocol):
    """Optional: Self-Instruct's step "write a new task like these" (the self-instruct baseline needs it)."""

    def new_task(self, seeds: Sequence[Problem], seed: int) -> Problem:
        """A new problem in the manner of the sampled seed tasks."""
        ...


@runtime_checkable
class Metered(Protocol):
    """A teacher whose calls are counted against the equal budget (ioa.teachers.metered); the engine
    wraps every run's teacher in one."""

    calls: int
    limit: int | None  # calls allowed in total (None: no cap)

    def exhausted(self, need: int = 1) -> bool:
        """Whether `need` more calls would pass the limit."""
        ...

    def snapshot(self) -> dict[str, int]:
        """Calls and estimated tokens so far: {"teacher_calls": ..., "teacher_tokens": ...}."""
        ...
