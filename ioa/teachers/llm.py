"""The LLM teacher: problems, worked solutions and Adapter rewrites from a chat model.

    teacher = LLMTeacher(domain, client, cfg.teacher)
    problems = teacher.make_problems_many([(module, difficulty, seed), ...])   # via the LLMDomain
    solutions = teacher.solve(problems)              # phase synthesize, prompt solve
    texts = teacher.adapt_many(problems, solutions, modules, cfg.adapter)      # phase adapt

Every rewrite is checked: it must still reach the reference answer (the domain's checker), else the
unadapted solution is used and `adapt_stats["fallbacks"]` counts it. Answer-line domains then get
exactly one final `Answer: <reference>` line. With every Adapter transform off the raw solution is
returned unchanged (the no-adapter ablation). Failed calls raise TeacherCallError.
"""
from __future__ import annotations

import re
from typing import Sequence

from ioa.chat import ChatBackend, ChatRequest
from ioa.config import AdapterConfig, TeacherConfig
from ioa.domains.checking import ANSWER_LINE_KINDS
from ioa.domains.llm import STEPS_SCHEMA, LLMDomain
from ioa.grading import MARKDOWN_ANSWER_LINE, final_answer, last_number, last_python_block, strip_think
from ioa.llm.jsonout import ask_json, complete_or_raise
from ioa.llm.prompts import adapt_instructions, module_list, render
from ioa.types import Module, Problem, Solution, Step

HASH_LINE = re.compile(r"(?m)^\s*####.*$")
MARKUP_TAG = re.compile(r"</?[A-Za-z_]+>")
ADAPT_ECHO = "Rewrite the solution"  # the adapt prompt's own words (ioa.llm.prompts ADAPT)


def without_answer_lines(text: str) -> str:
    """The text with every `Answer: ...` and `#### ...` line removed."""
    text = HASH_LINE.sub("", MARKDOWN_ANSWER_LINE.sub("", text))
    return "\n".join(line for line in text.splitlines() if line.strip()).strip()


def with_answer_line(text: str, answer: str) -> str:
    """The text ending in exactly one `Answer: <answer>` line."""
    body = without_answer_lines(text)
    return f"{body}\nAnswer: {answer}" if body else f"Answer: {answer}"


def parse_solution(problem_id: str, text: str, raw: str, check: str) -> Solution:
    """Worked steps, final answer and raw output of one `solve` reply, by the domain's check kind."""
    if check in ANSWER_LINE_KINDS:
        answer = final_answer(text) or (last_number(text) if check == "numeric" else None) or ""
        return Solution(problem_id=problem_id, text=without_answer_lines(text), answer=answer, raw=raw)
    answer = last_python_block(text) if check == "code" else text.strip()
    return Solution(problem_id=problem_id, text=text.strip(), answer=answer, raw=raw)


def echoes_prompt(rewrite: str, original: str) -> bool:
    """Whether a rewrite carries the adapt prompt's own scaffolding (its <solution>/<reference> tags or its
    "Rewrite the solution" line) that the original did not: a weak model that keeps writing past its
    answer echoes the prompt, and its final answer can still be right, so the checker alone lets it in."""
    new_tags = set(MARKUP_TAG.findall(rewrite)) - set(MARKUP_TAG.findall(original))
    return bool(new_tags) or (ADAPT_ECHO in rewrite and ADAPT_ECHO not in original)


def adapter_enabled(cfg: AdapterConfig) -> bool:
    """Whether any text transform is on (the load ramp orders difficulties; it rewrites nothing)."""
    return cfg.decompose or cfg.template or cfg.simplify or cfg.analogies


class LLMTeacher:
    def __init__(self, domain: LLMDomain, client: ChatBackend, teacher_cfg: TeacherConfig | None = None):
        self.domain = domain
        self.client = client
        self.cfg = teacher_cfg or TeacherConfig()
        self.name = f"llm:{client.model}"
        self.adapt_stats = {"rewritten": 0, "fallbacks": 0}

    # ------------------------------------------------------------ problems

    def make_problems(self, module_id: str, difficulty: float, n: int, seed: int) -> list[Problem]:
        return self.domain.generate_many([(module_id, difficulty, seed + i) for i in range(n)])

    def make_problems_many(self, specs: Sequence[tuple[str, float, int]]) -> list[Problem]:
        return self.domain.generate_many(specs)

    def decompose(self, problem: Problem) -> list[Step]:
        """The problem's tagged steps; asked for (prompt split_steps) when it came without any."""
        if problem.steps:
            return list(problem.steps)
        modules = self.domain.modules()
        request = render("split_steps", max_tokens=self.cfg.max_tokens, temperature=self.cfg.temperature,
                         domain_name=self.domain.name, question=problem.question, answer=problem.answer,
                         module_list=module_list(modules))
        value = ask_json(self.client, request, STEPS_SCHEMA, self.cfg.max_json_retries)
        known = {m.id for m in modules}
        return [Step(question=s["question"], answer=str(s["answer"]), module=s["module"])
                for s in value["steps"] if s["module"] in known]

    # ------------------------------------------------------------ solving

    def _solve_requests(self, problems: Sequence[Problem], phase: str) -> list[ChatRequest]:
        return [render("solve", phase=phase, max_tokens=self.cfg.max_tokens, temperature=self.cfg.temperature,
                       domain_name=self.domain.name, question=p.question, answer_format=self.domain.answer_format)
                for p in problems]

    def solve(self, problems: Sequence[Problem]) -> list[Solution]:
        results = complete_or_raise(self.client, self._solve_requests(problems, "synthesize"))
        return [parse_solution(p.id, r.text, r.raw, self.domain.spec.check) for p, r in zip(problems, results)]

    def respond(self, problems: Sequence[Problem]) -> list[str]:
        """As a learner when probed: the worked solution, think blocks stripped. Same requests as
        `solve` (only the accounting phase differs), so a probed problem is never paid for twice."""
        return [r.text for r in complete_or_raise(self.client, self._solve_requests(problems, "identify"))]

    # ------------------------------------------------------------ adapting

    def adapt_many(self, problems: Sequence[Problem], solutions: Sequence[Solution], modules: Sequence[Module],
                   cfg: AdapterConfig) -> list[str]:
        """Student-fit completions: the teacher's rewrites with the enabled transforms, checked."""
        if not adapter_enabled(cfg):
            return [s.raw for s in solutions]
        if not problems:
            return []
        by_id = {m.id: m for m in self.domain.modules()} | {m.id: m for m in modules}
        answer_line = self.domain.spec.check in ANSWER_LINE_KINDS
        originals = [strip_think(s.raw) or s.text for s in solutions]
        requests = [
            render("adapt", max_tokens=self.cfg.max_tokens, temperature=self.cfg.temperature,
                   domain_name=self.domain.name, module_name=by_id[p.module].name, question=p.question,
                   solution=original, answer=p.answer or "(none)",
                   instructions=adapt_instructions(cfg, by_id[p.module], answer_line))
            for p, original in zip(problems, originals, strict=True)
        ]
        rewrites = [r.text.strip() for r in complete_or_raise(self.client, requests)]
        # The rewrite is checked as written (its own final answer), before the answer line is forced.
        passed = self.domain.check_many(problems, rewrites)
        out = []
        for p, original, text, ok in zip(problems, originals, rewrites, passed):
            ok = ok and not echoes_prompt(text, original)
            self.adapt_stats["rewritten" if ok else "fallbacks"] += 1
            chosen = text if ok else original
            out.append(with_answer_line(chosen, p.answer) if answer_line else chosen)
        return out
