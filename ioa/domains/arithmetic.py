"""The built-in arithmetic domain: 18 modules from place value to 2x2 linear systems.

Each module has one generator that draws a problem from a seeded `random.Random` (never the global
one) and writes its exact answer, a worked solution (one step per line, no `Answer:` line) and, for
modules above level 0, one sub-question per declared direct prerequisite. A few modules also carry
one "side" step: a plausible question about the same numbers, tagged with a lower module that is not
a prerequisite, listed in `meta["side_steps"]`, so an Identifier can be tested against distractors.

Difficulty d in [0, 1] scales the numbers: d = 0 uses single digits and tiny coefficients, d = 1
three- and four-digit operands. Answers are canonical strings: "42", "3/4", "17 R 2", "x=3, y=-2".
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable

from ioa.domains.arithmetic_checks import answers_match, check_response
from ioa.domains.arithmetic_verify import verification
from ioa.types import Module, Problem, Step

MODULES: tuple[Module, ...] = (
    Module("place_value", "Place value", 0, "Digits of a number and their place; dividing by 10 or 100."),
    Module("addition_facts", "Addition facts", 0, "Sums of two single-digit numbers."),
    Module("subtraction_facts", "Subtraction facts", 0, "Differences with a single-digit answer."),
    Module("multiplication_facts", "Multiplication facts", 0, "Times tables up to 12 x 12."),
    Module("multi_digit_addition", "Multi-digit addition", 1, "Column addition with carrying."),
    Module("multi_digit_subtraction", "Multi-digit subtraction", 1, "Column subtraction with borrowing."),
    Module("rounding", "Rounding", 1, "Rounding to the nearest ten, hundred or thousand."),
    Module("division_facts", "Division facts", 1, "Exact division inside the times tables."),
    Module("multi_digit_multiplication", "Multi-digit multiplication", 2, "Partial products, then add."),
    Module("fractions", "Fractions", 2, "Add two fractions and simplify to lowest terms.", abstract=True),
    Module("order_of_operations", "Order of operations", 2, "Multiply before adding and subtracting."),
    Module("mean", "Mean", 2, "The average of a few whole numbers."),
    Module("linear_equations", "Linear equations", 2, "Solve ax + b = c for a whole x.", abstract=True),
    Module("division_with_remainder", "Division with remainder", 3, "Quotient and remainder."),
    Module("percentages", "Percentages", 3, "A whole-number percent of a multiple of 100.", abstract=True),
    Module("unit_rate", "Unit rate", 3, "Cost of one item, then of many."),
    Module("linear_systems", "Linear systems", 3, "Two equations in x and y, by elimination.", abstract=True),
    Module("word_problems", "Word problems", 3, "Multi-step stories with multiply, subtract, add."),
)

PREREQUISITES: dict[str, tuple[str, ...]] = {
    "multi_digit_addition": ("addition_facts", "place_value"),
    "multi_digit_subtraction": ("subtraction_facts", "place_value"),
    "rounding": ("place_value",),
    "division_facts": ("multiplication_facts",),
    "multi_digit_multiplication": ("multiplication_facts", "multi_digit_addition"),
    "fractions": ("multiplication_facts", "multi_digit_addition", "division_facts"),
    "order_of_operations": ("multiplication_facts", "multi_digit_addition", "multi_digit_subtraction"),
    "mean": ("multi_digit_addition", "division_facts"),
    "linear_equations": ("multi_digit_subtraction", "division_facts"),
    "division_with_remainder": ("multi_digit_multiplication", "multi_digit_subtraction"),
    "percentages": ("place_value", "multi_digit_multiplication"),
    "unit_rate": ("division_facts", "multi_digit_multiplication"),
    "linear_systems": ("multi_digit_addition", "linear_equations"),
    "word_problems": ("multi_digit_multiplication", "multi_digit_subtraction", "multi_digit_addition"),
}

PLACES = ("ones", "tens", "hundreds", "thousands", "ten thousands")
NAMES = ("Sam", "Mia", "Leo", "Ana", "Tom", "Zoe")
ITEMS = (("apple", "apples"), ("pencil", "pencils"), ("card", "cards"), ("marble", "marbles"), ("book", "books"))


@dataclass
class Draft:
    """What a generator returns; `ArithmeticDomain.generate` turns it into a Problem."""

    question: str
    answer: str
    lines: list[str]
    steps: list[Step] = field(default_factory=list)
    side: list[Step] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- helpers


def lerp(d: float, lo: int, hi: int) -> int:
    """The integer a fraction d of the way from lo to hi."""
    return int(round(lo + (hi - lo) * d))


def n_digit(rng: random.Random, n: int) -> int:
    return rng.randint(10 ** (n - 1), 10**n - 1)


def digits(n: int) -> list[int]:
    """Digits of n, ones first."""
    return [int(c) for c in reversed(str(n))]


def digit_at(n: int, place: int) -> int:
    return (n // 10**place) % 10


def fraction_text(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def term(coef: int, var: str) -> str:
    return var if coef == 1 else f"{coef}{var}"


def round_to(n: int, place: int) -> int:
    unit = 10**place
    return (n + unit // 2) // unit * unit


def column_add_columns(a: int, b: int) -> list[tuple[str, int]]:
    """Column addition, ones first: each column's line and the number it writes."""
    da, db, carry, columns = digits(a), digits(b), 0, []
    width = max(len(da), len(db))
    for i in range(width):
        parts = [da[i] if i < len(da) else 0] + ([db[i]] if i < len(db) else []) + ([carry] if carry else [])
        total = sum(parts)
        head = f"{PLACES[i].capitalize()}: " + " + ".join(map(str, parts)) + f" = {total}"
        if len(parts) == 1:
            columns.append((f"{PLACES[i].capitalize()}: bring down {total}.", total))
        elif total >= 10 and i < width - 1:
            columns.append((f"{head}. Write {total % 10} and carry 1.", total % 10))
        else:
            columns.append((f"{head}. Write {total}.", total))
        carry = 1 if total >= 10 else 0
    return columns


def column_add_lines(a: int, b: int) -> list[str]:
    return [line for line, _ in column_add_columns(a, b)] + [f"So {a} + {b} = {a + b}."]


def column_sub_columns(a: int, b: int) -> list[tuple[str, int]]:
    """Column subtraction, ones first: each column's line and the digit it writes."""
    da, db, borrow, columns = digits(a), digits(b), 0, []
    for i, x in enumerate(da):
        y = db[i] if i < len(db) else 0
        have = x - borrow
        head = f"{PLACES[i].capitalize()}: " + (f"{x} - 1 = {have} after lending, " if borrow else "")
        if have < y:
            columns.append((f"{head}{have} is less than {y}, so borrow: {have + 10} - {y} = {have + 10 - y}.",
                            have + 10 - y))
            borrow = 1
        else:
            columns.append((f"{head}{have} - {y} = {have - y}.", have - y))
            borrow = 0
    return columns


def column_sub_lines(a: int, b: int) -> list[str]:
    return [line for line, _ in column_sub_columns(a, b)] + [f"So {a} - {b} = {a - b}."]


# A column line (its head a place name, as column_add_columns writes it) that adds a carry as a third term.
CARRIED_SUM = re.compile(r"^(?P<head>(?:" + "|".join(p.capitalize() for p in PLACES) + r"): )"
                         r"(?P<a>\d) \+ (?P<b>\d) \+ 1 = (?P<total>\d+)(?P<rest>\..*)$")


def carry_first(line: str) -> str:
    """A column line that adds a carry as a third term (`Tens: 5 + 9 + 1 = 15. Write 5 and carry 1.`) with the
    carry added first and the other digit after (`Tens: 5 + 1 = 6, 6 + 9 = 15. Write 5 and carry 1.`): two
    addition facts instead of a three-term sum. At the default budget most wrong column additions left in the
    explicit-digits form dropped a term of the three (`5 + 1 + 1 = 6`). Other lines come back unchanged."""
    m = CARRIED_SUM.match(line)
    if m is None:
        return line
    a, b, total = int(m["a"]), int(m["b"]), int(m["total"])
    if a + b + 1 != total:
        return line
    return f"{m['head']}{a} + 1 = {a + 1}, {a + 1} + {b} = {total}{m['rest']}"


# A column line (column_sub_columns) that borrows into a digit of 1-8: `... so borrow: 17 - 8 = 9.`
BORROWED_DIFFERENCE = re.compile(r"^(?P<lead>.*so borrow: )1(?P<have>[1-8]) - (?P<y>\d) = (?P<diff>\d)(?P<rest>\..*)$")


def borrow_through_ten(line: str) -> str:
    """A column line whose borrowed difference has a teen minuend (`Ones: 7 is less than 8, so borrow: 17 - 8 =
    9.`) with the difference taken through ten (`... so borrow: 10 - 8 = 2, 2 + 7 = 9.`): a complement of ten and
    an addition fact under ten, in place of a teen subtraction fact the probes' band never asks (its facts stop at
    about 9 - 4). At the default budget most wrong column subtractions left in the explicit-digits form had every
    digit right and the teen fact one off (`17 - 8 = 8`, `16 - 8 = 9`, `11 - 3 = 7`). A borrow into 0 or -1 (its
    minuend 10 or 9) and every other line come back unchanged."""
    m = BORROWED_DIFFERENCE.match(line)
    if m is None:
        return line
    have, y, diff = int(m["have"]), int(m["y"]), int(m["diff"])
    if 10 + have - y != diff:
        return line
    return f"{m['lead']}10 - {y} = {10 - y}, {10 - y} + {have} = {diff}{m['rest']}"


def place_listing(n: int) -> str:
    """'958: hundreds 9, tens 5, ones 8.': every digit once, under the name of its place."""
    named = [f"{PLACES[place]} {d}" for place, d in reversed(list(enumerate(digits(n))))]
    return f"{n}: " + ", ".join(named) + "."


def with_running_result(columns: list[tuple[str, int]], final: str) -> list[str]:
    """Each column line followed by the result so far (the column's written digits in front of the
    previous result), so the last line copies a number instead of assembling it from every line."""
    out, so_far = [], ""
    for k, (line, written) in enumerate(columns):
        so_far = f"{written}{so_far}"
        shown = so_far if k < len(columns) - 1 else so_far.lstrip("0") or "0"  # zeros inside stay: 02 -> 102
        out.append(f"{line} So far: {shown}.")
    return out + [final]


def column_add_explicit_lines(a: int, b: int) -> list[str]:
    """Column addition with every digit named by its place before use and the result built column by
    column (the `explicit_digits` form). After a round on the teacher's lines, most wrong answers of a
    135M student took a digit from the wrong place ("84 + 37" -> "Tens: 8 + 7 + 1") or assembled the
    written digits wrongly in the last line."""
    return [place_listing(a), place_listing(b)] + with_running_result(column_add_columns(a, b),
                                                                      f"So {a} + {b} = {a + b}.")


def column_sub_explicit_lines(a: int, b: int) -> list[str]:
    """Column subtraction in the `explicit_digits` form (see column_add_explicit_lines)."""
    return [place_listing(a), place_listing(b)] + with_running_result(column_sub_columns(a, b),
                                                                      f"So {a} - {b} = {a - b}.")


def with_what_is_left(columns: list[tuple[str, int]], a: int, b: int, op: str, final: str) -> list[str]:
    """Each column line but the last followed by the numbers without the digits used so far
    (`Left: 84 + 6.`), so the next column's digits are the last digits of the line above."""
    out = []
    for i, (line, _) in enumerate(columns):
        if i < len(columns) - 1:
            rest = [n // 10 ** (i + 1) for n in (a, b)]
            left = f" {op} ".join(str(n) for n in rest if n)  # a column is left: `a` or `b` still has a digit
            line = f"{line} Left: {left}."
        out.append(line)
    return out + [final]


def column_add_peeled_lines(a: int, b: int) -> list[str]:
    """Column addition in which each column takes the last digits of the numbers on the line above (the
    `peel_columns` form). With the task copied above the first column (`adapter.anchor_line`), a 135M
    student almost never took a wrong ones digit (4 of 47 wrong answers against 24 of 48 without), but
    took the tens digits wrongly (`64 + 37` -> `Tens: 6 + 1`): a digit one place in from the end is
    harder to find than the last one. Here every column's digits are last digits."""
    return with_what_is_left(column_add_columns(a, b), a, b, "+", f"So {a} + {b} = {a + b}.")


def column_sub_peeled_lines(a: int, b: int) -> list[str]:
    """Column subtraction in the `peel_columns` form (see column_add_peeled_lines)."""
    return with_what_is_left(column_sub_columns(a, b), a, b, "-", f"So {a} - {b} = {a - b}.")


def column_form(problem: Problem, add: Callable[[int, int], list[str]],
                sub: Callable[[int, int], list[str]]) -> list[str] | None:
    """A column procedure's lines in one of the domain's own forms (`add` for multi-digit addition, `sub` for
    subtraction); None for the other modules."""
    a, b = problem.meta.get("a"), problem.meta.get("b")
    if problem.module == "multi_digit_addition":
        return add(int(a), int(b))
    if problem.module == "multi_digit_subtraction":
        return sub(int(a), int(b))
    return None


# ---------------------------------------------------------------- level 0


def gen_place_value(rng: random.Random, d: float) -> Draft:
    n = n_digit(rng, lerp(d, 2, 4))
    if rng.random() < 0.25:  # dividing a round number by 10 or 100 shifts its digits
        place = rng.randint(1, 2)
        n = n - n % 10**place or 10**place
        q = n // 10**place
        return Draft(f"What is {n} ÷ {10**place}?", str(q),
                     [f"Dividing by {10**place} moves every digit {place} place(s) to the right.",
                      f"{n} ÷ {10**place} = {q}."], meta={"number": n, "divisor": 10**place})
    place = rng.randrange(len(str(n)))
    digit = digit_at(n, place)
    return Draft(f"What is the {PLACES[place]} digit of {n}?", str(digit),
                 [f"From the right, the places of {n} are " + ", ".join(PLACES[: len(str(n))]) + ".",
                  f"The {PLACES[place]} digit of {n} is {digit}."], meta={"number": n, "place": place})


def gen_addition_facts(rng: random.Random, d: float) -> Draft:
    hi = lerp(d, 4, 9)
    a, b = rng.randint(lerp(d, 0, 2), hi), rng.randint(lerp(d, 1, 2), hi)
    return Draft(f"What is {a} + {b}?", str(a + b),
                 [f"Start at {a} and count up {b}.", f"{a} + {b} = {a + b}."], meta={"a": a, "b": b})


def gen_subtraction_facts(rng: random.Random, d: float) -> Draft:
    hi = lerp(d, 4, 9)
    diff, b = rng.randint(0, hi), rng.randint(lerp(d, 1, 2), hi)
    total = diff + b
    return Draft(f"What is {total} - {b}?", str(diff),
                 [f"Think of addition: {b} + {diff} = {total}.", f"So {total} - {b} = {diff}."],
                 meta={"a": total, "b": b})


def gen_multiplication_facts(rng: random.Random, d: float) -> Draft:
    lo, hi = lerp(d, 1, 2), lerp(d, 5, 12)
    a, b = rng.randint(lo, hi), rng.randint(lo, hi)
    counts = ", ".join(str(a * k) for k in range(1, b + 1))
    return Draft(f"What is {a} × {b}?", str(a * b),
                 [f"Count by {a}s, {b} times: {counts}.", f"So {a} × {b} = {a * b}."], meta={"a": a, "b": b})


# ---------------------------------------------------------------- level 1


def gen_multi_digit_addition(rng: random.Random, d: float) -> Draft:
    while True:
        a, b = n_digit(rng, lerp(d, 2, 4)), n_digit(rng, lerp(d, 1, 4))
        if a % 10 + b % 10 >= 10:  # always at least one carry
            break
    ones = a % 10 + b % 10
    steps = [Step(f"What is {a % 10} + {b % 10}?", str(ones), "addition_facts"),
             Step(f"What is the ones digit of {ones}?", str(ones % 10), "place_value")]
    return Draft(f"What is {a} + {b}?", str(a + b), column_add_lines(a, b), steps, meta={"a": a, "b": b})


def gen_multi_digit_subtraction(rng: random.Random, d: float) -> Draft:
    na = lerp(d, 2, 4)
    while True:
        a, b = n_digit(rng, na), n_digit(rng, min(na, lerp(d, 1, 4)))
        if a > b and a % 10 < b % 10:  # always a borrow in the ones
            break
    steps = [Step(f"What is {a % 10 + 10} - {b % 10}?", str(a % 10 + 10 - b % 10), "subtraction_facts"),
             Step(f"What is the tens digit of {a}?", str(digit_at(a, 1)), "place_value")]
    return Draft(f"What is {a} - {b}?", str(a - b), column_sub_lines(a, b), steps, meta={"a": a, "b": b})


def gen_rounding(rng: random.Random, d: float) -> Draft:
    n = n_digit(rng, lerp(d, 2, 4))
    place = rng.randint(1, len(str(n)) - 1)
    key = digit_at(n, place - 1)
    result = round_to(n, place)
    unit = PLACES[place][:-1]
    lines = [f"Look at the {PLACES[place - 1]} digit of {n}: it is {key}.",
             f"{key} is {'5 or more, so round up' if key >= 5 else 'less than 5, so round down'}.",
             f"{n} rounded to the nearest {unit} is {result}."]
    steps = [Step(f"What is the {PLACES[place - 1]} digit of {n}?", str(key), "place_value")]
    return Draft(f"Round {n} to the nearest {unit}.", str(result), lines, steps, meta={"number": n, "place": place})


def gen_division_facts(rng: random.Random, d: float) -> Draft:
    lo, hi = lerp(d, 1, 2), lerp(d, 5, 12)
    b, q = rng.randint(max(lo, 2), hi), rng.randint(lo, hi)
    n = b * q
    lines = [f"Find the number that gives {n} when multiplied by {b}.", f"{b} × {q} = {n}.", f"So {n} ÷ {b} = {q}."]
    steps = [Step(f"What is {b} × {q}?", str(n), "multiplication_facts")]
    return Draft(f"What is {n} ÷ {b}?", str(q), lines, steps, meta={"a": n, "b": b})


# ---------------------------------------------------------------- level 2


def gen_multi_digit_multiplication(rng: random.Random, d: float) -> Draft:
    while True:
        a, b = rng.randint(12, lerp(d, 29, 999)), rng.randint(2, lerp(d, 5, 99))
        if a % 10 >= 2 and b % 10 >= 2:
            break
    a0, b0 = a % 10, b % 10
    if b < 10:  # split the big factor: (a - a0) x b + a0 x b
        p1, p2 = (a - a0) * b, a0 * b
        lines = [f"Split {a} into {a - a0} and {a0}.", f"{a0} × {b} = {p2}.", f"{a - a0} × {b} = {p1}."]
    else:  # split the small factor: a x (b - b0) + a x b0
        p1, p2 = a * (b - b0), a * b0
        lines = [f"Split {b} into {b - b0} and {b0}.", f"Ones first: {a0} × {b0} = {a0 * b0}.",
                 f"{a} × {b0} = {p2}.", f"{a} × {b - b0} = {p1}."]
    lines += [f"Add the parts: {p1} + {p2} = {a * b}.", f"So {a} × {b} = {a * b}."]
    steps = [Step(f"What is {a0} × {b0}?", str(a0 * b0), "multiplication_facts"),
             Step(f"What is {p1} + {p2}?", str(p1 + p2), "multi_digit_addition")]
    side = [Step(f"What is the tens digit of {a}?", str(digit_at(a, 1)), "place_value")]
    return Draft(f"What is {a} × {b}?", str(a * b), lines, steps, side, meta={"a": a, "b": b})


def place_parts(n: int) -> list[int]:
    """318 -> [300, 10, 8]: the number's nonzero digits at their place values."""
    return [d * 10**place for place, d in reversed(list(enumerate(digits(n)))) if d]


def times_by_place_lines(a: int, m: int) -> list[str]:
    """a × m, m one digit times a power of ten, as one fact product per place of a, added two at a time,
    then the product restated; times 10 is one line (a zero appended)."""
    if m == 10:
        return [f"{a} × 10 = {a * 10}."]
    parts = place_parts(a)
    lines = [f"{p} × {m} = {p * m}." for p in parts]
    total = parts[0] * m
    for p in parts[1:]:
        lines.append(f"{total} + {p * m} = {total + p * m}.")
        total += p * m
    return lines + [f"So {a} × {m} = {a * m}."]


def multiplication_by_place_lines(a: int, b: int) -> list[str]:
    """a × b with no product bigger than a times-table fact with zeros: the many-digit factor split by
    place, each part times the other factor's digit, the partial products added two at a time; a
    two-digit b is split into tens and ones first."""
    if b < 10:
        return [f"Split {a} into {' + '.join(map(str, place_parts(a)))}."] + times_by_place_lines(a, b)
    ones, tens = b % 10, b - b % 10
    if not ones:
        return times_by_place_lines(a, tens) + ([f"So {a} × {b} = {a * b}."] if tens == 10 else [])
    return ([f"Split {b} into {tens} + {ones}."] + times_by_place_lines(a, ones) + times_by_place_lines(a, tens)
            + [f"Add the parts: {a * tens} + {a * ones} = {a * b}.", f"So {a} × {b} = {a * b}."])


def division_by_table_lines(n: int, b: int) -> list[str]:
    """n ÷ b by walking up b's times table until the product is n: every line a times-table fact that
    a student who knows multiplication facts can write, instead of the teacher's one line that states
    the quotient it is asked for ("3 × 5 = 15")."""
    q = n // b
    return ([f"Count up the {b} times table to {n}."] + [f"{b} × {k} = {b * k}." for k in range(1, q + 1)]
            + [f"So {n} ÷ {b} = {q}."])


def division_by_checking_lines(n: int, b: int, first: int) -> list[str]:
    """n ÷ b by trying a quotient, checking its product against n and moving one up or down until the
    product is n (`first` is the first try). A default run's student that wrote the teacher's one line
    ("6 × 7 = 42. So 36 ÷ 6 = 7.") got division facts wrong mostly by copying a guessed factor whose
    product it wrote correctly but never compared with the dividend; it knows every product it needs."""
    q = n // b
    step = 1 if first < q else -1
    lines = [f"Find the number that gives {n} when multiplied by {b}."]
    for k in range(first, q, step):
        lines.append(f"Try {k}: {b} × {k} = {b * k}, {'less' if k < q else 'more'} than {n}.")
    return lines + [f"Try {q}: {b} × {q} = {n}.", f"So {n} ÷ {b} = {q}."]


def division_table_lines(n: int, b: int, stop_at_n: bool = False) -> list[str]:
    """n ÷ b by writing b's times table as divisions (`6 ÷ 6 = 1.`, `12 ÷ 6 = 2.`, ...) through 10 (or
    the quotient, when larger), then the line for n again. Each table line is the last dividend plus b
    and the last quotient plus one, a step a student who knows the multiplication facts can take; the
    table does not stop at n, so no line asks the student to compare numbers (a default run's student
    trained on `division_by_checking_lines` wrote the comparison word without comparing), and the answer
    line repeats a line of the table word for word, the lookup a transformer does best.

    `stop_at_n` (the Adapter's `table_stop`): the table ends on the line whose dividend is n, so the answer line
    repeats the line just above it and the only decision, where to stop, is whether a dividend equals n (a copy,
    not a comparison); about half the tokens. A student trained on the whole table that lost its place picked a
    neighbour (`So 6 ÷ 3 = 7.` under a correct table)."""
    q = n // b
    last = q if stop_at_n else max(10, q)
    return ([f"Go up the {b} times table."] + [f"{b * k} ÷ {b} = {k}." for k in range(1, last + 1)]
            + [f"So {n} ÷ {b} = {q}."])


def long_division_lines(n: int, b: int) -> list[str]:
    """n ÷ b (b a single digit) one quotient digit at a time: start with the fewest leading digits of n that hold
    b, then at each step the product of b's times table that fits and the remainder, and bring down the next
    digit. Every step is a multiplication fact and a subtraction under 10 × b, where the teacher's line states the
    whole quotient at once (`172 × 6 = 1032, and 173 × 6 = 1038 is too big.`), the line a default student copied as
    a guess. The quotient digits are gathered in order before the answer line."""
    digits = str(n)
    take = next((k for k in range(1, len(digits) + 1) if int(digits[:k]) >= b), len(digits))
    part, quotient = int(digits[:take]), []
    lines = [f"Divide {n} by {b} one digit at a time.", f"Start with {part}."]
    for position in range(take, len(digits) + 1):
        q = part // b
        quotient.append(str(q))
        lines.append(f"{b} × {q} = {b * q}, remainder {part} - {b * q} = {part - b * q}.")
        if position < len(digits):
            part = (part - b * q) * 10 + int(digits[position])
            lines.append(f"Bring down {digits[position]}: {part}.")
    q, r = divmod(n, b)
    return lines + [f"The quotient digits are {', '.join(quotient)}.", f"So {n} ÷ {b} = {q} R {r}."]


def running_sum_lines(values: list[int]) -> list[str]:
    """The numbers added two at a time (`1 + 13 = 14.`, `14 + 6 = 20.`, ...), each line one addition a
    student who knows the facts can take, in place of the mean's one line that adds them all: the sum of
    that line was the first wrong number in most wrong mean answers of a default run."""
    total, lines = values[0], ["Add the numbers one at a time."]
    for v in values[1:]:
        lines.append(f"{total} + {v} = {total + v}.")
        total += v
    return lines


def draw_fractions(rng: random.Random, d: float) -> tuple[int, int, int, int]:
    """a/b + c/e with distinct denominators, a small common denominator, and a sum to simplify."""
    top, cap = lerp(d, 4, 12), lerp(d, 12, 24)
    while True:
        b, e = rng.sample(range(2, top + 1), 2)
        a, c = rng.randint(1, b - 1), rng.randint(1, e - 1)
        common = math.lcm(b, e)
        total = a * common // b + c * common // e
        if common <= cap and math.gcd(total, common) > 1:
            return a, b, c, e


def gen_fractions(rng: random.Random, d: float) -> Draft:
    a, b, c, e = draw_fractions(rng, d)
    common = math.lcm(b, e)
    fa, fc = common // b, common // e
    n1, n2 = a * fa, c * fc
    g = math.gcd(n1 + n2, common)
    result = Fraction(n1 + n2, common)
    lines = [f"The common denominator of {b} and {e} is {common}."]
    for top, bottom, factor, new in ((a, b, fa, n1), (c, e, fc, n2)):
        lines.append(f"{top}/{bottom} = {new}/{common} because {top} × {factor} = {new}." if factor > 1
                     else f"{top}/{bottom} already has denominator {common}.")
    lines += [f"Add the tops: {n1} + {n2} = {n1 + n2}, so the sum is {n1 + n2}/{common}.",
              f"Divide top and bottom by {g}: {n1 + n2} ÷ {g} = {(n1 + n2) // g} and {common} ÷ {g} = {common // g}.",
              f"So the sum in lowest terms is {fraction_text(result)}."]
    top, factor = (a, fa) if fa > 1 else (c, fc)
    steps = [Step(f"What is {top} × {factor}?", str(top * factor), "multiplication_facts"),
             Step(f"What is {n1} + {n2}?", str(n1 + n2), "multi_digit_addition"),
             Step(f"What is {common} ÷ {g}?", str(common // g), "division_facts")]
    question = f"What is {a}/{b} + {c}/{e}? Give the answer in lowest terms."
    return Draft(question, fraction_text(result), lines, steps, meta={"fractions": [[a, b], [c, e]]})


def gen_order_of_operations(rng: random.Random, d: float) -> Draft:
    a = rng.randint(11, lerp(d, 30, 999))
    b, c = rng.randint(2, lerp(d, 5, 12)), rng.randint(2, lerp(d, 5, 12))
    e = rng.randint(1, min(a + b * c - 1, lerp(d, 9, 999)))
    bc, total = b * c, a + b * c
    lines = [f"Multiply first: {b} × {c} = {bc}.", f"Then add: {a} + {bc} = {total}.",
             f"Then subtract: {total} - {e} = {total - e}.", f"So {a} + {b} × {c} - {e} = {total - e}."]
    steps = [Step(f"What is {b} × {c}?", str(bc), "multiplication_facts"),
             Step(f"What is {a} + {bc}?", str(total), "multi_digit_addition"),
             Step(f"What is {total} - {e}?", str(total - e), "multi_digit_subtraction")]
    side = [Step(f"Round {a} to the nearest ten.", str(round_to(a, 1)), "rounding")]
    return Draft(f"What is {a} + {b} × {c} - {e}?", str(total - e), lines, steps, side,
                 meta={"a": a, "b": b, "c": c, "e": e})


def gen_mean(rng: random.Random, d: float) -> Draft:
    count, mean = lerp(d, 3, 5), rng.randint(2, lerp(d, 5, 12))
    values = [mean] * count
    for _ in range(count):  # move amounts between entries: the sum stays count * mean
        i, j = rng.sample(range(count), 2)
        shift = rng.randint(0, values[i] - 1)
        values[i], values[j] = values[i] - shift, values[j] + shift
    total = sum(values)
    listed = ", ".join(map(str, values[:-1])) + f" and {values[-1]}"
    sum_text = " + ".join(map(str, values))
    lines = [f"Add the numbers: {sum_text} = {total}.", f"There are {count} numbers.",
             f"Divide: {total} ÷ {count} = {mean}.", f"So the mean is {mean}."]
    steps = [Step(f"What is {sum_text}?", str(total), "multi_digit_addition"),
             Step(f"What is {total} ÷ {count}?", str(mean), "division_facts")]
    return Draft(f"What is the mean of {listed}?", str(mean), lines, steps, meta={"values": values})


def gen_linear_equations(rng: random.Random, d: float) -> Draft:
    a, x = rng.randint(2, lerp(d, 4, 12)), rng.randint(1, lerp(d, 6, 12))
    b = rng.randint(1, lerp(d, 9, 999))
    c = a * x + b
    lines = [f"Subtract {b} from both sides: {a}x = {c} - {b} = {a * x}.",
             f"Divide both sides by {a}: x = {a * x} ÷ {a} = {x}.", f"So x = {x}."]
    steps = [Step(f"What is {c} - {b}?", str(a * x), "multi_digit_subtraction"),
             Step(f"What is {a * x} ÷ {a}?", str(x), "division_facts")]
    return Draft(f"Solve for x: {a}x + {b} = {c}.", str(x), lines, steps, meta={"a": a, "b": b, "c": c})


# ---------------------------------------------------------------- level 3


def gen_division_with_remainder(rng: random.Random, d: float) -> Draft:
    b, q = rng.randint(2, lerp(d, 5, 9)), rng.randint(10, lerp(d, 19, 999))
    r = rng.randint(1, b - 1)
    n = q * b + r
    lines = [f"Find how many {b}s fit in {n}.", f"{q} × {b} = {q * b}, and {q + 1} × {b} = {(q + 1) * b} is too big.",
             f"The remainder is {n} - {q * b} = {r}.", f"So {n} ÷ {b} = {q} R {r}."]
    steps = [Step(f"What is {q} × {b}?", str(q * b), "multi_digit_multiplication"),
             Step(f"What is {n} - {q * b}?", str(r), "multi_digit_subtraction")]
    side = [Step(f"Round {n} to the nearest ten.", str(round_to(n, 1)), "rounding")]
    question = f"What is {n} ÷ {b}? Give the quotient and remainder."
    return Draft(question, f"{q} R {r}", lines, steps, side, meta={"a": n, "b": b})


def gen_percentages(rng: random.Random, d: float) -> Draft:
    step = 10 if d < 0.34 else 5 if d < 0.67 else 1
    p = rng.choice(range(step, lerp(d, 50, 99) + 1, step))
    k = rng.randint(2, lerp(d, 5, 99))
    n = 100 * k
    lines = [f"{p}% means {p} out of every 100.", f"{n} ÷ 100 = {k}, so there are {k} hundreds in {n}.",
             f"{p} × {k} = {p * k}.", f"So {p}% of {n} is {p * k}."]
    steps = [Step(f"What is {n} ÷ 100?", str(k), "place_value"),
             Step(f"What is {p} × {k}?", str(p * k), "multi_digit_multiplication")]
    return Draft(f"What is {p}% of {n}?", str(p * k), lines, steps, meta={"percent": p, "of": n})


def gen_unit_rate(rng: random.Random, d: float) -> Draft:
    unit, n1 = rng.randint(2, lerp(d, 5, 12)), rng.randint(2, lerp(d, 5, 12))
    n2 = rng.randint(10, lerp(d, 19, 99))
    one, many = rng.choice(ITEMS)
    cost = unit * n1
    lines = [f"First find the cost of 1 {one}: {cost} ÷ {n1} = {unit} dollars.",
             f"Then {n2} {many} cost {n2} × {unit} = {n2 * unit} dollars.", f"So {n2} {many} cost {n2 * unit} dollars."]
    steps = [Step(f"What is {cost} ÷ {n1}?", str(unit), "division_facts"),
             Step(f"What is {n2} × {unit}?", str(n2 * unit), "multi_digit_multiplication")]
    question = f"{n1} {many} cost {cost} dollars. How many dollars do {n2} {many} cost?"
    return Draft(question, str(n2 * unit), lines, steps, meta={"n1": n1, "cost": cost, "n2": n2})


def draw_system(rng: random.Random, d: float) -> tuple[int, int, int, int, int]:
    """a1 x + b y = c1 and a2 x - b y = c2 with whole x, y > 0 and c2 > 0."""
    while True:
        a1, a2 = rng.randint(1, lerp(d, 1, 6)), rng.randint(1, lerp(d, 1, 6))
        b = rng.randint(1, lerp(d, 1, 5))
        x, y = rng.randint(1, lerp(d, 9, 12)), rng.randint(1, lerp(d, 9, 12))
        if a2 * x - b * y > 0:
            return a1, a2, b, x, y


def gen_linear_systems(rng: random.Random, d: float) -> Draft:
    a1, a2, b, x, y = draw_system(rng, d)
    c1, c2 = a1 * x + b * y, a2 * x - b * y
    eq1, eq2 = f"{term(a1, 'x')} + {term(b, 'y')} = {c1}", f"{term(a2, 'x')} - {term(b, 'y')} = {c2}"
    back = f"{term(b, 'y')} + {a1 * x} = {c1}"
    lines = [f"Add the equations so y cancels: {a1 + a2}x = {c1} + {c2} = {c1 + c2}.",
             f"Divide by {a1 + a2}: x = {c1 + c2} ÷ {a1 + a2} = {x}.",
             f"Put x = {x} into {eq1}: {back}.",
             f"Subtract {a1 * x}: {term(b, 'y')} = {c1} - {a1 * x} = {b * y}."]
    if b > 1:
        lines.append(f"Divide by {b}: y = {b * y} ÷ {b} = {y}.")
    lines.append(f"So x={x}, y={y}.")
    steps = [Step(f"What is {c1} + {c2}?", str(c1 + c2), "multi_digit_addition"),
             Step(f"Solve for y: {back}.", str(y), "linear_equations")]
    question = f"Solve for x and y: {eq1} and {eq2}."
    return Draft(question, f"x={x}, y={y}", lines, steps, meta={"a1": a1, "a2": a2, "b": b, "c1": c1, "c2": c2})


def gen_word_problems(rng: random.Random, d: float) -> Draft:
    boxes, each = rng.randint(2, lerp(d, 5, 30)), rng.randint(10, lerp(d, 25, 99))
    total = boxes * each
    gone, more = rng.randint(1, total - 1), rng.randint(1, lerp(d, 9, 500))
    left, end = total - gone, total - gone + more
    name, (_, items) = rng.choice(NAMES), rng.choice(ITEMS)
    question = (f"{name} has {boxes} boxes with {each} {items} in each box. {name} gives away {gone} {items} "
                f"and then gets {more} more. How many {items} does {name} have now?")
    lines = [f"At first: {each} × {boxes} = {total} {items}.", f"After giving away {gone}: {total} - {gone} = {left}.",
             f"After getting {more} more: {left} + {more} = {end}.", f"So {name} has {end} {items}."]
    steps = [Step(f"What is {each} × {boxes}?", str(total), "multi_digit_multiplication"),
             Step(f"What is {total} - {gone}?", str(left), "multi_digit_subtraction"),
             Step(f"What is {left} + {more}?", str(end), "multi_digit_addition")]
    side = [Step(f"What is the tens digit of {each}?", str(digit_at(each, 1)), "place_value")]
    return Draft(question, str(end), lines, steps, side,
                 meta={"boxes": boxes, "each": each, "gone": gone, "more": more})


GENERATORS: dict[str, Callable[[random.Random, float], Draft]] = {
    "place_value": gen_place_value,
    "addition_facts": gen_addition_facts,
    "subtraction_facts": gen_subtraction_facts,
    "multiplication_facts": gen_multiplication_facts,
    "multi_digit_addition": gen_multi_digit_addition,
    "multi_digit_subtraction": gen_multi_digit_subtraction,
    "rounding": gen_rounding,
    "division_facts": gen_division_facts,
    "multi_digit_multiplication": gen_multi_digit_multiplication,
    "fractions": gen_fractions,
    "order_of_operations": gen_order_of_operations,
    "mean": gen_mean,
    "linear_equations": gen_linear_equations,
    "division_with_remainder": gen_division_with_remainder,
    "percentages": gen_percentages,
    "unit_rate": gen_unit_rate,
    "linear_systems": gen_linear_systems,
    "word_problems": gen_word_problems,
}


STEP_QUESTION = re.compile(r"What is (?P<a>\d+) (?P<op>[+\-×]) (?P<b>\d+)\?")


class ArithmeticDomain:
    """School arithmetic as a Domain: modules, generators, checkers and the intended graph."""

    name = "arithmetic"

    def modules(self) -> list[Module]:
        return sorted(MODULES, key=lambda m: m.level)

    def declared_prerequisites(self) -> list[tuple[str, str]]:
        return [(pre, dep) for dep, pres in PREREQUISITES.items() for pre in pres]

    def generate(self, module_id: str, difficulty: float, seed: int) -> Problem:
        if module_id not in GENERATORS:
            raise ValueError(f"unknown arithmetic module {module_id!r}; known: {', '.join(GENERATORS)}")
        if not 0.0 <= float(difficulty) <= 1.0:
            raise ValueError(f"difficulty must be in [0, 1], got {difficulty!r}")
        d = round(float(difficulty), 6)
        draft = GENERATORS[module_id](random.Random(f"{module_id}:{seed}:{d}"), d)
        steps = tuple(draft.steps) + tuple(draft.side)
        meta = dict(draft.meta, side_steps=list(range(len(draft.steps), len(steps))))
        check_line = verification(module_id, draft.meta, draft.answer)
        if check_line:
            meta["verify"] = check_line
        return Problem(id=f"{module_id}-{seed}-{round(d, 3)}", module=module_id, difficulty=d,
                       question=draft.question, answer=draft.answer, solution="\n".join(draft.lines),
                       steps=steps, meta=meta)

    def worked_step(self, step: Step) -> list[str] | None:
        """The step worked the way its module's own problems are ("What is 1300 + 455?" of column
        addition -> the column lines); None for questions and modules without such a form."""
        found = STEP_QUESTION.fullmatch(step.question.strip())
        if not found:
            return None
        a, op, b = int(found["a"]), found["op"], int(found["b"])
        if op == "+" and step.module == "multi_digit_addition":
            return column_add_lines(a, b)
        if op == "-" and step.module == "multi_digit_subtraction" and a > b:
            return column_sub_lines(a, b)
        if op == "+" and step.module == "addition_facts":
            return [f"Start at {a} and count up {b}.", f"{a} + {b} = {a + b}."]
        if op == "×" and step.module == "multiplication_facts" and b > 0:
            counts = ", ".join(str(a * k) for k in range(1, b + 1))
            return [f"Count by {a}s, {b} times: {counts}.", f"So {a} × {b} = {a * b}."]
        return None

    def step_problem(self, step: Step) -> Problem | None:
        """A two-number step ("What is 1300 + 455?") as a problem of its module with the worked lines as its
        solution and the numbers where the column forms read them; None where `worked_step` has no lines."""
        lines = self.worked_step(step)
        found = STEP_QUESTION.fullmatch(step.question.strip())
        if not lines or not found:
            return None
        a, op, b = found["a"], found["op"], found["b"]
        return Problem(id=f"step-{step.module}-{a}{op}{b}", module=step.module, difficulty=0.0,
                       question=step.question, answer=step.answer, solution="\n".join(lines),
                       meta={"a": int(a), "b": int(b)})

    def atomic_lines(self, problem: Problem) -> list[str] | None:
        """The problem's solving lines with no line beyond a lower module's one step: multi-digit
        multiplication by place value (the generator's lines put a many-digit product such as
        "278 × 9 = 2502" on one line, the step a trained 135M student got wrong in 21 of its 22 wrong
        answers); division facts by walking up the divisor's times table (the teacher's line states the
        quotient the student is asked for); None for modules whose lines already are such steps."""
        if problem.module == "division_facts":
            return division_by_table_lines(int(problem.meta["a"]), int(problem.meta["b"]))
        if problem.module != "multi_digit_multiplication":
            return None
        return multiplication_by_place_lines(int(problem.meta["a"]), int(problem.meta["b"]))

    def table_lines(self, problem: Problem) -> list[str] | None:
        """Division facts by the divisor's whole times table written as divisions
        (`division_table_lines`); None for the other modules."""
        if problem.module != "division_facts":
            return None
        return division_table_lines(int(problem.meta["a"]), int(problem.meta["b"]))

    def stopped_table_lines(self, problem: Problem) -> list[str] | None:
        """Division facts by the divisor's times table up to the dividend (`division_table_lines`, stop_at_n);
        None for the other modules."""
        if problem.module != "division_facts":
            return None
        return division_table_lines(int(problem.meta["a"]), int(problem.meta["b"]), stop_at_n=True)

    def long_division_lines(self, problem: Problem) -> list[str] | None:
        """Division with remainder one quotient digit at a time (`long_division_lines`); None for the other
        modules."""
        if problem.module != "division_with_remainder":
            return None
        return long_division_lines(int(problem.meta["a"]), int(problem.meta["b"]))

    def checked_lines(self, problem: Problem) -> list[str] | None:
        """Division facts by trying quotients and checking each product against the dividend, the
        first try within two of the quotient (drawn from the problem's id, so the same problem always
        gets the same lines); the mean by adding two numbers at a time; None for the other modules."""
        if problem.module == "division_facts":
            n, b = int(problem.meta["a"]), int(problem.meta["b"])
            q = n // b
            first = random.Random(problem.id).choice([k for k in range(q - 2, q + 3) if k >= 1])
            return division_by_checking_lines(n, b, first)
        if problem.module == "mean":
            # the running sums in place of the teacher's first line (the one-line sum), its other lines kept
            return running_sum_lines([int(v) for v in problem.meta["values"]]) + problem.solution.splitlines()[1:]
        return None

    def explicit_lines(self, problem: Problem) -> list[str] | None:
        """The column procedures with every digit named by its place first and the result built column
        by column (`column_add_explicit_lines`); None for the other modules."""
        return column_form(problem, column_add_explicit_lines, column_sub_explicit_lines)

    def carry_step_lines(self, lines: list[str]) -> list[str]:
        """Each column sum with a carry as a third term taken carry first (`carry_first`), in any of the column
        procedures' forms (the teacher's, explicit digits, peeled columns)."""
        return [carry_first(line) for line in lines]

    def borrow_step_lines(self, lines: list[str]) -> list[str]:
        """Each borrowed column difference with a teen minuend taken through ten (`borrow_through_ten`), in any of
        the column procedures' forms (the teacher's, explicit digits, peeled columns)."""
        return [borrow_through_ten(line) for line in lines]

    def peeled_lines(self, problem: Problem) -> list[str] | None:
        """The column procedures with the numbers left after each column (`column_add_peeled_lines`);
        None for the other modules."""
        return column_form(problem, column_add_peeled_lines, column_sub_peeled_lines)

    def check(self, problem: Problem, response: str) -> bool:
        return check_response(problem.answer, response)

    def check_step(self, step_answer: str, response: str) -> bool:
        return check_response(step_answer, response)

    def answers_equal(self, expected: str, got: str) -> bool:
        """Whether two bare answer strings have the same value (no extraction from free text)."""
        return answers_match(expected, got)
