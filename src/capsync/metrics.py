"""Prometheus metrics for ``capsync run`` and ``capsync serve``, read at scrape time.

Nothing on the capture or upload paths is instrumented: each scrape calls the
existing ``stats()`` methods (collectors, syncer, deleter, ingest server) and
turns them into metric families. ``serve_metrics("HOST:PORT", ...)`` starts the
HTTP endpoint (``prometheus_client``) in a daemon thread.

``capsync run`` also writes a small state file (``metrics_state_path``) with
the endpoint's address, so ``capsync status`` finds a running capture without
being told where it listens.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from capsync.capture.layout import COMPLETED_EXT, FAILED_DIR_NAME

PREFIX = "capsync"


@dataclass(frozen=True)
class Backlog:
    """Completed capture files waiting for sync."""

    files: int
    bytes: int
    oldest_age_s: float  # 0 when there is none


def capture_backlog(capture_dir: str | os.PathLike[str], now_s: float | None = None) -> Backlog:
    """Walk ``capture_dir`` for ``.capture`` files (``failed/`` left out)."""
    files = size = 0
    oldest = None
    stack = [os.fspath(capture_dir)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != FAILED_DIR_NAME:
                        stack.append(entry.path)
                elif entry.name.endswith(COMPLETED_EXT):
                    info = entry.stat(follow_symlinks=False)
                    files += 1
                    size += info.st_size
                    oldest = info.st_mtime if oldest is None else min(oldest, info.st_mtime)
            except OSError:
                continue  # removed while we looked (uploaded, deleted)
    now_s = time.time() if now_s is None else now_s
    return Backlog(files, size, max(0.0, now_s - oldest) if oldest is not None else 0.0)


def _counter(name: str, doc: str, labels: Iterable[str] = ()) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=list(labels))


def _gauge(name: str, doc: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=list(labels))


# Collector stats field -> (metric name, kind, help).
COLLECTOR_METRICS = (
    ("captures", "collector_captures", "counter", "method calls that returned a result"),
    ("skipped_ticks", "collector_skipped_ticks", "counter", "ticks missed (ran late)"),
    ("errors", "collector_errors", "counter", "method calls that failed or were not storable"),
    ("write_errors", "collector_write_errors", "counter", "failed attempts to write to disk"),
    ("dropped", "collector_dropped", "counter", "readings lost (queue full, disk unwritable)"),
    ("queue_depth", "collector_queue_depth", "gauge", "readings waiting for the writer"),
    ("records_written", "collector_records_written", "counter", "readings written"),
    ("bytes_written", "collector_bytes_written", "counter", "bytes written to capture files"),
    ("files", "collector_files", "counter", "capture files completed"),
)


class CaptureMetrics(Collector):
    """Metrics of a running ``DataManager`` (``capsync run``), from its ``stats()``."""

    def __init__(self, manager: Any) -> None:
        self._manager = manager

    def collect(self) -> Iterator[Metric]:
        manager = self._manager
        yield from _collector_families(manager.stats())
        yield from _sync_families(manager.sync_stats(), manager.capture_dir)
        yield from _disk_families(manager.deletion_stats(), manager.capture_dir)


def _collector_families(stats: dict[str, Any]) -> Iterator[Metric]:
    for field, name, kind, doc in COLLECTOR_METRICS:
        make = _counter if kind == "counter" else _gauge
        family = make(name, doc, ["collector"])
        for label, collector_stats in sorted(stats.items()):
            family.add_metric([label], getattr(collector_stats, field))
        yield family


def _sync_families(sync: Any, capture_dir: Path) -> Iterator[Metric]:
    running = _gauge("sync_running", "1 when sync is configured and running")
    running.add_metric([], 0 if sync is None else 1)
    yield running
    values = {
        "files_uploaded": 0 if sync is None else sync.files_uploaded,
        "records_uploaded": 0 if sync is None else sync.records_uploaded,
        "bytes_uploaded": 0 if sync is None else sync.bytes_uploaded,
        "failures": 0 if sync is None else sync.files_moved_to_failed,
        "passes": 0 if sync is None else sync.passes,
    }
    docs = {
        "files_uploaded": "capture files uploaded",
        "records_uploaded": "readings uploaded",
        "bytes_uploaded": "bytes of the capture files uploaded",
        "failures": "files that could not be uploaded and were moved to failed/",
        "passes": "sync passes run",
    }
    for key, value in values.items():
        family = _counter(f"sync_{key}", docs[key])
        family.add_metric([], value)
        yield family
    backlog = capture_backlog(capture_dir)
    for name, doc, value in (
        ("sync_backlog_files", "completed capture files waiting for sync", backlog.files),
        ("sync_backlog_bytes", "bytes of the completed capture files waiting", backlog.bytes),
        ("sync_backlog_age_seconds", "age of the oldest file waiting", backlog.oldest_age_s),
        ("sync_uploading", "files being uploaded now", 0 if sync is None else sync.uploading),
    ):
        gauge = _gauge(name, doc)
        gauge.add_metric([], value)
        yield gauge


def _disk_families(deleter: Any, capture_dir: Path) -> Iterator[Metric]:
    try:
        usage = shutil.disk_usage(capture_dir)
    except OSError:
        usage = None
    if usage is not None:
        for name, doc, value in (
            ("disk_total_bytes", "size of the capture dir's filesystem", usage.total),
            ("disk_free_bytes", "free bytes on the capture dir's filesystem", usage.free),
            (
                "disk_usage_ratio",
                "used fraction of the capture dir's filesystem",
                1 - usage.free / usage.total if usage.total else 0.0,
            ),
        ):
            gauge = _gauge(name, doc)
            gauge.add_metric([], value)
            yield gauge
    for field, name, doc in (
        ("deleted_files", "disk_deleted_files", "capture files deleted because the disk was full"),
        ("deleted_bytes", "disk_deleted_bytes", "bytes of the capture files deleted"),
        ("deletion_passes", "disk_deletion_passes", "checks that ran a deletion pass"),
    ):
        family = _counter(name, doc)
        family.add_metric([], 0 if deleter is None else getattr(deleter, field))
        yield family


class ServerMetrics(Collector):
    """Metrics of a running ``IngestServer`` (``capsync serve``), from its ``stats()``."""

    def __init__(self, stats: Callable[[], Any]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        uploads = _counter("server_uploads", "upload requests accepted", ["rpc"])
        for rpc, count in sorted(stats.uploads.items()):
            uploads.add_metric([rpc], count)
        yield uploads
        rejected = _counter("server_rejected_requests", "requests refused", ["rpc", "code"])
        for (rpc, code), count in sorted(stats.rejected.items()):
            rejected.add_metric([rpc, code], count)
        yield rejected
        for name, doc, value in (
            ("server_readings_stored", "readings and payloads stored", stats.readings_stored),
            ("server_bytes_received", "payload bytes stored", stats.bytes_received),
        ):
            family = _counter(name, doc)
            family.add_metric([], value)
            yield family
        for name, doc, lag in (
            ("server_store_lag_seconds", "newest upload not yet queryable", stats.store_lag_s),
            ("server_compaction_lag_seconds", "oldest data not compacted", stats.compaction_lag_s),
        ):
            gauge = _gauge(name, doc)
            if lag is not None:
                gauge.add_metric([], lag)
            yield gauge
        for name, value in sorted(stats.extra.items()):
            gauge = _gauge(f"server_{name}", name.replace("_", " "))
            gauge.add_metric([], value)
            yield gauge


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (port 0: any free one) for ``--metrics``."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"metrics address must be HOST:PORT, got {address!r}")
    return host.strip("[]"), int(port_text)


class MetricsEndpoint:
    """A ``/metrics`` HTTP endpoint serving one collector, in a daemon thread."""

    def __init__(self, address: str, collector: Collector) -> None:
        host, port = parse_address(address)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        self.host = host
        self.port = int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def metrics_state_path(capture_dir: str | os.PathLike[str]) -> Path:
    """Where ``capsync run`` says which metrics endpoint it serves."""
    return Path(capture_dir) / ".capsync-run.json"


def write_state(path: Path, url: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"metrics_url": url, "pid": os.getpid()}) + "\n")
    os.replace(temporary, path)


def remove_state(path: Path) -> None:
    try:
        state = json.loads(path.read_text())
        if state.get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass
