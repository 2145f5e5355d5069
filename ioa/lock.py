"""One process per run directory: an OS file lock on DIR/.lock, held for the life of the process.

`flock` locks are released by the kernel when the holder exits or is killed, so a SIGKILLed run leaves
no stale lock to clean up. The holder writes its pid and command line into the file, so a second
process can say who holds it. Taken by `ioa run`, `ioa resume`, `ioa report` and `ioa compare`'s
output folder; read-only commands do not need it.
"""
from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path
from typing import IO

from ioa.io import InputError

LOCK_NAME = ".lock"
_held: dict[Path, IO[str]] = {}  # kept open (and so locked) until the process exits or release() is called


class RunDirLocked(InputError):
    """Another live process holds the run directory."""


def acquire(folder: str | Path) -> None:
    """Lock `folder` for this process (creating the folder), or raise RunDirLocked naming the holder.
    Taking a lock this process already holds is a no-op."""
    folder = Path(folder).resolve()
    if folder in _held:
        return
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / LOCK_NAME, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise RunDirLocked(f"{folder} is in use by {holder}; wait for it to finish or stop it first") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} ({' '.join(sys.argv) or 'python'})\n")
    handle.flush()
    _held[folder] = handle


def release(folder: str | Path) -> None:
    handle = _held.pop(Path(folder).resolve(), None)
    if handle is not None:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def release_all() -> None:
    """Release every lock this process holds (the end of a command run in-process, e.g. by tests)."""
    for folder in list(_held):
        release(folder)
