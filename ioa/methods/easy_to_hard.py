"""The easy-to-hard baseline (the reviewers' plain curriculum): every module, in stages by the
domain's module level (foundations first), numbers rising from small to large inside each stage; no
identification, no gates, no remediation, the budget split evenly over the stages."""
from __future__ import annotations

import math
from typing import Sequence

from ioa.context import Context
from ioa.loop import probe_band, run_modules, teacher_usage, usage_delta, write_round_data
from ioa.methods.baselines import Baseline, domain_modules, load_round, planned_examples, planned_steps, train_if_budget
from ioa.methods.budget import examples_left, spent, trim_counts
from ioa.synthesize import stage_difficulties, synthesize
from ioa.types import Curriculum, Diagnosis, Stage


class EasyToHard(Baseline):
    name = "easy-to-hard"

    def run(self, ctx: Context, diagnosis: Diagnosis) -> Curriculum:
        modules = run_modules(ctx.cfg, ctx.domain)
        curriculum = level_stages(ctx, modules)
        low, high = probe_band(ctx.cfg)
        stages = curriculum.stages
        for i, stage in enumerate(stages):
            rdir = ctx.rd.round(stage.index, 0)
            examples = load_round(ctx, rdir)
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
                write_round_data(rdir, examples, made, usage_delta(before, ctx.teacher))
            if not train_if_budget(ctx, rdir, examples, planned_steps(ctx, len(stages) - i)):
                break
        return curriculum


def level_stages(ctx: Context, modules: Sequence[str]) -> Curriculum:
    """One stage per module level present in the run, lowest first (a difficulty of 0 to 1 across them)."""
    by_level: dict[int, list[str]] = {}
    for m in domain_modules(ctx, modules):
        by_level.setdefault(m.level, []).append(m.id)
    levels = sorted(by_level)
    return Curriculum(stages=tuple(
        Stage(index=i, modules=tuple(by_level[lv]), difficulty=round(i / max(1, len(levels) - 1), 6),
              mastery_threshold=ctx.cfg.organizer.tau_mastery) for i, lv in enumerate(levels)))
