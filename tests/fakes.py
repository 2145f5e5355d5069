"""Tiny test doubles for the loop's logic tests. The real student is exercised in the slow tests."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Sequence

from ioa.io import atomic_write_json
from ioa.students.base import STATE_FILE
from ioa.students.simulated import SimulatedLearner
from ioa.types import Example, Problem


class Interrupt(KeyboardInterrupt):
    """Raised by the fake to stop a run in the middle, as Ctrl-C would."""


class LearningFake:
    """A simulated learner whose mastery of a module rises with every example it is trained on."""

    def __init__(self, mastery: dict[str, float], prerequisites, rate: float = 0.03,
                 interrupt_at_train: int | None = None, remedial_rate: float | None = None, interference: float = 0.0):
        self.initial = dict(mastery)
        self.mastery = dict(mastery)
        self.prerequisites = list(prerequisites)
        self.rate = rate
        self.remedial_rate = rate if remedial_rate is None else remedial_rate  # < 0: remediation hurts
        self.interference = interference  # share of mastery other modules lose in a remedial round
        self.name = "student"
        self.train_calls = 0
        self.interrupt_at_train = interrupt_at_train
        self.trained_ids: list[str] = []
        self.lr_windows: list[tuple[int, int] | None] = []
        self.scored: list[list[tuple[Example, float]]] = []

    def respond(self, problems: Sequence[Problem]) -> list[str]:
        return SimulatedLearner(self.mastery, self.prerequisites, guess_rate=0.0).respond(problems)

    def train(self, examples: Sequence[Example], out_dir: Path, max_steps: int | None = None,
              lr_window: tuple[int, int] | None = None) -> dict:
        self.train_calls += 1
        self.lr_windows.append(lr_window)
        if self.interrupt_at_train == self.train_calls:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            (Path(out_dir) / "checkpoint-1").mkdir(exist_ok=True)  # half-done training left behind
            raise Interrupt()
        for e in examples:
            m = self.mastery.get(e.module, 0.0)
            rate = self.remedial_rate if e.kind == "remedial" else self.rate
            self.mastery[e.module] = round(min(1.0, max(0.0, m + rate * (1 - m) if rate > 0 else m * (1 + rate))), 6)
        remedied = {e.module for e in examples if e.kind == "remedial"}
        if remedied and self.interference:
            for m in set(self.mastery) - remedied:
                self.mastery[m] = round(self.mastery[m] * (1 - self.interference), 6)
        self.trained_ids += [e.id for e in examples]
        steps = len(examples) if max_steps is None else min(len(examples), max_steps)  # one example a step
        return {"steps": steps, "tokens_seen": sum(self.count_tokens(examples[:steps])),
                "final_loss": 1.0 / (1 + len(examples))}

    def count_tokens(self, examples: Sequence[Example]) -> list[int]:
        return [1 + len(e.prompt + e.completion) // 4 for e in examples]

    def completion_losses(self, examples: Sequence[Example]) -> list[float]:
        """Harder for a module it knows less, and for a longer solution; every call is kept in `scored`."""
        losses = [(1.0 - self.mastery.get(e.module, 0.0)) * len(e.completion) / 100 for e in examples]
        self.scored.append(list(zip(examples, losses)))
        return losses

    def save_state(self, path: Path) -> None:
        tmp = Path(str(path) + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        atomic_write_json(tmp / STATE_FILE, {"mastery": self.mastery})
        tmp.rename(path)

    def load_state(self, path: Path) -> None:
        self.mastery = json.loads((Path(path) / STATE_FILE).read_text())["mastery"]

    def save(self, path: Path) -> None:
        Path(path).mkdir(parents=True)
        atomic_write_json(Path(path) / "model.json", {"mastery": self.mastery})
