"""Reading the answer out of a model's output: pure functions, one per benchmark family.

GSM8K follows lm-evaluation-harness: *strict* takes the `#### N` line (its strict-match regex,
`#### (\\-?[0-9\\.\\,]+)`, first match; we also allow a `$` after `####`), falling back to a final
`The answer is N` / `Answer: N` line; *flexible* takes the last number in the text (its flexible-extract
regex, `(-?[$0-9.,]{2,})|(-?[0-9]+)`, last match, skipping matches without a digit). Both go through
`normalize_number` before comparison. MATH/AIME take the last `\\boxed{}` / `\\fbox{}` (balanced braces),
else the final answer line. The answer-line shape, `last_boxed` and code extraction (`extract_code`: the
last fenced block that defines the wanted function, else the first fenced block, else the raw completion)
are `ioa.grading`'s.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from ioa.grading import BOLD_ANSWER_HEAD, NUMBER_ANSWER_LINE, last_boxed

__all__ = [
    "gsm8k_gold", "gsm8k_strict", "gsm8k_flexible", "normalize_number",
    "final_answer_line", "math_answer", "strip_text_units", "judge_rating",
]

# ---- GSM8K ---------------------------------------------------------------------------------------

STRICT_HASH = re.compile(r"#### \$?(\-?[0-9\.\,]+)")
ANSWER_IS = re.compile(r"(?i)the (?:final )?answer is[:\s]*\$?\s*(\-?[0-9][0-9\.\,]*)")
FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
NUMBER_IN = re.compile(r"-?\d*\.?\d+")


def gsm8k_gold(answer: str) -> str:
    """The number after `#### ` in a GSM8K reference solution, normalized."""
    return normalize_number(answer.split("####")[-1])


def gsm8k_strict(text: str) -> str | None:
    """lm-eval strict-match: the first `#### N`; else the last `The answer is N` or `Answer: N` line."""
    m = STRICT_HASH.search(text)
    if m:
        return m.group(1)
    tails = [(m.start(), m.group(1)) for pat in (ANSWER_IS, NUMBER_ANSWER_LINE) for m in pat.finditer(text)]
    return max(tails)[1] if tails else None


def gsm8k_flexible(text: str) -> str | None:
    """lm-eval flexible-extract: the last number-like run in the text."""
    found = [a or b for a, b in FLEXIBLE.findall(text)]
    found = [f for f in found if any(ch.isdigit() for ch in f)]
    return found[-1] if found else None


def normalize_number(text: str | None) -> str:
    """Canonical form for comparing numeric answers: commas, `$`, a trailing `.`, units and `.0` dropped.

    `"$1,234.00 dollars."` -> `"1234"`, `"-0.50"` -> `"-0.5"`; text without a number comes back
    lower-cased and stripped, so it can still be compared (and never equals a number).
    """
    if text is None:
        return ""
    s = text.strip().replace(",", "").replace("$", "").rstrip(".").strip()
    m = NUMBER_IN.search(s)
    if not m:
        return s.lower()
    try:
        value = Decimal(m.group(0))
    except InvalidOperation:
        return s.lower()
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


# ---- MATH / AIME ---------------------------------------------------------------------------------

FINAL_ANSWER = re.compile(rf"(?im)(?:final answer is|the answer is|^{BOLD_ANSWER_HEAD})\s*(.+?)\s*$")


def final_answer_line(text: str) -> str | None:
    """The last `The final answer is X` / `The answer is X` / `Answer: X`, with `$...$` and a final `.` removed."""
    found = FINAL_ANSWER.findall(text)
    if not found:
        return None
    answer = found[-1].strip().rstrip(".").strip()
    if len(answer) >= 2 and answer.startswith("$") and answer.endswith("$"):
        answer = answer.strip("$").strip()
    return answer or None


def math_answer(text: str) -> str | None:
    """MATH/AIME: the last boxed answer, else the final answer line, else None."""
    boxed = last_boxed(text)
    return boxed if boxed is not None else final_answer_line(text)


UNIT_WORDS = re.compile(r"^\s*(-?[\d.,]*\d)\s+[A-Za-z]{2,}[A-Za-z .]*$")  # "18 dollars", not "2k"


def strip_text_units(answer: str) -> str:
    """`18 dollars` -> `18`: plain-word units after a number (LaTeX `\\text{}` units math-verify drops itself)."""
    m = UNIT_WORDS.match(answer)
    return m.group(1) if m and "\\" not in answer else answer


# ---- LLM judge -----------------------------------------------------------------------------------

RATING = re.compile(r"\[\[(\d+\.?\d*)\]\]")
RATING_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")


def judge_rating(text: str) -> float | None:
    """The `[[rating]]` of an MT-bench single-answer judgment (FastChat's pattern, then its `[rating]`
    backup); None when the judgment holds no rating (FastChat records -1 and drops it)."""
    m = RATING.search(text) or RATING_BACKUP.search(text)
    return float(m.group(1)) if m else None
