"""`python -m ioa.cli ARGS` that also records which files this process writes under a watched folder, for
the multi-process test (tests/test_two_processes.py): who writes what, per rank.

Python's audit hooks see every `open` for writing (the built-in, io and os.open: json, torch.save,
tokenizer files) and every rename (atomic writes end in os.replace), whichever library calls them. One
line per event, "event<TAB>path", in `$IOA_TEST_WRITE_LOG_DIR/rank<RANK>.tsv`; only paths inside
`$IOA_TEST_WATCHED_DIR`. Writes from native code that bypass Python (safetensors' Rust writer) are not
seen; their atomic rename is.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _writes(mode, flags) -> bool:
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return isinstance(flags, int) and bool(flags & WRITE_FLAGS)


def install(log_dir: Path, watched: Path, rank: str) -> None:
    log = open(log_dir / f"rank{rank}.tsv", "a", buffering=1)  # opened before the hook: not recorded
    root = str(watched.resolve())

    def record(event: str, path) -> None:
        try:
            p = os.path.abspath(os.fsdecode(path))
        except TypeError:  # a file descriptor
            return
        if p == root or p.startswith(root + os.sep):
            log.write(f"{event}\t{p}\n")

    def hook(event: str, args) -> None:
        if event == "open" and len(args) >= 3 and _writes(args[1], args[2]):
            record("open", args[0])
        elif event in ("os.rename", "os.replace"):
            record("rename", args[1])

    sys.addaudithook(hook)


if __name__ == "__main__":
    install(Path(os.environ["IOA_TEST_WRITE_LOG_DIR"]), Path(os.environ["IOA_TEST_WATCHED_DIR"]),
            os.environ.get("RANK", "0"))
    from ioa.cli import main

    sys.exit(main(sys.argv[1:]))
