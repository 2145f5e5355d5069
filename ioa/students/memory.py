"""Handing freed heap memory back to the operating system between a student's phases.

glibc's malloc keeps the pages of freed small and medium blocks in its heap. A student's generation
(KV caches of 64 rows) and training (activations of every layer) free gigabytes of such blocks at the
end of each call, and the process keeps them. In a default-preset student's life (RSS sampled through
load, generate 66 prompts, train, generate, train, generate; 2026-12-05) resident memory sat at 2.96 GB
after a training round whose live set was 1.08 GB, and the next generation peaked 3.72 GB on top of it.
`malloc_trim(0)` after each generation and training call returns those pages (2.76 -> 1.08 GB in the
same life; the next generation peaked 2.41 GB) in milliseconds, so the run's peak is one phase's peak
rather than the sum of what every earlier phase left behind.

A fixed mmap threshold (every large block its own mapping) also caps the peak but made training 1.8-2.1x
slower (bench/peak_memory.py's docstring); trimming between phases costs nothing on the hot path.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """glibc, when the process runs on it (musl, macOS and Windows have no malloc_trim)."""
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim  # noqa: B018  (attribute lookup: raises AttributeError where it is missing)
    except (OSError, AttributeError):
        return None
    return libc


def release_freed_memory() -> bool:
    """Collect garbage and hand the heap's free pages back to the OS; False where there is no glibc."""
    gc.collect()
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
