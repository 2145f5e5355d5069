"""A simulated learner with known per-module mastery, for tests and for dry runs without a model.

Skills are latent and drawn once per (group, module): within one composite problem, the outcome of a
step on module A and the use of A inside the problem are the same draw. A problem on module B succeeds
when B's own skill and the skills of all of B's prerequisites succeed, or by a lucky guess. The
learner reads the prerequisite graph it is given (the domain's declared one): it is the ground truth
the Identifier must recover without seeing it.
"""
from __future__ import annotations

import hashlib
import random
from typing import Iterable, Mapping, Sequence

from ioa.types import Problem


def _unit(*parts: object) -> float:
    """A deterministic uniform number in [0, 1) from the parts (stable across processes)."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class SimulatedLearner:
    def __init__(
        self,
        mastery: Mapping[str, float],
        prerequisites: Iterable[tuple[str, str]] = (),
        guess_rate: float = 0.05,
        seed: int = 0,
        name: str = "student",
    ):
        self.mastery = dict(mastery)
        self.requires: dict[str, set[str]] = {}
        for source, target in prerequisites:
            self.requires.setdefault(target, set()).add(source)
        self.guess_rate = guess_rate
        self.seed = seed
        self.name = name

    def skill(self, group: str, module: str) -> bool:
        return _unit(self.seed, "skill", group, module) < self.mastery.get(module, 0.0)

    def solves(self, problem: Problem) -> bool:
        group = problem.meta.get("group", problem.id)
        if problem.meta.get("role") == "step":
            return self.skill(group, problem.module)
        needed = {problem.module} | self.requires.get(problem.module, set())
        if all(self.skill(group, m) for m in needed):
            return True
        return _unit(self.seed, "guess", group, problem.module) < self.guess_rate

    def respond(self, problems: Sequence[Problem]) -> list[str]:
        return [f"Answer: {p.answer}" if self.solves(p) else "Answer: I do not know" for p in problems]


def random_mastery(module_ids: Sequence[str], seed: int, low: float = 0.3, high: float = 1.0) -> dict[str, float]:
    rng = random.Random(seed)
    return {m: round(rng.uniform(low, high), 3) for m in module_ids}
