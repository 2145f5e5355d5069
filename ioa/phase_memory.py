"""Peak resident memory per phase of a run (DIR/memory.json), from the kernel's high-water mark.

Linux keeps VmHWM, the largest resident set the process has had; writing 5 to /proc/self/clear_refs
resets it to the current resident set (Linux >= 4.0). Resetting it when a phase starts and reading it
when the phase ends gives that phase's own peak, so a run's peak can be traced to the phase that holds
it (`/usr/bin/time -v` only gives the whole run's). What happens between phases (loading the student,
converting the GGUF file, writing files) is recorded as `other`. Only the main process (rank 0)
records. Where /proc is missing (macOS, Windows) nothing is recorded and the run goes on.

The reset is the process's own high-water mark, which is also what `getrusage` reports at exit: `/usr/bin/time -v`
around a run then prints the last phase's peak, not the run's (2.51 GB for a default run whose training peaked
at 3.56 GB here). Read memory.json, or its largest value, for the run's peak.
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
    """Peak MiB per phase, the largest over all of a phase's calls and across resumes, in memory.json.

    A call shorter than `min_seconds` records nothing: it read its result back from the run directory (a
    resumed run), and what the process held then says nothing about the phase. So a resume that stops
    before doing any work leaves memory.json as it was."""

    min_seconds = 1.0

    def __init__(self, path: Path):
        self.path = path
        self.data: dict[str, float] = read_json(path) if path.exists() else {}
        self._other: float | None = None  # phases never nest, so one call's marks are held here
        self._measured = False

    def start(self) -> None:
        """At a phase's start: note the peak since the last phase ended (`other`), then a fresh mark."""
        self._other = high_water_mb()
        self._measured = reset_high_water()

    def end(self, phase: str, seconds: float) -> None:
        """At a phase's end: its peak (and the `other` noted at its start), then a fresh mark."""
        if not self._measured:
            return
        peak = high_water_mb()
        reset_high_water()
        if seconds < self.min_seconds:
            return
        changed = False
        for name, mb in (("other", self._other), (phase, peak)):
            if mb is not None and mb > self.data.get(name, 0.0):
                self.data[name] = round(mb, 1)
                changed = True
        if changed:
            atomic_write_json(self.path, self.data)
