"""The grading module: every answer-line variant side by side on the same inputs, the other extractors
and the one mastery test.

The variants accept different decorations on purpose (each is what its callers accepted before they
shared one shape); the table makes each difference visible and keeps it from drifting.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from ioa.domains.checking import choice_letter
from ioa.evaluation.extract import final_answer_line, gsm8k_strict
from ioa.grading import (
    FINISHED_ANSWER_LINE,
    extract_answer,
    extract_code,
    final_answer,
    last_boxed,
    last_number,
    last_python_block,
    mastered,
    mastery_ratio,
    passes,
    strip_think,
)

PACKAGE = Path(__file__).resolve().parents[1] / "ioa"

# text -> plain (`extract_answer` strict: built-in domains), markdown (`final_answer`: LLM-described domains),
# number (`gsm8k_strict`: GSM8K's answer line), math (`final_answer_line`: MATH/AIME), finished (the student
# may stop generating), choice (`choice_letter`: multiple-choice domains). None: no answer found.
ANSWER_LINES = [
    # the plain line, in every spelling all variants accept
    ("Answer: 42", "42", "42", "42", "42", True, None),
    ("answer: 42", "42", "42", "42", "42", True, None),
    ("ANSWER: 42", "42", "42", "42", "42", True, None),
    ("Answer : 42", "42", "42", "42", "42", True, None),
    ("Work.\nAnswer: 41\nAnswer: 42", "42", "42", "42", "42", True, None),  # the last line wins
    # "Final answer"
    ("Final answer: 42", "42", "42", "42", "42", True, None),
    ("Final Answer: 42", "42", "42", "42", "42", True, None),
    ("final \t answer: 42", "42", "42", "42", "42", True, None),
    # Chinese (full-width) colon: every reader, but generation stops only at an ASCII one
    ("Answer：42", "42", "42", "42", "42", False, None),
    ("Final answer： 42", "42", "42", "42", "42", False, None),
    # leading whitespace
    ("   Answer: 42", "42", "42", "42", "42", True, None),
    ("\tAnswer: 42", "42", "42", "42", "42", True, None),
    # markdown: only the LLM domains' reader takes every form; GSM8K and MATH take bold around the word
    ("**Answer:** 42", None, "42", "42", "** 42", False, None),
    ("**Answer**: 42", None, "42", "42", "42", False, None),
    ("*Answer*: 42", None, "42", "42", "42", False, None),
    ("**Final Answer:** 42", None, "42", "42", "** 42", False, None),
    ("** Answer:** 42", None, "42", None, None, False, None),
    ("__Answer__: 42", None, "42", None, None, False, None),
    ("_Answer_: 42", None, "42", None, None, False, None),
    ("> Answer: 42", None, "42", None, None, False, None),
    ("## Final answer: 42", None, "42", None, None, False, None),
    # the value
    ("Answer: **42**", "**42**", "42", "42", "**42**", True, None),
    ("Answer: $1,234.", "$1,234", "$1,234", "1,234.", "$1,234", True, None),
    ("Answer: 42 apples", "42 apples", "42 apples", "42", "42 apples", True, None),
    ("Answer: -3.5", "-3.5", "-3.5", "-3.5", "-3.5", True, None),
    ("Answer: x = 4.", "x = 4", "x = 4", None, "x = 4", True, None),
    ("Answer:\n42", "42", "42", "42", "42", False, None),  # the value may start on the next line
    # not an answer line
    ("Answer:", None, None, None, None, False, None),
    ("Answer 42", None, None, None, None, False, None),
    ("My answer: 42", None, None, None, None, False, None),
    ("The answer is 42", None, None, "42", "42", False, None),  # GSM8K and MATH also read the phrase
    # option letters: the choice reader is case-sensitive (capital letters, `Answer` or `answer`)
    ("Answer: (B)", "(B)", "(B)", None, "(B)", True, "B"),
    ("answer: B", "B", "B", None, "B", True, "B"),
    ("ANSWER: B", "B", "B", None, "B", True, None),
    ("**Final answer:** (C)", None, "(C)", None, "** (C)", False, "C"),
]


@pytest.mark.parametrize("text, plain, markdown, number, math, finished, choice", ANSWER_LINES)
def test_every_answer_line_variant_on_one_table(text, plain, markdown, number, math, finished, choice):
    assert extract_answer(text, "strict") == plain
    assert final_answer(text) == markdown
    assert gsm8k_strict(text) == number
    assert final_answer_line(text) == math
    assert bool(FINISHED_ANSWER_LINE.search(text + "\n")) is finished
    assert choice_letter(text) == choice


def test_a_finished_answer_line_needs_a_value_and_its_newline():
    assert FINISHED_ANSWER_LINE.search("Work.\nAnswer: 7\n")
    assert not FINISHED_ANSWER_LINE.search("Work.\nAnswer: 7")  # still being written
    assert not FINISHED_ANSWER_LINE.search("Answer:  \n")  # no value yet
    assert FINISHED_ANSWER_LINE.search("  final answer: 7\n")


def test_the_answer_line_shape_is_written_once():
    """Every answer-line regex is built in ioa.grading: no other module spells its colon (`[:：]`), its
    `final\\s+` or an `answer\\s*:` head (the phrase `the answer is` is no answer line)."""
    head = re.compile(r"\[:：\]|inal\\s\+|[Aa]nswer\]?\\s\*:")
    spelled = [p.relative_to(PACKAGE.parent).as_posix() for p in sorted(PACKAGE.rglob("*.py"))
               if p.name != "grading.py" and head.search(p.read_text())]
    assert spelled == []
    assert head.search((PACKAGE / "grading.py").read_text())  # the scan would see one


@pytest.mark.parametrize("text, flexible", [
    ("Answer: 12", "12"),
    ("We get 3 and then 1,234.5 in all.", "1,234.5"),  # no answer line: the last number
    ("Half is 3/4 of it", "3/4"),
    ("**Answer:** 5 and 6", "6"),  # the built-in reader takes no markdown: the last number instead
    ("no number", None),
])
def test_extract_answer_flexible_falls_back_to_the_last_number(text, flexible):
    assert extract_answer(text) == flexible


@pytest.mark.parametrize("text, expected", [
    ("#### 1,234", "1,234"),
    ("So \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),
    ("Answer: 3\n#### 4", "3"),  # the answer line first
    ("<think>Answer: 1</think>It is 7.", None),  # think blocks are not the answer
    ("nothing here", None),
])
def test_final_answer_hash_and_boxed_fallbacks(text, expected):
    assert final_answer(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("She pays $1,234.50 in all.", "$1,234.50"),
    ("about .5 of it", ".5"),
    ("12 apples, 13 pears,", " 13"),  # the space before a number is kept, the trailing comma dropped
    ("3/4", "3/4"),
    ("none", None),
])
def test_last_number(text, expected):
    assert last_number(text) == expected


def test_last_boxed_keeps_nested_braces_and_reads_boxed_with_a_space():
    assert last_boxed("\\boxed{1} then \\boxed{\\frac{a}{b}}") == "\\frac{a}{b}"
    assert last_boxed("\\fbox{7}") == "7"
    assert last_boxed("\\boxed 5.") == "5"
    assert last_boxed("\\boxed{never closed") is None


def test_two_code_rules_each_its_callers():
    answer = "First:\n```python\ndef f():\n    return 1\n```\nBetter:\n```python\ndef f():\n    return 2\n```\n"
    # benchmarks: the block defining the entry point (the last such), else the first block
    assert extract_code(answer, "f") == "def f():\n    return 2\n"
    assert extract_code(answer) == "def f():\n    return 1\n"
    assert extract_code("```python3\nx = 1") == "x = 1"  # python3 and an unclosed fence
    # LLM-described domains: the last closed ```python block, think blocks stripped
    assert last_python_block(answer) == "def f():\n    return 2\n"
    assert last_python_block("<think>```python\nx = 0\n```</think>no code") == "no code"
    assert last_python_block("```python3\nx = 1") == "```python3\nx = 1"


def test_strip_think():
    assert strip_think("<think>hmm</think> Answer: 3 ") == "Answer: 3"
    assert strip_think("<THINK>unfinished") == ""


def test_one_mastery_test():
    assert mastered(0.9, 1.0, 0.9) and not mastered(0.89, 1.0, 0.9)
    assert mastered(0.5, 5 / 9, 0.9)  # 0.8999999999999999: float noise does not fail a module
    assert not mastered(0.0, 0.0, 0.0)  # P_T = 0: never mastered, not even at tau 0
    assert mastery_ratio(0.3, 0.0) == 0.0 and mastery_ratio(0.3, 0.6) == 0.5
    assert passes(0.9 - 1e-10, 0.9) and not passes(0.9 - 1e-8, 0.9)
