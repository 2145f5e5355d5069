"""Atomic file writes and line-numbered JSONL reading: every artifact in a run directory goes through here.

A write goes to a temporary file in the same folder and is renamed over the target, so a killed process
leaves either the old file or the new one, never half of one.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator


class InputError(ValueError):
    """Bad user input, with a message that names the file, line or field."""


NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # disk full, quota, file size limit (RLIMIT_FSIZE)


class NoSpaceError(OSError):
    """A write that did not fit: the file it was for and the bytes it needed (None when unknown)."""

    def __init__(self, path: str | Path, needed: int | None, cause: OSError | None = None):
        super().__init__(cause.errno if cause else errno.ENOSPC, "no space left")
        self.path, self.needed = Path(path), needed

    def __str__(self) -> str:
        need = f" (it needs {self.needed:,} bytes)" if self.needed is not None else ""
        return f"no space left on the device writing {self.path}{need}"


def no_space(error: BaseException) -> NoSpaceError | None:
    """The NoSpaceError an exception stands for (a NoSpaceError, or an OSError with a disk-full errno
    raised by a library writing a file), else None."""
    if isinstance(error, NoSpaceError):
        return error
    if isinstance(error, OSError) and error.errno in NO_SPACE:
        return NoSpaceError(error.filename or "a file", None, error)
    return None


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """`data` at `path`, all or nothing: on a full disk the old file stays and NoSpaceError names `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        if e.errno in NO_SPACE:
            raise NoSpaceError(path, len(data), e) from e
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(dest: Path, replace: bool = True) -> Iterator[Path]:
    """Yield a temp folder beside `dest`; on success it becomes `dest` in one rename, on error it is removed.

    A process killed inside the block leaves at most a hidden `.<name>.tmp-<pid>` folder, never a
    half-written `dest`. With `replace=False` an existing `dest` (written meanwhile by another process)
    is kept and the temp folder dropped.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if dest.exists() and not replace:
        shutil.rmtree(tmp, ignore_errors=True)
        return
    old = dest.parent / f".{dest.name}.old-{os.getpid()}"
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    shutil.rmtree(old, ignore_errors=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: line {e.lineno}: not valid JSON: {e.msg}") from None


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a bad line raises InputError naming it."""
    path = Path(path)
    try:
        f = path.open("rb")
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    with f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}: line {lineno}: not valid JSON: {e.msg}") from None
            if not isinstance(obj, dict):
                raise InputError(f"{path}: line {lineno}: expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    return [obj for _, obj in iter_jsonl(path)]
