"""Answer checkers for LLM-described domains, one per `check:` kind of a domain spec.

    numeric   the final answer (`Answer:` line, `#### N`, last `\\boxed{}`, else the last number),
              compared as a number after removing commas, `$` and units; math-verify when not plain
    symbolic  math-verify's `verify(parse(gold), parse(pred))`, both `$`-wrapped, under a timeout
    exact     normalised string match of the final answer
    choice    the option letter A-E (`Answer: (B)`, `the answer is B`)
    code      the response's last ```python block run against the reference tests in the sandbox
    judge     the teacher as judge: `judge_correct` when there is a reference, else a `judge` rating
              at or above the threshold

Every checker answers `check_many(problems, responses)` and `check_step(answer, response)`; the first
four are pure. Think blocks are stripped from responses first. `CHECKERS[kind](settings)` builds one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Protocol, Sequence

from ioa.chat import ChatBackend
from ioa.evaluation.metrics import math_equal
from ioa.grading import (
    CHOICE_ANSWER_LINE,
    LOOSE_NUMBER,
    final_answer,
    last_boxed,
    last_number,
    last_python_block,
    strip_think,
)
from ioa.llm.jsonout import InvalidOutput, ask_parsed_many
from ioa.llm.prompts import render
from ioa.types import Problem

ANSWER_LINE_KINDS = frozenset({"numeric", "symbolic", "exact", "choice"})  # responses end in `Answer: ...`
PLAIN_NUMBER = re.compile(r"^-?(?:\d+(?:\.\d+)?|\.\d+)(?:/\d+)?$")
CHOICE_PATTERNS = (  # option letters are capitals, so "the answer is a triangle" is no answer
    CHOICE_ANSWER_LINE,
    re.compile(r"\b[Aa]nswer is\s*:?\s*[*_]*\s*\(?([A-E])\b\)?"),
    re.compile(r"\(([A-E])\)"),
)


# ---------------------------------------------------------------- extraction (the rest is ioa.grading)


def numeric_value(text: str) -> Fraction | None:
    """`$1,234.50` -> 2469/2, `12 apples` -> 12, `\\boxed{7}` -> 7, `3/4` -> 3/4; None if no plain number."""
    inner = last_boxed(text)
    s = (inner if inner is not None else text).replace("$", "").replace("\\%", "").replace("%", "")
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", s).strip()
    match = LOOSE_NUMBER.search(s)
    if not match or not PLAIN_NUMBER.match(match.group(0).replace(" ", "")):
        return None
    rest = s[:match.start()] + s[match.end():]
    if "\\" in s or "^" in s or re.search(r"\d", rest):  # LaTeX or an expression: for math-verify
        return None
    try:
        return Fraction(match.group(0).replace(" ", ""))
    except (ValueError, ZeroDivisionError):
        return None


# ---------------------------------------------------------------- pure matchers (reference, response)


def check_numeric(reference: str, response: str) -> bool:
    response = strip_think(response)
    pred = final_answer(response) or last_number(response)
    if pred is None:
        return False
    gold_value, pred_value = numeric_value(reference), numeric_value(pred)
    if gold_value is not None and pred_value is not None:
        return abs(gold_value - pred_value) <= Fraction(1, 10**6) * max(1, abs(gold_value))
    return math_equal(pred, reference)


def check_symbolic(reference: str, response: str) -> bool:
    response = strip_think(response)
    pred = final_answer(response)
    return math_equal(pred if pred is not None else response, reference)


def normalise(text: str) -> str:
    text = text.strip().strip("*`\"'").strip().rstrip(".").casefold()
    return " ".join(text.split())


def check_exact(reference: str, response: str) -> bool:
    response = strip_think(response)
    pred = final_answer(response)
    if pred is None:
        lines = [ln for ln in response.splitlines() if ln.strip()]
        pred = lines[-1] if lines else ""
    return normalise(pred) == normalise(reference)


def choice_letter(text: str) -> str | None:
    """The option letter a text settles on, or None."""
    text = strip_think(text).strip()
    alone = re.fullmatch(r"\(?([A-Ea-e])\)?[.:]?", text)
    if alone:
        return alone.group(1).upper()
    for pattern in CHOICE_PATTERNS:
        found = pattern.findall(text)
        if found:
            return found[-1].upper()
    return None


def check_choice(reference: str, response: str) -> bool:
    gold = choice_letter(reference) or reference.strip().upper()[:1]
    return choice_letter(response) == gold


def check_short(reference: str, response: str) -> bool:
    """A short step answer: as a number when the reference is one, else as a normalised string."""
    if numeric_value(reference) is not None and PLAIN_NUMBER.match(reference.strip().replace(",", "")):
        return check_numeric(reference, response)
    return check_exact(reference, response)


# ---------------------------------------------------------------- checkers


@dataclass(frozen=True)
class CheckSettings:
    """What a checker may need: the judge's client and rubric (only `judge` uses them)."""

    client: ChatBackend | None = None
    domain_name: str = ""
    rubric: str = ""
    threshold: int = 7
    max_tokens: int = 1024
    temperature: float | None = 0.0
    max_retries: int = 3


class Checker(Protocol):
    def check_many(self, problems: Sequence[Problem], responses: Sequence[str]) -> list[bool]: ...

    def check_step(self, answer: str, response: str) -> bool: ...


class AnswerChecker:
    """A pure matcher applied to (problem.answer, response)."""

    def __init__(self, match: Callable[[str, str], bool]):
        self.match = match

    def check_many(self, problems: Sequence[Problem], responses: Sequence[str]) -> list[bool]:
        return [self.match(p.answer, r) for p, r in zip(problems, responses, strict=True)]

    def check_step(self, answer: str, response: str) -> bool:
        return self.match(answer, response)


def program_with_tests(code: str, tests: str, entry_point: str | None = None) -> str:
    """A program that runs to the end iff `code` passes `tests` (HumanEval's `check(candidate)` too)."""
    program = f"{code.rstrip()}\n\n\n{tests.rstrip()}\n"
    if entry_point and re.search(r"^def check\(", tests, re.M):
        program += f"\n\ncheck({entry_point})\n"
    return program


class CodeChecker:
    """Runs each response's code with its problem's tests (`problem.answer`) in the sandbox."""

    def __init__(self, settings: CheckSettings | None = None):
        self.settings = settings

    def check_many(self, problems: Sequence[Problem], responses: Sequence[str]) -> list[bool]:
        if not problems:
            return []
        try:
            from ioa.evaluation.sandbox import run_programs
        except ImportError as e:
            raise RuntimeError("code checking needs ioa.evaluation.sandbox, "
                               f"which could not be imported: {e}") from None
        programs = [program_with_tests(last_python_block(r), p.answer, p.meta.get("entry_point"))
                    for p, r in zip(problems, responses, strict=True)]
        return [bool(res.passed) for res in run_programs(programs)]

    def check_step(self, answer: str, response: str) -> bool:
        return check_short(answer, response)  # steps of code problems ask for a value, not a program


VERDICT_RATING = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
VERDICT_YES_NO = re.compile(r"\[\[\s*(yes|no)\s*\]\]", re.I)
RATING_REASK = ("Your previous output was invalid: {error}. End your reply with the rating in double brackets, "
                "e.g. [[7]].")
YES_NO_REASK = "Your previous output was invalid: {error}. End your reply with [[yes]] or [[no]]."


def parse_rating(text: str) -> float:
    found = VERDICT_RATING.findall(text)
    if not found or not 1 <= float(found[-1]) <= 10:
        raise InvalidOutput("no rating from 1 to 10 in double brackets, like [[7]], at the end")
    return float(found[-1])


def parse_yes_no(text: str) -> bool:
    found = VERDICT_YES_NO.findall(text)
    if not found:
        raise InvalidOutput("no verdict [[yes]] or [[no]] at the end")
    return found[-1].lower() == "yes"


class JudgeChecker:
    """The teacher as judge: correctness against a reference when the problem has one, else a rating."""

    def __init__(self, settings: CheckSettings):
        if settings.client is None:
            raise ValueError("the judge checker needs the teacher's client")
        self.s = settings

    def _request(self, prompt: str, question: str, reference: str, response: str):
        s = self.s
        return render(prompt, max_tokens=s.max_tokens, temperature=s.temperature, domain_name=s.domain_name,
                      rubric=s.rubric or "Correct, complete and clear.", question=question or "(not given)",
                      reference=reference or "(none)", response=strip_think(response))

    def check_many(self, problems: Sequence[Problem], responses: Sequence[str]) -> list[bool]:
        pairs = list(zip(problems, responses, strict=True))
        graded = [i for i, (p, _) in enumerate(pairs) if p.answer.strip()]
        rated = [i for i, (p, _) in enumerate(pairs) if not p.answer.strip()]
        out = [False] * len(pairs)
        client, retries = self.s.client, self.s.max_retries
        verdicts = ask_parsed_many(client, [self._request("judge_correct", pairs[i][0].question, pairs[i][0].answer,
                                                          pairs[i][1])
                                            for i in graded], parse_yes_no, retries, YES_NO_REASK)
        ratings = ask_parsed_many(client, [self._request("judge", pairs[i][0].question, "", pairs[i][1])
                                           for i in rated],
                                  parse_rating, retries, RATING_REASK)
        for i, ok in zip(graded, verdicts):
            out[i] = ok
        for i, rating in zip(rated, ratings):
            out[i] = rating >= self.s.threshold
        return out

    def check_step(self, answer: str, response: str) -> bool:
        step = Problem(id="step", module="", difficulty=0.0, question="", answer=answer)
        if answer.strip():
            return self.check_many([step], [response])[0]
        return False


CHECKERS: dict[str, Callable[[CheckSettings], Checker]] = {
    "numeric": lambda settings: AnswerChecker(check_numeric),
    "symbolic": lambda settings: AnswerChecker(check_symbolic),
    "exact": lambda settings: AnswerChecker(check_exact),
    "choice": lambda settings: AnswerChecker(check_choice),
    "code": CodeChecker,
    "judge": JudgeChecker,
}


def make_checker(kind: str, settings: CheckSettings | None = None) -> Checker:
    try:
        factory = CHECKERS[kind]
    except KeyError:
        raise ValueError(f"unknown check kind {kind!r}; known: {', '.join(CHECKERS)}") from None
    return factory(settings or CheckSettings())
