"""The capture thread's scheduling: adaptive spin margin, timer slack, opt-in SCHED_FIFO."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
import time

import pytest

from capsync import wire
from capsync.resources import Resource, ResourceContext, capture_method
from capsync.service import realtime
from capsync.service.collector import Collector, CollectorKey, CollectorSettings
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


class FakeScheduler:
    """Per-thread policies kept in a dict instead of the kernel's (os.sched_* replaced)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, tids: list[int]) -> None:
        self.policy = {tid: (os.SCHED_OTHER, 0) for tid in tids}
        monkeypatch.setattr(realtime, "_thread_ids", lambda: list(self.policy))
        monkeypatch.setattr(os, "sched_getscheduler", lambda tid: self.policy[tid][0])
        monkeypatch.setattr(os, "sched_getparam", lambda tid: os.sched_param(self.policy[tid][1]))

        def set_policy(tid: int, policy: int, param: os.sched_param) -> None:
            self.policy[tid] = (policy, param.sched_priority)

        monkeypatch.setattr(os, "sched_setscheduler", set_policy)


@pytest.fixture
def switch_interval():
    saved = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    yield
    sys.setswitchinterval(saved)


def test_the_process_shares_real_time_below_the_collectors(monkeypatch, switch_interval) -> None:
    fake = FakeScheduler(monkeypatch, [1, 2, 3, 4])
    fake.policy[2] = (os.SCHED_BATCH, 0)
    fake.policy[3] = (os.SCHED_FIFO, 50)  # a capture thread, already real-time
    fake.policy[4] = (os.SCHED_IDLE, 0)  # asked to run only when nothing else does
    share = realtime.ProcessShare()
    share.enter(50)
    assert fake.policy == {
        1: (os.SCHED_FIFO, 48),
        2: (os.SCHED_FIFO, 48),
        3: (os.SCHED_FIFO, 50),
        4: (os.SCHED_IDLE, 0),
    }
    fake.policy[5] = (os.SCHED_FIFO, 48)  # started since, inheriting its creator's policy
    assert sys.getswitchinterval() == pytest.approx(realtime.REALTIME_SWITCH_INTERVAL_S)
    share.enter(50)  # a second real-time collector
    share.leave()
    assert fake.policy[1] == (os.SCHED_FIFO, 48)  # one collector still runs
    share.leave()
    assert fake.policy == {
        1: (os.SCHED_OTHER, 0),
        2: (os.SCHED_BATCH, 0),
        3: (os.SCHED_FIFO, 50),
        4: (os.SCHED_IDLE, 0),
        5: (os.SCHED_OTHER, 0),
    }
    assert sys.getswitchinterval() == pytest.approx(0.005)


def test_a_low_priority_still_puts_the_others_under_sched_fifo(
    monkeypatch, switch_interval
) -> None:
    fake = FakeScheduler(monkeypatch, [1])
    share = realtime.ProcessShare()
    share.enter(1)
    assert fake.policy[1] == (os.SCHED_FIFO, 1)
    share.leave()
    assert fake.policy[1] == (os.SCHED_OTHER, 0)


def _run_collector(monkeypatch, whole_process: bool, permitted: bool) -> list[str]:
    """Run a real-time collector briefly with the kernel calls faked; what the share saw."""
    from capsync.service import collector as collector_module

    calls: list[str] = []

    class Share:
        def enter(self, priority: int) -> None:
            calls.append(f"enter {priority}")

        def leave(self) -> None:
            calls.append("leave")

    class Sensor(Resource):
        api = "rdk:component:sensor"
        model = "test:sensors:rt"

        def __init__(self) -> None:
            super().__init__("rt", {}, ResourceContext())

        @capture_method("Readings")
        def readings(self, params: object) -> dict[str, float]:
            return {"a": 1.0}

    refusal = None if permitted else "not permitted"
    monkeypatch.setattr(collector_module, "PROCESS_SHARE", Share())
    monkeypatch.setattr(realtime, "make_realtime", lambda priority: refusal)
    monkeypatch.setattr(realtime, "_warned", threading.Event())
    monkeypatch.setattr(collector_module, "tune_writer_thread", lambda priority: True)
    with tempfile.TemporaryDirectory() as capture_dir:
        settings = CollectorSettings(
            frequency_hz=1000, realtime_priority=30, realtime_whole_process=whole_process
        )
        collector = Collector(
            CollectorKey("rdk:component:sensor", "rt", "Readings"), Sensor(), settings, capture_dir
        )
        collector.start()
        time.sleep(0.05)
        collector.close()
    return calls


def test_a_real_time_collector_shares_its_priority_while_it_captures(monkeypatch) -> None:
    assert _run_collector(monkeypatch, whole_process=True, permitted=True) == ["enter 30", "leave"]


def test_the_process_is_left_alone_when_asked_or_refused(monkeypatch, caplog) -> None:
    assert _run_collector(monkeypatch, whole_process=False, permitted=True) == []
    with caplog.at_level(logging.WARNING, logger="capsync.collector"):
        assert _run_collector(monkeypatch, whole_process=True, permitted=False) == []
    assert [r.getMessage() for r in caplog.records] == ["rt/Readings: not permitted"]


def test_the_process_share_changes_real_threads_when_permitted(switch_interval) -> None:
    """The real kernel calls: a normal thread goes under SCHED_FIFO and comes back."""
    ready, done = threading.Event(), threading.Event()
    thread = threading.Thread(target=lambda: (ready.set(), done.wait(5)))
    thread.start()
    ready.wait(5)
    tid = thread.native_id
    assert tid is not None
    share = realtime.ProcessShare()
    try:
        share.enter(3)
        policy = os.sched_getscheduler(tid)
    finally:
        share.leave()
        after = os.sched_getscheduler(tid), os.sched_getparam(tid).sched_priority
        done.set()
        thread.join()
    if policy != os.SCHED_FIFO:
        pytest.skip("SCHED_FIFO is not permitted here (the fakes above cover the logic)")
    assert after == (os.SCHED_OTHER, 0)  # back to normal


def test_restart_starts_the_schedule_now() -> None:
    """Ticks due before restart() (the collector built, its thread not yet running) are not
    counted as skipped."""
    ticker = Ticker(1_000_000_000, start_ns=time.perf_counter_ns() - 5_000_000_000)
    ticker.restart()
    assert ticker.wait(threading.Event())
    assert ticker.skipped == 0


def test_the_capture_thread_restarts_its_schedule(monkeypatch) -> None:
    restarts: list[int] = []
    real_restart = Ticker.restart

    def restart(self: Ticker) -> None:
        restarts.append(self.skipped)
        real_restart(self)

    monkeypatch.setattr(Ticker, "restart", restart)
    assert _run_collector(monkeypatch, whole_process=False, permitted=True) == []
    assert restarts == [0]


@pytest.mark.parametrize("whole_process", [True, False])
def test_the_manager_passes_the_whole_process_choice_to_its_collectors(
    monkeypatch, tmp_path, whole_process: bool
) -> None:
    import capsync
    from capsync.resources import register, unregister
    from capsync.service import collector as collector_module

    class Sensor(Resource):
        api = "rdk:component:sensor"
        model = "test:models:rt-manager"

        @capture_method("Readings")
        def readings(self, params: object) -> dict[str, float]:
            return {"a": 1.0}

    entered: list[int] = []
    share = realtime.ProcessShare()
    monkeypatch.setattr(share, "enter", entered.append)
    monkeypatch.setattr(share, "leave", lambda: None)
    monkeypatch.setattr(collector_module, "PROCESS_SHARE", share)
    monkeypatch.setattr(realtime, "make_realtime", lambda priority: None)
    monkeypatch.setattr(collector_module, "tune_writer_thread", lambda priority: True)
    register("rdk:component:sensor", Sensor.model, replace=True)(Sensor)
    config = {
        "components": [
            {
                "name": "s",
                "type": "sensor",
                "model": Sensor.model,
                "service_configs": [
                    {
                        "type": "data_manager",
                        "attributes": {
                            "capture_methods": [
                                {"method": "Readings", "capture_frequency_hz": 100.0}
                            ]
                        },
                    }
                ],
            }
        ],
        "services": [
            {"name": "dm", "type": "data_manager", "attributes": {"capture_dir": str(tmp_path)}}
        ],
    }
    try:
        with capsync.DataManager.from_config(
            config, realtime_priority=20, realtime_whole_process=whole_process
        ):
            pass  # closing joins the capture thread, which enters (or not) as it begins
    finally:
        unregister("rdk:component:sensor", Sensor.model)
    assert entered == ([20] if whole_process else [])


@pytest.mark.parametrize(
    ("flags", "whole_process"), [([], False), (["--realtime-whole-process"], True)]
)
def test_capsync_run_passes_the_whole_process_choice(
    monkeypatch, tmp_path, flags, whole_process
) -> None:
    from capsync import cli
    from capsync.cli import run_cmd

    seen: dict[str, object] = {}

    class Stop(Exception):
        pass

    def manager(config: object, **options: object) -> object:
        seen.update(options)
        raise Stop

    monkeypatch.setattr(run_cmd, "DataManager", manager)
    monkeypatch.setattr(run_cmd.signal, "signal", lambda signum, handler: None)
    config = tmp_path / "robot.json"
    config.write_text('{"components": [], "services": []}')
    with pytest.raises(Stop):
        cli.main(["run", str(config), "--realtime-priority", "20", *flags])
    assert seen["realtime_priority"] == 20
    assert seen["realtime_whole_process"] is whole_process
