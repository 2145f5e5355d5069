"""What an LLM-taught run will cost, before it runs (`ioa run --dry-run`).

`estimate_run(cfg, spec)` counts the teacher calls per phase from the config (probe items per module,
their steps, examples per module, remedial rounds at their worst, replay made fresh at its worst,
judge calls for judge-checked domains) and prices them: prompt tokens from the rendered templates'
lengths (characters / 4), completion tokens at `teacher.max_tokens` per call (the worst case) and at
half of it (typical). Pure: no calls, no files. JSON re-asks and duplicate retries are not counted.
"""
from __future__ import annotations

import math
from typing import Any

from ioa.config import RunConfig
from ioa.domains.spec import DomainSpec
from ioa.llm.prompts import (
    ANSWER_FORMATS,
    ANSWER_SPECS,
    PROMPTS,
    THEMES,
    adapt_instructions,
    examples_block,
    module_list,
)
from ioa.types import Module

CHARS_PER_TOKEN = 4
STEPS_PER_PROBLEM = 2  # sub-questions per composite problem (each is probed like a problem)
TYPICAL_SHARE = 0.5  # typical completion length as a share of max_tokens
DEFAULT_QUESTION_CHARS = 300
DEFAULT_ANSWER_CHARS = 20


def tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def sample_modules(spec: DomainSpec, n: int) -> list[Module]:
    if spec.modules is not None:
        return [Module(m.id, m.name, m.level, m.description, m.abstract) for m in spec.modules]
    return [Module(f"module_{i}", f"Module {i}", 0, "x" * 60) for i in range(n)]


def prompt_tokens(cfg: RunConfig, spec: DomainSpec, n_modules: int) -> dict[str, int]:
    """Prompt tokens of one call of each template, rendered with fields of typical length."""
    seeds = spec.seed_examples
    question = "x" * (round(sum(len(e.question) for e in seeds) / len(seeds)) if seeds else DEFAULT_QUESTION_CHARS)
    answer = "x" * (round(sum(len(e.answer) for e in seeds) / len(seeds)) if seeds else DEFAULT_ANSWER_CHARS)
    response = "x" * round(cfg.teacher.max_tokens * TYPICAL_SHARE * CHARS_PER_TOKEN)
    modules = sample_modules(spec, n_modules)
    fields = dict(
        domain_name=spec.name, description=spec.description,
        examples=examples_block([(e.question, e.answer) for e in seeds]),
        max_modules=spec.max_modules, module_id=modules[0].id, module_name=modules[0].name,
        module_description=modules[0].description, difficulty="0.50", theme=max(THEMES, key=len),
        variation=123456789, n=1,
        answer_spec=ANSWER_SPECS[spec.check], module_list=module_list(modules), prerequisites=modules[0].id,
        extra_fields='"entry_point": "function_name", ' if spec.check == "code" else "",
        question=question, answer=answer, answer_format=spec.answer_format or ANSWER_FORMATS[spec.check],
        solution=response, response=response, reference=answer, rubric=spec.judge_rubric or "x" * 40,
        instructions=adapt_instructions(cfg.adapter, modules[0], True),
    )
    return {name: sum(tokens(content) for _, content in t.messages(**fields)) for name, t in PROMPTS.items()}


def call_counts(cfg: RunConfig, spec: DomainSpec, n_modules: int) -> list[tuple[str, str, int]]:
    """(phase, prompt, calls) over the run, worst case."""
    m, items, s = n_modules, cfg.probe.items_per_module, STEPS_PER_PROBLEM
    syn = cfg.synthesis
    made = m * syn.examples_per_module + syn.max_remedial_rounds * m * syn.remedial_examples_per_module
    # replay of modules known before the run, made fresh
    made += round(made * syn.replay_fraction / (1 - syn.replay_fraction))
    a = cfg.adapter
    adapted = made if (a.decompose or a.template or a.simplify or a.analogies) else 0
    rows = [
        ("identify", "domain_modules", 0 if spec.modules is not None else 1),
        ("identify", "probe_problems", m * items),
        ("identify", "solve", m * items * (1 + s)),  # the teacher answers every probe item and step
        ("synthesize", "probe_problems", made),
        ("synthesize", "solve", made),
        ("adapt", "adapt", adapted),
    ]
    if spec.check == "judge":
        rounds = 1 + syn.max_remedial_rounds
        evaluated = items * rounds * m * (m + 1) // 2 + m * items  # one module per stage, retention growing; final
        rows += [
            # probes (teacher, student), verification, rewrites, evaluation
            ("judge", "judge", 2 * m * items + made + adapted + evaluated),
            ("judge", "judge_correct", 2 * m * items * s),  # probe steps have reference answers
        ]
    return [r for r in rows if r[2]]


def _cost(prompt: float, completion: float, price: Any) -> float:
    if price is None:
        return 0.0
    return round(prompt * price.input_per_mtok / 1e6 + completion * price.output_per_mtok / 1e6, 6)


def estimate_run(cfg: RunConfig, spec: DomainSpec, n_modules: int | None = None) -> dict[str, Any]:
    """Estimated calls, tokens and dollars per phase and in total (see the module docstring)."""
    if n_modules is None:
        n_modules = len(spec.modules) if spec.modules is not None else spec.max_modules
    if n_modules < 1:
        raise ValueError(f"n_modules must be at least 1, got {n_modules}")
    model = cfg.teacher.model
    price = cfg.teacher.prices.get(model) if model else None
    per_call = prompt_tokens(cfg, spec, n_modules)
    max_out, typical_out = cfg.teacher.max_tokens, round(cfg.teacher.max_tokens * TYPICAL_SHARE)
    calls, phases = [], {}
    for phase, prompt, n in call_counts(cfg, spec, n_modules):
        calls.append({"phase": phase, "prompt": prompt, "calls": n, "prompt_tokens_per_call": per_call[prompt]})
        p = phases.setdefault(phase, {"calls": 0, "prompt_tokens": 0, "completion_tokens_max": 0,
                                      "completion_tokens_typical": 0})
        p["calls"] += n
        p["prompt_tokens"] += n * per_call[prompt]
        p["completion_tokens_max"] += n * max_out
        p["completion_tokens_typical"] += n * typical_out
    total = {k: sum(p[k] for p in phases.values())
             for k in ("calls", "prompt_tokens", "completion_tokens_max", "completion_tokens_typical")}
    for row in [*phases.values(), total]:
        row["cost_max"] = _cost(row["prompt_tokens"], row["completion_tokens_max"], price)
        row["cost_typical"] = _cost(row["prompt_tokens"], row["completion_tokens_typical"], price)
    return {
        "model": model, "priced": price is not None, "n_modules": n_modules, "check": spec.check,
        "assumptions": {"steps_per_problem": STEPS_PER_PROBLEM, "chars_per_token": CHARS_PER_TOKEN,
                        "typical_completion_share": TYPICAL_SHARE, "remedial_rounds": "all, on every module",
                        "replay": "made fresh", "json_reasks": "not counted"},
        "calls": calls, "phases": phases, "total": total,
    }
