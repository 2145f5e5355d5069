"""A teacher wrapper that counts what the teacher was asked for: the unit of the equal budget.

One call is one item the teacher wrote or answered (a problem, a worked solution, a probe answer, a new
instruction); for an LLM teacher that is one API request. Tokens are estimated at four characters each
for every teacher, so methods are compared on the same scale; an LLM teacher's exact usage and cost are
in its own ledger (teacher_calls.jsonl).
"""
from __future__ import annotations

from typing import Any, Sequence

from ioa.teachers.base import Teacher
from ioa.types import Problem, Solution, Step


def estimate_tokens(*texts: str) -> int:
    return sum(len(t) for t in texts) // 4 + len(texts)


class MeteredTeacher:
    def __init__(self, inner: Any):
        self.inner = inner
        self.name = inner.name
        self.calls = 0
        self.tokens = 0
        self.limit: int | None = None  # calls allowed in total; `exhausted` says when they are spent

    def __getattr__(self, name: str) -> Any:
        # The inner teacher's optional capabilities (make_problems_many, adapt_many: ioa.teachers.base)
        # pass through, so an isinstance check on the meter answers for the teacher it wraps.
        return getattr(self.inner, name)

    def count(self, calls: int, *texts: str) -> None:
        self.calls += calls
        self.tokens += estimate_tokens(*texts) if texts else 0

    def exhausted(self, need: int = 1) -> bool:
        return self.limit is not None and self.calls + need > self.limit

    def make_problems(self, module_id: str, difficulty: float, n: int, seed: int) -> list[Problem]:
        out = self.inner.make_problems(module_id, difficulty, n, seed)
        self.count(len(out), *[p.question + p.answer for p in out])
        return out

    def solve(self, problems: Sequence[Problem]) -> list[Solution]:
        out = self.inner.solve(problems)
        self.count(len(out), *[p.question + s.raw for p, s in zip(problems, out)])
        return out

    def decompose(self, problem: Problem) -> list[Step]:
        return self.inner.decompose(problem)

    def respond(self, problems: Sequence[Problem]) -> list[str]:
        out = self.inner.respond(problems)
        self.count(len(out), *[p.question + r for p, r in zip(problems, out)])
        return out

    def new_task(self, seeds: Sequence[Problem], seed: int) -> Problem:
        out = self.inner.new_task(seeds, seed)
        self.count(1, *[s.question for s in seeds], out.question)
        return out

    def snapshot(self) -> dict[str, int]:
        return {"teacher_calls": self.calls, "teacher_tokens": self.tokens}


def unmetered(teacher: Teacher) -> Teacher:
    """The teacher a meter wraps (the teacher itself when unmetered). The meter defines `new_task` for
    every teacher, so whether a teacher can write tasks is asked of this one."""
    return teacher.inner if isinstance(teacher, MeteredTeacher) else teacher
