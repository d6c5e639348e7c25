"""An absolute tick schedule: tick k is at ``start + k * period``, so there is no drift.

A caller that is late by a whole period or more skips the ticks it missed (and
counts them) instead of calling several times in a row to catch up. Waiting
sleeps until ``spin_margin_ns`` before the tick (an OS sleep can overshoot by
a millisecond on a busy machine), then spins to the tick in
``capsync._clock.spin_until_ns``, which holds no GIL while it spins.
"""

from __future__ import annotations

import threading
import time

from capsync import _impl

DEFAULT_SPIN_MARGIN_NS = 200_000


class Ticker:
    def __init__(
        self,
        period_ns: int,
        *,
        start_ns: int | None = None,
        spin_margin_ns: int = DEFAULT_SPIN_MARGIN_NS,
    ) -> None:
        if period_ns <= 0:
            raise ValueError(f"period_ns must be > 0, got {period_ns}")
        self.period_ns = period_ns
        self.spin_margin_ns = spin_margin_ns
        self.next_ns = time.perf_counter_ns() if start_ns is None else start_ns
        self.skipped = 0  # ticks missed because a call or the machine ran late
        self.lateness_ns = 0  # how late the last tick was met

    def retime(self, period_ns: int) -> None:
        """Change the period; the next tick is one new period from now."""
        if period_ns <= 0:
            raise ValueError(f"period_ns must be > 0, got {period_ns}")
        self.period_ns = period_ns
        self.next_ns = time.perf_counter_ns() + period_ns

    def wait(self, stop: threading.Event) -> bool:
        """Wait for the next tick; False if ``stop`` was set first."""
        target = self.next_ns
        period = self.period_ns
        now = time.perf_counter_ns()
        late = now - target
        if late >= period:
            missed = late // period
            self.skipped += missed
            target += missed * period
        remaining = target - now
        if remaining > self.spin_margin_ns and stop.wait((remaining - self.spin_margin_ns) / 1e9):
            return False
        if now < target:
            now = _impl.clock().spin_until_ns(target)
        self.lateness_ns = now - target
        self.next_ns = target + period
        return not stop.is_set()
