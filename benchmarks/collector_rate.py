"""How fast one collector keeps its schedule: achieved rate, ticks captured, tick lateness.

Runs a single collector (capture thread + writer thread + compiled stream) on a
cheap Python sensor at each frequency for a few seconds, with nothing else in
the service running, and prints a Markdown table. Lateness is how long after
its scheduled time each call started. Timing numbers depend on the machine:
they are reported, never asserted.

    python benchmarks/collector_rate.py [--seconds 3] [--hz 1000 10000 20000]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Mapping
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


def measure(frequency_hz: float, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="capsync-rate-") as capture_dir:
        key = CollectorKey("rdk:component:sensor", "cheap", "Readings")
        settings = CollectorSettings(frequency_hz=frequency_hz, queue_size=10_000)
        collector = Collector(key, CheapSensor(), settings, capture_dir)
        ticker = RecordingTicker(int(1e9 / frequency_hz), int(frequency_hz * seconds * 2) + 100)
        collector._ticker = ticker  # instrumentation
        started = time.perf_counter()
        collector.start()
        time.sleep(seconds)
        collector._stop_capture.set()  # stop the schedule before draining
        elapsed = time.perf_counter() - started
        collector.close()
        stats = collector.stats()
    lateness_us = ticker.lateness[: ticker.count] / 1e3
    scheduled = stats.captures + stats.skipped_ticks
    return {
        "hz": frequency_hz,
        "achieved_hz": stats.captures / elapsed,
        "captured": stats.captures / scheduled if scheduled else 0.0,
        "written": stats.records_written,
        "dropped": stats.dropped,
        "p50_us": float(np.percentile(lateness_us, 50)),
        "p99_us": float(np.percentile(lateness_us, 99)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--hz", type=float, nargs="+", default=[1000.0, 10000.0, 20000.0])
    args = parser.parse_args()
    impl = "compiled" if native_available() else "pure Python"
    print(f"\n### One collector, cheap sensor, {args.seconds:g} s per rate ({impl} wire)\n")
    print(
        "| target Hz | achieved Hz | ticks captured | written | dropped "
        "| lateness p50 | lateness p99 |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for hz in args.hz:
        r = measure(hz, args.seconds)
        print(
            f"| {r['hz']:,.0f} | {r['achieved_hz']:,.0f} | {r['captured']:.2%} "
            f"| {r['written']:,} | {r['dropped']:,} | {r['p50_us']:.1f} µs "
            f"| {r['p99_us']:.1f} µs |"
        )


if __name__ == "__main__":
    main()
