"""``capsync run CONFIG.json``: capture everything the machine config asks for until stopped."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from capsync.cli.errors import UserError, parse_flag
from capsync.config import ConfigError, MachineConfig, load_config
from capsync.metrics import (
    CaptureMetrics,
    MetricsEndpoint,
    metrics_state_path,
    parse_address,
    remove_state,
    write_state,
)
from capsync.resources import ResourceError
from capsync.service import CollectorStats, DataManager, ServiceError
from capsync.service.realtime import MAX_RT_PRIORITY

if TYPE_CHECKING:
    from capsync.server.auth import ApiKeys

HELP = "run data capture from a machine config until SIGINT/SIGTERM or --duration"
_log = logging.getLogger("capsync.run")


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path, help="machine config JSON (viam-server format)")
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    parser.add_argument("--capture-dir", type=Path, help="override data_manager capture_dir")
    parser.add_argument(
        "--status-interval",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds between status lines (default 5)",
    )
    parser.add_argument(
        "--stop-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="on stop, how long uploads in flight may take to finish (default 10)",
    )
    parser.add_argument("--quiet", action="store_true", help="no status lines")
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="serve the data manager's API (DataManagerService: Sync, GetStatus, ...) here; "
        "port 0 picks one, printed at start",
    )
    parser.add_argument(
        "--api-keys",
        type=Path,
        metavar="FILE",
        help='keys that may call --listen: JSON {"keys": [{"id": ..., "key": ...}]} (required '
        "with --listen)",
    )
    parser.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (port 0: any free port); "
        "`capsync status` reads them",
    )
    parser.add_argument(
        "--realtime-priority",
        type=int,
        default=0,
        metavar="N",
        help="run capture threads under SCHED_FIFO at priority N (1-99) when permitted, "
        "their writers at N-1",
    )
    parser.add_argument(
        "--realtime-whole-process",
        action="store_true",
        help="with --realtime-priority: also run capsync's other threads (sync, API, flusher) "
        "under SCHED_FIFO at N-2, so none is pre-empted holding the GIL a capture thread "
        "waits for (they then go before every normal-priority program)",
    )
    parser.add_argument(
        "--log-level",
        dest="log_level_override",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging threshold",
    )


def load(path: Path, capture_dir: Path | None) -> MachineConfig:
    try:
        config = load_config(path)
    except ConfigError as exc:
        raise UserError(str(exc), exit_code=2) from None
    if capture_dir is not None and config.data_manager is not None:
        manager = dataclasses.replace(config.data_manager, capture_dir=str(capture_dir.resolve()))
        config = dataclasses.replace(config, data_manager=manager)
    return config


def _size(nbytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} B"


def _troubles(stats: CollectorStats) -> str:
    """The counters worth a look, only when they are not zero."""
    return "".join(
        f"  {name} {value}"
        for name, value in (
            ("skipped", stats.skipped_ticks),
            ("errors", stats.errors),
            ("write-errors", stats.write_errors),
            ("dropped", stats.dropped),
        )
        if value
    )


def status_line(
    now: Mapping[str, CollectorStats], before: Mapping[str, CollectorStats], elapsed_s: float
) -> str:
    """A compact table: a header line, then one short line per collector."""
    if not now:
        return "status: no collectors"
    width = max(len(label) for label in now)
    lines = [f"status (last {elapsed_s:.0f} s):"]
    for label, stats in sorted(now.items()):
        previous = before.get(label)
        rate = (stats.captures - (previous.captures if previous else 0)) / max(elapsed_s, 1e-9)
        lines.append(
            f"  {label:<{width}}  {rate:7.1f}/s  queue {stats.queue_depth:<4d} "
            f"files {stats.files:<5d} {_size(stats.bytes_written):>9}{_troubles(stats)}"
        )
    return "\n".join(lines)


def totals(stats: Mapping[str, CollectorStats]) -> list[str]:
    """One line per collector: what it did since the start."""
    width = max((len(label) for label in stats), default=0)
    return [
        f"  {label:<{width}}  {s.captures} captures, {s.records_written} records, "
        f"{s.files} files, {_size(s.bytes_written)}{_troubles(s)}"
        for label, s in sorted(stats.items())
    ]


def _in_file(path: Path, exc: Exception) -> str:
    """``exc`` as one line naming the config file (once)."""
    text = str(exc)
    return text if text.startswith(f"{path}:") else f"{path}: {text}"


def listen_keys(args: argparse.Namespace) -> ApiKeys | None:
    """The API keys of ``--listen``; None without it. Checked before anything starts."""
    if args.listen is None:
        if args.api_keys is not None:
            raise UserError("--api-keys goes with --listen", exit_code=2)
        return None
    from capsync.server import ApiKeysError, parse_listen
    from capsync.server.auth import load_api_keys

    parse_flag("--listen", parse_listen, args.listen)
    if args.api_keys is None:
        raise UserError("--listen needs --api-keys FILE (who may call the API)", exit_code=2)
    try:
        return load_api_keys(args.api_keys)
    except ApiKeysError as exc:
        raise UserError(str(exc), exit_code=2) from None


def run(args: argparse.Namespace) -> int:
    for flag, value in (("--duration", args.duration), ("--status-interval", args.status_interval)):
        if value is not None and not value > 0:
            raise UserError(f"{flag} must be a number of seconds > 0, got {value:g}", exit_code=2)
    if not args.stop_timeout >= 0:
        raise UserError(f"--stop-timeout must be >= 0, got {args.stop_timeout:g}", exit_code=2)
    config = load(args.config, args.capture_dir)
    keys = listen_keys(args)
    if not 0 <= args.realtime_priority <= MAX_RT_PRIORITY:
        raise UserError(
            f"--realtime-priority must be 1..{MAX_RT_PRIORITY}, got {args.realtime_priority}",
            exit_code=2,
        )
    if args.metrics is not None:
        parse_flag("--metrics", parse_address, args.metrics)
    stop = threading.Event()
    reload_requested = threading.Event()

    def on_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    def on_hup(signum: int, frame: FrameType | None) -> None:
        reload_requested.set()

    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    try:
        manager = DataManager(
            config,
            realtime_priority=args.realtime_priority,
            realtime_whole_process=args.realtime_whole_process,
            stop_timeout_s=args.stop_timeout,
        ).start()
    except (ResourceError, ServiceError, ConfigError) as exc:
        raise UserError(_in_file(args.config, exc), exit_code=2) from None
    except OSError as exc:
        raise UserError(_in_file(args.config, exc), exit_code=2) from None
    for recovery in manager.recovered:
        if recovery.action != "in_use":
            _log.info("recovered %s: %s", recovery.path, recovery.action)
    _log.info("capturing %d methods into %s", len(manager.stats()), manager.capture_dir)
    api_server = None
    if keys is not None:
        from capsync.service.api_server import start_api_server

        try:
            api_server, port = start_api_server(manager, args.listen, keys)
        except (OSError, RuntimeError) as exc:
            manager.close()
            raise UserError(f"--listen {args.listen}: {exc}", exit_code=2) from None
        host = args.listen.rpartition(":")[0]
        print(f"data manager API listening on {host}:{port}", flush=True)
    endpoint = None
    if args.metrics is not None:
        try:
            endpoint = start_metrics(args.metrics, manager)
        except OSError as exc:
            manager.close()
            message = f"--metrics: cannot listen on {args.metrics}: {exc}"
            raise UserError(message, exit_code=2) from None
    started = time.monotonic()
    deadline = started + args.duration if args.duration is not None else None
    last_stats = manager.stats()
    last_time = started
    try:
        while not stop.is_set():
            timeout = args.status_interval
            if deadline is not None:
                timeout = min(timeout, deadline - time.monotonic())
                if timeout <= 0:
                    break
            stop.wait(max(timeout, 0.0))
            if reload_requested.is_set():
                reload_requested.clear()
                try:
                    manager.reconfigure(load(args.config, args.capture_dir))
                    _log.info("config reloaded from %s", args.config)
                except (UserError, ResourceError, ServiceError) as exc:
                    _log.error("config not reloaded, keeping the running one: %s", exc)
            now = time.monotonic()
            if not args.quiet and now - last_time >= args.status_interval * 0.99:
                stats = manager.stats()
                print(status_line(stats, last_stats, now - last_time), flush=True)
                last_stats, last_time = stats, now
    finally:
        if api_server is not None:
            api_server.stop(2.0).wait()
        manager.close()
        if endpoint is not None:
            stop_metrics(endpoint, manager)
    final = manager_summary(manager, time.monotonic() - started, manager.final_stats())
    if not args.quiet:
        print(final, flush=True)
    return 0


def start_metrics(address: str, manager: DataManager) -> MetricsEndpoint:
    """Serve the manager's metrics; note the address where ``capsync status`` looks."""
    endpoint = MetricsEndpoint(address, CaptureMetrics(manager))
    print(f"capsync run: metrics at {endpoint.url}", flush=True)
    try:
        write_state(metrics_state_path(manager.capture_dir), endpoint.url)
    except OSError as exc:
        _log.warning("cannot note the metrics address for `capsync status`: %s", exc)
    return endpoint


def stop_metrics(endpoint: MetricsEndpoint, manager: DataManager) -> None:
    remove_state(metrics_state_path(manager.capture_dir))
    endpoint.close()


def manager_summary(
    manager: DataManager, elapsed_s: float, stats: Mapping[str, CollectorStats] | None = None
) -> str:
    head = f"stopped after {elapsed_s:.1f} s; capture files are in {manager.capture_dir}"
    lines = totals(stats or {})
    return "\n".join([head + (":" if lines else ""), *lines])


if __name__ == "__main__":
    sys.exit(0)
