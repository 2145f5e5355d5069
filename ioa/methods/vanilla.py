"""The vanilla baseline: one-shot synthetic-data distillation, worked examples spread evenly over all
modules in one stage, no gates."""
from __future__ import annotations

from ioa.context import Context
from ioa.loop import probe_band, run_modules, single_stage, teacher_usage, usage_delta, write_round_data
from ioa.methods.baselines import (
    Baseline,
    domain_modules,
    even_counts,
    load_round,
    planned_examples,
    planned_steps,
    train_if_budget,
)
from ioa.synthesize import shared_shortfall, synthesize
from ioa.types import Curriculum, Diagnosis


class Vanilla(Baseline):
    name = "vanilla"

    def run(self, ctx: Context, diagnosis: Diagnosis) -> Curriculum:
        modules = run_modules(ctx.cfg, ctx.domain)
        rdir = ctx.rd.round(0, 0)
        examples = load_round(ctx, rdir)
        if examples is None:
            low, high = probe_band(ctx.cfg)
            before = teacher_usage(ctx.teacher)
            counts = even_counts(modules, planned_examples(ctx, modules), low, high, ctx.cfg.seed)
            made = synthesize(ctx.teacher, ctx.domain, domain_modules(ctx, modules), counts, ctx.cfg.adapter,
                              ctx.seen, "s0r0", "synth", ctx.cfg.seed, progress=ctx.progress)
            more_counts = (shared_shortfall(counts, made.examples, low, high, False, ctx.cfg.seed)
                           if ctx.cfg.baseline.share_shortfall else {})
            if more_counts:  # the even spread's unspent examples, made for the modules whose band has room
                more = synthesize(ctx.teacher, ctx.domain, domain_modules(ctx, list(more_counts)), more_counts,
                                  ctx.cfg.adapter, ctx.seen, "s0r0-share", "synth", ctx.cfg.seed)
                made = made.plus(more)
            examples = made.examples
            write_round_data(rdir, examples, made, usage_delta(before, ctx.teacher))
        train_if_budget(ctx, rdir, examples, planned_steps(ctx))
        return single_stage(modules, ctx.cfg)
