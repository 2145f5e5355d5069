"""What the baselines IOA is compared with share: each trains in one stage or in plain stages with no
gates, on the same budget, on the teacher's raw solutions.

  vanilla         one-shot synthetic-data distillation (ioa.methods.vanilla)
  easy-to-hard    a plain curriculum by module level (ioa.methods.easy_to_hard)
  self-instruct   Wang et al. 2023: bootstrapped tasks (ioa.methods.self_instruct)
  error-targeted  LLM2LLM / Lion: new examples like the student's errors (ioa.methods.error_targeted)

All write the same run-directory files as IOA (stages/<n>/round-<r>/...), so summaries, reports and
`ioa compare` read them alike. None of them looks at the held-out probes or test items while making
data.
"""
from __future__ import annotations

from typing import Sequence

from ioa.config import RunConfig
from ioa.context import Context
from ioa.io import read_jsonl
from ioa.loop import train_round
from ioa.methods.base import raw_solutions
from ioa.methods.budget import examples_left, spent, steps_left
from ioa.rundir import RoundDir
from ioa.synthesize import seed_base, stage_difficulties
from ioa.types import Curriculum, Diagnosis, Example, Module


class Baseline:
    """A Method that trains on the teacher's raw solutions and targets no diagnosis; its probing only
    reports P_T and the before-accuracy, so it does not count against the budget."""

    name: str
    counts_probing = False

    def configure(self, cfg: RunConfig) -> RunConfig:
        return raw_solutions(cfg)

    def targeted(self, diagnosis: Diagnosis) -> Diagnosis:
        return diagnosis

    def run(self, ctx: Context, diagnosis: Diagnosis) -> Curriculum:
        raise NotImplementedError


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


def load_round(ctx: Context, rdir: RoundDir) -> list[Example] | None:
    """The round's training examples when it has written them (their prompts then count as seen)."""
    if not rdir.train.exists():
        return None
    examples = [Example.from_dict(r) for r in read_jsonl(rdir.train)]
    ctx.seen.update(e.prompt for e in examples)
    return examples


def domain_modules(ctx: Context, ids: Sequence[str]) -> list[Module]:
    return [m for m in ctx.domain.modules() if m.id in ids]


def train_if_budget(ctx: Context, rdir: RoundDir, examples: list[Example], steps: int | None) -> bool:
    if not examples or steps == 0:
        return False
    train_round(ctx, rdir, examples, max_steps=steps)
    return True
