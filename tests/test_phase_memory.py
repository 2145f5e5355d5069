"""Peak resident memory per phase: each phase gets its own high-water mark, kept across calls and resumes.

Each check runs in a fresh interpreter: inside the test suite's own process, after a
thousand earlier tests, a 300 MiB block once left the resident set where it was (2026-12-05, CI on a clean
clone: the phase that touched it and the one that did not peaked alike), while the same checks passed alone.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ioa.phase_memory import PhaseMemory, high_water_mb, reset_high_water

pytestmark = pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")

MB = 1024 * 1024


def touch(n_mb: int) -> bytearray:
    block = bytearray(n_mb * MB)
    block[::4096] = b"\x01" * len(block[::4096])  # resident, page by page
    return block


def phase(memory: PhaseMemory, name: str, n_mb: int, seconds: float = 5.0) -> None:
    memory.start()
    block = touch(n_mb)
    del block
    memory.end(name, seconds)


def in_fresh_process(check, *args) -> None:
    """`check(*args)` in a new interpreter (a plain subprocess: multiprocessing's spawn leaves a resource
    tracker running, which the sandbox tests then find as a process left behind)."""
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_phase_memory as t; "
            f"t.{check.__name__}(*[t.Path(a) for a in sys.argv[1:]])")
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{check.__name__} failed in its process:\n{done.stderr[-2000:]}"


def test_each_phase_gets_its_own_peak_not_the_one_before(tmp_path):
    in_fresh_process(each_phase_gets_its_own_peak, tmp_path)


def test_the_largest_call_of_a_phase_is_kept_across_resumes(tmp_path):
    in_fresh_process(largest_call_is_kept, tmp_path)


def test_reset_starts_from_the_current_resident_set():
    in_fresh_process(reset_starts_from_the_current_resident_set)


def test_a_call_that_only_read_its_result_back_records_nothing(tmp_path):
    in_fresh_process(read_back_records_nothing, tmp_path)


def each_phase_gets_its_own_peak(tmp_path: Path) -> None:
    path = tmp_path / "memory.json"
    memory = PhaseMemory(path)
    base = high_water_mb()
    phase(memory, "train", 400)
    phase(memory, "evaluate", 40)
    data = json.loads(path.read_text())
    assert data["train"] >= base + 350  # the 400 MiB block was resident during training
    assert data["evaluate"] < data["train"] - 300  # the training peak was reset, not carried over
    assert data["other"] < data["train"] - 300  # nor carried into what runs between phases


def largest_call_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "memory.json"
    phase(PhaseMemory(path), "train", 300)
    first = json.loads(path.read_text())["train"]
    phase(PhaseMemory(path), "train", 20)  # a resumed run: a smaller round does not lower the phase's peak
    assert json.loads(path.read_text())["train"] == first


def reset_starts_from_the_current_resident_set() -> None:
    block = touch(300)
    before = high_water_mb()
    del block
    assert reset_high_water()
    assert high_water_mb() < before - 250


def read_back_records_nothing(tmp_path: Path) -> None:
    path = tmp_path / "memory.json"
    phase(PhaseMemory(path), "train", 20)
    before = path.read_text()
    phase(PhaseMemory(path), "train", 300, seconds=0.01)  # a resume: the phase's files were already there
    phase(PhaseMemory(path), "probe", 300, seconds=0.01)
    assert path.read_text() == before
