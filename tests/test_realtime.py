"""The capture thread's scheduling: adaptive spin margin, timer slack, opt-in SCHED_FIFO."""

from __future__ import annotations

import logging
import os
import threading
import time

import pytest

from capsync import wire
from capsync.service import realtime
from capsync.service.schedule import DEFAULT_SPIN_MARGIN_NS, MIN_SPIN_MARGIN_NS, Ticker


def test_the_spin_margin_follows_how_late_sleeps_wake() -> None:
    ticker = Ticker(1_000_000)
    ticker._follow(300_000)  # a wake-up 300 µs late: the margin jumps, capped
    assert ticker.margin_ns == DEFAULT_SPIN_MARGIN_NS
    for _ in range(2000):  # then punctual wake-ups: it decays, not below the floor
        ticker._follow(1_000)
    assert ticker.margin_ns == MIN_SPIN_MARGIN_NS
    ticker._follow(40_000)
    assert ticker.margin_ns == 40_000


def test_a_short_period_sleeps_most_of_it() -> None:
    """At 5 kHz the ticker spins at most half a period; the rest is a sleep."""
    period = 200_000
    ticker = Ticker(period)
    stop = threading.Event()
    spins = []
    real_spin = wire.clock().spin_until_ns

    def spin(deadline_ns: int) -> int:
        spins.append(deadline_ns - time.perf_counter_ns())
        return int(real_spin(deadline_ns))

    clock = wire.clock()
    original = clock.spin_until_ns
    clock.spin_until_ns = spin
    try:
        for _ in range(200):
            assert ticker.wait(stop)
    finally:
        clock.spin_until_ns = original
    assert ticker.margin_ns <= DEFAULT_SPIN_MARGIN_NS
    assert spins and max(spins) <= period // 2


def test_sleep_until_returns_at_or_after_the_deadline() -> None:
    clock = wire.clock()
    for delay_ns in (0, 20_000, 300_000):
        deadline = time.perf_counter_ns() + delay_ns
        assert deadline <= clock.sleep_until_ns(deadline) <= time.perf_counter_ns()


def test_realtime_refused_is_one_line(monkeypatch, caplog) -> None:
    def refuse(pid: int, policy: int, param: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    monkeypatch.setattr(realtime, "_warned", threading.Event())
    with caplog.at_level(logging.WARNING, logger="capsync.collector"):
        assert realtime.tune_capture_thread("imu/Readings", 10) is False
        assert realtime.tune_capture_thread("gps/Readings", 10) is False  # said once
    (record,) = caplog.records
    assert record.getMessage() == (
        "imu/Readings: real-time priority 10 not permitted (needs CAP_SYS_NICE or "
        "LimitRTPRIO=); capturing at normal priority"
    )


def test_realtime_when_permitted_runs_the_thread_under_sched_fifo() -> None:
    seen: dict[str, object] = {}

    def capture_thread() -> None:
        seen["realtime"] = realtime.tune_capture_thread("t/Readings", 1)
        seen["policy"] = os.sched_getscheduler(0)

    thread = threading.Thread(target=capture_thread)
    thread.start()
    thread.join()
    if not seen["realtime"]:
        pytest.skip("SCHED_FIFO is not permitted here (covered by the refusal test)")
    assert seen["policy"] == os.SCHED_FIFO
    assert os.sched_getscheduler(0) != os.SCHED_FIFO  # only that thread


def test_priority_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"real-time priority must be 1\.\.99"):
        realtime.make_realtime(100)
