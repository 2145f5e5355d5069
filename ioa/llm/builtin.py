"""A built-in (procedural) domain seen through the LLM domain's interface, so an LLM teacher can teach it.

Problems, reference answers, tagged steps and checking stay the domain's own (exact, free); the LLM
teacher writes the worked solutions and the Adapter's rewrites, and answers probes as a learner. This
is how a user checks a real teacher on a domain whose ground truth is known, and how the slow test
drives the loop with a small local Hugging Face teacher.
"""
from __future__ import annotations

from typing import Any, Sequence

from ioa.domains.base import Domain
from ioa.llm.domain_spec import DomainSpec
from ioa.llm.prompts import ANSWER_FORMATS
from ioa.types import Problem


class BuiltinDomainView:
    def __init__(self, domain: Domain):
        self.inner = domain
        self.name = domain.name
        self.spec = DomainSpec(name=domain.name, description=f"the built-in {domain.name} domain", check="numeric")
        self.answer_format = ANSWER_FORMATS["numeric"]

    def __getattr__(self, name: str) -> Any:  # modules, generate, check, check_step, declared_prerequisites
        return getattr(self.inner, name)

    def generate_many(self, specs: Sequence[tuple[str, float, int]]) -> list[Problem]:
        return [self.inner.generate(m, d, s) for m, d, s in specs]

    def check_many(self, problems: Sequence[Problem], responses: Sequence[str]) -> list[bool]:
        return [self.inner.check(p, r) for p, r in zip(problems, responses, strict=True)]
