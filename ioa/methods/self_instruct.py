"""The self-instruct baseline (Wang et al. 2023): new tasks bootstrapped from sampled seed tasks,
near-duplicates (ROUGE-L >= `baseline.rouge_l_max` to any pooled task) dropped, then the teacher
answers them; one stage, no gates. It needs a teacher that writes new tasks (WritesTasks)."""
from __future__ import annotations

import random
from typing import Sequence

from ioa.answers import prompt_for
from ioa.context import Context
from ioa.io import atomic_write_json
from ioa.loop import probe_band, run_modules, single_stage, teacher_usage, usage_delta, write_round_data
from ioa.methods.baselines import Baseline, load_round, planned_examples, planned_steps, train_if_budget
from ioa.synthesize import Synthesis, checked_solutions, seed_base
from ioa.teachers.base import Metered, Teacher, WritesTasks
from ioa.teachers.metered import unmetered
from ioa.types import Curriculum, Diagnosis, Example, Problem


class SelfInstruct(Baseline):
    name = "self-instruct"

    def run(self, ctx: Context, diagnosis: Diagnosis) -> Curriculum:
        modules = run_modules(ctx.cfg, ctx.domain)
        rdir = ctx.rd.round(0, 0)
        examples = load_round(ctx, rdir)
        if examples is None:
            if not isinstance(unmetered(ctx.teacher), WritesTasks):
                raise ValueError(f"method self-instruct: teacher {ctx.teacher.name!r} cannot write new tasks "
                                 "(no new_task)")
            before = teacher_usage(ctx.teacher)
            tasks, stats = bootstrap_tasks(ctx, modules, planned_examples(ctx, modules))
            made = answered(ctx, tasks, "s0r0", "synth")
            examples = made.examples
            write_round_data(rdir, examples, made, usage_delta(before, ctx.teacher))
            atomic_write_json(rdir.self_instruct, {**stats, "pool": len(tasks)})
        train_if_budget(ctx, rdir, examples, planned_steps(ctx))
        return single_stage(modules, ctx.cfg)


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


def out_of_calls(teacher: Teacher, need: int) -> bool:
    """Whether the budget's call cap leaves fewer than `need` calls (never, for an unmetered teacher)."""
    return isinstance(teacher, Metered) and teacher.exhausted(need)


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

    teacher = ctx.teacher
    for k, module in enumerate(modules):
        for i in range(cfg.seed_tasks_per_module):
            if len(pool) < n and not out_of_calls(teacher, len(pool) + 2):  # each pooled task is solved later
                d = round(rng.uniform(low, high), 4)
                stats["seed_tasks"] += admit(teacher.make_problems(module, d, 1, base + k * 1000 + i)[0],
                                             seed_task=True)
    assert isinstance(teacher, WritesTasks)  # checked by the caller (on the teacher the meter wraps)
    attempt = 0
    while len(pool) < n and attempt < 20 * n and pool and not out_of_calls(teacher, len(pool) + 2):
        shown = rng.sample(pool, min(cfg.seeds_per_prompt, len(pool)))
        task = teacher.new_task(shown, base + 1_000_000 + attempt)
        attempt += 1
        stats["generated"] += admit(task)
    return pool, stats


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
