"""Every domain: the Domain protocol (`base.py`), the built-in arithmetic domain, and the domains an LLM
teacher describes from a YAML spec (`llm.py`, its spec format `spec.py` and the shipped `specs/`, their
answer checkers `checking.py`, and `builtin_view.py`, a built-in domain seen through the same interface).

Below, the registry of built-in domains: name -> factory. Add a domain by adding one line here."""
from __future__ import annotations

from typing import Callable

from ioa.domains.base import Domain


def _arithmetic() -> Domain:
    from ioa.domains.arithmetic import ArithmeticDomain

    return ArithmeticDomain()


DOMAINS: dict[str, Callable[[], Domain]] = {
    "arithmetic": _arithmetic,
}


def load_domain(name: str) -> Domain:
    try:
        factory = DOMAINS[name]
    except KeyError:
        known = ", ".join(sorted(DOMAINS))
        raise ValueError(f"unknown domain {name!r}; known domains: {known}") from None
    return factory()
