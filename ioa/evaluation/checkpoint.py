"""Generation checkpoints for `ioa eval`: every finished batch is appended to a JSONL file, so an
evaluation that is killed (Ctrl-C, SIGKILL, a lost machine) resumes where it stopped.

The file's first line is a header with the generation's fingerprint (model, prompts, decoding, batch
size, ...); a checkpoint whose fingerprint differs from the current call is set aside (renamed to
`*.stale`) rather than mixed in. Each later line is `{"i": flat prompt index, "completion": text}`.
A line cut short by a kill is ignored: the batch it belonged to is generated again.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Sequence

__all__ = ["GenerationCheckpoint", "fingerprint"]


def fingerprint(obj: Any) -> str:
    """A short stable hash of a JSON-able object."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class GenerationCheckpoint:
    """Completions already generated for one benchmark, and an append-only writer for new ones."""

    def __init__(self, path: Path, key: str, total: int, log: Callable[[str], None] | None = None):
        self.path = Path(path)
        self.key = key
        self.total = total
        self.log = log or (lambda msg: None)

    def load(self) -> dict[int, str]:
        """Completions by flat index from a matching checkpoint; {} when there is none (or it does not match)."""
        if not self.path.exists():
            return {}
        done: dict[int, str] = {}
        with self.path.open(encoding="utf-8") as f:
            lines = f.read().split("\n")
        try:
            header = json.loads(lines[0])
        except (json.JSONDecodeError, IndexError):
            header = {}
        if header.get("checkpoint") != self.key or header.get("total") != self.total:
            stale = self.path.with_suffix(self.path.suffix + ".stale")
            os.replace(self.path, stale)
            self.log(f"{self.path.name}: made with other settings; set aside as {stale.name}, generating afresh")
            return {}
        for line in lines[1:]:
            try:
                row = json.loads(line)
                i, text = int(row["i"]), row["completion"]
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                continue  # the tail of a killed write
            if 0 <= i < self.total and isinstance(text, str):
                done[i] = text
        return done

    def append(self, indices: Sequence[int], completions: Sequence[str]) -> None:
        """Record one finished batch (header first when the file is new); flushed to the OS at once."""
        new = not self.path.exists() or self.path.stat().st_size == 0
        with self.path.open("a", encoding="utf-8") as f:
            if new:
                f.write(json.dumps({"checkpoint": self.key, "total": self.total}) + "\n")
            elif not self._ends_with_newline():
                f.write("\n")  # a killed write left half a line; start the next one clean
            f.write("".join(json.dumps({"i": int(i), "completion": c}) + "\n" for i, c in zip(indices, completions)))

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
