"""Freed memory back to the system, with glibc's malloc (elsewhere there is nothing to do).

glibc keeps what the process frees for its next allocations instead of returning it, in an
arena per thread that allocates (up to 8 per core). After the benchmark's queries and ingest
that was 80-90 MB of the ~210 MB RSS: the readers' SQLite page caches, dropped whenever the
writer commits, sat free in the readers' four arenas, and batch ingest left most of the main
arena free (tests/benchmarks/FINDINGS.md, "RSS after ingest, in the whole run"). Fewer arenas
(M_ARENA_MAX=2) kept less of it, but cost batch ingest 15-25 % more CPU: the threads then wait
for the locks of the arenas they share.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import os
from collections.abc import Callable

# A trim takes 0.2 ms of CPU idle, 1-3 ms under steady ingest, up to ~25 ms just after a burst
# of batches (2-core VM): 0.2-0.5 % of a core.
TRIM_INTERVAL_SECONDS = 1.0


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None under another C library or platform."""
    try:
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return None
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (ValueError, OSError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


async def trim_forever(interval: float = TRIM_INTERVAL_SECONDS) -> None:
    """Return the free pages of every arena to the system every `interval` seconds, on a
    worker thread. The event loop waits for a trim only if it allocates while the trim holds
    the main arena's lock."""
    trim = _malloc_trim()
    if trim is None:
        return
    while True:
        await asyncio.sleep(interval)
        await asyncio.to_thread(trim, 0)
