"""Evaluation of the student on held-out probe problems, per module, and the mastery gate.

Pure apart from the learner call: `per_module_accuracy` and `gate` only count.
"""
from __future__ import annotations

from typing import Any, Sequence

from ioa.domains.base import Domain
from ioa.grading import mastery_ratio, passes
from ioa.records import Evaluation, GateDecision
from ioa.students.base import Learner
from ioa.types import Problem


def evaluate(domain: Domain, learner: Learner, problems: Sequence[Problem]) -> Evaluation:
    """Accuracy per module and the graded items ({id, module, difficulty, correct, response})."""
    responses = learner.respond(problems)
    items = [
        {"id": p.id, "module": p.module, "difficulty": p.difficulty, "correct": domain.check(p, r), "response": r}
        for p, r in zip(problems, responses, strict=True)
    ]
    return Evaluation(accuracy=per_module_accuracy(items), items=items)


def per_module_accuracy(items: Sequence[dict[str, Any]]) -> dict[str, float]:
    totals: dict[str, list[int]] = {}
    for it in items:
        t = totals.setdefault(it["module"], [0, 0])
        t[0] += bool(it["correct"])
        t[1] += 1
    return {m: round(ok / n, 6) for m, (ok, n) in sorted(totals.items())}


def gate(accuracy: dict[str, float], p_teacher: dict[str, float], modules: Sequence[str],
         threshold: float) -> GateDecision:
    """The stage's mastery gate: min over its modules of P_S / P_T against the threshold."""
    ratios = {m: round(mastery_ratio(accuracy[m], p_teacher[m]), 6) for m in modules}
    worst = min(ratios.values()) if ratios else 1.0
    return GateDecision(passed=passes(worst, threshold), min_ratio=worst, threshold=threshold, ratios=ratios,
                        failing=sorted(m for m, r in ratios.items() if not passes(r, threshold)))
