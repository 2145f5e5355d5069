"""Registry of teachers: config `teacher.kind` -> factory(domain)."""
from __future__ import annotations

from typing import Callable

from ioa.domains.base import Domain
from ioa.teachers.base import Teacher
from ioa.teachers.procedural import ProceduralTeacher

TEACHERS: dict[str, Callable[[Domain], Teacher]] = {
    "procedural": ProceduralTeacher,
}


def load_teacher(kind: str, domain: Domain) -> Teacher:
    try:
        return TEACHERS[kind](domain)
    except KeyError:
        raise ValueError(f"unknown teacher kind {kind!r}; known: {', '.join(sorted(TEACHERS))}") from None
