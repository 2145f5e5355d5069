"""Freed heap memory goes back to the OS between a student's phases (glibc only)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ioa.students.memory import _libc, release_freed_memory


def resident_mb() -> float:
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024


@pytest.mark.skipif(_libc() is None or not Path("/proc/self/status").exists(), reason="needs glibc and /proc")
def test_freed_small_tensors_are_handed_back():
    release_freed_memory()
    # 64 KiB blocks sit below glibc's mmap threshold, so they live in the heap like a KV cache's pieces;
    # the last one stays alive above the others, so the freed pages are not at the heap's top and plain
    # free() cannot shrink the heap past them
    blocks = [torch.ones(16 * 1024) for _ in range(4000)]  # 4000 x 64 KiB = 250 MiB
    keep = torch.ones(16 * 1024)
    del blocks
    before = resident_mb()
    assert release_freed_memory()
    after = resident_mb()
    assert before - after > 150, (before, after)
    assert float(keep.sum()) == 16 * 1024
