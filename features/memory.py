"""Hand the memory a step freed back to the system, so the next step's peak does not count it.

After a large step (opening a 10M-row log) the process keeps much of the memory it freed:
Arrow's allocator (mimalloc) keeps freed pages for reuse, and glibc keeps freed blocks below its
mmap threshold (which rises as large blocks are freed) in the heap. Opening the 10.6M-row CSV
left 0.70 GB resident; 0.37 GB after this (benchmarks/ORDERS_RESULTS.md run 24).
"""
from __future__ import annotations

import ctypes


def release_free_memory() -> None:
    """Return freed memory to the system: Arrow's pool, then glibc's heap (``malloc_trim``; a no-op
    where the C library has none, e.g. macOS)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass
