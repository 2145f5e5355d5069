"""How a question is put to a learner and how its final answer is read back.

Every learner (procedural teacher, simulated or real student) is asked with `student_prompt` and is
expected to end with one `Answer: ...` line. `extract_answer` is strict first (the last `Answer:`
line), then flexible (the last number in the text), the same two filters lm-evaluation-harness names.
"""
from __future__ import annotations

import re

ANSWER_LINE = re.compile(r"(?im)^\s*(?:final\s+)?answer\s*[:：]\s*(.+?)\s*$")
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?")

INSTRUCTION = "Solve step by step. End with one line of the form 'Answer: <final answer>'."


def student_prompt(question: str) -> str:
    return f"{question.strip()}\n\n{INSTRUCTION}"


def extract_answer(text: str, mode: str = "flexible") -> str | None:
    """The final answer in a response, or None. mode: "strict" (Answer: line only) or "flexible"."""
    lines = ANSWER_LINE.findall(text)
    if lines:
        return lines[-1].strip().rstrip(".")
    if mode == "strict":
        return None
    numbers = NUMBER.findall(text)
    return numbers[-1] if numbers else None


def question_of(prompt: str) -> str:
    """The question inside a `student_prompt` (what a training example's prompt was built from)."""
    suffix = f"\n\n{INSTRUCTION}"
    return prompt[: -len(suffix)] if prompt.endswith(suffix) else prompt
