"""Every prompt the LLM teacher is sent, versioned, in one place.

A template is a system and a user message with `str.format` fields. `render(name, **fields)` fills
one in and returns a `ChatRequest` that records the template's name and version, so every call in the
run directory says which prompt (and which revision of it) produced it. Change a template's text ->
bump its version: cached answers to the old text are then never mistaken for answers to the new one
(the cache keys on the message text anyway; the version is for people reading the records).

Each system message opens with a marker line `ioa-prompt: <name>/<version>` so a scripted test server
can tell the prompts apart without guessing from their wording.

Run `python -m ioa.llm.prompts` to print every template.
"""
from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any, Sequence

from ioa.chat import PHASES, ChatRequest
from ioa.config import AdapterConfig
from ioa.types import Module

MARKER = "ioa-prompt: {name}/{version}"


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    version: str
    phase: str  # the phase calls made from it are accounted to, unless the caller says otherwise
    system: str
    user: str

    @property
    def fields(self) -> set[str]:
        """The names of the fields the template needs."""
        return {f for text in (self.system, self.user) for _, f, _, _ in string.Formatter().parse(text) if f}

    def messages(self, **fields: Any) -> tuple[tuple[str, str], ...]:
        missing = sorted(self.fields - set(fields))
        if missing:
            raise ValueError(f"prompt {self.name!r} needs field(s) {', '.join(missing)}")
        marker = MARKER.format(name=self.name, version=self.version)
        return (("system", f"{marker}\n{self.system.format(**fields)}"), ("user", self.user.format(**fields)))


DOMAIN_MODULES = PromptTemplate(
    "domain_modules", "1", "identify",
    system=(
        "You are an expert curriculum designer. You break a skill domain into knowledge modules that a "
        "student learns one after another, and you say which modules each one builds on. You reply with "
        "JSON only."
    ),
    user=(
        "Domain: {domain_name}\n"
        "Description: {description}\n"
        "{examples}\n"
        "Break this domain into at most {max_modules} knowledge modules. Each module is one skill that can "
        "be practised and tested on its own. Foundations have level 0; a module's level is one more than "
        "the highest level of its prerequisites. Mark a module \"abstract\" when it is about an idea that "
        "benefits from a concrete everyday analogy.\n\n"
        "Reply with one JSON object of this shape:\n"
        '{{"modules": [{{"id": "snake_case_id", "name": "Short name", "description": "one sentence", '
        '"level": 0, "abstract": false, "prerequisites": ["ids of modules it builds on"]}}]}}\n'
        "Ids are unique snake_case; prerequisites name only ids from the list; no cycles."
    ),
)

PROBE_PROBLEMS = PromptTemplate(
    "probe_problems", "1", "identify",
    system=(
        "You are an expert teacher who writes exercises with exact reference answers. Every answer you "
        "give is checked, so make sure it is correct. You reply with JSON only."
    ),
    user=(
        "Domain: {domain_name}\n"
        "Description: {description}\n"
        "{examples}\n"
        "Module: {module_id} ({module_name}): {module_description}\n"
        "Difficulty: {difficulty} on a scale from 0 (easiest: one idea, small numbers, plain words) to 1 "
        "(the hardest problems of this module).\n"
        "Setting, if the domain allows one: {theme}. Variation key: {variation} (use it to choose names, "
        "numbers and details different from other keys).\n\n"
        "Write {n} problem(s) for this module. {answer_spec}\n"
        "When a problem needs skills from other modules, list its steps: sub-questions that can be asked "
        "on their own, each with its exact answer and the id of the one module it exercises. Known "
        "modules:\n{module_list}\n"
        "Steps usually exercise this module's prerequisites ({prerequisites}). An atomic problem has "
        "\"steps\": [].\n\n"
        "Reply with one JSON object of this shape:\n"
        '{{"problems": [{{"question": "...", "answer": "...", {extra_fields}'
        '"steps": [{{"question": "...", "answer": "...", "module": "module_id"}}]}}]}}'
    ),
)

SPLIT_STEPS = PromptTemplate(
    "split_steps", "1", "identify",
    system=(
        "You are an expert teacher. You split a problem into the sub-questions a student must answer to "
        "solve it, and name the skill each one exercises. You reply with JSON only."
    ),
    user=(
        "Domain: {domain_name}\n"
        "<question>\n{question}\n</question>\n"
        "<reference>\n{answer}\n</reference>\n\n"
        "Known modules:\n{module_list}\n\n"
        "Split the problem into 1-4 sub-questions, each answerable on its own, with its exact answer and "
        "the id of the one module it exercises.\n"
        'Reply with one JSON object: {{"steps": [{{"question": "...", "answer": "...", "module": "module_id"}}]}}'
    ),
)

SOLVE = PromptTemplate(
    "solve", "1", "synthesize",
    system="You are an expert tutor. You solve problems step by step, correctly and clearly.",
    user=(
        "Domain: {domain_name}\n"
        "<question>\n{question}\n</question>\n\n"
        "{answer_format}"
    ),
)

ADAPT = PromptTemplate(
    "adapt", "2", "adapt",
    system=(
        "You are a teacher who rewrites worked solutions so that a small, beginner student model can "
        "learn from them. You keep every fact, number and result of the original; you change only how "
        "it is said and laid out."
    ),
    user=(
        "Domain: {domain_name}\n"
        "Module: {module_name}\n"
        "<question>\n{question}\n</question>\n"
        "<solution>\n{solution}\n</solution>\n"
        "<reference>\n{answer}\n</reference>\n\n"
        "Rewrite the solution:\n{instructions}\n"
        "Reply with the rewritten solution only."
    ),
)

JUDGE = PromptTemplate(
    "judge", "1", "judge",
    system=(
        "You are a strict, fair grader. You rate a response to a request against a rubric, briefly "
        "explain the rating, and end with the rating in double brackets, e.g. [[7]]."
    ),
    user=(
        "Domain: {domain_name}\n"
        "<rubric>\n{rubric}\n</rubric>\n"
        "<question>\n{question}\n</question>\n"
        "<reference>\n{reference}\n</reference>\n"
        "<response>\n{response}\n</response>\n\n"
        "Rate the response from 1 (useless) to 10 (excellent) by the rubric. A reference, when given, "
        "shows one good answer; others can be as good. End with [[rating]]."
    ),
)

JUDGE_CORRECT = PromptTemplate(
    "judge_correct", "1", "judge",
    system=(
        "You are a strict grader. You decide whether a response reaches the same final answer as a "
        "reference, ignoring wording and layout, and end with [[yes]] or [[no]]."
    ),
    user=(
        "Domain: {domain_name}\n"
        "<rubric>\n{rubric}\n</rubric>\n"
        "<question>\n{question}\n</question>\n"
        "<reference>\n{reference}\n</reference>\n"
        "<response>\n{response}\n</response>\n\n"
        "Is the response correct given the reference? Reason briefly, then end with [[yes]] or [[no]]."
    ),
)

PROMPTS: dict[str, PromptTemplate] = {t.name: t for t in (
    DOMAIN_MODULES, PROBE_PROBLEMS, SPLIT_STEPS, SOLVE, ADAPT, JUDGE, JUDGE_CORRECT,
)}


def render(
    name: str, *, phase: str | None = None, max_tokens: int = 1024, temperature: float | None = 0.0,
    seed: int | None = None, **fields: Any,
) -> ChatRequest:
    """The request for template `name` with its fields filled in; records prompt name and version."""
    try:
        t = PROMPTS[name]
    except KeyError:
        raise ValueError(f"unknown prompt {name!r}; known: {', '.join(PROMPTS)}") from None
    phase = phase or t.phase
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}; known: {', '.join(PHASES)}")
    return ChatRequest(messages=t.messages(**fields), phase=phase, prompt=t.name, prompt_version=t.version,
                       max_tokens=max_tokens, temperature=temperature, seed=seed)


# ---------------------------------------------------------------- field helpers


def module_list(modules: Sequence[Module]) -> str:
    """One line per module: `- id: name. description`."""
    return "\n".join(f"- {m.id}: {m.name}. {m.description}".rstrip(". ") + "." for m in modules)


def examples_block(examples: Sequence[tuple[str, str]]) -> str:
    """Seed examples as a block for domain_modules / probe_problems (empty when there are none)."""
    if not examples:
        return ""
    body = "\n".join(f"Q: {q}\nA: {a}" for q, a in examples)
    return f"Examples of the domain's problems:\n{body}\n"


ANSWER_FORMATS: dict[str, str] = {  # the default `answer_format` of a spec, by check kind
    "numeric": "Solve step by step. End with one line of the form 'Answer: <number>'.",
    "symbolic": "Solve step by step. End with one line of the form 'Answer: <expression in LaTeX>'.",
    "exact": "Solve step by step. End with one line of the form 'Answer: <final answer>'.",
    "choice": "Solve step by step. End with one line of the form 'Answer: (<letter>)'.",
    "code": "Explain your approach briefly, then give the complete solution in one ```python fenced block.",
    "judge": "Reply with the response itself, complete and ready to hand in.",
}

ANSWER_SPECS: dict[str, str] = {
    "numeric": "Each \"answer\" is a single number (no units).",
    "symbolic": "Each \"answer\" is a single mathematical expression in LaTeX.",
    "exact": "Each \"answer\" is a short exact string.",
    "choice": "Each question lists options (A)-(E); each \"answer\" is the letter of the right option.",
    "code": ("Each question asks for one Python function and names it. Each \"answer\" is Python test code: "
             "assert statements that call the function and pass for a correct solution. Give the function "
             "name as \"entry_point\"."),
    "judge": ("Each question is an open-ended request. Each \"answer\" is a short reference response, or "
              "\"\" when many different responses would be right."),
}


def adapt_instructions(cfg: AdapterConfig, module: Module, answer_line: bool) -> str:
    """The rewrite instructions for the enabled Adapter transforms, one numbered line each."""
    ending = ("end with exactly one final line 'Answer: <reference>'" if answer_line
              else "end with the final result exactly as in the original (for code: one ```python block)")
    lines = []
    structured = cfg.layout == "structured"
    if cfg.decompose and structured:
        lines.append("Lay it out in phases: Given (the facts the problem states), Plan (the ideas that "
                     "connect them), Goal (exactly what must be found), Steps (one small operation each), "
                     "Check (verify the result against the problem).")
    elif cfg.decompose:
        lines.append("Lay it out as: Goal (exactly what must be found), then the steps this problem needs, one "
                     "small operation each, in the problem's own terms, then the result restated on its own line. "
                     "No summary of the given facts, no plan and no check lines.")
    if cfg.template:
        if structured:
            layout = ("'Given: ...', 'Plan: ...', 'Goal: ...', 'Step 1: ...', 'Step 2: ...', 'Check: ...'"
                      if cfg.decompose else "'Step 1: ...', 'Step 2: ...'")
        else:
            layout = "'Goal: ...', then one line per step (no step numbers), then the result" if cfg.decompose \
                else "one line per step (no step numbers), then the result"
        lines.append(f"Use exactly this layout, one item per line: {layout}; {ending}.")
    else:
        lines.append(f"Keep the result and {ending}.")
    if cfg.simplify:
        lines.append("Use short sentences and everyday words; drop filler such as 'note that' or 'clearly'.")
    if cfg.analogies and module.abstract:
        lines.append("This idea is abstract: open with one line 'Idea: <a concrete everyday analogy>'.")
    lines.append("Keep every number, fact and the final result of the original; add nothing new.")
    return "\n".join(f"{i}. {text}" for i, text in enumerate(lines, 1))


THEMES = (
    "a school", "a farm", "a shop", "a kitchen", "a sports club", "a library", "a garden", "a journey",
    "a workshop", "a birthday party", "a zoo", "a bakery", "a science lab", "a music band", "a city bus",
    "a camping trip",
)


if __name__ == "__main__":
    for t in PROMPTS.values():
        print(f"=== {t.name} v{t.version} ({t.phase}) fields: {', '.join(sorted(t.fields))}")
        print(f"[system]\n{t.system}\n[user]\n{t.user}\n")
