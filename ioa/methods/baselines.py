"""The baselines IOA is compared with, each in one stage with no gates, on the same budget:

  vanilla         one-shot synthetic-data distillation: worked examples spread evenly over all modules
  self-instruct   Wang et al. 2023: new tasks bootstrapped from sampled seed tasks, near-duplicates
                  (ROUGE-L >= 0.7 to any pooled task) dropped, then the teacher answers them
  easy-to-hard    a plain curriculum (the reviewers' baseline): every module, in stages by the domain's
                  module level (foundations first), numbers rising from small to large inside each
                  stage; no identification, no gates, no remediation, budget split evenly over stages
  error-targeted  in the spirit of LLM2LLM / Lion: fine-tune -> collect the student's wrong answers on
                  its own training problems -> the teacher writes new examples like the failed ones ->
                  repeat; no modules targeting, curriculum or adaptation

All use the teacher's raw solutions (ioa.methods.method_config) and write the same run-directory files
as IOA (stages/0/round-<r>/...), so summaries, reports and `ioa compare` read them alike. None of them
looks at the held-out probes or test items while making data.
"""
from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Sequence

from ioa.answers import answer_format_of, prompt_for, question_of
from ioa.evaluate import evaluate
from ioa.io import atomic_write_json, read_json, read_jsonl
from ioa.loop import (
    Context,
    as_replay,
    probe_band,
    run_modules,
    single_stage,
    teacher_usage,
    train_round,
    usage_delta,
    write_round_data,
)
from ioa.methods.budget import examples_left, spent, steps_left, trim_counts
from ioa.synthesize import Synthesis, checked_solutions, seed_base, stage_difficulties, synthesize
from ioa.types import Curriculum, Diagnosis, Example, Problem, Stage


def even_counts(modules: Sequence[str], n: int, low: float, high: float, seed: int) -> dict[str, list[float]]:
    """n difficulties spread evenly over modules, each uniform in the band (one-shot data has no ramp)."""
    base, extra = divmod(n, len(modules))
    return {m: stage_difficulties(base + (i < extra), low, high, 1.0, False, seed_base(seed, "even", m))
            for i, m in enumerate(modules) if base + (i < extra)}


def planned_examples(ctx: Context, modules: Sequence[str]) -> int:
    allowed = examples_left(ctx.cfg.budget, spent(ctx.rd))
    return allowed if allowed is not None else ctx.cfg.synthesis.examples_per_module * len(modules)


def planned_steps(ctx: Context, rounds_left: int = 1) -> int | None:
    """Steps for this round: an equal share of what the budget has left (None: the recipe's own plan)."""
    left = steps_left(ctx.cfg.budget, spent(ctx.rd))
    return None if left is None else left // rounds_left


def load_round(ctx: Context, path: Path) -> list[Example] | None:
    if not path.exists():
        return None
    examples = [Example.from_dict(r) for r in read_jsonl(path)]
    ctx.seen.update(e.prompt for e in examples)
    return examples


def domain_modules(ctx: Context, ids: Sequence[str]):
    return [m for m in ctx.domain.modules() if m.id in ids]


def train_if_budget(ctx: Context, rdir: Path, examples: list[Example], steps: int | None) -> bool:
    if not examples or steps == 0:
        return False
    train_round(ctx, rdir, examples, max_steps=steps)
    return True


def run_vanilla(ctx: Context, diagnosis: Diagnosis) -> Curriculum:
    modules = run_modules(ctx.cfg, ctx.domain)
    rdir = ctx.rd.round(0, 0)
    examples = load_round(ctx, rdir / "train.jsonl")
    if examples is None:
        low, high = probe_band(ctx.cfg)
        before = teacher_usage(ctx.teacher)
        counts = even_counts(modules, planned_examples(ctx, modules), low, high, ctx.cfg.seed)
        made = synthesize(ctx.teacher, ctx.domain, domain_modules(ctx, modules), counts, ctx.cfg.adapter, ctx.seen,
                          "s0r0", "synth", ctx.cfg.seed, progress=ctx.progress)
        examples = made.examples
        write_round_data(rdir / "train.jsonl", examples, made, usage_delta(before, ctx.teacher))
    train_if_budget(ctx, rdir, examples, planned_steps(ctx))
    return single_stage(modules, ctx.cfg)


def level_stages(ctx: Context, modules: Sequence[str]) -> Curriculum:
    """One stage per module level present in the run, lowest first (a difficulty of 0 to 1 across them)."""
    by_level: dict[int, list[str]] = {}
    for m in domain_modules(ctx, modules):
        by_level.setdefault(m.level, []).append(m.id)
    levels = sorted(by_level)
    return Curriculum(stages=tuple(
        Stage(index=i, modules=tuple(by_level[lv]), difficulty=round(i / max(1, len(levels) - 1), 6),
              mastery_threshold=ctx.cfg.organizer.tau_mastery) for i, lv in enumerate(levels)))


def run_easy_to_hard(ctx: Context, diagnosis: Diagnosis) -> Curriculum:
    modules = run_modules(ctx.cfg, ctx.domain)
    curriculum = level_stages(ctx, modules)
    low, high = probe_band(ctx.cfg)
    stages = curriculum.stages
    for i, stage in enumerate(stages):
        rdir = ctx.rd.round(stage.index, 0)
        examples = load_round(ctx, rdir / "train.jsonl")
        if examples is None:
            share = math.ceil(planned_examples(ctx, modules) * len(stage.modules)
                              / sum(len(s.modules) for s in stages[i:]))
            base, extra = divmod(share, len(stage.modules))
            counts = {m: stage_difficulties(base + (j < extra), low, high, 1.0, True, ctx.cfg.seed)
                      for j, m in enumerate(stage.modules) if base + (j < extra)}
            counts = trim_counts(counts, examples_left(ctx.cfg.budget, spent(ctx.rd)))
            before = teacher_usage(ctx.teacher)
            made = synthesize(ctx.teacher, ctx.domain, domain_modules(ctx, list(counts)), counts, ctx.cfg.adapter,
                              ctx.seen, f"s{stage.index}r0", "synth", ctx.cfg.seed, progress=ctx.progress)
            examples = made.examples
            write_round_data(rdir / "train.jsonl", examples, made, usage_delta(before, ctx.teacher))
        if not train_if_budget(ctx, rdir, examples, planned_steps(ctx, len(stages) - i)):
            break
    return curriculum


# ---- self-instruct -------------------------------------------------------------------------------

class RougeL:
    """ROUGE-L F1 (rouge-score's tokenizer and LCS) against a growing pool, tokens cached per pooled task."""

    def __init__(self):
        from rouge_score import tokenizers

        self.tokenizer = tokenizers.DefaultTokenizer(use_stemmer=False)
        self.pool: list[list[str]] = []

    def max_against_pool(self, text: str) -> float:
        from rouge_score.rouge_scorer import _score_lcs

        tokens = self.tokenizer.tokenize(text)
        return max((_score_lcs(seen, tokens).fmeasure for seen in self.pool), default=0.0)

    def add(self, text: str) -> None:
        self.pool.append(self.tokenizer.tokenize(text))


def bootstrap_tasks(ctx: Context, modules: Sequence[str], n: int) -> tuple[list[Problem], dict[str, int]]:
    """Self-Instruct's task pool: seed tasks, then new tasks written from sampled pool members, each kept
    only when its ROUGE-L to every pooled task stays below `baseline.rouge_l_max`."""
    cfg = ctx.cfg.baseline
    low, high = probe_band(ctx.cfg)
    rng = random.Random(f"self-instruct:{ctx.cfg.seed}")
    base = seed_base(ctx.cfg.seed, "self-instruct")
    pool: list[Problem] = []
    rouge = RougeL()
    stats = {"seed_tasks": 0, "generated": 0, "filtered_similar": 0, "filtered_seen": 0}

    def admit(p: Problem, seed_task: bool = False) -> bool:
        prompt = prompt_for(p)
        if prompt in ctx.seen:
            stats["filtered_seen"] += 1
            return False
        if not seed_task and rouge.max_against_pool(p.question) >= cfg.rouge_l_max:  # seed tasks are all kept
            stats["filtered_similar"] += 1
            return False
        pool.append(p)
        rouge.add(p.question)
        ctx.seen.add(prompt)
        return True

    for k, module in enumerate(modules):
        for i in range(cfg.seed_tasks_per_module):
            if len(pool) < n and not ctx.teacher.exhausted(len(pool) + 2):  # each pooled task is solved later
                d = round(rng.uniform(low, high), 4)
                stats["seed_tasks"] += admit(ctx.teacher.make_problems(module, d, 1, base + k * 1000 + i)[0],
                                             seed_task=True)
    attempt = 0
    while len(pool) < n and attempt < 20 * n and pool and not ctx.teacher.exhausted(len(pool) + 2):
        shown = rng.sample(pool, min(cfg.seeds_per_prompt, len(pool)))
        task = ctx.teacher.new_task(shown, base + 1_000_000 + attempt)
        attempt += 1
        stats["generated"] += admit(task)
    return pool, stats


def run_self_instruct(ctx: Context, diagnosis: Diagnosis) -> Curriculum:
    modules = run_modules(ctx.cfg, ctx.domain)
    rdir = ctx.rd.round(0, 0)
    examples = load_round(ctx, rdir / "train.jsonl")
    if examples is None:
        if not hasattr(ctx.teacher, "new_task"):
            raise ValueError(f"method self-instruct: teacher {ctx.teacher.name!r} cannot write new tasks (no new_task)")
        before = teacher_usage(ctx.teacher)
        tasks, stats = bootstrap_tasks(ctx, modules, planned_examples(ctx, modules))
        made = answered(ctx, tasks, "s0r0", "synth")
        examples = made.examples
        write_round_data(rdir / "train.jsonl", examples, made, usage_delta(before, ctx.teacher))
        atomic_write_json(rdir / "self_instruct.json", {**stats, "pool": len(tasks)})
    train_if_budget(ctx, rdir, examples, planned_steps(ctx))
    return single_stage(modules, ctx.cfg)


def answered(ctx: Context, tasks: Sequence[Problem], prefix: str, kind: str,
             remediates: Sequence[str] = ()) -> Synthesis:
    """The teacher answers the tasks; answers that fail the domain's check are dropped (and counted)."""
    out = Synthesis()
    solved, out.rejected = checked_solutions(ctx.teacher, ctx.domain, tasks)
    for i, solution in solved:
        task = tasks[i]
        out.examples.append(Example(
            id=f"{prefix}-{len(out.examples):05d}", module=task.module, prompt=prompt_for(task),
            completion=solution.raw, answer=task.answer, difficulty=task.difficulty, kind=kind,
            problem_id=task.id, raw=solution.raw, remediates=remediates[i] if remediates else "", meta=dict(task.meta),
        ))
    return out


# ---- error-targeted ------------------------------------------------------------------------------

def as_problem(e: Example) -> Problem:
    """The problem a training example was made from (its meta carries the answer format and entry point)."""
    return Problem(id=e.id, module=e.module, difficulty=e.difficulty,
                   question=question_of(e.prompt, answer_format_of(e)), answer=e.answer, meta=dict(e.meta))


def training_errors(ctx: Context, rdir: Path, trained: Sequence[Example]) -> list[Example]:
    """The student's wrong answers on the problems it was trained on so far (LLM2LLM's signal)."""
    path = rdir / "errors.json"
    if not path.exists():
        ctx.sync_student()
        result = ctx.timed("evaluate", lambda: evaluate(ctx.domain, ctx.student, [as_problem(e) for e in trained]))
        atomic_write_json(path, {"wrong": [it["id"] for it in result["items"] if not it["correct"]],
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


def run_error_targeted(ctx: Context, diagnosis: Diagnosis) -> Curriculum:
    modules = run_modules(ctx.cfg, ctx.domain)
    rounds = ctx.cfg.baseline.error_rounds
    low, high = probe_band(ctx.cfg)
    trained: list[Example] = []
    for rnd in range(rounds):
        rdir = ctx.rd.round(0, rnd)
        examples = load_round(ctx, rdir / "train.jsonl")
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
            write_round_data(rdir / "train.jsonl", examples, made, usage_delta(before, ctx.teacher))
        trained += [e for e in examples if e.kind != "replay"]
        if not train_if_budget(ctx, rdir, examples, planned_steps(ctx, rounds - rnd)):
            break
    return single_stage(modules, ctx.cfg)


BASELINE_RUNNERS = {
    "vanilla": run_vanilla,
    "self-instruct": run_self_instruct,
    "error-targeted": run_error_targeted,
    "easy-to-hard": run_easy_to_hard,
}
