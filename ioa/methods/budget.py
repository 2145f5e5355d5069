"""The equal budget: what a run has spent, read back from its run directory, against the config's caps.

Spent = new training examples (replay copies are re-used data, not counted), optimizer steps, and
teacher calls and tokens (probing and the Adapter calibration pilot included, see ioa.teachers.metered and
ioa.calibrate). Every number comes from files
the run wrote (probe_usage.json, each round's synthesis.json and metrics.json), so a resumed run
continues from exactly what was spent before it stopped.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

from ioa.config import BudgetConfig
from ioa.io import read_json
from ioa.rundir import RunDir

CALLS_PER_EXAMPLE = 2  # the teacher writes the problem, then solves it


@dataclass
class Usage:
    examples: int = 0
    steps: int = 0
    teacher_calls: int = 0
    teacher_tokens: int = 0
    trained_tokens: int = 0  # tokens the trainer ran (prompt + completion, no padding; TRL's num_tokens), all rounds

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def spent(rd: RunDir) -> Usage:
    u = Usage()
    probe = rd.probe_usage
    if probe.exists() and read_json(probe).get("counted", True):
        p = read_json(probe)
        u.teacher_calls += p.get("teacher_calls", 0)
        u.teacher_tokens += p.get("teacher_tokens", 0)
    for rdir in rd.pilot_forms() + rd.all_rounds():  # the Adapter calibration pilot's rounds count too
        if rdir.synthesis.exists():
            s = read_json(rdir.synthesis)
            u.examples += s.get("examples", 0)
            u.teacher_calls += s.get("teacher_calls", 0)
            u.teacher_tokens += s.get("teacher_tokens", 0)
        if rdir.metrics.exists():
            m = read_json(rdir.metrics)
            u.steps += int(m.get("steps") or 0)
            u.trained_tokens += int(m.get("tokens_seen") or 0)
    return u


def examples_left(cap: BudgetConfig, used: Usage) -> int | None:
    """New examples the run may still make (None: no cap), counting the teacher calls each one costs."""
    limits = []
    if cap.max_examples is not None:
        limits.append(cap.max_examples - used.examples)
    if cap.max_teacher_calls is not None:
        limits.append((cap.max_teacher_calls - used.teacher_calls) // CALLS_PER_EXAMPLE)
    return max(0, min(limits)) if limits else None


def steps_left(cap: BudgetConfig, used: Usage) -> int | None:
    return None if cap.max_steps is None else max(0, cap.max_steps - used.steps)


def train_tokens_left(cap: BudgetConfig, used: Usage) -> int | None:
    return None if cap.max_train_tokens is None else max(0, cap.max_train_tokens - used.trained_tokens)


def steps_within_tokens(tokens_left: int, example_tokens: Sequence[int], examples_per_step: int) -> int:
    """The optimizer steps that fit in `tokens_left` at the examples' mean length (0 when none does)."""
    if not example_tokens:
        return 0
    per_step = examples_per_step * sum(example_tokens) / len(example_tokens)
    return int(tokens_left // per_step) if per_step > 0 else 0


def calls_limit(cap: BudgetConfig) -> int | None:
    return cap.max_teacher_calls


def trim_counts(counts: dict[str, list[float]], n: int | None) -> dict[str, list[float]]:
    """At most n difficulties in all, shared round-robin over modules. Each module keeps evenly spaced
    items of its list, so a load ramp still runs from its easiest to its hardest item."""
    if n is None or sum(len(v) for v in counts.values()) <= n:
        return counts
    keep = {m: 0 for m in counts}
    left = n
    while left > 0:
        progressed = False
        for m, ds in counts.items():
            if left and keep[m] < len(ds):
                keep[m] += 1
                left -= 1
                progressed = True
        if not progressed:
            break
    return {m: evenly_spaced(ds, keep[m]) for m, ds in counts.items() if keep[m]}


def evenly_spaced(items: list[float], k: int) -> list[float]:
    if k >= len(items):
        return list(items)
    if k == 1:
        return [items[0]]
    return [items[round(i * (len(items) - 1) / (k - 1))] for i in range(k)]
