"""The Organizer's invariants on random graphs (hypothesis) and hand-made cases."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ioa.config import OrganizerConfig
from ioa.grading import mastery_ratio
from ioa.identify import depths
from ioa.organize import ancestors, bridge, organize, select_targets
from ioa.types import Diagnosis, Edge, ModuleDiagnosis, Stage


def make_diagnosis(n, edge_pairs, p_student, p_teacher, severity):
    ids = [f"k{i:02d}" for i in range(n)]
    edges = [Edge(ids[a], ids[b], 10, 1.0, 0.0, 0.5) for a, b in edge_pairs]
    depth = depths(ids, edges)
    top = max(depth.values(), default=0)
    mods = []
    for i, k in enumerate(ids):
        pt, ps = p_teacher[i], p_student[i]
        gap = (pt - ps) / pt if pt > 0 else None
        mods.append(ModuleDiagnosis(id=k, p_teacher=pt, p_student=ps, gap=gap, deficient=gap is not None and gap > 0.3,
                                    teachable=pt > 0, connectivity=0.0, severity=severity[i],
                                    difficulty=depth[k] / top if top else 0.0))
    return Diagnosis(modules=tuple(mods), edges=tuple(edges))


@st.composite
def diagnoses(draw):
    n = draw(st.integers(1, 14))
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n))
    edge_pairs = sorted({(min(a, b), max(a, b)) for a, b in pairs if a != b})  # lower -> higher: a DAG
    unit = st.floats(0, 1, allow_nan=False)
    p_teacher = draw(st.lists(st.sampled_from([0.0, 0.5, 0.9, 1.0]), min_size=n, max_size=n))
    p_student = [draw(unit) * pt for pt in p_teacher]
    severity = draw(st.lists(unit, min_size=n, max_size=n))
    return make_diagnosis(n, edge_pairs, p_student, p_teacher, severity)


def first_stage(curriculum, skip_bridges=False):
    first = {}
    for s in curriculum.stages:
        if skip_bridges and s.bridge:
            continue
        for k in s.modules:
            first.setdefault(k, s.index)
    return first


@settings(max_examples=300, deadline=None)
@given(diagnoses(), st.sampled_from([0.05, 0.15, 0.3]), st.sampled_from([0.25, 1.0]), st.integers(1, 4))
def test_organizer_invariants(diagnosis, tau_zpd, coverage, per_stage):
    cfg = OrganizerConfig(tau_zpd=tau_zpd, tau_mastery=0.9, max_modules_per_stage=per_stage)
    cur = organize(diagnosis, cfg, coverage)
    by_id = {m.id: m for m in diagnosis.modules}
    above = ancestors(diagnosis)
    first = first_stage(cur)
    taught = set(first)
    targets = select_targets(diagnosis, coverage)

    assert [s.index for s in cur.stages] == list(range(len(cur.stages)))
    # what is taught: the targets plus their unmastered teachable prerequisites, nothing else
    needed = {a for t in targets for a in above[t]
              if by_id[a].teachable and mastery_ratio(by_id[a].p_student, by_id[a].p_teacher) < 0.9}
    assert taught == set(targets) | needed
    assert all(by_id[k].teachable for k in taught)
    deficient = [m for m in diagnosis.modules if m.deficient and m.teachable]
    assert len(targets) == (max(1, math.ceil(coverage * len(deficient) - 1e-9)) if deficient else 0)
    # prerequisites strictly earlier
    for k in taught:
        for a in above[k] & taught:
            assert first[a] < first[k]
    # difficulty in range, ZPD steps, thresholds, stage sizes
    for s in cur.stages:
        assert 0.0 <= s.difficulty <= 1.0
        assert s.mastery_threshold == 0.9
        assert 1 <= len(s.modules) <= per_stage
    for a, b in zip(cur.stages, cur.stages[1:]):
        assert abs(a.difficulty - b.difficulty) <= tau_zpd + 1e-6
    # severity first: a more severe module placed later was not yet available
    real = [s for s in cur.stages if not s.bridge]
    home = first_stage(cur, skip_bridges=True)  # a module's own stage, not the bridge leading into it
    for i, early in enumerate(real):
        for late in real[i + 1:]:
            for x in early.modules:
                for y in late.modules:
                    if by_id[y].severity > by_id[x].severity:
                        blockers = above[y] & taught
                        assert any(home[b] >= early.index for b in blockers), (x, y)


def test_chain_with_a_big_jump_gets_bridges():
    # k00 -> k01 -> k02 -> k03 -> k04 -> k05; only k00 and k05 unmastered-needed? make all deficient.
    d = make_diagnosis(6, [(i, i + 1) for i in range(5)], [0.0] * 6, [1.0] * 6, [0.5] * 6)
    cur = organize(d, OrganizerConfig(tau_zpd=0.15, max_modules_per_stage=1), coverage=1.0)
    real = [s for s in cur.stages if not s.bridge]
    assert [s.modules for s in real] == [(f"k0{i}",) for i in range(6)]
    assert [s.difficulty for s in real] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    bridges = [s for s in cur.stages if s.bridge]
    assert len(bridges) == 5  # each 0.2 jump > 0.15 needs one bridge at the midpoint
    assert bridges[0].modules == ("k01",) and bridges[0].difficulty == 0.1


def test_mastered_prerequisites_are_not_retaught_and_severity_orders_a_stage():
    # k00 -> k02, k01 -> k02; k00 mastered, k01 not; k03 independent and most severe.
    d = make_diagnosis(4, [(0, 2), (1, 2)], [1.0, 0.2, 0.0, 0.0], [1.0] * 4, [0.1, 0.2, 0.9, 0.95])
    cur = organize(d, OrganizerConfig(max_modules_per_stage=2), coverage=1.0)
    assert [s.modules for s in cur.stages if not s.bridge] == [("k03", "k01"), ("k02",)]


def test_coverage_limits_targets_to_the_most_severe():
    d = make_diagnosis(8, [], [0.0] * 8, [1.0] * 8, [i / 10 for i in range(8)])
    assert select_targets(d, 0.25) == ["k07", "k06"]


def test_bridge_down_jumps_too():
    stages = [Stage(0, ("a",), 0.9, 0.9), Stage(1, ("b",), 0.1, 0.9)]
    out = bridge(stages, 0.3)
    assert [round(s.difficulty, 3) for s in out] == [0.9, 0.633, 0.367, 0.1]
    assert [s.bridge for s in out] == [False, True, True, False]


def test_nothing_deficient_gives_an_empty_curriculum():
    d = make_diagnosis(3, [(0, 1)], [1.0, 1.0, 1.0], [1.0] * 3, [0.0] * 3)
    assert organize(d, OrganizerConfig()).stages == ()


def test_step_shares_follow_what_each_stage_teaches():
    from ioa.organize import step_shares

    def stage(i, modules, bridge=False):
        return Stage(index=i, modules=tuple(modules), difficulty=0.0, mastery_threshold=0.9, bridge=bridge)

    chain = [stage(0, ["a"]), stage(1, ["b"], True), stage(2, ["b"], True), stage(3, ["b"], True), stage(4, ["b"])]
    assert step_shares(chain, 20) == [7, 2, 2, 2, 7]
    assert sum(step_shares(chain, 23)) == 23
    assert step_shares([stage(0, ["a", "b"]), stage(1, ["c"])], 9) == [6, 3]
    assert step_shares([stage(0, ["a"])], 20) == [20]
    assert step_shares([stage(0, ["a"]), stage(1, ["b"]), stage(2, ["c"])], 2) == [1, 1, 0]
    assert step_shares([], 5) == []


def test_one_mastery_test_for_gate_and_organizer():
    from ioa.evaluate import gate
    from ioa.grading import mastered
    from ioa.organize import with_needed_prerequisites

    ps, pt = 0.5, 5 / 9  # P_S / P_T is 0.9 exactly, 0.8999999999999999 in floats
    assert ps / pt < 0.9 and mastered(ps, pt, 0.9) and not mastered(ps, 0.0, 0.9)
    assert gate({"a": ps}, {"a": pt}, ["a"], 0.9).passed
    pre = ModuleDiagnosis(id="pre", p_teacher=pt, p_student=ps, gap=1 - ps / pt, deficient=False, teachable=True,
                          connectivity=0.0, severity=0.0, difficulty=0.0)
    top = ModuleDiagnosis(id="top", p_teacher=1.0, p_student=0.0, gap=1.0, deficient=True, teachable=True,
                          connectivity=0.0, severity=1.0, difficulty=1.0)
    edge = Edge(source="pre", target="top", support=20, p_source_ok_given_target_ok=1.0,
                p_target_ok_given_source_fail=0.0, lift=1.0)
    diagnosis = Diagnosis(modules=(pre, top), edges=(edge,))
    assert with_needed_prerequisites(diagnosis, ["top"], 0.9) == ["top"]  # mastered at the gate: not re-taught


def test_fit_to_steps_gives_every_stage_its_minimum_in_dependency_order():
    from ioa.organize import fit_to_steps, step_shares

    def stage(i, modules, bridge=False, difficulty=0.0):
        return Stage(index=i, modules=tuple(modules), difficulty=difficulty, mastery_threshold=0.9, bridge=bridge)

    chain = [stage(0, ["a"]), stage(1, ["b"], True, 0.2), stage(2, ["b"], True, 0.4), stage(3, ["b"], False, 0.6),
             stage(4, ["c"], False, 0.8)]
    assert fit_to_steps(chain, None, 10) == chain and fit_to_steps(chain, 20, 0) == chain
    for total in (12, 20, 30, 45, 200):
        fitted = fit_to_steps(chain, total, 10)
        order = list(dict.fromkeys(m for s in fitted for m in s.modules))
        assert order == ["a", "b", "c"]  # every module once, prerequisites never after what needs them
        assert [s.index for s in fitted] == list(range(len(fitted)))
        assert len(fitted) == 1 or min(step_shares(fitted, total)) >= 10
    assert [s.modules for s in fit_to_steps(chain, 30, 10)] == [("a",), ("b",), ("c",)]  # bridges go first
    assert [s.modules for s in fit_to_steps(chain, 20, 10)] == [("a", "b", "c")]  # then neighbours merge
    assert fit_to_steps(chain, 200, 10) == chain  # enough steps: bridges and all stay
    assert fit_to_steps(chain, 20, 10)[0].difficulty == 0.8  # a merged stage goes as far as its later part
    pair = [stage(0, ["a"]), stage(1, ["b"], True, 0.3), stage(2, ["b"], False, 0.6)]
    assert [s.modules for s in fit_to_steps(pair, 20, 10)] == [("a",), ("b",)]  # the compare preset's chain


def test_organize_fits_the_curriculum_to_a_step_budget():
    d = make_diagnosis(3, [(0, 1), (1, 2)], [0.0] * 3, [1.0] * 3, [1.0, 0.5, 0.0])
    free = organize(d, OrganizerConfig(max_modules_per_stage=1), coverage=1.0)
    tight = organize(d, OrganizerConfig(max_modules_per_stage=1, min_stage_steps=10), coverage=1.0, total_steps=30)
    assert len(free.stages) > 2 and any(s.bridge for s in free.stages)
    assert not any(s.bridge for s in tight.stages) and len(tight.stages) == 3
    off = organize(d, OrganizerConfig(max_modules_per_stage=1, min_stage_steps=0), coverage=1.0, total_steps=20)
    assert off == free


def test_cumulative_stages_keep_every_earlier_module_in_dependency_order():
    # k00 -> k02 -> k03, k01 independent; all deficient. Blocked: [k00, k01] -> [k02] -> [k03] with bridges.
    d = make_diagnosis(4, [(0, 2), (2, 3)], [0.0] * 4, [1.0] * 4, [0.5] * 4)
    cfg = OrganizerConfig(max_modules_per_stage=2, cumulative=True)
    cur = organize(d, cfg, coverage=1.0)
    assert [s.modules for s in cur.stages] == [("k00", "k01"), ("k00", "k01", "k02"), ("k00", "k01", "k02", "k03")]
    assert not any(s.bridge for s in cur.stages) and [s.index for s in cur.stages] == [0, 1, 2]
    # fitted to 40 steps with at least 12 a stage (shares by modules: 9, 13, 18): the first two merge into one
    fitted = organize(d, cfg.model_copy(update={"min_stage_steps": 12}), coverage=1.0, total_steps=40)
    assert [s.modules for s in fitted.stages] == [("k00", "k01", "k02"), ("k00", "k01", "k02", "k03")]


def test_cumulative_and_interleave_exclude_each_other():
    with pytest.raises(ValidationError, match="exclude each other"):
        OrganizerConfig(cumulative=True, interleave=True)
