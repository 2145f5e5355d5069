"""Keep the process's resident memory near what it really uses (glibc's malloc tuned at start-up).

With glibc's default, a freed block of more than 128 KiB raises the mmap threshold to its size, so
later tensors of that size (activations, logits, KV caches, LoRA merges) come from the heap, and a
heap fragmented by many short-lived tensors is rarely trimmed back to the system. A default run then
held 3.9 GB resident in the smoke preset for a 0.5 GB model. A fixed threshold of 64 KiB sends every
larger block to its own mmap, which `free` returns at once: 3.0 GB on the same run, no measurable
change in wall time (bench/results/2026-12-03-memory.md). Other C libraries are left as they are.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

M_MMAP_THRESHOLD = -3  # glibc <malloc.h>
MMAP_THRESHOLD_BYTES = 64 * 1024
ENV_OVERRIDE = "MALLOC_MMAP_THRESHOLD_"  # glibc's own variable: a user who sets it keeps their value
ENV_KEEP_DEFAULT = "IOA_MALLOC_DEFAULT"  # =1: leave glibc's dynamic threshold (bench/peak_memory.py's baseline)


def limit_heap_growth(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold at `threshold` bytes; True when it was set (glibc, no user override)."""
    if os.environ.get(ENV_OVERRIDE) or os.environ.get(ENV_KEEP_DEFAULT) == "1":
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl, macOS, Windows: no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, int(threshold)) == 1
