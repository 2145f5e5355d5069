"""Reading attempt records (`ioa identify --outcomes FILE`) into a columnar frame, fast and strictly.

The fast path parses the whole file with polars' NDJSON reader. Only when that fails, or a value is out
of its allowed set, does a line-by-line pass run to name the first bad line, so a good file of a million
attempts costs one vectorized parse.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import polars as pl

from ioa.io import InputError, iter_jsonl
from ioa.types import Attempt

SCHEMA = {"learner": pl.String, "module": pl.String, "group": pl.String, "role": pl.String, "correct": pl.Boolean}
LEARNERS = ("teacher", "student")
ROLES = ("problem", "step")


def attempts_frame(attempts: Iterable[Attempt]) -> pl.DataFrame:
    rows = [a.to_dict() for a in attempts]
    if not rows:
        return pl.DataFrame(schema=SCHEMA)
    return pl.DataFrame(rows, schema=SCHEMA)


def _line_problem(obj: dict[str, Any]) -> str | None:
    """What is wrong with one attempt object, or None."""
    if obj.get("learner") not in LEARNERS:
        return f"field 'learner' must be one of {list(LEARNERS)}, got {obj.get('learner')!r}"
    for name in ("module", "group"):
        value = obj.get(name)
        if not isinstance(value, (str, int)) or isinstance(value, bool) or str(value) == "":
            return f"field {name!r} must be a non-empty string, got {value!r}"
    if obj.get("role", "problem") not in ROLES:
        return f"field 'role' must be one of {list(ROLES)}, got {obj.get('role')!r}"
    if not isinstance(obj.get("correct"), bool):
        return f"field 'correct' must be true or false, got {obj.get('correct')!r}"
    return None


def _find_bad_line(path: Path) -> str:
    for lineno, obj in iter_jsonl(path):  # raises InputError on unparsable JSON itself
        problem = _line_problem(obj)
        if problem:
            return f"{path}: line {lineno}: {problem}"
    return f"{path}: could not be read as attempts"


def read_attempts(path: str | Path) -> pl.DataFrame:
    """All attempts in a JSONL file, validated; raises InputError naming the first bad line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        df = pl.read_ndjson(path, schema=SCHEMA, ignore_errors=False)
    except (pl.exceptions.PolarsError, ValueError):
        raise InputError(_find_bad_line(path)) from None
    df = df.with_columns(pl.col("role").fill_null("problem"))
    valid = (
        pl.col("learner").is_in(LEARNERS)
        & pl.col("module").is_not_null() & (pl.col("module") != "")
        & pl.col("group").is_not_null() & (pl.col("group") != "")
        & pl.col("role").is_in(ROLES)
        & pl.col("correct").is_not_null()
    )
    if df.height == 0:
        raise InputError(f"{path}: no attempts in file")
    if not df.select(valid.all()).item():
        raise InputError(_find_bad_line(path))
    return df
