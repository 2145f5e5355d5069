"""A capability domain described in a short YAML file, for the LLM teacher to teach.

    name: gsm8k
    description: Grade-school math word problems ...
    check: numeric            # numeric | symbolic | exact | choice | code | judge
    seed_examples: [{question: ..., answer: ...}]
    modules: [...]            # optional: the hierarchy; else the teacher decomposes the domain
    max_modules: 8

`load_domain_spec("gsm8k")` reads a built-in spec from `ioa/domains/specs/`; any other argument is a
path. Errors name the file and the field. `module_graph_errors` is the one check of a module
hierarchy (unique ids, known prerequisites, no cycles), used for user-given and teacher-made ones alike.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal, Sequence

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ioa.config import ConfigError, _format_validation_error

CheckKind = Literal["numeric", "symbolic", "exact", "choice", "code", "judge"]
MODULE_ID = r"^[a-z][a-z0-9_]*$"
SPECS_PACKAGE, SPECS_DIR = "ioa.domains", "specs"


class DomainSpecError(ConfigError):
    """A domain spec that cannot be loaded, already phrased for the user."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SeedExample(Strict):
    question: str = Field(min_length=1)
    answer: str


class ModuleSpec(Strict):
    id: str = Field(pattern=MODULE_ID, description="unique snake_case id")
    name: str = Field(min_length=1)
    description: str = ""
    level: int = Field(0, ge=0, le=100)
    abstract: bool = False
    prerequisites: list[str] = Field(default_factory=list)


class DomainSpec(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="short name, used in ids and reports")
    description: str = Field(min_length=1, description="what the domain covers, for the teacher")
    check: CheckKind = Field(description="how a response is graded")
    seed_examples: list[SeedExample] = Field(
        default_factory=list, description="a few example problems, shown to the teacher")
    modules: list[ModuleSpec] | None = Field(
        None, description="the module hierarchy; default: the teacher decomposes the domain")
    max_modules: int = Field(8, ge=1, le=100, description="most modules the teacher may propose")
    answer_format: str = Field("", description="how a response should end; default: the check kind's")
    judge_rubric: str = Field("", description="what the judge grades on (check: judge)")
    judge_threshold: int = Field(7, ge=1, le=10, description="judge ratings at or above this count as correct")

    @field_validator("modules")
    @classmethod
    def _sound_hierarchy(cls, modules: list[ModuleSpec] | None) -> list[ModuleSpec] | None:
        error = module_graph_errors([m.model_dump() for m in modules]) if modules is not None else None
        if error:
            raise ValueError(error)
        return modules


def find_cycle(prerequisites: dict[str, Sequence[str]]) -> list[str] | None:
    """One prerequisite cycle as a path [a, b, ..., a], or None (depth-first search, three colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for pre in prerequisites.get(node, ()):
            if state.get(pre) == 1:
                return path[path.index(pre):] + [pre]
            if pre not in state and (found := visit(pre)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in prerequisites:
        if node not in state and (found := visit(node)):
            return found
    return None


def module_graph_errors(modules: Sequence[dict[str, Any]]) -> str | None:
    """What is wrong with a module list (dicts with id and prerequisites), or None when it is sound."""
    ids = [m["id"] for m in modules]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        return f"duplicate module id(s): {', '.join(dupes)}"
    known = set(ids)
    for m in modules:
        unknown = [p for p in m.get("prerequisites", ()) if p not in known]
        if unknown:
            return (f"module {m['id']!r} lists unknown prerequisite(s) {', '.join(map(repr, unknown))}; "
                    f"known ids: {', '.join(ids)}")
    cycle = find_cycle({m["id"]: list(m.get("prerequisites", ())) for m in modules})
    if cycle:
        return f"prerequisites form a cycle: {' -> '.join(cycle)} (each module must come after its prerequisites)"
    return None


def builtin_specs() -> list[str]:
    """Names of the specs shipped in ioa/domains/specs/."""
    folder = resources.files(SPECS_PACKAGE).joinpath(SPECS_DIR)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def parse_domain_spec(text: str, source: str) -> DomainSpec:
    """A validated DomainSpec from YAML text; `source` names the file in errors."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise DomainSpecError(f"{source}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise DomainSpecError(f"{source}: expected a mapping with name, description and check; "
                              f"got {type(data).__name__}")
    try:
        return DomainSpec.model_validate(data)
    except ValidationError as e:
        raise DomainSpecError(
            _format_validation_error(e, source).replace("invalid configuration", "invalid domain spec", 1)) from None


def load_domain_spec(name_or_path: str | Path) -> DomainSpec:
    """A built-in spec by name (`gsm8k`, `python-functions`, `instructions`) or a YAML file by path."""
    text = str(name_or_path)
    path = Path(text)
    if not path.suffix and "/" not in text and "\\" not in text:
        resource = resources.files(SPECS_PACKAGE).joinpath(SPECS_DIR, f"{text}.yaml")
        if not resource.is_file():
            raise DomainSpecError(f"unknown domain spec {text!r}; built-in: {', '.join(builtin_specs())}, "
                                  "or give the path of a YAML file")
        return parse_domain_spec(resource.read_text(encoding="utf-8"), f"built-in spec {text}")
    try:
        return parse_domain_spec(path.read_text(encoding="utf-8"), str(path))
    except FileNotFoundError:
        raise DomainSpecError(f"domain spec file not found: {path}") from None
