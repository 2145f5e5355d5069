"""Registry of students: name -> factory(cfg, cache_dir). Backends are imported on first use (torch is heavy)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ioa.config import StudentConfig
from ioa.students.base import Learner, Student


def _hf(cfg: StudentConfig, cache_dir: Path, **options: Any) -> Student:
    from ioa.students.hf import HFStudent

    return HFStudent(cfg, cache_dir, **options)


STUDENTS: dict[str, Callable[..., Student]] = {
    "hf": _hf,
}


def load_student(kind: str, cfg: StudentConfig, cache_dir: Path, **options: Any) -> Student:
    """A student of `kind`; `options` go to its constructor (for "hf": name, progress, seed)."""
    try:
        factory = STUDENTS[kind]
    except KeyError:
        raise ValueError(f"unknown student kind {kind!r}; known: {', '.join(sorted(STUDENTS))}") from None
    return factory(cfg, Path(cache_dir), **options)


__all__ = ["Learner", "Student", "STUDENTS", "load_student"]
