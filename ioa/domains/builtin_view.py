"""A built-in (procedural) domain seen through the LLM domain's interface, so an LLM teacher can teach it.

Problems, reference answers, tagged steps and checking stay the domain's own (exact, free); the LLM
teacher writes the worked solutions and the Adapter's rewrites, and answers probes as a learner. This
is how a user checks a real teacher on a domain whose ground truth is known, and how the slow test
drives the loop with a small local Hugging Face teacher.
"""
from __future__ import annotations

from typing import Sequence

from ioa.domains.base import Domain
from ioa.domains.spec import DomainSpec
from ioa.llm.prompts import ANSWER_FORMATS
from ioa.types import Module, Problem


class BuiltinDomainView:
    def __init__(self, domain: Domain):
        self.inner = domain
        self.name = domain.name
        self.spec = DomainSpec(name=domain.name, description=f"the built-in {domain.name} domain", check="numeric")
        self.answer_format = ANSWER_FORMATS["numeric"]

    def modules(self) -> list[Module]:
        return self.inner.modules()

    def generate(self, module_id: str, difficulty: float, seed: int) -> Problem:
        return self.inner.generate(module_id, difficulty, seed)

    def check(self, problem: Problem, response: str) -> bool:
        return self.inner.check(problem, response)

    def check_step(self, step_answer: str, response: str) -> bool:
        return self.inner.check_step(step_answer, response)

    def declared_prerequisites(self) -> list[tuple[str, str]]:
        return self.inner.declared_prerequisites()

    def generate_many(self, specs: Sequence[tuple[str, float, int]]) -> list[Problem]:
        return [self.inner.generate(m, d, s) for m, d, s in specs]

    def check_many(self, problems: Sequence[Problem], responses: Sequence[str]) -> list[bool]:
        return [self.inner.check(p, r) for p, r in zip(problems, responses, strict=True)]
