"""The procedural teacher for built-in domains: exact answers and worked solutions from the generators.

It never errs (P_T = 1 on every module), costs nothing, and is the default teacher of `ioa run`.
"""
from __future__ import annotations

import random
from typing import Sequence

from ioa.domains.base import Domain
from ioa.types import Problem, Solution, Step


class ProceduralTeacher:
    def __init__(self, domain: Domain):
        self.domain = domain
        self.name = f"procedural:{domain.name}"

    def make_problems(self, module_id: str, difficulty: float, n: int, seed: int) -> list[Problem]:
        return [self.domain.generate(module_id, difficulty, seed + i) for i in range(n)]

    def solve(self, problems: Sequence[Problem]) -> list[Solution]:
        out = []
        for p in problems:
            text = p.solution.strip()
            raw = f"{text}\nAnswer: {p.answer}" if text else f"Answer: {p.answer}"
            out.append(Solution(problem_id=p.id, text=text, answer=p.answer, raw=raw))
        return out

    def decompose(self, problem: Problem) -> list[Step]:
        return list(problem.steps)

    def respond(self, problems: Sequence[Problem]) -> list[str]:
        """As a learner when probed: its worked solution with the final answer line."""
        return [s.raw for s in self.solve(problems)]

    def new_task(self, seeds: Sequence[Problem], seed: int) -> Problem:
        """Self-Instruct's step "write a new task like these": a seed task's module at a nearby difficulty.

        The procedural stand-in for an LLM prompted with the sampled seed tasks; like it, the new task
        follows the seeds' distribution, so what gets generated is what the seed pool already covers.
        """
        rng = random.Random(seed)
        base = rng.choice(list(seeds))
        difficulty = min(1.0, max(0.0, base.difficulty + rng.uniform(-0.1, 0.1)))
        return self.domain.generate(base.module, round(difficulty, 4), seed)
