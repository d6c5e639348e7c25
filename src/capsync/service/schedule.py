"""An absolute tick schedule: tick k is at ``start + k * period``, so there is no drift.

A caller that is late by a whole period or more skips the ticks it missed (and
counts them) instead of calling several times in a row to catch up.

Waiting sleeps, then spins the last stretch: an OS sleep may wake late (timer
slack, a busy machine), a spin does not, but a spinning thread takes a core
from everything else in the process (the collector's writer) and on a loaded
machine gets pre-empted for it. So the spin is only as long as it must be: the
sleep ends ``margin`` before the tick, and the margin follows how late this
thread's sleeps have actually woken (it jumps up to a late wake-up and decays
slowly), between ``MIN_SPIN_MARGIN_NS`` and ``spin_margin_ns``, and never more
than half a period. Short sleeps are absolute ``clock_nanosleep`` calls in
``capsync.wire._clock`` (GIL released); long ones wait on the stop event so
``close`` is prompt.
"""

from __future__ import annotations

import threading
import time

from capsync import wire

DEFAULT_SPIN_MARGIN_NS = 200_000  # the most the spin margin grows to
MIN_SPIN_MARGIN_NS = 5_000
INITIAL_SPIN_MARGIN_NS = 50_000
# Sleeps shorter than this are one clock_nanosleep; longer ones wait on the stop event.
SHORT_SLEEP_NS = 2_000_000
MARGIN_DECAY = 64  # a margin larger than needed shrinks by 1/64 of the excess per tick


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
        self.margin_ns = min(INITIAL_SPIN_MARGIN_NS, spin_margin_ns)  # the current margin
        self.next_ns = time.perf_counter_ns() if start_ns is None else start_ns
        self.skipped = 0  # ticks missed because a call or the machine ran late
        self.lateness_ns = 0  # how late the last tick was met
        self.wake_late_ns = 0  # how late the last sleep woke (what the margin follows)

    def restart(self) -> None:
        """Start the schedule now: the first tick is due at once, none counted as missed.

        A collector's capture thread calls this as it begins, so the time between
        building the collector and its thread first running is not counted as skipped ticks.
        """
        self.next_ns = time.perf_counter_ns()

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
        margin = min(self.margin_ns, period // 2)
        wake_at = target - margin
        if now < wake_at:
            if wake_at - now > SHORT_SLEEP_NS:
                if stop.wait((wake_at - now) / 1e9):
                    return False
                now = time.perf_counter_ns()
            else:
                now = wire.clock().sleep_until_ns(wake_at)
            self._follow(now - wake_at)
        if now < target:
            now = wire.clock().spin_until_ns(target)
        self.lateness_ns = now - target
        self.next_ns = target + period
        return not stop.is_set()

    def _follow(self, wake_late_ns: int) -> None:
        """Move the margin towards how late sleeps wake: up at once, down slowly."""
        self.wake_late_ns = wake_late_ns
        margin = self.margin_ns
        if wake_late_ns > margin:
            margin = wake_late_ns
        else:
            margin -= (margin - wake_late_ns) // MARGIN_DECAY
        self.margin_ns = max(MIN_SPIN_MARGIN_NS, min(self.spin_margin_ns, margin))
