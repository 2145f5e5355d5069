"""Peak resident memory per phase of a run (DIR/memory.json), from the kernel's high-water mark.

Linux keeps VmHWM, the largest resident set the process has had; writing 5 to /proc/self/clear_refs
resets it to the current resident set (Linux >= 4.0). Resetting it when a phase starts and reading it
when the phase ends gives that phase's own peak, so a run's peak can be traced to the phase that holds
it (`/usr/bin/time -v` only gives the whole run's). What happens between phases (loading the student,
converting the GGUF file, writing files) is recorded as `other`. Only the main process (rank 0)
records. Where /proc is missing (macOS, Windows) nothing is recorded and the run goes on.
"""
from __future__ import annotations

import re
from pathlib import Path

from ioa.io import atomic_write_json, read_json

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def high_water_mb() -> float | None:
    """The process's peak resident set since the last reset, in MiB; None where the kernel does not say."""
    try:
        found = re.search(r"^VmHWM:\s+(\d+) kB", STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(found.group(1)) / 1024 if found else None


def reset_high_water() -> bool:
    """Start a new high-water mark at the current resident set; False where that is not possible."""
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


class PhaseMemory:
    """Peak MiB per phase, the largest over all of a phase's calls and across resumes, in memory.json."""

    def __init__(self, path: Path):
        self.path = path
        self.data: dict[str, float] = read_json(path) if path.exists() else {}

    def _keep(self, phase: str, mb: float | None) -> None:
        if mb is not None and mb > self.data.get(phase, 0.0):
            self.data[phase] = round(mb, 1)
            atomic_write_json(self.path, self.data)

    def start(self) -> bool:
        """At a phase's start: the peak since the last phase ended goes to `other`; then a fresh mark."""
        self._keep("other", high_water_mb())
        return reset_high_water()

    def end(self, phase: str, measured: bool) -> None:
        """At a phase's end: its peak, then a fresh mark so that `other` does not inherit it."""
        if measured:
            self._keep(phase, high_water_mb())
            reset_high_water()
