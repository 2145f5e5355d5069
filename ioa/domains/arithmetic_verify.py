"""Verification lines for the arithmetic domain: each answer checked by the inverse operation.

The Adapter puts this line in the `verify` phase of a worked solution ("Check: 690 - 44 = 646."), so
the student learns to check its result rather than to restate it.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable


def _fmt(x: Fraction | int) -> str:
    x = Fraction(x)
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def _addition(m: dict[str, Any], answer: str) -> str:
    return f"Check: {answer} - {m['b']} = {m['a']}."


def _subtraction(m: dict[str, Any], answer: str) -> str:
    return f"Check: {answer} + {m['b']} = {m['a']}."


def _multiplication(m: dict[str, Any], answer: str) -> str:
    return f"Check: {answer} ÷ {m['b']} = {m['a']}." if m["b"] else "Check: anything times 0 is 0."


def _division(m: dict[str, Any], answer: str) -> str:
    return f"Check: {answer} × {m['b']} = {m['a']}."


def _division_with_remainder(m: dict[str, Any], answer: str) -> str:
    q, r = divmod(m["a"], m["b"])
    return f"Check: {q} × {m['b']} + {r} = {m['a']}, and {r} is less than {m['b']}."


def _linear_equation(m: dict[str, Any], answer: str) -> str:
    return f"Check: {m['a']} × {answer} + {m['b']} = {m['a'] * int(answer) + m['b']}, which is {m['c']}."


def _linear_system(m: dict[str, Any], answer: str) -> str:
    x, y = (int(part.split("=")[1]) for part in answer.split(","))
    first = m["a1"] * x + m["b"] * y
    second = m["a2"] * x - m["b"] * y
    return f"Check: {m['a1']}×{x} + {m['b']}×{y} = {first} and {m['a2']}×{x} - {m['b']}×{y} = {second}."


def _mean(m: dict[str, Any], answer: str) -> str:
    return f"Check: {answer} × {len(m['values'])} = {sum(m['values'])}, the total."


def _percentage(m: dict[str, Any], answer: str) -> str:
    return f"Check: {answer} out of {m['of']} is {_fmt(Fraction(answer) * 100 / m['of'])}%."


def _unit_rate(m: dict[str, Any], answer: str) -> str:
    return (f"Check: {m['cost']} ÷ {m['n1']} = {_fmt(Fraction(m['cost'], m['n1']))} dollars each, and {answer} ÷ "
            f"{m['n2']} is the same.")


def _fractions(m: dict[str, Any], answer: str) -> str:
    (a, b), (c, d) = m["fractions"]
    return f"Check: {answer} - {c}/{d} = {_fmt(Fraction(answer) - Fraction(c, d))}, which equals {a}/{b}."


VERIFIERS: dict[str, Callable[[dict[str, Any], str], str]] = {
    "addition_facts": _addition,
    "multi_digit_addition": _addition,
    "subtraction_facts": _subtraction,
    "multi_digit_subtraction": _subtraction,
    "multiplication_facts": _multiplication,
    "multi_digit_multiplication": _multiplication,
    "division_facts": _division,
    "division_with_remainder": _division_with_remainder,
    "linear_equations": _linear_equation,
    "linear_systems": _linear_system,
    "mean": _mean,
    "percentages": _percentage,
    "unit_rate": _unit_rate,
    "fractions": _fractions,
}


def verification(module_id: str, meta: dict[str, Any], answer: str) -> str | None:
    """A check of `answer` by the inverse operation, or None where the module has no such check."""
    verify = VERIFIERS.get(module_id)
    return verify(meta, answer) if verify else None
