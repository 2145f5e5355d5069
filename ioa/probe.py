"""Probing: held-out composite problems per module, expanded into problem + step items, and graded.

Probe items use seeds from a range synthesis never touches (`PROBE_SEED_BASE`), so what the student is
tested on is never what it was trained on.
"""
from __future__ import annotations

import dataclasses
import random
from typing import Sequence

from ioa.domains.base import Domain, GeneratesMany
from ioa.students.base import Learner
from ioa.types import Attempt, Problem

PROBE_SEED_BASE = 1_000_000_000
TEST_SEED_BASE = 2_000_000_000  # the held-out test set (eval.test_items_per_module): apart from probes too
PILOT_SEED_BASE = 3_000_000_000  # the Adapter calibration pilot's items (ioa.calibrate): apart from both
SEED_BASES = {"probe": PROBE_SEED_BASE, "test": TEST_SEED_BASE, "pilot": PILOT_SEED_BASE}


def probe_problems(
    domain: Domain, modules: Sequence[str], n: int, centre: float, spread: float, seed: int, role: str = "probe"
) -> list[Problem]:
    """n held-out problems per module with difficulties uniform in centre +- spread (clipped to [0, 1]); `role`
    (probe, test, pilot) picks a seed range of its own, so the three sets are drawn apart."""
    base, tag = SEED_BASES[role], role
    specs = []
    for module in modules:
        rng = random.Random(f"{tag}:{seed}:{module}")
        for i in range(n):
            d = min(1.0, max(0.0, centre + spread * (2 * rng.random() - 1)))
            specs.append((module, round(d, 4), base + seed * 100_000 + i))
    return generate_many(domain, specs)


def generate_many(domain: Domain, specs: Sequence[tuple[str, float, int]]) -> list[Problem]:
    """Problems for (module, difficulty, seed) specs: one batch for domains that can (LLM-written ones)."""
    if isinstance(domain, GeneratesMany):
        return list(domain.generate_many(specs))
    return [domain.generate(m, d, s) for m, d, s in specs]


def expand_groups(problems: Sequence[Problem]) -> list[Problem]:
    """Each composite problem as its own group: the problem item, then one item per step."""
    items = []
    for p in problems:
        items.append(dataclasses.replace(p, meta={**p.meta, "group": p.id, "role": "problem"}))
        for i, s in enumerate(p.steps):
            items.append(Problem(
                id=f"{p.id}#s{i}", module=s.module, difficulty=p.difficulty, question=s.question,
                answer=s.answer, meta={"group": p.id, "role": "step"},  # asked with the Answer: line
            ))
    return items


def grade(domain: Domain, items: Sequence[Problem], responses: Sequence[str], learner: str) -> list[Attempt]:
    out = []
    for item, response in zip(items, responses, strict=True):
        role = item.meta.get("role", "problem")
        ok = domain.check_step(item.answer, response) if role == "step" else domain.check(item, response)
        out.append(Attempt(learner=learner, module=item.module, group=item.meta.get("group", item.id), role=role,
                           correct=ok))
    return out


def probe(domain: Domain, learner: Learner, items: Sequence[Problem],
          learner_name: str) -> tuple[list[Attempt], list[str]]:
    """(attempts, raw responses) of one learner on the items."""
    responses = learner.respond(items)
    return grade(domain, items, responses, learner_name), responses
