"""The Adapter's transforms, one by one, and composed."""
from __future__ import annotations

import re

import pytest

from ioa.adapt import adapt_solution, analogy, decompose, load_ramp, simplify, template
from ioa.config import AdapterConfig
from ioa.domains import load_domain
from ioa.grading import extract_answer
from ioa.types import Module, Problem, Step

DOMAIN = load_domain("arithmetic")
MODULES = {m.id: m for m in DOMAIN.modules()}
STRUCTURED = AdapterConfig(layout="structured")  # the paper's Given/Plan/Goal/Step/Check layout
EXPAND = AdapterConfig(expand_steps=True)  # off by default (measured to hurt, see README)


def test_decompose_has_the_five_phases_in_order():
    p = DOMAIN.generate("multi_digit_addition", 0.3, 5)
    phases = decompose(p, p.solution, {m.id: m.name for m in MODULES.values()})
    kinds = [k for k, _ in phases]
    assert kinds[:3] == ["extract", "relate", "formulate"] and kinds[-1] == "verify"
    assert set(kinds[3:-1]) == {"solve"} and len(kinds[3:-1]) == len(p.solution.splitlines())
    extract, relate, formulate = (t for _, t in phases[:3])
    assert "646" in extract and "44" in extract
    assert relate == "Use addition facts, then place value."
    assert formulate == "646 + 44 = ?"
    assert phases[-1][1] == "690 - 44 = 646."  # a real inverse-operation check


def test_side_steps_are_left_out_of_the_plan():
    p = DOMAIN.generate("word_problems", 0.3, 5)
    relate = dict(decompose(p, p.solution))["relate"]
    assert "place value" not in relate and relate.count("then") == 2  # the side step is left out
    assert dict(decompose(p, p.solution))["formulate"].startswith("How many")


def test_template_numbers_steps_and_labels_phases():
    text = template([("extract", "a"), ("solve", "x"), ("solve", "y"), ("verify", "ok")], note="picture")
    assert text.splitlines() == ["Idea: picture", "Given: a", "Step 1: x", "Step 2: y", "Check: ok"]


def test_simplify_uses_plainer_words_and_drops_filler():
    assert simplify("Note that we compute the sum; therefore it is 5.") == "we work out the sum; so it is 5."
    assert simplify("Determine x.") == "Find x."


def test_load_ramp_rises_from_the_easy_end():
    ramp = load_ramp(5, 0.0, 0.8)
    assert ramp == sorted(ramp) and ramp[0] == 0.0 and ramp[-1] == 0.8
    assert max(load_ramp(5, 0.0, 0.8, bridge=True)) == 0.4
    assert load_ramp(0, 0, 1) == [] and load_ramp(1, 0.2, 0.9) == [0.2]


def test_analogies_only_for_abstract_modules():
    assert "pizza" in analogy(MODULES["fractions"])
    assert analogy(MODULES["addition_facts"]) is None
    assert analogy(Module("x", "x", 2, abstract=True))  # a generic picture for unknown abstract modules


def test_every_module_adapts_to_one_answer_line_with_the_right_answer():
    for module in MODULES.values():
        for seed in range(5):
            p = DOMAIN.generate(module.id, 0.5, seed)
            text = adapt_solution(p, p.solution, "raw", module, AdapterConfig())
            assert text.count("Answer:") == 1 and text.splitlines()[-1] == f"Answer: {p.answer}"
            assert DOMAIN.check(p, text) and extract_answer(text, "strict") == p.answer


def test_switches_turn_transforms_off():
    p = DOMAIN.generate("fractions", 0.5, 1)
    full = adapt_solution(p, p.solution, "RAW", MODULES["fractions"], STRUCTURED)
    assert full.startswith("Idea: Think of a pizza") and "Given:" in full and "Step 1:" in full
    no_analogy = adapt_solution(p, p.solution, "RAW", MODULES["fractions"],
                                AdapterConfig(analogies=False, layout="structured"))
    assert "pizza" not in no_analogy
    plain = adapt_solution(p, p.solution, "RAW", MODULES["fractions"],
                           AdapterConfig(decompose=False, template=False, simplify=True, analogies=False))
    assert "Given:" not in plain and "Step 1:" not in plain and plain.endswith(f"Answer: {p.answer}")
    off = AdapterConfig(decompose=False, template=False, simplify=False, analogies=False)
    assert adapt_solution(p, p.solution, "RAW", MODULES["fractions"], off) == "RAW"


def test_a_problem_without_steps_or_numbers_still_adapts():
    p = Problem(id="q", module="m", difficulty=0.0, question="Name the capital of France.", answer="Paris",
                solution="It is Paris.")
    text = adapt_solution(p, p.solution, "", Module("m", "m", 0), STRUCTURED)
    assert "Read what is given." in text and text.endswith("Answer: Paris")
    assert decompose(Problem("q", "m", 0, "What is 1+1?", "2", steps=(Step("a", "b", "c"),)), "x")[1][0] == "relate"


def test_every_module_adapts_in_both_layouts():
    for cfg in (AdapterConfig(), STRUCTURED):
        for module in MODULES.values():
            for seed in range(3):
                p = DOMAIN.generate(module.id, 0.5, seed)
                text = adapt_solution(p, p.solution, "raw", module, cfg)
                assert text.count("Answer:") == 1 and DOMAIN.check(p, text)


def test_focused_layout_carries_only_the_modules_own_lines():
    names = {m.id: m.name for m in MODULES.values()}
    for module_id in ("addition_facts", "multiplication_facts", "multi_digit_addition", "multi_digit_subtraction",
                      "word_problems"):
        p = DOMAIN.generate(module_id, 0.3, 5)
        text = adapt_solution(p, p.solution, "raw", MODULES[module_id], AdapterConfig(), names)
        lines = text.splitlines()
        assert not any(ln.startswith(("Given:", "Plan:", "Check:", "Step ")) for ln in lines)
        # every solving line of the teacher is kept, in order
        solving = [ln.strip() for ln in p.solution.splitlines() if ln.strip()]
        assert [ln for ln in lines if ln in solving] == solving
        # the result is restated right before the answer line
        assert lines[-1] == f"Answer: {p.answer}" and lines[-2].rstrip(".").endswith(p.answer)


def test_focused_layout_restates_a_result_the_solution_left_implicit():
    p = Problem(id="q", module="m", difficulty=0.0, question="What is 2 + 2?", answer="4",
                solution="Count on from 2 by 2.")
    text = adapt_solution(p, p.solution, "", Module("m", "m", 0), AdapterConfig(simplify=False, goal_line=True))
    assert text.splitlines() == ["Goal: 2 + 2 = ?", "Count on from 2 by 2.", "So the answer is 4.", "Answer: 4"]
    p2 = Problem(id="q", module="m", difficulty=0.0, question="What is 2 + 2?", answer="4", solution="So 2 + 2 = 4.")
    assert adapt_solution(p2, p2.solution, "", Module("m", "m", 0), AdapterConfig()).splitlines()[-2] == "So 2 + 2 = 4."


def test_goal_line_off_starts_the_completion_with_the_teachers_first_solving_line():
    p = DOMAIN.generate("multi_digit_addition", 0.3, 5)
    module = MODULES["multi_digit_addition"]
    on = adapt_solution(p, p.solution, "raw", module, AdapterConfig(goal_line=True)).splitlines()
    off = adapt_solution(p, p.solution, "raw", module, AdapterConfig()).splitlines()  # the default
    assert on[0].startswith("Goal: ") and on[1:] == off
    assert off[0] == simplify(p.solution.splitlines()[0].strip()) and off[-1] == f"Answer: {p.answer}"


def test_expand_steps_writes_an_unmastered_step_out_in_its_own_module_form():
    from ioa.synthesize import worked_steps

    checked = 0
    for seed in range(30):
        p = DOMAIN.generate("multi_digit_multiplication", 0.3, seed)
        add = next(s for s in p.steps if s.module == "multi_digit_addition")
        a, b = (int(x) for x in add.question[8:].rstrip("?").split(" + "))
        worked = worked_steps(DOMAIN, p, frozenset({"multi_digit_addition"}), EXPAND)
        assert list(worked) == [add.question]
        mdm = MODULES["multi_digit_multiplication"]
        text = adapt_solution(p, p.solution, "raw", mdm, EXPAND, None, worked)
        lines = text.splitlines()
        head = next(i for i, line in enumerate(lines) if line == f"Add the parts: {a} + {b}.")
        assert lines[head + 1].startswith("Ones: ") and f"So {a} + {b} = {a + b}." in lines[head + 2:]
        assert DOMAIN.check(p, text) and lines[-1] == f"Answer: {p.answer}"
        # the same problem, column addition mastered (or the transform off): the one-line step stays
        for expand, cfg in ((frozenset(), EXPAND), (frozenset({"multi_digit_addition"}), AdapterConfig())):
            plain = adapt_solution(p, p.solution, "raw", MODULES["multi_digit_multiplication"], cfg, None,
                                   worked_steps(DOMAIN, p, expand, cfg))
            assert f"Add the parts: {a} + {b} = {a + b}." in plain and "Ones: " not in plain
        checked += 1
    assert checked == 30


def test_an_expanded_step_is_written_in_the_form_its_own_module_is_trained_in():
    """With explicit digits, carry and borrow steps on, an expanded column step repeats the lines the column
    module's own examples are trained on, not the teacher's column lines."""
    from ioa.domains.arithmetic import (
        borrow_through_ten,
        carry_first,
        column_add_explicit_lines,
        column_sub_explicit_lines,
    )
    from ioa.synthesize import worked_steps

    cfg = AdapterConfig(expand_steps=True, explicit_digits=True, carry_steps=True, borrow_steps=True)
    both = frozenset({"multi_digit_addition", "multi_digit_subtraction"})
    for seed in range(20):
        p = DOMAIN.generate("order_of_operations", 0.3, seed)
        worked = worked_steps(DOMAIN, p, both, cfg)
        add, sub = (next(s for s in p.steps if s.module == m) for m in sorted(both))
        (a, b), (c, e) = ([int(x) for x in re.findall(r"\d+", s.question)] for s in (add, sub))
        assert worked[add.question] == [carry_first(line) for line in column_add_explicit_lines(a, b)]
        assert worked[sub.question] == [borrow_through_ten(line) for line in column_sub_explicit_lines(c, e)]
        text = adapt_solution(p, p.solution, "raw", MODULES["order_of_operations"], cfg, None, worked)
        assert DOMAIN.check(p, text) and f"So {a} + {b} = {a + b}." in text and "So far: " in text
    plain = worked_steps(DOMAIN, DOMAIN.generate("order_of_operations", 0.3, 0), both, EXPAND)
    assert all("So far" not in line for lines in plain.values() for line in lines)  # the teacher's column lines


def test_expand_steps_leaves_lines_that_do_not_state_the_step():
    from ioa.adapt import expand_steps

    step = Step("What is 12 + 9?", "21", "multi_digit_addition")
    lines = ["Ones: 2 + 9 = 11.", "12 + 9 = 21 is the sum of the parts, so add 1.", "Total: 12 + 9 = 21."]
    out = expand_steps(lines, [step], {step.question: ["Ones: 2 + 9 = 11. Write 1 and carry 1.", "So 12 + 9 = 21."]})
    assert out == lines[:2] + ["Total: 12 + 9.", "Ones: 2 + 9 = 11. Write 1 and carry 1.", "So 12 + 9 = 21."]
    assert expand_steps(lines, [step], {}) == lines


def test_arithmetic_worked_steps_follow_each_modules_own_solutions():
    for module, a, b, op in (("multi_digit_addition", 1300, 455, "+"), ("multi_digit_subtraction", 702, 48, "-"),
                             ("addition_facts", 3, 4, "+"), ("multiplication_facts", 4, 3, "×")):
        lines = DOMAIN.worked_step(Step(f"What is {a} {op} {b}?", "0", module))
        value = {"+": a + b, "-": a - b, "×": a * b}[op]
        assert lines and lines[-1].endswith(f"{a} {op} {b} = {value}.")
    assert DOMAIN.worked_step(Step("What is the tens digit of 45?", "4", "place_value")) is None
    assert DOMAIN.worked_step(Step("What is 3 + 4?", "7", "place_value")) is None


def test_atomic_steps_train_on_the_domains_place_value_lines_and_keep_the_teachers_raw():
    from ioa.config import RunConfig
    from ioa.domains.arithmetic import multiplication_by_place_lines
    from ioa.methods.base import raw_solutions
    from ioa.synthesize import synthesize
    from ioa.teachers.procedural import ProceduralTeacher

    mdm = MODULES["multi_digit_multiplication"]
    counts = {mdm.id: [0.1, 0.2, 0.3]}

    def made(cfg: AdapterConfig):
        return synthesize(ProceduralTeacher(DOMAIN), DOMAIN, [mdm], counts, cfg, set(), "t", "synth", 0).examples

    atomic = made(AdapterConfig(atomic_steps=True, goal_line=True))
    assert len(atomic) == 3
    for e in atomic:
        lines = e.completion.splitlines()
        assert lines[0].startswith("Goal: ") and lines[-1] == f"Answer: {e.answer}"
        assert lines[1:-1] == multiplication_by_place_lines(e.meta["a"], e.meta["b"])  # the domain's lines
        raw = DOMAIN.generate(mdm.id, e.difficulty, int(e.problem_id.split("-")[1]))
        assert e.raw == f"{raw.solution}\nAnswer: {raw.answer}" and e.raw.splitlines()[:-1] != lines[1:-1]
    plain = made(AdapterConfig(goal_line=True))
    assert [e.completion.splitlines()[1:] for e in plain] == [e.raw.splitlines() for e in plain]  # goal line only
    # the no-adapter ablation trains on the teacher's raw lines
    assert raw_solutions(RunConfig(adapter={"atomic_steps": True})).adapter.atomic_steps is False


def column_and_fact_examples(cfg: AdapterConfig):
    """Two synthesized examples each of the two column modules and of addition facts under `cfg`."""
    from ioa.synthesize import synthesize
    from ioa.teachers.procedural import ProceduralTeacher

    picked = [MODULES["multi_digit_addition"], MODULES["multi_digit_subtraction"], MODULES["addition_facts"]]
    counts = {m.id: [0.1, 0.3] for m in picked}
    return synthesize(ProceduralTeacher(DOMAIN), DOMAIN, picked, counts, cfg, set(), "t", "synth", 0).examples


def test_explicit_digits_train_the_column_modules_on_the_domains_explicit_lines_only():
    from ioa.config import RunConfig
    from ioa.methods.base import raw_solutions

    examples = column_and_fact_examples(AdapterConfig(explicit_digits=True, goal_line=True))
    assert len(examples) == 6
    for e in examples:
        lines = e.completion.splitlines()
        problem = DOMAIN.generate(e.module, e.difficulty, int(e.problem_id.split("-")[1]))
        explicit = DOMAIN.explicit_lines(problem)
        assert lines[0].startswith("Goal: ") and lines[-1] == f"Answer: {e.answer}"
        assert lines[1:-1] == (explicit or problem.solution.splitlines())  # the facts keep the teacher's lines
        assert ("So far:" in e.completion) == (e.module != "addition_facts") and "So far" not in e.raw
    assert raw_solutions(RunConfig(adapter={"explicit_digits": True})).adapter.explicit_digits is False


@pytest.mark.parametrize("explicit", [False, True])
def test_carry_steps_rewrite_the_carried_sums_of_the_form_the_column_modules_are_trained_in(explicit):
    from ioa.config import RunConfig
    from ioa.methods.base import raw_solutions

    cfg = AdapterConfig(explicit_digits=explicit, carry_steps=True)
    plain = {e.id: e for e in column_and_fact_examples(cfg.model_copy(update={"carry_steps": False}))}
    for e in column_and_fact_examples(cfg):
        problem = DOMAIN.generate(e.module, e.difficulty, int(e.problem_id.split("-")[1]))
        form = (DOMAIN.explicit_lines(problem) if explicit else None) or problem.solution.splitlines()
        assert e.completion.splitlines()[:-1] == DOMAIN.carry_step_lines(form)
        assert e.raw == plain[e.id].raw and ("So far:" in e.completion) == (explicit and e.module != "addition_facts")
        if re.search(r"\d \+ \d \+ 1 =", plain[e.id].completion):
            assert e.completion != plain[e.id].completion and ", " in e.completion
    assert raw_solutions(RunConfig(adapter={"carry_steps": True})).adapter.carry_steps is False


@pytest.mark.parametrize("explicit", [False, True])
def test_borrow_steps_rewrite_the_borrowed_differences_of_the_form_the_column_modules_are_trained_in(explicit):
    from ioa.config import RunConfig
    from ioa.methods.base import raw_solutions

    cfg = AdapterConfig(explicit_digits=explicit, carry_steps=True, borrow_steps=True)
    plain = {e.id: e for e in column_and_fact_examples(cfg.model_copy(update={"borrow_steps": False}))}
    rewritten = 0
    for e in column_and_fact_examples(cfg):
        problem = DOMAIN.generate(e.module, e.difficulty, int(e.problem_id.split("-")[1]))
        form = (DOMAIN.explicit_lines(problem) if explicit else None) or problem.solution.splitlines()
        assert e.completion.splitlines()[:-1] == DOMAIN.borrow_step_lines(DOMAIN.carry_step_lines(form))
        assert e.raw == plain[e.id].raw
        if re.search(r"borrow: 1[1-8] - ", plain[e.id].completion):
            rewritten += 1
            assert e.module == "multi_digit_subtraction" and "borrow: 10 - " in e.completion
        else:
            assert e.completion == plain[e.id].completion
    assert rewritten > 0
    assert raw_solutions(RunConfig(adapter={"borrow_steps": True})).adapter.borrow_steps is False


def test_the_default_preset_trains_the_column_procedures_in_explicit_digits_with_carry_steps():
    from ioa.config import load_config

    adapter = load_config(preset="default").adapter
    examples = column_and_fact_examples(adapter)
    columns = [e for e in examples if e.module == "multi_digit_addition"]
    assert columns and all("So far:" in e.completion for e in columns)
    assert not any(re.search(r"\d \+ \d \+ 1 =", e.completion) for e in examples)
    assert not load_config(preset="compare").adapter.explicit_digits  # 20 steps: measured to lose there


def test_peel_columns_train_the_column_modules_on_the_domains_peeled_lines_only():
    from ioa.config import RunConfig
    from ioa.methods.base import raw_solutions

    examples = column_and_fact_examples(AdapterConfig(peel_columns=True, anchor_line=True))
    assert len(examples) == 6
    for e in examples:
        lines = e.completion.splitlines()
        problem = DOMAIN.generate(e.module, e.difficulty, int(e.problem_id.split("-")[1]))
        peeled = DOMAIN.peeled_lines(problem)
        assert lines[0].endswith(f": {MODULES[e.module].name.lower()}.") and lines[-1] == f"Answer: {e.answer}"
        assert lines[1:-1] == (peeled or problem.solution.splitlines())  # the facts keep the teacher's lines
        assert ("Left:" in e.completion) == (e.module != "addition_facts" and len(peeled) > 2)
    assert raw_solutions(RunConfig(adapter={"peel_columns": True})).adapter.peel_columns is False


def test_anchor_line_copies_the_task_and_names_the_skill_before_the_solving_lines():
    anchored = AdapterConfig(anchor_line=True, goal_line=True)  # the anchor wins over the goal line
    for module_id, task in [("multi_digit_addition", " + "), ("multi_digit_multiplication", " × "),
                            ("multiplication_facts", " × ")]:
        p = DOMAIN.generate(module_id, 0.5, 3)
        plain = adapt_solution(p, p.solution, "RAW", MODULES[module_id], AdapterConfig())
        text = adapt_solution(p, p.solution, "RAW", MODULES[module_id], anchored)
        first, *rest = text.splitlines()
        expression = p.question.removeprefix("What is ").rstrip("?")
        assert task in expression and first == f"{expression}: {MODULES[module_id].name.lower()}."
        assert rest == plain.splitlines()  # the opening line is the only change
        assert extract_answer(text) == p.answer


def test_table_steps_take_the_place_of_the_checked_division_and_leave_the_checked_mean():
    from ioa.synthesize import synthesize
    from ioa.teachers.procedural import ProceduralTeacher

    picked = [MODULES["division_facts"], MODULES["mean"]]
    counts = {m.id: [0.1, 0.3] for m in picked}
    examples = synthesize(ProceduralTeacher(DOMAIN), DOMAIN, picked, counts,
                          AdapterConfig(checked_steps=True, table_steps=True), set(), "t", "synth", 0).examples
    assert len(examples) == 4
    for e in examples:
        problem = DOMAIN.generate(e.module, e.difficulty, int(e.problem_id.split("-")[1]))
        form = DOMAIN.table_lines(problem) or DOMAIN.checked_lines(problem)
        assert e.completion.splitlines() == form + [f"Answer: {e.answer}"]
        assert ("times table" in e.completion) == (e.module == "division_facts")


def test_the_stopped_table_takes_the_place_of_the_whole_table_for_division_facts_only():
    from ioa.synthesize import synthesize
    from ioa.teachers.procedural import ProceduralTeacher

    picked = [MODULES["division_facts"], MODULES["mean"]]
    counts = {m.id: [0.1, 0.3] for m in picked}
    examples = synthesize(ProceduralTeacher(DOMAIN), DOMAIN, picked, counts,
                          AdapterConfig(checked_steps=True, table_steps=True, table_stop=True), set(), "t", "synth",
                          0).examples
    assert len(examples) == 4
    for e in examples:
        problem = DOMAIN.generate(e.module, e.difficulty, int(e.problem_id.split("-")[1]))
        form = DOMAIN.stopped_table_lines(problem) or DOMAIN.checked_lines(problem)
        assert e.completion.splitlines() == form + [f"Answer: {e.answer}"]
        if e.module == "division_facts":
            assert len(form) < len(DOMAIN.table_lines(problem)) or int(e.answer) >= 9


def test_long_division_takes_the_place_of_the_teachers_one_line_quotient_only_when_on():
    from ioa.synthesize import synthesize
    from ioa.teachers.procedural import ProceduralTeacher

    picked = [MODULES["division_with_remainder"], MODULES["division_facts"]]
    counts = {m.id: [0.1, 0.3] for m in picked}
    for on in (True, False):
        examples = synthesize(ProceduralTeacher(DOMAIN), DOMAIN, picked, counts,
                              AdapterConfig(long_division=on), set(), "t", "synth", 0).examples
        assert len(examples) == 4
        for e in examples:
            problem = DOMAIN.generate(e.module, e.difficulty, int(e.problem_id.split("-")[1]))
            if on and e.module == "division_with_remainder":
                assert e.completion.splitlines() == DOMAIN.long_division_lines(problem) + [f"Answer: {e.answer}"]
            assert ("one digit at a time" in e.completion) == (on and e.module == "division_with_remainder")


def test_checked_steps_train_division_facts_and_the_mean_on_the_domains_checked_lines_only():
    from ioa.config import RunConfig
    from ioa.methods.base import raw_solutions
    from ioa.synthesize import synthesize
    from ioa.teachers.procedural import ProceduralTeacher

    picked = [MODULES["division_facts"], MODULES["mean"], MODULES["addition_facts"]]
    counts = {m.id: [0.1, 0.3] for m in picked}
    examples = synthesize(ProceduralTeacher(DOMAIN), DOMAIN, picked, counts,
                          AdapterConfig(checked_steps=True, table_steps=False), set(), "t", "synth", 0).examples
    assert len(examples) == 6
    for e in examples:
        lines = e.completion.splitlines()
        problem = DOMAIN.generate(e.module, e.difficulty, int(e.problem_id.split("-")[1]))
        checked = DOMAIN.checked_lines(problem)
        assert lines[-1] == f"Answer: {e.answer}"
        assert lines[:-1] == (checked or problem.solution.splitlines())  # the facts keep the teacher's lines
        assert ("Try " in e.completion or "one at a time" in e.completion) == (e.module != "addition_facts")
    assert raw_solutions(RunConfig(adapter={"checked_steps": True})).adapter.checked_steps is False
    assert raw_solutions(RunConfig()).adapter.table_steps is False  # vanilla keeps the teacher's lines
