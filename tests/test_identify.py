"""Hand-computed cases for every Identifier formula."""
from __future__ import annotations

import warnings

import pytest

from ioa.config import IdentifierConfig
from ioa.identify import CycleWarning, break_cycles, diagnose
from ioa.types import Attempt, Edge


def problems(learner, module, outcomes, group_prefix="p"):
    return [Attempt(learner, module, f"{group_prefix}{module}{i}", "problem", ok) for i, ok in enumerate(outcomes)]


def pairs(learner, a, b, outcomes, prefix):
    """One group per (a_ok, b_ok) outcome: a step on a and a problem on b."""
    out = []
    for i, (a_ok, b_ok) in enumerate(outcomes):
        g = f"{prefix}{i}"
        out += [Attempt(learner, a, g, "step", a_ok), Attempt(learner, b, g, "problem", b_ok)]
    return out


def test_gap_deficient_and_teachable_by_hand():
    atts = (
        problems("teacher", "x", [True] * 4) + problems("student", "x", [True, False, False, False])  # gap 0.75
        + problems("teacher", "y", [True] * 4) + problems("student", "y", [True, True, True, False])  # gap 0.25
        + problems("teacher", "z", [False] * 4) + problems("student", "z", [True, False, False, False])  # P_T = 0
        + problems("teacher", "w", [True, True, False, False])
        + problems("student", "w", [True, False, False, False])  # (0.5-0.25)/0.5
    )
    d = diagnose(atts, IdentifierConfig(tau_gap=0.3))
    x, y, z, w = (d.module(k) for k in "xyzw")
    assert (x.p_teacher, x.p_student, x.gap, x.deficient) == (1.0, 0.25, 0.75, True)
    assert (y.gap, y.deficient) == (0.25, False)
    assert z.gap is None and not z.teachable and not z.deficient
    assert w.gap == pytest.approx(0.5) and w.deficient  # 0.5 > 0.3
    assert d.edges == ()


def test_gap_exactly_at_threshold_is_not_deficient():
    atts = problems("teacher", "x", [True] * 10) + problems("student", "x", [True] * 7 + [False] * 3)
    assert not diagnose(atts, IdentifierConfig(tau_gap=0.3)).module("x").deficient


def test_accuracy_falls_back_to_steps_when_no_problem_attempts():
    atts = [Attempt("student", "a", "g1", "step", True), Attempt("student", "a", "g2", "step", False),
            Attempt("teacher", "a", "g1", "step", True)]
    m = diagnose(atts, IdentifierConfig()).module("a")
    assert (m.p_student, m.p_teacher, m.n_student) == (0.5, 1.0, 2)


# 20 student pairs: 10 (ok, ok), 2 (ok, fail), 1 (fail, ok), 7 (fail, fail)
EDGE_OUTCOMES = [(True, True)] * 10 + [(True, False)] * 2 + [(False, True)] * 1 + [(False, False)] * 7


def test_edge_statistics_by_hand():
    d = diagnose(pairs("student", "a", "b", EDGE_OUTCOMES, "g"),
                 IdentifierConfig(min_support=20, tau_high=0.9, tau_low=0.15, tau_dep=0.7))
    (e,) = d.edges
    assert (e.source, e.target, e.support) == ("a", "b", 20)
    assert e.p_source_ok_given_target_ok == pytest.approx(10 / 11)  # P(a|b)
    assert e.p_target_ok_given_source_fail == pytest.approx(1 / 8)  # P(b|not a)
    assert e.lift == pytest.approx(10 / 12 - 1 / 8)  # 0.7083


@pytest.mark.parametrize("change", [
    {"min_support": 21},  # only 20 pairs
    {"tau_high": 0.92},  # P(a|b) = 0.909
    {"tau_low": 0.12},  # P(b|not a) = 0.125
    {"tau_dep": 0.71},  # lift = 0.708
])
def test_each_threshold_can_reject_the_edge(change):
    base = dict(min_support=20, tau_high=0.9, tau_low=0.15, tau_dep=0.7)
    d = diagnose(pairs("student", "a", "b", EDGE_OUTCOMES, "g"), IdentifierConfig(**{**base, **change}))
    assert d.edges == ()


def test_teacher_pairs_are_not_pooled_unless_asked():
    # A perfect teacher's (ok, ok) pairs next to a student whose a and b are independent.
    student = pairs("student", "a", "b", [(True, True), (True, False), (False, True), (False, False)] * 10, "s")
    teacher = pairs("teacher", "a", "b", [(True, True)] * 60, "t")
    cfg = dict(min_support=10, tau_high=0.5, tau_low=0.5, tau_dep=0.2)
    assert diagnose(student + teacher, IdentifierConfig(**cfg)).edges == ()
    pooled = diagnose(student + teacher, IdentifierConfig(**cfg, dependency_learners=["student", "teacher"]))
    assert len(pooled.edges) == 1  # the spurious edge pooling would create


def test_pairs_never_cross_learners_or_groups():
    # step and problem in different groups, or by different learners: no pair, so no edge.
    atts = [Attempt("student", "a", f"g{i}", "step", i % 2 == 0) for i in range(40)]
    atts += [Attempt("student", "b", f"h{i}", "problem", i % 2 == 0) for i in range(40)]
    atts += [Attempt("teacher", "b", f"g{i}", "problem", i % 2 == 0) for i in range(40)]
    cfg = IdentifierConfig(min_support=1, dependency_learners=["student", "teacher"])
    assert diagnose(atts, cfg).edges == ()


def test_no_edge_without_any_failure_of_the_source():
    atts = pairs("student", "a", "b", [(True, True)] * 30, "g")
    assert diagnose(atts, IdentifierConfig(min_support=1, tau_dep=0.0)).edges == ()


def test_too_few_source_failures_is_no_evidence():
    outcomes = [(True, True)] * 20 + [(False, False)] * 2
    assert diagnose(pairs("student", "a", "b", outcomes, "g"), IdentifierConfig(min_source_failures=3)).edges == ()
    assert len(diagnose(pairs("student", "a", "b", outcomes, "g"), IdentifierConfig(min_source_failures=2)).edges) == 1


def test_connectivity_severity_and_difficulty_by_hand():
    # chain a -> b -> c, plus isolated d; a is deficient.
    strong = [(True, True)] * 15 + [(False, False)] * 15
    atts = pairs("student", "a", "b", strong, "ab") + pairs("student", "b", "c", strong, "bc")
    atts += problems("student", "d", [True, False]) + problems("teacher", "d", [True, True])
    atts += problems("student", "a", [False] * 4) + problems("teacher", "a", [True] * 4)
    atts += [Attempt("teacher", "b", "tb", "problem", True), Attempt("teacher", "c", "tc", "problem", True)]
    d = diagnose(atts, IdentifierConfig(alpha=0.6, min_support=10))
    assert {(e.source, e.target) for e in d.edges} == {("a", "b"), ("b", "c")}
    a, b, c, dd = (d.module(k) for k in "abcd")
    assert ((a.connectivity, b.connectivity, c.connectivity, dd.connectivity)
            == (pytest.approx(2 / 3), pytest.approx(1 / 3), 0.0, 0.0))
    assert a.severity == pytest.approx(0.6 * 1.0 + 0.4 * 2 / 3)  # gap(a) = 1
    assert dd.severity == pytest.approx(0.6 * 0.5)
    assert (a.difficulty, b.difficulty, c.difficulty, dd.difficulty) == (0.0, 0.5, 1.0, 0.0)


def test_cycles_are_broken_at_the_weakest_edge_with_a_warning():
    e = lambda s, t, lift, sup=10: Edge(s, t, sup, 1.0, 0.0, lift)
    edges = [e("a", "b", 0.9), e("b", "c", 0.5), e("c", "a", 0.7), e("c", "d", 0.1)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept, dropped = break_cycles(edges)
    assert [(x.source, x.target) for x in dropped] == [("b", "c")]
    assert {(x.source, x.target) for x in kept} == {("a", "b"), ("c", "a"), ("c", "d")}
    assert any(issubclass(w.category, CycleWarning) for w in caught)
    # deterministic tie-break: equal lift and support -> drop the lexicographically largest edge
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, dropped = break_cycles([e("a", "b", 0.5), e("b", "a", 0.5)])
    assert [(x.source, x.target) for x in dropped] == [("b", "a")]


def test_two_cycles_each_lose_one_edge():
    e = lambda s, t, lift: Edge(s, t, 10, 1.0, 0.0, lift)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kept, dropped = break_cycles([e("a", "b", 0.3), e("b", "a", 0.4), e("c", "d", 0.9), e("d", "c", 0.2)])
    assert sorted((x.source, x.target) for x in dropped) == [("a", "b"), ("d", "c")]
    assert len(kept) == 2


def test_declared_prior_is_confirmed_kept_or_rejected_by_the_data():
    cfg = IdentifierConfig(prior="declared", min_support=6, min_source_failures=2)
    found = [(True, True)] * 4 + [(False, False)] * 4  # a clear A -> B: confirmed
    no_contrast = [(True, False)] * 3 + [(False, False)] * 3  # B never solved: no evidence either way, kept
    contradicted = [(True, True)] * 2 + [(False, True)] * 2 + [(True, False)] * 2 + [(False, False)] * 2  # no lift
    atts = (problems("student", "a", [True]) + problems("student", "c", [True]) + problems("student", "e", [True])
            + pairs("student", "a", "b", found, "g") + pairs("student", "c", "d", no_contrast, "h")
            + pairs("student", "e", "f", contradicted, "k") + pairs("student", "b", "d", found, "m"))
    prior = [("a", "b"), ("c", "d"), ("e", "f"), ("x", "b")]  # x is not in the run: ignored
    d = diagnose(atts, cfg, prior)
    origins = {(e.source, e.target): e.origin for e in d.edges}
    assert origins == {("a", "b"): "confirmed", ("c", "d"): "prior", ("b", "d"): "data"}
    assert [(e.source, e.target) for e in d.rejected_prior] == [("e", "f")] and d.rejected_prior[0].lift == 0.0
    # without the prior: only what the data found, all marked data
    plain = diagnose(atts, IdentifierConfig(min_support=6, min_source_failures=2), prior)
    assert {(e.source, e.target): e.origin for e in plain.edges} == {("a", "b"): "data", ("b", "d"): "data"}
    assert plain.rejected_prior == ()
    from ioa.types import Diagnosis

    assert Diagnosis.from_dict(d.to_dict()) == d  # origins and rejections survive diagnosis.json


def test_graph_orders_on_a_small_graph_and_its_cycle():
    from ioa.identify import depths, descendants, topological_order

    e = lambda s, t: Edge(s, t, 10, 1.0, 0.0, 0.5)
    dag = [e("b", "d"), e("a", "d"), e("d", "e"), e("c", "e")]
    nodes = ["e", "d", "c", "b", "a"]
    assert topological_order(nodes, dag) == ["a", "b", "c", "d", "e"]
    assert topological_order(["a", "b", "c"], [e("c", "a")]) == ["b", "c", "a"]  # ties in sorted order
    assert descendants(nodes, dag) == {"a": {"d", "e"}, "b": {"d", "e"}, "c": {"e"}, "d": {"e"}, "e": set()}
    assert depths(nodes, dag) == {"a": 0, "b": 0, "c": 0, "d": 1, "e": 2}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept, dropped = break_cycles(dag + [e("e", "b")])
    # the first cycle met searching from "a" in sorted order; all edges tie, so the largest goes
    assert dropped == [e("e", "b")] and kept == sorted(dag, key=lambda x: (x.source, x.target))
    assert [str(w.message) for w in caught] == ["prerequisite cycle d -> e -> b -> d: dropped weakest edge e -> b"]
