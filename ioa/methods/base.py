"""The Method protocol: what the engine (ioa.loop) needs from a way of teaching the student.

The engine probes, diagnoses, meters the budget, evaluates and saves; a method decides what the
student is trained on in between. Each method is one object in ioa.methods.registry.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

from ioa.adapt import raw_adapter
from ioa.config import RunConfig
from ioa.context import Context
from ioa.types import Curriculum, Diagnosis


@runtime_checkable
class Method(Protocol):
    name: str  # the config's `method:` value
    counts_probing: bool  # whether the teacher calls spent probing count against this method's budget

    def configure(self, cfg: RunConfig) -> RunConfig:
        """The settings the method actually runs with (e.g. the Adapter switched off)."""
        ...

    def targeted(self, diagnosis: Diagnosis) -> Diagnosis:
        """The diagnosis as the method acts on it and the summary reports it; diagnosis.json keeps the
        Identifier's own finding."""
        ...

    def run(self, ctx: Context, diagnosis: Diagnosis) -> Curriculum:
        """Make the training data and train on it, round by round, each round read back when its files
        exist (ioa.loop.train_round); returns the curriculum it followed."""
        ...


def raw_solutions(cfg: RunConfig) -> RunConfig:
    """The teacher's raw solutions: every Adapter rewrite off. The load ramp stays, as it orders
    difficulty rather than rewriting text."""
    return cfg.model_copy(update={"adapter": raw_adapter(cfg.adapter)})
