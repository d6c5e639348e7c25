"""How fast one collector keeps its schedule: achieved rate, ticks captured, tick lateness.

Runs a single collector (capture thread + writer thread + compiled stream) on a
cheap Python sensor at each frequency for a few seconds, with nothing else in
the service running, and prints a Markdown table: once on the machine as it
is, once with a busy-loop process keeping one more core busy (``--busy``
adds only that run, ``--no-busy`` leaves it out). Lateness is how long after
its scheduled time each call started; the table gives its distribution, and
CPU is the process's CPU time per second (100% = one core).
``--realtime-priority N`` runs the capture thread under ``SCHED_FIFO`` (when
permitted), and the process's other threads below it (``--collector-threads-only``:
only the capture and writer threads, as before). ``--ab K`` alternates those
two K times at each rate and prints each run and the medians (for a loaded
machine, where only a comparison within one run means anything).
``--reference K`` alternates the collector with the platform's ceiling K times:
``cyclic_reference.c`` (compiled here with the C compiler Python was built
with), a C loop that only keeps the same schedule the same way (absolute sleep
to half a period before each tick, spin the rest, skip what it missed) at the
same priority, with no Python and no work per tick. What it loses, any program
on this machine loses; the rest of the collector's losses are capsync's. GC is the
share of time the process spent in the garbage collector. Timing numbers depend
on the machine: they are reported, never asserted.

    python benchmarks/collector_rate.py [--seconds 3] [--hz 1000 10000 20000] [--quick]
    python benchmarks/collector_rate.py --quick --realtime-priority 50 --busy --ab 8
    python benchmarks/collector_rate.py --quick --realtime-priority 50 --busy --reference 8
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import shlex
import statistics
import subprocess
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from capsync import native_available
from capsync.resources import Resource, ResourceContext, capture_method
from capsync.service.collector import Collector, CollectorKey, CollectorSettings
from capsync.service.schedule import Ticker


class CheapSensor(Resource):
    api = "rdk:component:sensor"
    model = "bench:sensors:cheap"

    def __init__(self) -> None:
        super().__init__("cheap", {}, ResourceContext())
        self.n = 0

    @capture_method("Readings")
    def readings(self, params: Mapping[str, Any]) -> dict[str, Any]:
        self.n += 1
        return {"a": 1.0, "b": 2.0, "c": 3.0, "n": self.n}


class RecordingTicker(Ticker):
    """A Ticker that keeps every tick's lateness (instrumentation for this benchmark)."""

    def __init__(self, period_ns: int, capacity: int) -> None:
        super().__init__(period_ns)
        self.lateness = np.zeros(capacity, dtype=np.int64)
        self.count = 0

    def wait(self, stop: threading.Event) -> bool:
        ok = super().wait(stop)
        if ok and self.count < len(self.lateness):
            self.lateness[self.count] = self.lateness_ns
            self.count += 1
        return ok


class GcTimer:
    """Time spent in the garbage collector (``gc.callbacks``), all threads."""

    def __init__(self) -> None:
        self.ns = 0
        self._started = 0

    def __call__(self, phase: str, info: Mapping[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter_ns()
        else:
            self.ns += time.perf_counter_ns() - self._started


def _busy_loop() -> None:
    while True:
        pass


def measure(
    frequency_hz: float, seconds: float, realtime_priority: int = 0, whole_process: bool = True
) -> dict[str, float]:
    gc_timer = GcTimer()
    gc.callbacks.append(gc_timer)
    try:
        return _measure(frequency_hz, seconds, realtime_priority, whole_process, gc_timer)
    finally:
        gc.callbacks.remove(gc_timer)


def _measure(
    frequency_hz: float,
    seconds: float,
    realtime_priority: int,
    whole_process: bool,
    gc_timer: GcTimer,
) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="capsync-rate-") as capture_dir:
        key = CollectorKey("rdk:component:sensor", "cheap", "Readings")
        settings = CollectorSettings(
            frequency_hz=frequency_hz,
            queue_size=10_000,
            realtime_priority=realtime_priority,
            realtime_whole_process=whole_process,
        )
        collector = Collector(key, CheapSensor(), settings, capture_dir)
        ticker = RecordingTicker(int(1e9 / frequency_hz), int(frequency_hz * seconds * 2) + 100)
        collector._ticker = ticker  # instrumentation
        started = time.perf_counter()
        cpu_started = time.process_time()
        collector.start()
        time.sleep(seconds)
        collector._stop_capture.set()  # stop the schedule before draining
        elapsed = time.perf_counter() - started
        cpu_s = time.process_time() - cpu_started
        collector.close()
        stats = collector.stats()
    lateness_us = ticker.lateness[: ticker.count] / 1e3
    scheduled = stats.captures + stats.skipped_ticks
    period_us = 1e6 / frequency_hz
    return {
        "hz": frequency_hz,
        "achieved_hz": stats.captures / elapsed,
        "captured": stats.captures / scheduled if scheduled else 0.0,
        "written": stats.records_written,
        "dropped": stats.dropped,
        "realtime": collector.realtime,
        "cpu": cpu_s / elapsed,  # CPU time of the process (all threads) per second
        "gc": gc_timer.ns / 1e9 / elapsed,
        "p50_us": float(np.percentile(lateness_us, 50)),
        "p90_us": float(np.percentile(lateness_us, 90)),
        "p99_us": float(np.percentile(lateness_us, 99)),
        "p999_us": float(np.percentile(lateness_us, 99.9)),
        "max_us": float(lateness_us.max()) if len(lateness_us) else 0.0,
        # Ticks met, but later than half a period (the next one is at risk).
        "over_half_period": float(np.mean(lateness_us > period_us / 2)) if len(lateness_us) else 0,
    }


REFERENCE_SOURCE = Path(__file__).with_name("cyclic_reference.c")


def build_reference(out_dir: str) -> str:
    """Compile ``cyclic_reference.c`` with Python's C compiler; the executable's path."""
    compiler = shlex.split(sysconfig.get_config_var("CC") or "cc")
    exe = os.path.join(out_dir, "cyclic_reference")
    subprocess.run([*compiler, "-O2", "-o", exe, str(REFERENCE_SOURCE)], check=True)
    return exe


def measure_reference(
    exe: str, frequency_hz: float, seconds: float, realtime_priority: int
) -> dict[str, float]:
    """The C loop on the same schedule, the Ticker's widest margin (half a period)."""
    period_ns = int(1e9 / frequency_hz)
    out = subprocess.run(
        [exe, str(period_ns), str(seconds), str(period_ns // 2), str(realtime_priority)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    r = json.loads(out)
    scheduled = r["met"] + r["skipped"]
    return {
        "hz": frequency_hz,
        "achieved_hz": r["met"] / seconds,
        "captured": r["met"] / scheduled if scheduled else 0.0,
        "realtime": r["fifo"],
        **{key.replace("_ns", "_us"): r[key] / 1e3 for key in r if key.endswith("_ns")},
    }


HEADER = (
    "| target Hz | achieved Hz | ticks captured | written | dropped | lateness p50 "
    "| p90 | p99 | p99.9 | max | late > ½ period | CPU | GC |"
)
RULE = "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"


def row(r: dict[str, float], first: str | None = None) -> str:
    process = "written" in r  # the C reference has no readings and no process figures
    return (
        f"| {first or format(r['hz'], ',.0f')} | {r['achieved_hz']:,.0f} | {r['captured']:.2%} "
        + (f"| {r['written']:,} | {r['dropped']:,} " if process else "| – | – ")
        + f"| {r['p50_us']:.1f} µs | {r['p90_us']:.1f} µs | {r['p99_us']:.1f} µs "
        f"| {r['p999_us']:.1f} µs | {r['max_us']:,.0f} µs "
        + (
            f"| {r['over_half_period']:.2%} | {r['cpu']:.0%} | {r['gc']:.3%} |"
            if process
            else "| – | – | – |"
        )
    )


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"_load average {one:.1f} (1 min), {five:.1f} (5 min)_"


def table(title: str, args: argparse.Namespace) -> None:
    print(f"\n### {title}\n")
    print(HEADER)
    print(RULE)
    realtime = False
    for hz in args.hz:
        r = measure(hz, args.seconds, args.realtime_priority, not args.collector_threads_only)
        realtime = realtime or bool(r["realtime"])
        print(row(r), flush=True)
    if args.realtime_priority:
        print(f"\n_capture thread under SCHED_FIFO: {'yes' if realtime else 'no (not permitted)'}_")
    print(f"\n{load_note()}")


def alternate(
    hz: float, rounds: int, contenders: dict[str, Callable[[], dict[str, float]]]
) -> dict[str, list[dict[str, float]]]:
    """Run each contender ``rounds`` times at ``hz``, their order flipped every round (so
    neither always runs first), printing a row per run; the runs by contender."""
    print(HEADER.replace("target Hz", f"run ({hz:,.0f} Hz)"))
    print(RULE)
    names = list(contenders)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for i in range(rounds):
        for name in names if i % 2 == 0 else names[::-1]:
            r = contenders[name]()
            runs[name].append(r)
            print(row(r, f"{name}{i + 1}"), flush=True)
    print()
    for name in names:
        captured = [r["captured"] for r in runs[name]]
        print(
            f"{name}: ticks captured median {statistics.median(captured):.2%}, mean "
            f"{statistics.mean(captured):.2%}, worst {min(captured):.2%}, ≥ 99% in "
            f"{sum(x >= 0.99 for x in captured)} of {rounds}; max lateness median "
            f"{statistics.median(r['max_us'] for r in runs[name]):,.0f} µs  "
        )
    return runs


def ab_table(title: str, args: argparse.Namespace) -> None:
    """Alternate collector-threads-only (A) and whole-process (B) real-time, ``args.ab`` times."""
    print(f"\n### {title}: A = capture and writer threads only, B = the whole process\n")
    for hz in args.hz:
        runs = alternate(
            hz,
            args.ab,
            {
                "A": partial(measure, hz, args.seconds, args.realtime_priority, False),
                "B": partial(measure, hz, args.seconds, args.realtime_priority, True),
            },
        )
        wins = sum(a["captured"] < b["captured"] for a, b in zip(runs["A"], runs["B"], strict=True))
        print(f"B captured more than A in {wins} of {args.ab} pairs\n")
    print(load_note())


def reference_table(title: str, args: argparse.Namespace) -> None:
    """Alternate the collector (C) and the C reference loop (R), ``args.reference`` times."""
    whole, priority = not args.collector_threads_only, args.realtime_priority
    mode = "whole process" if whole else "collector threads only"
    print(
        f"\n### {title}: C = the collector (real-time priority {args.realtime_priority}, "
        f"{mode}), R = the C reference loop, same schedule and priority\n"
    )
    with tempfile.TemporaryDirectory(prefix="capsync-cyclic-") as build_dir:
        exe = build_reference(build_dir)
        for hz in args.hz:
            runs = alternate(
                hz,
                args.reference,
                {
                    "C": partial(measure, hz, args.seconds, priority, whole),
                    "R": partial(measure_reference, exe, hz, args.seconds, priority),
                },
            )
            pairs = zip(runs["C"], runs["R"], strict=True)
            ratios = [c["captured"] / r["captured"] for c, r in pairs if r["captured"]]
            if ratios:
                print(
                    f"collector / reference, ticks captured: median {statistics.median(ratios):.4f}"
                    f" (the collector kept more in {sum(x > 1 for x in ratios)} of {len(ratios)})\n"
                )
    print(load_note())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--hz", type=float, nargs="+", default=[1000.0, 10000.0, 20000.0])
    parser.add_argument("--quick", action="store_true", help="1 s per rate, 20 kHz only")
    parser.add_argument("--realtime-priority", type=int, default=0, metavar="N")
    parser.add_argument(
        "--collector-threads-only",
        action="store_true",
        help="with --realtime-priority: leave the process's other threads at normal priority",
    )
    parser.add_argument(
        "--ab",
        type=int,
        default=0,
        metavar="K",
        help="with --realtime-priority: alternate --collector-threads-only and not, K times",
    )
    parser.add_argument(
        "--reference",
        type=int,
        default=0,
        metavar="K",
        help="alternate the collector and the C reference loop (cyclic_reference.c), K times",
    )
    load = parser.add_mutually_exclusive_group()
    load.add_argument("--busy", action="store_true", help="only the run with a busy core")
    load.add_argument("--no-busy", action="store_true", help="leave out the busy-core run")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.hz = 1.0, [20000.0]
    if args.ab and not args.realtime_priority:
        parser.error("--ab compares real-time modes: give --realtime-priority too")
    if args.ab and args.reference:
        parser.error("--ab and --reference are two different comparisons: give one")
    show = ab_table if args.ab else reference_table if args.reference else table
    impl = "compiled" if native_available() else "pure Python"
    cores = len(os.sched_getaffinity(0))
    what = f"one collector, cheap sensor, {args.seconds:g} s per rate ({impl} wire, {cores} cores)"
    if not args.busy:
        show(what[0].upper() + what[1:], args)
    if not args.no_busy:
        busy = multiprocessing.get_context("spawn").Process(target=_busy_loop, daemon=True)
        busy.start()
        try:
            show(f"The same with a busy-loop process keeping one core busy: {what}", args)
        finally:
            busy.terminate()
            busy.join()


if __name__ == "__main__":
    main()
