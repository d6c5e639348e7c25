"""Pure-Python twin of ``capsync.wire._clock``: sleep and spin to a deadline, yielding the GIL."""

from __future__ import annotations

import time

__all__ = [
    "sleep_until_ns",
    "spin_until_ns",
]  # the same as the compiled module's (tests/test_wire_parity.py)


def spin_until_ns(deadline_ns: int) -> int:
    """Busy-wait until ``time.perf_counter_ns() >= deadline_ns``; return that time in ns."""
    while True:
        now_ns = time.perf_counter_ns()
        if now_ns >= deadline_ns:
            return now_ns
        time.sleep(0)  # releases the GIL (at the cost of the kernel's timer slack)


def sleep_until_ns(deadline_ns: int) -> int:
    """Sleep until ``time.perf_counter_ns() >= deadline_ns``; return the time woken in ns.

    The OS may wake the thread late (timer slack, scheduling), never early.
    """
    now_ns = time.perf_counter_ns()
    while now_ns < deadline_ns:
        time.sleep((deadline_ns - now_ns) / 1e9)
        now_ns = time.perf_counter_ns()
    return now_ns
