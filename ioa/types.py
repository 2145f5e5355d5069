"""Plain records passed between the steps of the IOA method.

Every record here is a frozen dataclass with `to_dict`/`from_dict`, so it can be written to and read
from the run directory as JSON without custom encoders. Nothing here knows about models or files.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

Learner = Literal["teacher", "student"]
Role = Literal["problem", "step"]


class Record:
    """Mixin: dict round-trip that ignores unknown keys (forward compatible run directories)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class Module(Record):
    """One knowledge module K_i of a domain's hierarchy."""

    id: str
    name: str
    level: int  # 0 = foundation; higher levels build on lower ones
    description: str = ""
    abstract: bool = False  # abstract modules get concrete analogies from the Adapter


@dataclass(frozen=True)
class Step(Record):
    """A sub-question of a composite problem, tagged with the module it exercises."""

    question: str
    answer: str
    module: str


@dataclass(frozen=True)
class Problem(Record):
    """One item of a module at a difficulty, with its exact answer and a worked solution.

    `steps` are the sub-questions of a composite problem (empty for an atomic one). `solution` is the
    author's step-by-step worked solution, one step per line, without the final answer line.
    """

    id: str
    module: str
    difficulty: float
    question: str
    answer: str
    solution: str = ""
    steps: tuple[Step, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Problem":
        data = dict(data)
        data["steps"] = tuple(Step.from_dict(s) for s in data.get("steps", ()))
        return super().from_dict(data)


@dataclass(frozen=True)
class Solution(Record):
    """A teacher's worked solution: parsed text and final answer, with the raw output kept beside."""

    problem_id: str
    text: str
    answer: str
    raw: str = ""


@dataclass(frozen=True)
class Attempt(Record):
    """One graded attempt of a learner on a problem or on one step of a composite problem."""

    learner: str
    module: str
    group: str
    role: str = "problem"
    correct: bool = False


@dataclass(frozen=True)
class ModuleDiagnosis(Record):
    id: str
    p_teacher: float
    p_student: float
    gap: float | None  # None when the teacher itself fails the module (P_T = 0)
    deficient: bool
    teachable: bool
    connectivity: float
    severity: float
    difficulty: float  # normalized depth in the discovered graph, used for the difficulty ramp
    n_teacher: int = 0
    n_student: int = 0


@dataclass(frozen=True)
class Edge(Record):
    """A discovered prerequisite edge: `source` must be learned before `target`."""

    source: str
    target: str
    support: int
    p_source_ok_given_target_ok: float
    p_target_ok_given_source_fail: float
    lift: float
    # data: found by the conditional analysis; confirmed: declared and found; prior: declared, not rejected
    origin: str = "data"


@dataclass(frozen=True)
class Diagnosis(Record):
    modules: tuple[ModuleDiagnosis, ...]
    edges: tuple[Edge, ...]
    dropped_edges: tuple[Edge, ...] = ()  # removed to break cycles
    rejected_prior: tuple[Edge, ...] = ()  # declared prerequisites the student's data contradict (no lift)

    def module(self, module_id: str) -> ModuleDiagnosis:
        for m in self.modules:
            if m.id == module_id:
                return m
        raise KeyError(module_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "modules": [m.to_dict() for m in self.modules],
            "edges": [e.to_dict() for e in self.edges],
            "dropped_edges": [e.to_dict() for e in self.dropped_edges],
            "rejected_prior": [e.to_dict() for e in self.rejected_prior],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Diagnosis":
        return cls(
            modules=tuple(ModuleDiagnosis.from_dict(m) for m in data["modules"]),
            edges=tuple(Edge.from_dict(e) for e in data.get("edges", ())),
            dropped_edges=tuple(Edge.from_dict(e) for e in data.get("dropped_edges", ())),
            rejected_prior=tuple(Edge.from_dict(e) for e in data.get("rejected_prior", ())),
        )


@dataclass(frozen=True)
class Stage(Record):
    index: int
    modules: tuple[str, ...]
    difficulty: float
    mastery_threshold: float
    bridge: bool = False  # a bridging stage inserted to keep difficulty steps within tau_zpd

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Stage":
        data = dict(data)
        data["modules"] = tuple(data["modules"])
        return super().from_dict(data)


@dataclass(frozen=True)
class Curriculum(Record):
    stages: tuple[Stage, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"stages": [s.to_dict() for s in self.stages]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Curriculum":
        return cls(stages=tuple(Stage.from_dict(s) for s in data["stages"]))


@dataclass(frozen=True)
class Example(Record):
    """One supervised training example: a chat prompt and the completion the student should learn."""

    id: str
    module: str
    prompt: str
    completion: str
    answer: str
    difficulty: float
    kind: str = "synth"  # synth | remedial | replay | bridge
    problem_id: str = ""
    raw: str = ""  # the teacher's raw text before adaptation
    remediates: str = ""  # for remedial examples: the id of the failed probe item it answers
    meta: dict[str, Any] = field(default_factory=dict)  # the problem's meta (answer format, entry point)
