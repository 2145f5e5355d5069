"""How a question is put to a learner.

Every learner (procedural teacher, simulated or real student) is asked a problem with `prompt_for`:
the question, then the problem's answer format (`meta["answer_format"]`, set by LLM-described domains
from their spec: an `Answer: <number>` line, one ```python block, a free response), by default one
`Answer: ...` line. How the answer is read back is `ioa.grading` (`extract_answer` for that line).
"""
from __future__ import annotations

INSTRUCTION = "Solve step by step. End with one line of the form 'Answer: <final answer>'."


def student_prompt(question: str, answer_format: str = INSTRUCTION) -> str:
    return f"{question.strip()}\n\n{answer_format}"


def answer_format_of(item) -> str:
    """How the response to a Problem (or an Example made from one) should end: its domain's format,
    else the `Answer:` line."""
    return item.meta.get("answer_format") or INSTRUCTION


def prompt_for(problem) -> str:
    """The prompt a learner sees for a Problem."""
    return student_prompt(problem.question, answer_format_of(problem))


def asks_answer_line(answer_format: str) -> bool:
    """Whether the format ends with an `Answer:` line (generation may then stop right after it)."""
    return "Answer:" in answer_format


def question_of(prompt: str, answer_format: str = INSTRUCTION) -> str:
    """The question inside a `student_prompt` (what a training example's prompt was built from)."""
    suffix = f"\n\n{answer_format}"
    return prompt[: -len(suffix)] if prompt.endswith(suffix) else prompt
