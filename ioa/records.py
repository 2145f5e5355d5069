"""The run directory's records that more than one module reads back: evaluations, the mastery gate's
decision, the round a stage ended on, and the run's summary.

Like `ioa.types`, each is a frozen dataclass whose `to_dict` writes the keys, in the order, the file
has always had, and whose `from_dict` ignores keys it does not know; fields that older run
directories lack have defaults, so those still load. Graded items stay plain dicts (id, module,
difficulty, correct, response): they are passed as they are to counting functions (ioa.stats,
ioa.layouts) that also take other answer rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ioa.types import Record

Item = dict[str, Any]  # one graded answer: id, module, difficulty, correct, response


@dataclass(frozen=True)
class Evaluation(Record):
    """The student's graded answers on a list of problems, and its accuracy per module (test_before.json)."""

    accuracy: dict[str, float]
    items: list[Item] = field(default_factory=list)


@dataclass(frozen=True)
class RoundEval(Evaluation):
    """A gated round's evaluation (eval.json): the stage's modules and the earlier ones checked for retention."""

    stage_modules: list[str] = field(default_factory=list)
    retention_modules: list[str] = field(default_factory=list)
    layout_bleed: dict[str, float] = field(default_factory=dict)  # module -> share of answers in another's layout


@dataclass(frozen=True)
class FinalEval(Evaluation):
    """The evaluation after the last stage (final_eval.json); items reused from the file `reused_from`."""

    reused_from: str | None = None


@dataclass(frozen=True, kw_only=True)
class CurvePoint(Record):
    """Accuracy on the reported items after a trained round, with the budget spent so far (curve.json)."""

    examples: int
    steps: int
    teacher_calls: int
    teacher_tokens: int = 0
    trained_tokens: int = 0
    accuracy: dict[str, float]
    mean: float
    items: list[Item] = field(default_factory=list)


@dataclass(frozen=True)
class GateDecision(Record):
    """The mastery gate (gate.json): min over the stage's modules of P_S/P_T against the threshold, and
    what the stage does next: advance, advance-unmastered or remediate."""

    passed: bool
    min_ratio: float
    threshold: float
    ratios: dict[str, float]
    failing: list[str]
    action: str = ""  # set once the method has decided (ioa.methods.ioa)


@dataclass(frozen=True)
class SelectedRound(Record):
    """The round a stage ended on (selected.json), by the rule `rule`."""

    round: int
    mean_accuracy: float
    rounds: int
    known_drop: float = 0.0
    max_known_drop: float | None = None
    rule: str = "best"


@dataclass(frozen=True, kw_only=True)
class RunSummary(Record):
    """summary.json, written last. The nested parts stay dicts: their keys are documented where
    `ioa.summary.summarize` builds them, and the readers (report, compare) take them as they are."""

    status: str
    method: str | None = None
    seed: int | None = None
    tau_gap: float | None = None
    reported_on: str = "probes"
    budget: dict[str, Any] = field(default_factory=dict)
    curve: list[dict[str, Any]] = field(default_factory=list)
    teacher_usage: dict[str, Any] | None = None
    benchmarks: dict[str, Any] | None = None
    domain: str | None = None
    student: str | None = None
    modules: list[dict[str, Any]] = field(default_factory=list)
    deficient: dict[str, Any] = field(default_factory=dict)
    retention: dict[str, Any] = field(default_factory=dict)
    prior_knowledge: dict[str, Any] = field(default_factory=dict)
    not_taught: dict[str, Any] = field(default_factory=dict)
    completion_tokens: dict[str, Any] = field(default_factory=dict)
    layout_bleed: dict[str, Any] = field(default_factory=dict)
    adapter_choice: dict[str, str] | None = None  # module -> the calibration pilot's Adapter form (adapter.json)
    stages: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
