"""``capsync sync CONFIG.json``: upload what is on disk now, once, with a progress line.

No collectors run: the completed capture files and the ready arbitrary
files are uploaded as they are. Exit 0 when every file was uploaded, 1 when
some are left (or were moved to ``failed/``), 2 for a config error.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from pathlib import Path
from typing import TextIO

from capsync.capture.recovery import recover_in_progress
from capsync.cli.errors import UserError
from capsync.config import ConfigError, DataManagerConfig, MachineConfig, load_config

HELP = "upload the capture files and additional sync paths of a machine config once"
_BAR_WIDTH = 24
_REDRAW_INTERVAL_S = 0.1
_REASONS_SHOWN = 5


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path, help="machine config JSON (viam-server format)")
    parser.add_argument("--capture-dir", type=Path, help="override data_manager capture_dir")
    parser.add_argument(
        "--retry-for",
        type=float,
        default=30.0,
        metavar="S",
        help="keep retrying failed uploads for up to S seconds (default 30)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.add_argument(
        "--log-level",
        dest="log_level_override",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging threshold",
    )


def settings_for(config: MachineConfig, capture_dir: Path | None) -> DataManagerConfig:
    settings = config.data_manager or DataManagerConfig()
    if capture_dir is not None:
        settings = dataclasses.replace(settings, capture_dir=str(capture_dir.resolve()))
    return settings


class ProgressLine:
    """``sync: [#####     ] 12/40 files, 3.2/10.0 MB``, redrawn in place on a terminal."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled and stream.isatty()
        self._last_draw = 0.0
        self._drawn = False

    def __call__(self, progress: object) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        files_done = getattr(progress, "files_done", 0)
        files_total = getattr(progress, "files_total", 0)
        if now - self._last_draw < _REDRAW_INTERVAL_S and files_done < files_total:
            return
        self._last_draw = now
        bytes_done = getattr(progress, "bytes_done", 0)
        bytes_total = getattr(progress, "bytes_total", 0)
        fraction = bytes_done / bytes_total if bytes_total else 1.0
        filled = round(min(1.0, fraction) * _BAR_WIDTH)
        bar = "#" * filled + " " * (_BAR_WIDTH - filled)
        self.stream.write(
            f"\rsync: [{bar}] {files_done}/{files_total} files, "
            f"{_mb(bytes_done)}/{_mb(bytes_total)} MB "
        )
        self.stream.flush()
        self._drawn = True

    def clear(self) -> None:
        """Blank the line (before a log line is written to the same terminal)."""
        if self._drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._drawn = False
            self._last_draw = 0.0

    def finish(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


class _ClearBeforeLogging(logging.Filter):
    """Keeps log lines off the progress line: blanks it before each record is written."""

    def __init__(self, line: ProgressLine) -> None:
        super().__init__()
        self.line = line

    def filter(self, record: logging.LogRecord) -> bool:
        self.line.clear()
        return True


def _mb(nbytes: int) -> str:
    return f"{nbytes / 1e6:.1f}"


def run(args: argparse.Namespace) -> int:
    from capsync.sync import SyncConfigError, Syncer, SyncSettings, resolve_target

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        raise UserError(str(exc), exit_code=2) from None
    if args.retry_for < 0:
        raise UserError("--retry-for must be >= 0", exit_code=2)
    settings = settings_for(config, args.capture_dir)
    try:
        target = resolve_target(config)
        sync_settings = SyncSettings.from_config(settings, config)
        syncer = Syncer(sync_settings, target, retry_for_s=args.retry_for)
    except SyncConfigError as exc:
        raise UserError(f"{args.config}: {exc}", exit_code=2) from None
    # .prog files a crashed `capsync run` left are completed first (a live writer's are
    # locked and left alone), so they sync now rather than wait for the next `run`.
    if Path(settings.capture_dir).exists():
        for recovery in recover_in_progress(settings.capture_dir):
            if recovery.action not in ("in_use",):
                logging.getLogger("capsync.sync").info(
                    "recovered %s: %s", recovery.path, recovery.action
                )
    line = ProgressLine(sys.stderr, not args.quiet)
    keep_clear = _ClearBeforeLogging(line)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(keep_clear)
    try:
        report = syncer.sync_once(line, retry_rejected=False)
    finally:
        line.finish()
        syncer.close()
        for handler in handlers:
            handler.removeFilter(keep_clear)
    print(
        f"synced {report.files_uploaded} of {report.files_total} files "
        f"({report.records_uploaded} records, {_mb(report.bytes_uploaded)} MB) "
        f"to {target.address} in {report.elapsed_s:.1f} s; "
        f"{report.files_left} left, {report.files_moved} moved to failed/",
        flush=True,
    )
    if report.complete:
        return 0
    for reasons, verb in ((report.left, "left"), (report.moved, "moved to failed/")):
        counts: dict[str, int] = {}
        for reason in reasons.values():
            counts[reason] = counts.get(reason, 0) + 1
        for reason, count in sorted(counts.items(), key=lambda kv: -kv[1])[:_REASONS_SHOWN]:
            noun = "file" if count == 1 else "files"
            print(f"capsync sync: {count} {noun} {verb}: {reason}", file=sys.stderr)
    return 1
