"""Answer normalization for the arithmetic domain: read a final answer into a comparable value.

An answer is one of three kinds: a number (integer, decimal or fraction, kept as an exact
`Fraction`), a division with remainder ("17 R 2"), or the solution of a 2x2 system ("x=3, y=-2").
`parse_answer` accepts the usual spellings of each; `answers_match` compares two answers by value.
Nothing here raises on bad input: an unreadable answer parses to None and never matches.
"""
from __future__ import annotations

import re
from fractions import Fraction

from ioa.grading import extract_answer

Value = tuple  # ("num", Fraction) | ("rem", int, int) | ("sys", Fraction, Fraction)

_NUM = r"-?(?:\d+(?:\.\d+)?|\.\d+)(?:/-?\d+)?"
_VAR = re.compile(rf"\b([a-z])\s*=\s*({_NUM})")
_PAIR = re.compile(rf"^\(\s*({_NUM})\s*[,;]\s*({_NUM})\s*\)$")
_REM = re.compile(
    r"^(?:the\s+)?(?:quotient\s*(?:is\s*)?[:=]?\s*)?(-?\d+)\s*,?\s*(?:and\s+)?"
    r"(?:r|rem|remainder)\.?\s*(?:is\s*)?[:=]?\s*(\d+)$"
)
_FULL_NUM = re.compile(rf"^{_NUM}$")
_ANY_NUM = re.compile(rf"(?<![\d.]){_NUM}")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def _number(text: str) -> Fraction | None:
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


def _clean(text: str) -> str:
    text = text.strip().lower().replace("\u2212", "-").replace("\u2013", "-")
    text = text.replace("$", "").strip()
    while text.endswith((".", "!")):
        text = text[:-1].rstrip()
    return text


def _parse_system(text: str) -> Value | None:
    pair = _PAIR.match(text)
    if pair:
        x, y = _number(pair.group(1)), _number(pair.group(2))
        return ("sys", x, y) if x is not None and y is not None else None
    found = _VAR.findall(text)
    names = [name for name, _ in found]
    if sorted(names) == ["x", "y"]:
        values = {name: _number(v) for name, v in found}
        if None not in values.values():
            return ("sys", values["x"], values["y"])
    if len(found) == 1 and len(_ANY_NUM.findall(text)) == 1:
        value = _number(found[0][1])
        return ("num", value) if value is not None else None
    return None


def _parse_remainder(text: str) -> Value | None:
    match = _REM.match(text)
    if not match:
        return None
    quotient, remainder = int(match.group(1)), int(match.group(2))
    return ("num", Fraction(quotient)) if remainder == 0 else ("rem", quotient, remainder)


def parse_answer(text: str | None) -> Value | None:
    """The value of an answer string, or None when it cannot be read unambiguously."""
    if not isinstance(text, str) or not text.strip() or len(text) > 2000:
        return None
    text = _clean(text)
    system = _parse_system(text)
    if system is not None:
        return system
    text = _THOUSANDS.sub("", text)
    remainder = _parse_remainder(text)
    if remainder is not None:
        return remainder
    compact = text.replace(" ", "")
    if _FULL_NUM.match(compact):
        value = _number(compact)
        return ("num", value) if value is not None else None
    numbers = _ANY_NUM.findall(text)
    if len(numbers) == 1:  # "42 apples"; two or more numbers are ambiguous
        value = _number(numbers[0])
        return ("num", value) if value is not None else None
    return None


def answers_match(expected: str, got: str | None) -> bool:
    """Whether `got` has the same value as the exact answer `expected`."""
    want, have = parse_answer(expected), parse_answer(got)
    return want is not None and want == have


def check_response(expected: str, response: object) -> bool:
    """Whether a free-text response ends in the answer `expected` (never raises)."""
    if not isinstance(response, str):
        return False
    try:
        return answers_match(expected, extract_answer(response))
    except Exception:  # a checker must grade, never crash a run
        return False
