"""A Domain whose modules and problems come from an LLM teacher, described by a `DomainSpec`.

    domain = LLMDomain(load_domain_spec("gsm8k"), client, cfg.teacher)
    domain.modules()                      # asked once (prompt domain_modules), unless the spec lists them
    domain.generate_many([("multi_step_problems", 0.4, 7), ...])   # one request per (module, d, seed)
    domain.check_many(problems, responses)                         # the spec's checker, batched

The same (module, difficulty, seed) always renders the same request, so the response cache makes
generation deterministic. Steps tagged with a module the hierarchy does not know are dropped (and
listed in the problem's meta) because the Identifier can only use steps of known modules.
"""
from __future__ import annotations

import random
from typing import Any, Sequence

from ioa.chat import ChatBackend, ChatRequest
from ioa.config import TeacherConfig
from ioa.domains.checking import CheckSettings, make_checker, numeric_value
from ioa.domains.spec import MODULE_ID, DomainSpec, module_graph_errors
from ioa.llm.jsonout import ask_json, ask_json_many
from ioa.llm.prompts import ANSWER_FORMATS, ANSWER_SPECS, PROMPTS, THEMES, examples_block, module_list, render
from ioa.probe import PROBE_SEED_BASE
from ioa.types import Module, Problem, Step

ANSWER = {"type": ["string", "number", "integer"]}
STEP_SCHEMA = {
    "type": "object", "required": ["question", "answer", "module"],
    "properties": {"question": {"type": "string", "minLength": 1}, "answer": ANSWER, "module": {"type": "string"}},
}


def modules_schema(max_modules: int) -> dict[str, Any]:
    module = {
        "type": "object", "required": ["id", "name", "prerequisites"],
        "properties": {
            "id": {"type": "string", "pattern": MODULE_ID}, "name": {"type": "string", "minLength": 1},
            "description": {"type": "string"}, "level": {"type": "integer", "minimum": 0},
            "abstract": {"type": "boolean"}, "prerequisites": {"type": "array", "items": {"type": "string"}},
        },
    }
    return {"type": "object", "required": ["modules"],
            "properties": {"modules": {"type": "array", "minItems": 1, "maxItems": max_modules, "items": module}}}


def problems_schema(n: int, check: str) -> dict[str, Any]:
    problem: dict[str, Any] = {
        "type": "object", "required": ["question", "answer"],
        "properties": {"question": {"type": "string", "minLength": 1}, "answer": ANSWER,
                       "entry_point": {"type": "string"}, "steps": {"type": "array", "items": STEP_SCHEMA}},
    }
    if check == "code":
        problem["required"] = ["question", "answer", "entry_point"]
    return {"type": "object", "required": ["problems"],
            "properties": {"problems": {"type": "array", "minItems": n, "items": problem}}}


STEPS_SCHEMA = {"type": "object", "required": ["steps"],
                "properties": {"steps": {"type": "array", "items": STEP_SCHEMA}}}


def answer_errors(check: str):
    """A semantic check of generated problems' reference answers for the spec's check kind."""

    def errors(value: dict[str, Any]) -> str | None:
        for i, p in enumerate(value["problems"]):
            answer = str(p["answer"])
            if check == "numeric" and numeric_value(answer) is None:
                return f"at $.problems[{i}].answer: {answer!r} is not a single plain number"
            if check == "choice" and answer.strip().strip("()").upper() not in tuple("ABCDE"):
                return f"at $.problems[{i}].answer: {answer!r} is not an option letter A-E"
            if check == "code" and "assert" not in answer and "def check" not in answer:
                return f"at $.problems[{i}].answer: the tests must be assert statements"
        return None

    return errors


def build_modules(entries: Sequence[dict[str, Any]]) -> tuple[list[Module], dict[str, list[str]]]:
    """Modules (foundations first) and each one's prerequisites, from validated module dicts.

    A module's level is at least one more than its prerequisites' (whatever level was given), so
    sorting by level puts every prerequisite before the modules that need it.
    """
    prereqs = {e["id"]: list(dict.fromkeys(e.get("prerequisites", ()))) for e in entries}
    level: dict[str, int] = {}

    def depth(mid: str) -> int:
        if mid not in level:
            given = next(int(e.get("level", 0)) for e in entries if e["id"] == mid)
            level[mid] = max([given] + [depth(p) + 1 for p in prereqs[mid]])
        return level[mid]

    modules = [Module(id=e["id"], name=e["name"], level=depth(e["id"]), description=e.get("description", ""),
                      abstract=bool(e.get("abstract", False))) for e in entries]
    return sorted(modules, key=lambda m: m.level), prereqs


def problem_id(module_id: str, difficulty: float, seed: int) -> str:
    return f"{module_id}-{seed}-{round(difficulty, 3)}"


def to_problem(value: dict[str, Any], module_id: str, difficulty: float, seed: int, known: set[str],
               answer_format: str) -> Problem:
    """A Problem from one validated problem object; steps of unknown modules dropped and noted; the
    domain's answer format in its meta (how the student is asked)."""
    steps, dropped = [], []
    for s in value.get("steps", ()):
        if s["module"] in known:
            steps.append(Step(question=s["question"].strip(), answer=str(s["answer"]).strip(), module=s["module"]))
        else:
            dropped.append({"question": s["question"], "module": s["module"]})
    template = PROMPTS["probe_problems"]
    meta: dict[str, Any] = {"prompt": template.name, "prompt_version": template.version, "seed": seed,
                            "answer_format": answer_format}
    if value.get("entry_point"):
        meta["entry_point"] = value["entry_point"]
    if dropped:
        meta["dropped_steps"] = dropped
    return Problem(id=problem_id(module_id, difficulty, seed), module=module_id, difficulty=difficulty,
                   question=value["question"].strip(), answer=str(value["answer"]).strip(), steps=tuple(steps),
                   meta=meta)


class LLMDomain:
    """Domain protocol over a DomainSpec and a chat backend; see the module docstring."""

    def __init__(self, spec: DomainSpec, client: ChatBackend, teacher_cfg: TeacherConfig | None = None):
        self.spec = spec
        self.client = client
        self.cfg = teacher_cfg or TeacherConfig()
        self.name = spec.name
        self._modules: list[Module] | None = None
        self._prereqs: dict[str, list[str]] = {}
        self.checker = make_checker(spec.check, CheckSettings(
            client=client, domain_name=spec.name, rubric=spec.judge_rubric, threshold=spec.judge_threshold,
            max_tokens=self.cfg.max_tokens, temperature=self.cfg.temperature, max_retries=self.cfg.max_json_retries))

    @property
    def answer_format(self) -> str:
        """How a response should end (the spec's hint, else the check kind's)."""
        return self.spec.answer_format or ANSWER_FORMATS[self.spec.check]

    def _examples(self) -> str:
        return examples_block([(e.question, e.answer) for e in self.spec.seed_examples])

    # ------------------------------------------------------------ modules

    def modules_request(self) -> ChatRequest:
        return render("domain_modules", max_tokens=self.cfg.max_tokens, temperature=self.cfg.temperature,
                      domain_name=self.spec.name, description=self.spec.description, examples=self._examples(),
                      max_modules=self.spec.max_modules)

    def modules(self) -> list[Module]:
        if self._modules is None:
            if self.spec.modules is not None:
                entries = [m.model_dump() for m in self.spec.modules]
            else:
                value = ask_json(self.client, self.modules_request(), modules_schema(self.spec.max_modules),
                                 self.cfg.max_json_retries, check=lambda v: module_graph_errors(v["modules"]))
                entries = value["modules"]
            self._modules, self._prereqs = build_modules(entries)
        return list(self._modules)

    def module(self, module_id: str) -> Module:
        for m in self.modules():
            if m.id == module_id:
                return m
        raise ValueError(f"unknown module {module_id!r} in domain {self.name!r}; "
                         f"known: {', '.join(m.id for m in self.modules())}")

    def declared_prerequisites(self) -> list[tuple[str, str]]:
        self.modules()
        return [(pre, dep) for dep, pres in self._prereqs.items() for pre in pres]

    # ------------------------------------------------------------ problems

    def problem_request(self, module_id: str, difficulty: float, seed: int, n: int = 1) -> ChatRequest:
        module = self.module(module_id)
        theme = THEMES[random.Random(f"{module_id}:{seed}").randrange(len(THEMES))]
        # Probe seeds (>= PROBE_SEED_BASE) are the Identifier's; all other problems are for synthesis.
        phase = "identify" if seed >= PROBE_SEED_BASE else "synthesize"
        return render(
            "probe_problems", phase=phase,
            max_tokens=self.cfg.max_tokens, temperature=self.cfg.temperature, seed=seed,
            domain_name=self.spec.name, description=self.spec.description, examples=self._examples(),
            module_id=module.id, module_name=module.name, module_description=module.description or module.name,
            difficulty=f"{difficulty:.2f}", theme=theme, variation=seed, n=n, answer_spec=ANSWER_SPECS[self.spec.check],
            module_list=module_list(self.modules()), prerequisites=", ".join(self._prereqs[module.id]) or "none",
            extra_fields='"entry_point": "function_name", ' if self.spec.check == "code" else "",
        )

    def generate(self, module_id: str, difficulty: float, seed: int) -> Problem:
        return self.generate_many([(module_id, difficulty, seed)])[0]

    def generate_many(self, specs: Sequence[tuple[str, float, int]]) -> list[Problem]:
        """One problem per (module, difficulty, seed), all requests in one batch."""
        clean = []
        for module_id, difficulty, seed in specs:
            if not 0.0 <= float(difficulty) <= 1.0:
                raise ValueError(f"difficulty must be in [0, 1], got {difficulty!r}")
            clean.append((self.module(module_id).id, round(float(difficulty), 6), int(seed)))
        requests = [self.problem_request(m, d, s) for m, d, s in clean]
        values = ask_json_many(self.client, requests, problems_schema(1, self.spec.check), self.cfg.max_json_retries,
                               check=answer_errors(self.spec.check))
        known = {m.id for m in self.modules()}
        return [to_problem(v["problems"][0], m, d, s, known, self.answer_format) for v, (m, d, s) in zip(values, clean)]

    # ------------------------------------------------------------ checking

    def check(self, problem: Problem, response: str) -> bool:
        return self.checker.check_many([problem], [response])[0]

    def check_many(self, problems: Sequence[Problem], responses: Sequence[str]) -> list[bool]:
        return self.checker.check_many(problems, responses)

    def check_step(self, step_answer: str, response: str) -> bool:
        return self.checker.check_step(step_answer, response)
