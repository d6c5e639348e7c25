# cython: language_level=3
"""Compiled waiting: sleep and spin to a monotonic deadline with the GIL released.

A Python-level spin must hold the GIL between checks, so the thread that
shares the process (the collector's writer) only gets it at the interpreter's
switch interval, 5 ms. Here the loops run in C without the GIL: other threads
run freely and the deadline is met within the clock's resolution. The twin is
``capsync.wire._clock_py``.
"""

from libc.errno cimport EINTR
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

# The API, the same names as the twin's ``__all__`` (tests/test_wire_parity.py checks it).
__all__ = ["sleep_until_ns", "spin_until_ns"]


cdef extern from "<time.h>" nogil:
    enum: TIMER_ABSTIME
    int clock_nanosleep(int clock_id, int flags, const timespec* request, timespec* remain)


cdef inline long long _now_ns() noexcept nogil:
    cdef timespec now_ts
    clock_gettime(CLOCK_MONOTONIC, &now_ts)
    return now_ts.tv_sec * 1000000000LL + now_ts.tv_nsec


def spin_until_ns(long long deadline_ns):
    """Busy-wait until ``time.perf_counter_ns() >= deadline_ns``; return that time in ns."""
    cdef long long now_ns
    with nogil:
        while True:
            now_ns = _now_ns()
            if now_ns >= deadline_ns:
                break
    return now_ns


def sleep_until_ns(long long deadline_ns):
    """Sleep (absolute ``CLOCK_MONOTONIC``) until ``deadline_ns``; return the time woken in ns.

    The OS may wake the thread late (timer slack, scheduling), never early.
    """
    cdef timespec request
    cdef int error
    if deadline_ns > 0:
        request.tv_sec = deadline_ns // 1000000000LL
        request.tv_nsec = deadline_ns % 1000000000LL
        with nogil:
            while True:
                error = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &request, NULL)
                if error != EINTR:
                    break
    return _now_ns()
