# cython: language_level=3
"""Compiled waiting: spin until a monotonic deadline with the GIL released.

A Python-level spin must hold the GIL between checks, so the thread that
shares the process (the collector's writer) only gets it at the interpreter's
switch interval, 5 ms. Here the loop runs in C without the GIL: other threads
run freely and the deadline is met within the clock's resolution. The twin is
``capsync._clock_py``.
"""

from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

# The API, the same names as the twin's ``__all__`` (tests/test_wire_parity.py checks it).
__all__ = ["spin_until_ns"]


def spin_until_ns(long long deadline_ns):
    """Busy-wait until ``time.perf_counter_ns() >= deadline_ns``; return that time in ns."""
    cdef timespec now_ts
    cdef long long now_ns
    with nogil:
        while True:
            clock_gettime(CLOCK_MONOTONIC, &now_ts)
            now_ns = now_ts.tv_sec * 1000000000LL + now_ts.tv_nsec
            if now_ns >= deadline_ns:
                break
    return now_ns
