"""Answer extraction and metrics on real-looking model outputs: GSM8K strict/flexible, MATH/AIME boxed
answers under math-verify, code from chat answers, judge ratings, pass@k and ROUGE-L by hand."""
from __future__ import annotations

import math

import pytest

from ioa.evaluation.extract import (
    final_answer_line,
    gsm8k_flexible,
    gsm8k_gold,
    gsm8k_strict,
    judge_rating,
    math_answer,
    normalize_number,
)
from ioa.evaluation.metrics import gsm8k_match, int_answer, math_equal, mean_pass_at_k, pass_at_k, rouge_l
from ioa.grading import extract_code, last_boxed

# ---- GSM8K ---------------------------------------------------------------------------------------

# (model output, strict answer normalized, flexible answer normalized); "" = nothing extracted
GSM8K_OUTPUTS = [
    ("Janet's ducks lay 16 eggs. She uses 3 + 4 = 7.\n16 - 7 = 9 eggs are sold.\n9 * 2 = 18\n#### 18", "18", "18"),
    ("She makes 9 * $2 = $18 every day.\n#### $18", "18", "18"),
    ("Total: 1,000 + 234 = 1,234 dollars.\n#### 1,234", "1234", "1234"),
    ("Each box holds 6, so 3 boxes hold 18.\nThe answer is 18.", "18", "18"),
    ("He pays 2 * 9 = 18.\nAnswer: 18 dollars", "18", "18"),
    ("The price is 18.00 per item.\n#### 18.00", "18", "18"),
    ("It drops 8 degrees from 3: 3 - 8 = -5.\n#### -5", "-5", "-5"),
    ("#### 42\nI hope this helps! Let me know if you need 3 more examples.", "42", "3"),
    ("I am not sure how to solve this...", "", ""),
    ("So the result is 18.00.", "", "18"),
    ("**Answer:** 72", "72", "72"),
    ("The result is 0.5 liters.\n#### 0.50", "0.5", "0.5"),
]


@pytest.mark.parametrize("text,strict,flexible", GSM8K_OUTPUTS)
def test_gsm8k_strict_and_flexible(text, strict, flexible):
    assert normalize_number(gsm8k_strict(text)) == strict
    assert normalize_number(gsm8k_flexible(text)) == flexible


def test_gsm8k_first_hash_line_wins_as_in_lm_eval():
    assert gsm8k_strict("#### 5\nwait, no\n#### 7") == "5"


@pytest.mark.parametrize("pred,gold,ok", [
    ("$1,234.00", "1234", True), ("18 dollars", "18", True), ("18.0", "18", True), ("18.", "18", True),
    ("-3", "3", False), ("0.50", "0.5", True), ("1,234", "1234.5", False), (None, "18", False),
    ("eighteen", "18", False),
])
def test_gsm8k_match_normalizes(pred, gold, ok):
    assert gsm8k_match(pred, gold) is ok


def test_gsm8k_gold_takes_the_number_after_hashes():
    assert gsm8k_gold("She sells 16 - 3 - 4 = <<16-3-4=9>>9 eggs.\n9 * 2 = $<<9*2=18>>18\n#### 18") == "18"
    assert gsm8k_gold("... so 1,500 - 300 = 1,200\n#### 1,200") == "1200"


# ---- MATH / AIME ---------------------------------------------------------------------------------

MATH_OUTPUTS = [
    ("We get $x = \\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
    ("Therefore the probability is $\\boxed{\\dfrac{1}{2}}$", "\\dfrac{1}{2}"),
    ("First guess \\boxed{3}, but rechecking gives \\boxed{5}.", "5"),  # several boxed: the last wins
    ("In polar form: $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}$", "\\left( 3, \\frac{\\pi}{2} \\right)"),
    ("So $\\boxed{\\frac{a+\\sqrt{b}}{c^{2}}}$ is it.", "\\frac{a+\\sqrt{b}}{c^{2}}"),  # nested braces
    ("The final answer is $0.5$.", "0.5"),
    ("\\fbox{7}", "7"),
    ("so the answer is \\boxed 7.", "7"),
    ("Answer: (-\\infty, 3]", "(-\\infty, 3]"),
    ("The width is $\\boxed{10\\text{ inches}}$.", "10\\text{ inches}"),
    ("I could not finish the computation.", None),
    ("An unclosed \\boxed{x^2 + 1", None),
]


@pytest.mark.parametrize("text,expected", MATH_OUTPUTS)
def test_math_answer_extraction(text, expected):
    assert math_answer(text) == expected


def test_last_boxed_and_answer_line_are_separate_steps():
    assert last_boxed("no box") is None
    assert final_answer_line("Work...\nFinal Answer: $\\frac{3}{4}$.") == "\\frac{3}{4}"


@pytest.mark.parametrize("pred,gold,ok", [
    ("\\frac{1}{2}", "\\frac{1}{2}", True),
    ("0.5", "\\frac{1}{2}", True),  # fraction vs decimal
    ("\\dfrac{1}{2}", "\\frac{1}{2}", True),
    ("\\left(3, \\frac{\\pi}{2}\\right)", "\\left( 3, \\frac{\\pi}{2} \\right)", True),
    ("(-\\infty,3]", "(-\\infty, 3]", True),  # intervals
    ("[3,\\infty)", "(-\\infty, 3]", False),
    ("10", "10\\text{ inches}", True),  # \text{} units
    ("18 dollars", "18", True),
    ("2k", "2k", True),  # a variable, not a unit
    ("2", "2k", False),
    ("\\sqrt{18}", "3\\sqrt{2}", True),
    ("1+x^2", "x^2+1", True),
    ("6", "5", False),
    (None, "5", False),
    ("", "5", False),
])
def test_math_equal_with_math_verify(pred, gold, ok):
    assert math_equal(pred, gold) is ok


@pytest.mark.parametrize("text,value", [
    ("025", 25), ("204", 204), ("$204$", 204), ("204.0", 204), ("25 minutes", 25), ("3\\sqrt{2}", None),
    ("\\frac{1}{2}", None), (None, None),
])
def test_aime_integer_answers(text, value):
    assert int_answer(text) == value


# ---- code ----------------------------------------------------------------------------------------

def test_code_from_a_chat_answer():
    answer = ("Here is the function:\n```python\ndef add(a, b):\n    return a + b\n```\n"
              "Example:\n```python\nprint(add(1, 2))\n```")
    assert extract_code(answer, "add") == "def add(a, b):\n    return a + b\n"
    assert extract_code(answer) == "def add(a, b):\n    return a + b\n"  # first block without a name
    assert extract_code("```\ndef add(a, b):\n    return a+b") == "def add(a, b):\n    return a+b"  # unclosed fence
    assert extract_code("    return a + b\n") == "    return a + b\n"  # raw completion kept


# ---- judge ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,rating", [
    ("The answer is helpful and accurate. Rating: [[7]]", 7.0),
    ("Some detail is missing. [[8.5]]", 8.5),
    ("Backup format [6]", 6.0),
    ("Rating: 8/10", None),
])
def test_judge_rating(text, rating):
    assert judge_rating(text) == rating


# ---- pass@k and ROUGE-L --------------------------------------------------------------------------

def test_pass_at_k_hand_computed():
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_at_k(5, 4, 2) == 1.0  # k > n - c: every draw of 2 holds a correct one
    assert pass_at_k(10, 1, 10) == 1.0
    # n=4, c=1, k=2: 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)
    assert pass_at_k(20, 5, 10) == pytest.approx(1 - math.comb(15, 10) / math.comb(20, 10))
    with pytest.raises(ValueError):
        pass_at_k(5, 6, 1)
    with pytest.raises(ValueError):
        pass_at_k(5, 1, 10)


def test_mean_pass_at_k_reports_k_only_when_every_task_has_enough_samples():
    assert mean_pass_at_k([(10, 0), (10, 10)], (1, 10)) == {"pass@1": 0.5, "pass@10": 0.5}
    assert mean_pass_at_k([(1, 1), (1, 0)], (1, 10)) == {"pass@1": 0.5}


def test_rouge_l_hand_computed():
    # LCS("the cat on the mat", "the cat sat on the mat") = 5 tokens: P = 5/5, R = 5/6, F = 10/11
    assert rouge_l("the cat on the mat", "the cat sat on the mat") == pytest.approx(10 / 11)
    assert rouge_l("The cats were running.", "the cat was run") == pytest.approx(  # stemming: cats->cat, running->run
        2 * (3 / 4) * (3 / 4) / (3 / 4 + 3 / 4))
    assert rouge_l("completely different", "nothing shared here") == 0.0
    assert rouge_l("the cat", ["a dog", "the cat"]) == 1.0  # best reference
