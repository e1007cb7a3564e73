"""glibc's malloc for a server of large, short requests: memory kept while they come, given back when idle.

A large request (an 85 MB body) touches about 300 MB: the body, the parser's copy and tape,
the arrays, the fit. Where that memory comes from decides two costs:

- **Page faults.** Memory the process maps afresh is zeroed and faulted in a page at a time
  (about 45,000 faults, 180 to 280 ms of system time, for a large request). glibc maps every
  block over its mmap threshold (at most 32 MiB) on its own and unmaps it on ``free``, so
  every large request paid them again. ``tune_malloc`` turns those mappings off: every block
  comes from the one heap, and a freed block stays in it for the next request, faulted in.
- **Memory held.** A heap that keeps its free memory holds a large request's peak after it.
  ``IdleTrim`` gives it back (``malloc_trim``, which also releases free pages inside the
  heap) once the worker has had nothing under way for ``KEEP_FOR`` seconds: a burst of large
  requests reuses the memory, an idle worker does not hold it. jemalloc's decay of dirty
  pages (10 s by default) does the same.

One arena (glibc's default is one per thread): memory freed by one worker thread is reused
by the next instead of each thread keeping the blocks of its last request. Elsewhere than
glibc all of this does nothing.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable

#: Seconds with nothing under way after which a worker gives its free memory back.
KEEP_FOR = 5.0
M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8
#: The largest trim threshold ``mallopt`` takes (an ``int``): ``free`` never trims by itself.
NEVER = 2**31 - 1


@functools.cache
def glibc() -> ctypes.CDLL | None:
    """The C library, if it is glibc (it has ``mallopt`` and ``malloc_trim``); else ``None``."""
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def tune_malloc(arenas: int = 1) -> None:
    """One arena, every block from the heap, and a heap that keeps its free memory (``IdleTrim`` gives it back).

    Called before numpy and BLAS start threads of their own.
    """
    libc = glibc()
    if libc is None:
        return
    libc.mallopt(ctypes.c_int(M_ARENA_MAX), ctypes.c_int(arenas))
    libc.mallopt(ctypes.c_int(M_MMAP_MAX), ctypes.c_int(0))
    libc.mallopt(ctypes.c_int(M_TRIM_THRESHOLD), ctypes.c_int(NEVER))


def trim_heap() -> None:
    """Give the heap's free memory back to the system (``malloc_trim(0)``)."""
    libc = glibc()
    if libc is not None:
        libc.malloc_trim(ctypes.c_size_t(0))


class IdleTrim:
    """Trim the heap once, when nothing has been under way for ``after`` seconds since something was.

    The server's loop calls ``tick`` each time it wakes (at least once a second), saying
    whether a request is under way (read, being answered, or its answer being sent).
    """

    def __init__(self, after: float = KEEP_FOR, trim: Callable[[], None] = trim_heap) -> None:
        self.after = after
        self.trim = trim
        self.last_busy: float | None = None  # None: nothing to give back since the last trim

    def tick(self, busy: bool, now: float) -> None:
        """Note the loop's state at ``now`` (monotonic seconds); trim when it has been idle long enough."""
        if busy:
            self.last_busy = now
        elif self.last_busy is not None and now - self.last_busy >= self.after:
            self.last_busy = None
            self.trim()
