"""Known truth: a simulated learner on the built-in domain, and what the Identifier recovers from it.

The learner succeeds on a composite problem only when the skills of all its declared prerequisites
succeed in that same problem (plus a small guess rate). The Identifier never sees the declared
graph; it must recover it from the attempts alone.
"""
from __future__ import annotations

import pytest

from ioa.config import IdentifierConfig
from ioa.domains import load_domain
from ioa.identify import diagnose
from ioa.probe import expand_groups, grade, probe_problems
from ioa.students.simulated import SimulatedLearner, random_mastery
from ioa.teachers import load_teacher


def probe_attempts(domain, mastery, n=60, seed=0):
    modules = [m.id for m in domain.modules()]
    items = expand_groups(probe_problems(domain, modules, n, 0.5, 0.5, seed))
    student = SimulatedLearner(mastery, domain.declared_prerequisites(), guess_rate=0.05, seed=seed)
    teacher = load_teacher("procedural", domain)
    return (grade(domain, items, teacher.respond(items), "teacher")
            + grade(domain, items, student.respond(items), "student"))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_identifier_recovers_the_declared_graph(seed):
    domain = load_domain("arithmetic")
    mastery = random_mastery([m.id for m in domain.modules()], seed, low=0.55, high=0.9)
    diagnosis = diagnose(probe_attempts(domain, mastery, seed=seed), IdentifierConfig())
    found = {(e.source, e.target) for e in diagnosis.edges}
    truth = set(domain.declared_prerequisites())
    precision = len(found & truth) / len(found)
    recall = len(found & truth) / len(truth)
    assert precision >= 0.8 and recall >= 0.8, (precision, recall, sorted(found - truth), sorted(truth - found))


def test_side_steps_are_not_mistaken_for_prerequisites():
    domain = load_domain("arithmetic")
    mastery = random_mastery([m.id for m in domain.modules()], 7, low=0.55, high=0.9)
    found = {(e.source, e.target) for e in diagnose(probe_attempts(domain, mastery, seed=7), IdentifierConfig()).edges}
    side = {("place_value", "multi_digit_multiplication"), ("rounding", "order_of_operations"),
            ("rounding", "division_with_remainder"), ("place_value", "word_problems")}
    assert not (found & side)


def test_planted_deficient_modules_are_flagged_exactly_by_the_gap_rule():
    domain = load_domain("arithmetic")
    ids = [m.id for m in domain.modules()]
    planted = {"fractions", "linear_equations", "multiplication_facts"}
    mastery = {m: (0.2 if m in planted else 0.97) for m in ids}
    cfg = IdentifierConfig()
    diagnosis = diagnose(probe_attempts(domain, mastery, n=40), cfg)
    for m in diagnosis.modules:
        assert m.p_teacher == 1.0
        assert m.deficient == (m.gap > cfg.tau_gap)  # the rule, exactly
    flagged = {m.id for m in diagnosis.modules if m.deficient}
    assert planted <= flagged
    # what else is flagged depends on a planted module: its prerequisites' failures propagate
    truth = domain.declared_prerequisites()
    for extra in flagged - planted:
        assert any(s in planted and t == extra for s, t in truth), extra
