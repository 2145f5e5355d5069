"""What one run holds while it runs: its config, run directory, domain, teacher and student, and the
probes, held-out items and prompts it has used so far. The engine (ioa.loop) and every method
(ioa.methods) read and extend it; nothing in it is specific to one method.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ioa.config import RunConfig
from ioa.domains.base import Domain
from ioa.io import atomic_write_json, read_json
from ioa.phase_memory import PhaseMemory
from ioa.rundir import RunDir
from ioa.students.base import Student
from ioa.teachers.base import Teacher
from ioa.types import Problem


class Timings:
    """Wall seconds per phase, accumulated across resumes in timings.json. Phases never nest."""

    def __init__(self, path: Path):
        self.path = path
        self.data: dict[str, float] = read_json(path) if path.exists() else {}

    def add(self, phase: str, seconds: float) -> None:
        self.data[phase] = round(self.data.get(phase, 0.0) + seconds, 3)
        atomic_write_json(self.path, self.data)


@dataclass
class Context:
    cfg: RunConfig
    rd: RunDir
    domain: Domain
    teacher: Teacher
    student: Student
    progress: bool = True
    probes: dict[str, list[Problem]] = field(default_factory=dict)
    test: list[Problem] = field(default_factory=list)  # held-out test set (eval.test_items_per_module)
    p_teacher: dict[str, float] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)  # prompts already used: probes and synthesized examples
    latest_state: Path | None = None  # student state the run has reached
    loaded_state: Path | None = None  # student state currently in memory
    timings: Timings | None = None
    memory: PhaseMemory | None = None  # peak resident memory per phase (memory.json)
    quiet: bool = False  # no phase messages (errors and the final lines only)

    def say(self, message: str) -> None:
        """One line on stderr per phase and decision, so a long run says what it is doing."""
        if not self.quiet:
            print(f"ioa: {message}", file=sys.stderr, flush=True)

    def sync_student(self) -> None:
        if self.latest_state != self.loaded_state and self.latest_state is not None:
            self.student.load_state(self.latest_state)
        self.loaded_state = self.latest_state

    def probe_items(self, modules: Sequence[str]) -> list[Problem]:
        return [x for m in modules for x in self.probes.get(m, [])]

    def timed(self, phase: str, fn: Callable[[], Any]) -> Any:
        if self.memory:
            self.memory.start()
        start = time.perf_counter()
        try:
            return fn()
        finally:
            seconds = time.perf_counter() - start
            if self.timings:
                self.timings.add(phase, seconds)
            if self.memory:
                self.memory.end(phase, seconds)
