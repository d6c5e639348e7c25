"""``capsync status``: what a running ``capsync run --metrics`` is doing, as a table.

It reads the run's Prometheus endpoint: the address comes from ``--metrics``,
or from the state file ``capsync run`` writes in its capture dir (found from
``--capture-dir`` or from the machine config).
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from capsync.cli.errors import UserError, parse_flag
from capsync.metrics import COLLECTOR_METRICS, metrics_state_path, parse_address

HELP = "show what a running `capsync run --metrics ...` is capturing, syncing and deleting"
TIMEOUT_S = 5.0

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", type=Path, help="the machine config of the run")
    parser.add_argument("--metrics", metavar="HOST:PORT", help="the run's --metrics address")
    parser.add_argument("--capture-dir", type=Path, help="the run's capture dir")


def find_url(args: argparse.Namespace) -> str:
    if args.metrics is not None:
        if args.metrics.startswith(("http://", "https://")):
            return str(args.metrics)
        host, port = parse_flag("--metrics", parse_address, args.metrics)
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/metrics"
    capture_dir = args.capture_dir
    if capture_dir is None and args.config is not None:
        from capsync.cli.run_cmd import load

        config = load(args.config, None)
        if config.data_manager is None:
            raise UserError(f"{args.config}: no data_manager service", exit_code=2)
        capture_dir = Path(config.data_manager.capture_dir)
    if capture_dir is None:
        raise UserError("say where the run is: --metrics HOST:PORT, --capture-dir or CONFIG", 2)
    state = metrics_state_path(capture_dir)
    try:
        return str(json.loads(state.read_text())["metrics_url"])
    except FileNotFoundError:
        raise UserError(
            f"{state}: not found; is `capsync run --metrics HOST:PORT` running on {capture_dir}?"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{state}: unreadable ({exc})") from None


def scrape(url: str) -> Samples:
    """Every sample at ``url``, by name and then by label set."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            text = response.read().decode("utf-8")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(f"cannot read metrics at {url}: {reason}") from None
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[labels] = sample.value
    return samples


def _value(samples: Samples, name: str, labels: Iterable[tuple[str, str]] = ()) -> float:
    return samples.get(name, {}).get(tuple(labels), 0.0)


def _counter_name(name: str, kind: str) -> str:
    return f"capsync_{name}_total" if kind == "counter" else f"capsync_{name}"


def _size(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(nbytes) < 1024 or unit == "GiB":
            return f"{nbytes:,.0f} {unit}" if unit == "B" else f"{nbytes:,.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:,.1f} TiB"


def render(samples: Samples) -> str:
    """The collectors as a table, then sync and disk as ``name: value`` lines."""
    columns = [("collector", "collector")] + [
        (field, field.replace("_", " ")) for field, *_ in COLLECTOR_METRICS
    ]
    kinds = {field: (name, kind) for field, name, kind, _ in COLLECTOR_METRICS}
    labels = sorted(
        {dict(key)["collector"] for key in samples.get("capsync_collector_captures_total", {})}
    )
    rows = [[title for _, title in columns]]
    for label in labels:
        row = [label]
        for field, _ in columns[1:]:
            name, kind = kinds[field]
            value = _value(samples, _counter_name(name, kind), [("collector", label)])
            row.append(_size(value) if field == "bytes_written" else f"{value:,.0f}")
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    if not labels:
        lines.append("(no collectors)")
    v = lambda name: _value(samples, name)  # noqa: E731
    sync = "running" if v("capsync_sync_running") else "off"
    lines += [
        "",
        f"sync: {sync}; uploaded {v('capsync_sync_files_uploaded_total'):,.0f} files "
        f"({_size(v('capsync_sync_bytes_uploaded_total'))}, "
        f"{v('capsync_sync_records_uploaded_total'):,.0f} readings); "
        f"failed {v('capsync_sync_failures_total'):,.0f}",
        f"backlog: {v('capsync_sync_backlog_files'):,.0f} files "
        f"({_size(v('capsync_sync_backlog_bytes'))}), oldest "
        f"{v('capsync_sync_backlog_age_seconds'):,.0f} s",
        f"disk: {v('capsync_disk_usage_ratio'):.1%} used, "
        f"{_size(v('capsync_disk_free_bytes'))} free; deleted "
        f"{v('capsync_disk_deleted_files_total'):,.0f} files "
        f"({_size(v('capsync_disk_deleted_bytes_total'))})",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    url = find_url(args)
    print(render(scrape(url)))
    return 0
