"""Tests for the arithmetic domain: module graph, generators, worked solutions, steps and checker."""
from __future__ import annotations

import re
from fractions import Fraction

import pytest

from ioa.domains import load_domain
from ioa.domains.arithmetic import ArithmeticDomain
from ioa.domains.base import Domain
from ioa.types import Problem

DOMAIN = ArithmeticDomain()
MODULES = DOMAIN.modules()
IDS = [m.id for m in MODULES]
LEVEL = {m.id: m.level for m in MODULES}
PREREQS: dict[str, set[str]] = {m: set() for m in IDS}
for _pre, _dep in DOMAIN.declared_prerequisites():
    PREREQS[_dep].add(_pre)
SEEDS = range(50)
DIFFICULTIES = (0.0, 0.5, 1.0)


def problems(module_id: str):
    for seed in SEEDS:
        for d in DIFFICULTIES:
            yield DOMAIN.generate(module_id, d, seed)


def off_by_one(answer: str) -> str:
    """The answer with its first integer increased by one: always a different value."""
    return re.sub(r"\d+", lambda m: str(int(m.group()) + 1), answer, count=1)


# ---------------------------------------------------------------- module graph


def test_protocol_and_registry():
    assert isinstance(DOMAIN, Domain)
    assert load_domain("arithmetic").name == "arithmetic"


def test_modules_levels_and_ids():
    assert len(MODULES) >= 16
    assert len(set(IDS)) == len(IDS)
    assert len({m.level for m in MODULES}) >= 4
    assert [m.level for m in MODULES] == sorted(m.level for m in MODULES)  # foundations first
    for kept in ("place_value", "addition_facts", "subtraction_facts", "multiplication_facts",
                 "multi_digit_addition", "multi_digit_subtraction", "multi_digit_multiplication",
                 "division_with_remainder", "fractions", "percentages", "order_of_operations",
                 "linear_equations", "linear_systems", "word_problems"):
        assert kept in IDS
    abstract = {m.id for m in MODULES if m.abstract}
    assert {"fractions", "percentages", "linear_equations", "linear_systems"} <= abstract
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", i) for i in IDS)


def test_declared_graph_is_a_layered_dag():
    edges = DOMAIN.declared_prerequisites()
    assert len(edges) == len(set(edges))
    for pre, dep in edges:
        assert pre in LEVEL and dep in LEVEL and pre != dep
        assert LEVEL[pre] < LEVEL[dep]  # strictly lower levels: no cycle possible
    for m in IDS:
        if LEVEL[m] == 0:
            assert not PREREQS[m]
        else:
            assert 1 <= len(PREREQS[m]) <= 3
            assert LEVEL[m] == 1 + max(LEVEL[p] for p in PREREQS[m])


def test_unknown_module_and_bad_difficulty_raise():
    with pytest.raises(ValueError):
        DOMAIN.generate("calculus", 0.5, 0)
    with pytest.raises(ValueError):
        DOMAIN.generate("addition_facts", 1.5, 0)


# ---------------------------------------------------------------- generators


@pytest.mark.parametrize("module_id", IDS)
def test_generate_properties(module_id):
    seen = set()
    for p in problems(module_id):
        assert p == DOMAIN.generate(module_id, p.difficulty, int(p.id.split("-")[1]))  # deterministic
        assert p.id not in seen
        seen.add(p.id)
        assert p.module == module_id and p.question and p.answer and p.solution
        assert "answer:" not in p.solution.lower()
        assert Problem.from_dict(p.to_dict()) == p
        assert DOMAIN.check(p, "Let me think.\n" + p.solution + "\nAnswer: " + p.answer)
        assert DOMAIN.check(p, "Answer: " + p.answer)
        assert not DOMAIN.check(p, "Answer: " + off_by_one(p.answer))
        assert not DOMAIN.check(p, "I don't know.")


@pytest.mark.parametrize("module_id", IDS)
def test_steps_match_declared_prerequisites(module_id):
    for p in problems(module_id):
        side = p.meta["side_steps"]
        assert all(isinstance(i, int) and 0 <= i < len(p.steps) for i in side)
        if LEVEL[module_id] == 0:
            assert p.steps == () and side == []
            continue
        essential = [s for i, s in enumerate(p.steps) if i not in side]
        assert sorted(s.module for s in essential) == sorted(PREREQS[module_id])  # one per prerequisite
        for i in side:
            tag = p.steps[i].module
            assert tag not in PREREQS[module_id] and tag != module_id and LEVEL[tag] < LEVEL[module_id]
        for s in p.steps:
            assert s.module != module_id and s.question.endswith(("?", "."))
            assert DOMAIN.check_step(s.answer, "Answer: " + s.answer)
            assert DOMAIN.check_step(s.answer, f"So it is {s.answer}.")
            assert not DOMAIN.check_step(s.answer, "Answer: " + off_by_one(s.answer))


def test_at_least_three_modules_have_side_steps():
    with_side = {m for m in IDS if DOMAIN.generate(m, 0.5, 0).meta["side_steps"]}
    assert len(with_side) >= 3


EQUATION = re.compile(r"(?<![\d/.])((?:-?\d+\s*[-+×÷]\s*)+-?\d+)\s*=\s*(-?\d+)(?![\d/]|\.\d|\s*R\b)")


def evaluate(expression: str) -> Fraction:
    python = re.sub(r"\d+", lambda m: f"Fraction({m.group()})", expression.replace("×", "*").replace("÷", "/"))
    return eval(python, {"Fraction": Fraction})  # only digits and operators reach here


@pytest.mark.parametrize("module_id", IDS)
def test_worked_solution_is_sound(module_id):
    answer_token = None
    for p in problems(module_id):
        lines = p.solution.splitlines()
        assert len(lines) >= 2 and all(line.strip() for line in lines)
        for left, right in EQUATION.findall(p.solution):  # every "a op b ... = c" in the text holds
            assert evaluate(left) == int(right), (p.id, left, right)
        answer_token = re.compile(rf"(?<![\d/=]){re.escape(p.answer)}(?![\d/])")
        assert answer_token.search(lines[-1]), (p.id, lines[-1])
        assert DOMAIN.check(p, lines[-1] + "\nAnswer: " + p.answer)
    assert answer_token is not None


def numbers_in(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", text)]


@pytest.mark.parametrize("module_id", IDS)
def test_difficulty_scales_the_numbers(module_id):
    def mean_magnitude(d):
        values = [n for seed in range(60) for n in numbers_in(DOMAIN.generate(module_id, d, seed).question)]
        return sum(values) / len(values)

    assert mean_magnitude(1.0) > mean_magnitude(0.0)


# ---------------------------------------------------------------- independent recomputation


def test_answers_recomputed_independently():
    for seed in range(40):
        for d in DIFFICULTIES:
            p = DOMAIN.generate("multi_digit_addition", d, seed)
            assert int(p.answer) == p.meta["a"] + p.meta["b"]
            p = DOMAIN.generate("multi_digit_subtraction", d, seed)
            assert int(p.answer) == p.meta["a"] - p.meta["b"] >= 0
            p = DOMAIN.generate("multi_digit_multiplication", d, seed)
            assert int(p.answer) == p.meta["a"] * p.meta["b"]
            p = DOMAIN.generate("division_with_remainder", d, seed)
            q, r = divmod(p.meta["a"], p.meta["b"])
            assert p.answer == f"{q} R {r}" and r > 0
            p = DOMAIN.generate("fractions", d, seed)
            total = sum(Fraction(n, den) for n, den in p.meta["fractions"])
            assert Fraction(p.answer) == total
            p = DOMAIN.generate("order_of_operations", d, seed)
            expression = p.question.removeprefix("What is ").removesuffix("?")
            assert int(p.answer) == eval(expression.replace("×", "*"))
            p = DOMAIN.generate("linear_equations", d, seed)
            m = p.meta
            assert m["a"] * int(p.answer) + m["b"] == m["c"]
            p = DOMAIN.generate("linear_systems", d, seed)
            x, y = map(int, re.findall(r"-?\d+", p.answer))
            m = p.meta
            assert m["a1"] * x + m["b"] * y == m["c1"] and m["a2"] * x - m["b"] * y == m["c2"]
            p = DOMAIN.generate("percentages", d, seed)
            assert Fraction(int(p.answer)) == Fraction(p.meta["percent"] * p.meta["of"], 100)
            p = DOMAIN.generate("mean", d, seed)
            assert Fraction(int(p.answer)) == Fraction(sum(p.meta["values"]), len(p.meta["values"]))
            p = DOMAIN.generate("rounding", d, seed)
            assert int(p.answer) == round(Fraction(p.meta["number"], 10 ** p.meta["place"])
                                          + Fraction(1, 10**9)) * 10 ** p.meta["place"]


def test_fraction_answers_are_in_lowest_terms():
    for seed in range(100):
        p = DOMAIN.generate("fractions", 1.0, seed)
        value = Fraction(p.answer)
        assert p.answer == (str(value.numerator) if value.denominator == 1
                            else f"{value.numerator}/{value.denominator}")


# ---------------------------------------------------------------- checker normalization


@pytest.mark.parametrize(
    ("expected", "response"),
    [
        ("42", "Answer: 42"),
        ("42", "answer: 42."),
        ("42", "Answer: 42 apples"),
        ("42", "Answer: $42"),
        ("42", "Answer: 42.0"),
        ("1234", "Answer: 1,234"),
        ("1234", "Answer: 1 234"),
        ("-7", "Answer: \u22127"),
        ("7", "Answer: x = 7"),
        ("42", "The total is 40 + 2 = 42."),
        ("3/4", "Answer: 3/4"),
        ("3/4", "Answer: 6/8"),
        ("3/4", "Answer: 0.75"),
        ("2", "Answer: 4/2"),
        ("17 R 2", "Answer: 17 R 2"),
        ("17 R 2", "Answer: 17 r 2"),
        ("17 R 2", "Answer: 17R2"),
        ("17 R 2", "Answer: 17 remainder 2"),
        ("17 R 2", "Answer: quotient 17 remainder 2"),
        ("17 R 2", "Answer: quotient is 17, remainder is 2"),
        ("17 R 0", "Answer: 17"),
        ("x=3, y=-2", "Answer: x=3, y=-2"),
        ("x=3, y=-2", "Answer: x = 3 and y = -2"),
        ("x=3, y=-2", "Answer: (3, -2)"),
        ("x=3, y=-2", "Answer: y = -2, x = 3"),
    ],
)
def test_checker_accepts(expected, response):
    assert DOMAIN.check_step(expected, response)


@pytest.mark.parametrize(
    ("expected", "response"),
    [
        ("42", "Answer: 43"),
        ("42", "Answer: 41 or 42"),
        ("42", "Answer: forty-two"),
        ("3/4", "Answer: 4/3"),
        ("3/4", "Answer: 3/0"),
        ("17 R 2", "Answer: 17"),
        ("17 R 2", "Answer: 17 R 3"),
        ("17 R 2", "Answer: 2"),
        ("x=3, y=-2", "Answer: x=3, y=2"),
        ("x=3, y=-2", "Answer: (-2, 3)"),
        ("x=3, y=-2", "Answer: x=3"),
        ("1234", "Answer: 1,2345"),
    ],
)
def test_checker_rejects(expected, response):
    assert not DOMAIN.check_step(expected, response)


@pytest.mark.parametrize("garbage", ["", "   ", "Answer:", "Answer: ???", "no numbers here", "\x00\xff", "1/0",
                                     "Answer: 1/0", "9" * 5000, "Answer: " + "(" * 100, None, 42, b"42", ["42"]])
def test_checker_never_raises_on_garbage(garbage):
    p = DOMAIN.generate("fractions", 0.5, 1)
    assert DOMAIN.check(p, garbage) is False
    assert DOMAIN.check_step("42", garbage) is False


def test_atomic_lines_put_no_product_beyond_a_times_table_fact_with_zeros():
    from ioa.domains.base import WritesAtomicSteps

    assert isinstance(DOMAIN, WritesAtomicSteps)
    products = re.compile(r"(\d+) × (\d+) = (\d+)")
    for p in problems("multi_digit_multiplication"):
        lines = DOMAIN.atomic_lines(p)
        text = "\n".join(lines)
        for left, right in EQUATION.findall(text):  # every equation holds, and adds or multiplies two numbers
            assert evaluate(left) == int(right) and len(numbers_in(left)) == 2, (p.id, left, right)
        steps = "\n".join(line for line in lines if not line.startswith("So "))  # "So" restates a result
        for a, b, _ in products.findall(steps):
            fact = all(len(n.rstrip("0")) == 1 for n in (a, b))
            assert fact or b == "10", (p.id, a, b)  # times 10 is a zero appended
        assert lines[-1] == f"So {p.question[8:-1]} = {p.answer}."
        assert DOMAIN.check(p, text + "\nAnswer: " + p.answer)
    assert DOMAIN.atomic_lines(DOMAIN.generate("multi_digit_addition", 0.3, 1)) is None


def test_atomic_lines_split_both_factors_by_place():
    from ioa.domains.arithmetic import multiplication_by_place_lines

    assert multiplication_by_place_lines(214, 7) == [
        "Split 214 into 200 + 10 + 4.", "200 × 7 = 1400.", "10 × 7 = 70.", "4 × 7 = 28.", "1400 + 70 = 1470.",
        "1470 + 28 = 1498.", "So 214 × 7 = 1498."]
    assert multiplication_by_place_lines(73, 23) == [
        "Split 23 into 20 + 3.", "70 × 3 = 210.", "3 × 3 = 9.", "210 + 9 = 219.", "So 73 × 3 = 219.",
        "70 × 20 = 1400.", "3 × 20 = 60.", "1400 + 60 = 1460.", "So 73 × 20 = 1460.",
        "Add the parts: 1460 + 219 = 1679.", "So 73 × 23 = 1679."]
    assert multiplication_by_place_lines(88, 18)[5] == "88 × 10 = 880."  # times ten: one line


@pytest.mark.parametrize("module, op", [("multi_digit_addition", "+"), ("multi_digit_subtraction", "-")])
def test_explicit_digits_name_each_digit_once_and_build_the_result_column_by_column(module, op):
    from ioa.domains.base import WritesExplicitDigits

    assert isinstance(DOMAIN, WritesExplicitDigits)
    for p in problems(module):
        a, b = int(p.meta["a"]), int(p.meta["b"])
        lines = DOMAIN.explicit_lines(p)
        for n, listing in zip((a, b), lines[:2]):  # "958: hundreds 9, tens 5, ones 8."
            places = re.findall(r"([a-z ]+?) (\d)", listing.split(": ", 1)[1])
            assert "".join(d for _, d in places) == str(n) and places[-1][0].strip() == "ones", listing
        so_far = [re.search(r"So far: (\d+)\.$", line)[1] for line in lines[2:-1]]
        assert len(so_far) == len(str(a)) and int(so_far[-1]) == int(p.answer), (p.id, lines)
        for before, after in zip(so_far, so_far[1:]):  # each column puts its digits in front
            assert after.endswith(before) or int(after) == int(before), (p.id, lines)
        assert lines[-1] == f"So {a} {op} {b} = {p.answer}."
        assert DOMAIN.check(p, "\n".join(lines) + "\nAnswer: " + p.answer)
    assert DOMAIN.explicit_lines(DOMAIN.generate("multi_digit_multiplication", 0.3, 1)) is None


@pytest.mark.parametrize("module, op", [("multi_digit_addition", "+"), ("multi_digit_subtraction", "-")])
def test_peeled_columns_take_the_last_digits_of_the_line_above(module, op):
    from ioa.domains.base import WritesPeeledColumns

    assert isinstance(DOMAIN, WritesPeeledColumns)
    for p in problems(module):
        a, b = int(p.meta["a"]), int(p.meta["b"])
        lines = DOMAIN.peeled_lines(p)
        left = [(a, b)]  # the numbers whose last digits the next column takes
        for line in lines[:-1]:
            column = line.split(": ", 1)[1]
            shown = [n for n in left[-1] if n]
            first = re.search(r"(\d+)", column)[1]  # the top number's digit (subtraction: before lending)
            assert int(first) == shown[0] % 10, (p.id, line, left[-1])
            if len(shown) == 2 and op == "+":
                assert column.startswith(f"{shown[0] % 10} + {shown[1] % 10}"), (p.id, line)
            found = re.search(r"Left: (.+)\.$", line)
            if found:
                left.append(tuple(int(x) for x in found[1].split(f" {op} ")) + (0,))
        assert len(lines) - 1 == len(str(a)) and lines[-1] == f"So {a} {op} {b} = {p.answer}."
        assert "Left" not in lines[-2]  # the last column leaves nothing
        assert DOMAIN.check(p, "\n".join(lines) + "\nAnswer: " + p.answer)
    assert DOMAIN.peeled_lines(DOMAIN.generate("multi_digit_multiplication", 0.3, 1)) is None


def test_the_explicit_form_keeps_zeros_inside_the_running_result():
    from ioa.domains.arithmetic import column_add_explicit_lines, column_sub_explicit_lines

    assert [line.rsplit("So far: ", 1)[1] for line in column_sub_explicit_lines(1003, 998)[2:-1]] == [
        "5.", "05.", "005.", "5."]
    assert column_add_explicit_lines(84, 37) == [
        "84: tens 8, ones 4.", "37: tens 3, ones 7.", "Ones: 4 + 7 = 11. Write 1 and carry 1. So far: 1.",
        "Tens: 8 + 3 + 1 = 12. Write 12. So far: 121.", "So 84 + 37 = 121."]


def test_carry_first_writes_a_carried_three_term_sum_as_two_facts_and_leaves_other_lines():
    from ioa.domains.arithmetic import carry_first

    assert carry_first("Tens: 5 + 9 + 1 = 15. Write 5 and carry 1.") == \
        "Tens: 5 + 1 = 6, 6 + 9 = 15. Write 5 and carry 1."
    assert carry_first("Ten thousands: 0 + 9 + 1 = 10. Write 10. So far: 10432.") == \
        "Ten thousands: 0 + 1 = 1, 1 + 9 = 10. Write 10. So far: 10432."
    for kept in ("Ones: 4 + 7 = 11. Write 1 and carry 1.", "Tens: 5 + 9 + 1 = 14. Write 4.",  # a wrong sum stays
                 "Hundreds: bring down 3.", "1 + 13 = 14.", "Tens: 5 - 1 = 4 after lending, 4 - 2 = 2.",
                 "Total: 3 + 4 + 1 = 8."):  # not a column: its head is no place name
        assert carry_first(kept) == kept


def rewritten_column_lines(module_id: str, form: str, rewrite):
    """(line before, line after) for every solving line of the test grid's problems of a column module in one of
    its forms (the teacher's, explicit digits, peeled columns) with a line rewrite applied (the Adapter's carry or
    borrow steps); each problem's rewritten lines keep their count and still end on its checked answer."""
    for p in problems(module_id):
        lines = {"teacher": p.solution.splitlines(), "explicit": DOMAIN.explicit_lines(p),
                 "peeled": DOMAIN.peeled_lines(p)}[form]
        stepped = rewrite(lines)
        assert len(stepped) == len(lines)
        assert DOMAIN.check(p, "\n".join(stepped) + "\nAnswer: " + p.answer)
        yield from zip(lines, stepped)


@pytest.mark.parametrize("form", ["teacher", "explicit", "peeled"])
def test_carry_steps_take_every_carried_column_as_two_true_facts_in_each_column_form(form):
    from ioa.domains.base import WritesCarrySteps

    assert isinstance(DOMAIN, WritesCarrySteps)
    carried = 0
    for before, after in rewritten_column_lines("multi_digit_addition", form, DOMAIN.carry_step_lines):
        assert not re.search(r"\d \+ \d \+ 1 =", after), after
        if after != before:
            carried += 1
            a, one, first, again, b, total = map(int, re.findall(r"\d+", after.split(". ")[0]))
            assert (one, first, again, first + b, total) == (1, a + 1, a + 1, total, total), after
            assert after.split(". ", 1)[1] == before.split(". ", 1)[1]  # what is written and after: the same
    assert carried > 0
    subtraction = DOMAIN.generate("multi_digit_subtraction", 0.5, 3).solution.splitlines()
    assert DOMAIN.carry_step_lines(subtraction) == subtraction


def test_borrow_through_ten_writes_a_teen_difference_as_a_complement_and_a_fact_and_leaves_other_lines():
    from ioa.domains.arithmetic import borrow_through_ten

    assert borrow_through_ten("Ones: 7 is less than 8, so borrow: 17 - 8 = 9. So far: 9.") == \
        "Ones: 7 is less than 8, so borrow: 10 - 8 = 2, 2 + 7 = 9. So far: 9."
    assert borrow_through_ten("Tens: 3 - 1 = 2 after lending, 2 is less than 7, so borrow: 12 - 7 = 5.") == \
        "Tens: 3 - 1 = 2 after lending, 2 is less than 7, so borrow: 10 - 7 = 3, 3 + 2 = 5."
    for kept in ("Ones: 0 is less than 3, so borrow: 10 - 3 = 7. So far: 7.",  # already ten minus a digit
                 "Tens: 0 - 1 = -1 after lending, -1 is less than 6, so borrow: 9 - 6 = 3.",  # minuend 9
                 "Ones: 7 is less than 8, so borrow: 17 - 8 = 8.",  # a wrong difference stays
                 "Ones: 8 - 7 = 1.", "Tens: 5 + 9 + 1 = 15. Write 5 and carry 1.", "17 - 8 = 9."):
        assert borrow_through_ten(kept) == kept


@pytest.mark.parametrize("form", ["teacher", "explicit", "peeled"])
def test_borrow_steps_take_every_teen_borrow_as_two_true_facts_in_each_column_form(form):
    from ioa.domains.base import WritesBorrowSteps

    assert isinstance(DOMAIN, WritesBorrowSteps)
    borrowed = 0
    for before, after in rewritten_column_lines("multi_digit_subtraction", form, DOMAIN.borrow_step_lines):
        assert not re.search(r"borrow: 1[1-8] - ", after), after
        if after != before:
            borrowed += 1
            ten, y, complement, again, have, diff = map(int, re.findall(r"\d+", after.split("borrow: ")[1])[:6])
            assert (ten, complement, again, complement + have) == (10, 10 - y, 10 - y, diff), after
            assert before.split("borrow: ")[0] == after.split("borrow: ")[0]  # the column's head: the same
            assert before.split(f" = {diff}", 1)[1] == after.rsplit(f" = {diff}", 1)[1]  # and what follows
    assert borrowed > 0
    addition = DOMAIN.generate("multi_digit_addition", 0.5, 3).solution.splitlines()
    assert DOMAIN.borrow_step_lines(addition) == addition


def test_atomic_division_walks_up_the_divisors_times_table_to_the_dividend():
    from ioa.domains.arithmetic import division_by_table_lines

    assert division_by_table_lines(15, 3) == [
        "Count up the 3 times table to 15.", "3 × 1 = 3.", "3 × 2 = 6.", "3 × 3 = 9.", "3 × 4 = 12.", "3 × 5 = 15.",
        "So 15 ÷ 3 = 5."]
    for p in problems("division_facts"):
        lines = DOMAIN.atomic_lines(p)
        facts = [tuple(map(int, m)) for m in re.findall(r"^(\d+) × (\d+) = (\d+)\.$", "\n".join(lines), re.M)]
        assert all(b * k == n for b, k, n in facts) and [k for _, k, _ in facts] == list(range(1, len(facts) + 1))
        assert facts[-1][2] == int(p.meta["a"]) and facts[-1][1] == int(p.answer)  # stops at the dividend
        assert DOMAIN.check(p, "\n".join(lines) + "\nAnswer: " + p.answer)


def test_checked_division_tries_quotients_near_the_answer_and_compares_each_product_with_the_dividend():
    from ioa.domains.arithmetic import division_by_checking_lines

    assert division_by_checking_lines(36, 6, 8) == [
        "Find the number that gives 36 when multiplied by 6.", "Try 8: 6 × 8 = 48, more than 36.",
        "Try 7: 6 × 7 = 42, more than 36.", "Try 6: 6 × 6 = 36.", "So 36 ÷ 6 = 6."]
    firsts = set()
    for p in problems("division_facts"):
        lines = DOMAIN.checked_lines(p)
        assert lines == DOMAIN.checked_lines(p)  # the first try is drawn from the problem's id
        tries = [tuple(map(int, m[:4])) + (m[4],) for m in
                 re.findall(r"^Try (\d+): (\d+) × (\d+) = (\d+)(?:, (less|more) than \d+)?\.$", "\n".join(lines), re.M)]
        n, q = int(p.meta["a"]), int(p.answer)
        assert all(k == k2 and b * k == prod for k, b, k2, prod, _ in tries)
        assert all((word == "less") == (prod < n) for _, _, _, prod, word in tries[:-1])
        assert tries[-1][0] == q and tries[-1][3] == n and not tries[-1][4] and abs(tries[0][0] - q) <= 2
        firsts.add(tries[0][0] - q)
        assert DOMAIN.check(p, "\n".join(lines) + "\nAnswer: " + p.answer)
    assert len(firsts) >= 3  # the first try is sometimes right, sometimes below and sometimes above


def test_the_stopped_table_ends_on_the_line_asked_for_and_repeats_it():
    from ioa.domains.arithmetic import division_table_lines

    assert division_table_lines(12, 4, stop_at_n=True) == ["Go up the 4 times table.", "4 ÷ 4 = 1.", "8 ÷ 4 = 2.",
                                                           "12 ÷ 4 = 3.", "So 12 ÷ 4 = 3."]
    assert division_table_lines(5, 5, stop_at_n=True) == ["Go up the 5 times table.", "5 ÷ 5 = 1.", "So 5 ÷ 5 = 1."]
    for p in [*problems("division_facts"), *(DOMAIN.generate("division_facts", 1.0, s) for s in range(20))]:
        lines = DOMAIN.stopped_table_lines(p)
        n, b, q = int(p.meta["a"]), int(p.meta["b"]), int(p.answer)
        assert lines[-2] == f"{n} ÷ {b} = {q}." and lines[-1] == f"So {n} ÷ {b} = {q}." and len(lines) == q + 2
        assert DOMAIN.check(p, "\n".join(lines) + "\nAnswer: " + p.answer)
    assert DOMAIN.stopped_table_lines(DOMAIN.generate("mean", 0.2, 1)) is None


def test_table_division_writes_the_whole_times_table_as_divisions_and_repeats_the_line_asked_for():
    from ioa.domains.arithmetic import division_table_lines

    assert division_table_lines(12, 4)[:3] == ["Go up the 4 times table.", "4 ÷ 4 = 1.", "8 ÷ 4 = 2."]
    assert division_table_lines(12, 4)[-2:] == ["40 ÷ 4 = 10.", "So 12 ÷ 4 = 3."]
    for p in [*problems("division_facts"), *(DOMAIN.generate("division_facts", 1.0, s) for s in range(20))]:
        lines = DOMAIN.table_lines(p)
        table = [tuple(map(int, m)) for m in re.findall(r"^(\d+) ÷ (\d+) = (\d+)\.$", "\n".join(lines), re.M)]
        n, b, q = int(p.meta["a"]), int(p.meta["b"]), int(p.answer)
        assert [k for _, _, k in table] == list(range(1, max(10, q) + 1))  # through 10, past n: no stop to decide
        assert all(d == b * k and d2 == b for d, d2, k in table)
        assert lines[-1] == f"So {n} ÷ {b} = {q}." and lines[-1][3:] in lines  # the answer repeats a table line
        assert DOMAIN.check(p, "\n".join(lines) + "\nAnswer: " + p.answer)
    assert DOMAIN.table_lines(DOMAIN.generate("mean", 0.3, 1)) is None


def test_long_division_finds_the_quotient_one_digit_at_a_time_from_times_table_facts():
    from ioa.domains.arithmetic import long_division_lines

    assert long_division_lines(1035, 6) == [
        "Divide 1035 by 6 one digit at a time.", "Start with 10.", "6 × 1 = 6, remainder 10 - 6 = 4.",
        "Bring down 3: 43.", "6 × 7 = 42, remainder 43 - 42 = 1.", "Bring down 5: 15.",
        "6 × 2 = 12, remainder 15 - 12 = 3.", "The quotient digits are 1, 7, 2.", "So 1035 ÷ 6 = 172 R 3."]
    assert long_division_lines(1203, 6)[-2:] == ["The quotient digits are 2, 0, 0.", "So 1203 ÷ 6 = 200 R 3."]
    for p in [*problems("division_with_remainder"), *(DOMAIN.generate("division_with_remainder", 1.0, s)
                                                      for s in range(30))]:
        lines = DOMAIN.long_division_lines(p)
        n, b = int(p.meta["a"]), int(p.meta["b"])
        steps = [tuple(map(int, m)) for m in re.findall(r"^(\d) × (\d) = (\d+), remainder (\d+) - (\d+) = (\d+)\.$",
                                                        "\n".join(lines), re.M)]
        assert steps and all(d == b and d * q == prod == sub and 0 <= whole - prod == r < b
                             for d, q, prod, whole, sub, r in steps)  # a times-table fact, a remainder under b
        assert "".join(str(q) for _, q, *_ in steps).lstrip("0") == str(n // b)
        assert DOMAIN.check(p, "\n".join(lines) + "\nAnswer: " + p.answer)
    assert DOMAIN.long_division_lines(DOMAIN.generate("division_facts", 0.3, 1)) is None


def test_checked_mean_adds_two_numbers_at_a_time():
    for p in problems("mean"):
        lines = DOMAIN.checked_lines(p)
        sums = [tuple(map(int, m)) for m in re.findall(r"^(\d+) \+ (\d+) = (\d+)\.$", "\n".join(lines), re.M)]
        values = p.meta["values"]
        assert [b for _, b, _ in sums] == values[1:] and sums[0][0] == values[0]
        assert all(a + b == c for a, b, c in sums) and sums[-1][2] == sum(values)
        assert DOMAIN.check(p, "\n".join(lines) + "\nAnswer: " + p.answer)
    assert DOMAIN.checked_lines(DOMAIN.generate("multi_digit_addition", 0.3, 1)) is None
