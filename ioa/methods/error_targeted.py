"""The error-targeted baseline, in the spirit of LLM2LLM / Lion: fine-tune -> collect the student's
wrong answers on its own training problems -> the teacher writes new examples like the failed ones ->
repeat (`baseline.error_rounds`); no module targeting, curriculum or adaptation, one stage."""
from __future__ import annotations

import math
from typing import Sequence

from ioa.answers import answer_format_of, question_of
from ioa.context import Context
from ioa.evaluate import evaluate
from ioa.io import atomic_write_json, read_json
from ioa.loop import as_replay, probe_band, run_modules, single_stage, teacher_usage, usage_delta, write_round_data
from ioa.methods.baselines import (
    Baseline,
    domain_modules,
    even_counts,
    load_round,
    planned_examples,
    planned_steps,
    train_if_budget,
)
from ioa.rundir import RoundDir
from ioa.synthesize import synthesize
from ioa.types import Curriculum, Diagnosis, Example, Problem


class ErrorTargeted(Baseline):
    name = "error-targeted"

    def run(self, ctx: Context, diagnosis: Diagnosis) -> Curriculum:
        modules = run_modules(ctx.cfg, ctx.domain)
        rounds = ctx.cfg.baseline.error_rounds
        low, high = probe_band(ctx.cfg)
        trained: list[Example] = []
        for rnd in range(rounds):
            rdir = ctx.rd.round(0, rnd)
            examples = load_round(ctx, rdir)
            if examples is None:
                share = math.ceil(planned_examples(ctx, modules) / (rounds - rnd))
                before = teacher_usage(ctx.teacher)
                if rnd == 0:
                    counts, targets = even_counts(modules, share, low, high, ctx.cfg.seed), None
                else:
                    failed = training_errors(ctx, rdir, trained)
                    if not failed:
                        break  # nothing left to target
                    counts, targets = like_failed(failed, share)
                made = synthesize(ctx.teacher, ctx.domain, domain_modules(ctx, list(counts)), counts, ctx.cfg.adapter,
                                  ctx.seen, f"s0r{rnd}", "synth" if rnd == 0 else "remedial", ctx.cfg.seed, targets,
                                  progress=ctx.progress)
                if not made.examples:
                    break
                # Each iteration trains on the new examples and again on all earlier ones (LLM2LLM retrains on
                # seed + augmented data); the earlier ones are replay copies, not new budget.
                examples = made.examples + as_replay(trained, f"s0r{rnd}-replay")
                write_round_data(rdir, examples, made, usage_delta(before, ctx.teacher))
            trained += [e for e in examples if e.kind != "replay"]
            if not train_if_budget(ctx, rdir, examples, planned_steps(ctx, rounds - rnd)):
                break
        return single_stage(modules, ctx.cfg)


def as_problem(e: Example) -> Problem:
    """The problem a training example was made from (its meta carries the answer format and entry point)."""
    return Problem(id=e.id, module=e.module, difficulty=e.difficulty,
                   question=question_of(e.prompt, answer_format_of(e)), answer=e.answer, meta=dict(e.meta))


def training_errors(ctx: Context, rdir: RoundDir, trained: Sequence[Example]) -> list[Example]:
    """The student's wrong answers on the problems it was trained on so far (LLM2LLM's signal)."""
    path = rdir.errors
    if not path.exists():
        ctx.sync_student()
        result = ctx.timed("evaluate", lambda: evaluate(ctx.domain, ctx.student, [as_problem(e) for e in trained]))
        atomic_write_json(path, {"wrong": [it["id"] for it in result.items if not it["correct"]],
                                 "checked": len(trained)})
    wrong = set(read_json(path)["wrong"])
    return [e for e in trained if e.id in wrong]


def like_failed(failed: Sequence[Example], n: int) -> tuple[dict[str, list[float]], dict[str, list[str]]]:
    """n new examples spread over the failed ones in turn: same module and difficulty, new problem."""
    counts: dict[str, list[float]] = {}
    targets: dict[str, list[str]] = {}
    for i in range(n):
        e = failed[i % len(failed)]
        counts.setdefault(e.module, []).append(e.difficulty)
        targets.setdefault(e.module, []).append(e.id)
    return counts, targets
