"""What a sync pass is told and what it tells: its settings, progress, report and totals."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from capsync.config import DataManagerConfig, MachineConfig
from capsync.retention import Retention

_log = logging.getLogger("capsync.sync")


class SyncClosedError(RuntimeError):
    """The syncer was closed; it uploads nothing more."""


@dataclass(frozen=True)
class SyncSettings:
    """What a pass uploads: the data_manager attributes sync reads."""

    capture_dir: str
    tags: tuple[str, ...] = ()
    additional_sync_paths: tuple[str, ...] = ()
    file_last_modified_s: float = 10.0
    max_workers: int = 1
    # (component type, component name, method) -> the capture method's retention_policy,
    # announced to capsync's server with each upload (see capsync.retention).
    retention: tuple[tuple[tuple[str, str, str], Retention], ...] = ()

    @classmethod
    def from_config(
        cls, config: DataManagerConfig, machine: MachineConfig | None = None
    ) -> SyncSettings:
        return cls(
            capture_dir=config.capture_dir,
            tags=config.tags,
            additional_sync_paths=config.additional_sync_paths,
            file_last_modified_s=config.file_last_modified_s,
            max_workers=max(1, config.maximum_num_sync_threads),
            retention=retention_policies(machine) if machine is not None else (),
        )


def retention_policies(
    machine: MachineConfig,
) -> tuple[tuple[tuple[str, str, str], Retention], ...]:
    """The capture methods' retention policies, keyed as capture files name their source."""
    found: dict[tuple[str, str, str], Retention] = {}
    for target in machine.capture_targets():
        policy = target.method.retention_policy
        if policy is None:
            continue
        retention = Retention.from_document(dataclasses.asdict(policy))
        if not retention.empty:
            found[(target.api, target.resource_name, target.method.method)] = retention
    return tuple(sorted(found.items()))


@dataclass(frozen=True)
class SyncProgress:
    """Where a pass stands; handed to the progress callback as it moves."""

    files_total: int
    files_done: int  # uploaded, moved aside or left
    bytes_total: int
    bytes_done: int


ProgressFn = Callable[[SyncProgress], None]


@dataclass
class SyncReport:
    """What one pass did."""

    files_total: int = 0
    files_uploaded: int = 0
    records_uploaded: int = 0
    bytes_uploaded: int = 0  # bytes of the files the confirmed requests covered
    moved: dict[str, str] = field(default_factory=dict)  # path -> why it went to failed/
    left: dict[str, str] = field(default_factory=dict)  # path -> why it is still there
    elapsed_s: float = 0.0

    @property
    def files_moved(self) -> int:
        return len(self.moved)

    @property
    def files_left(self) -> int:
        return len(self.left)

    @property
    def last_error(self) -> str | None:
        """Why the last file left or moved aside was not uploaded; None when all were."""
        reasons = [*self.left.values(), *self.moved.values()]
        return reasons[-1] if reasons else None

    @property
    def complete(self) -> bool:
        """True when every file was uploaded (none left, none moved to failed/)."""
        return not self.left and not self.moved


@dataclass(frozen=True)
class SyncStats:
    """Totals since the syncer started."""

    passes: int
    files_uploaded: int
    records_uploaded: int
    bytes_uploaded: int
    files_moved_to_failed: int
    files_left: int  # by the last pass
    uploading: int  # files in flight now
    last_pass_finished: float | None  # time.time() of the end of the last pass
    last_error: str | None


class SyncTotals:
    """What every pass of a syncer did, added up (the caller holds its lock)."""

    def __init__(self) -> None:
        self.passes = 0
        self.files_uploaded = 0
        self.records_uploaded = 0
        self.bytes_uploaded = 0
        self.files_moved = 0
        self.files_left = 0
        self.last_pass_finished: float | None = None
        self.last_error: str | None = None

    def add(self, report: SyncReport, *, not_errors: tuple[str, ...] = ()) -> None:
        """Count a finished pass; a file left for a reason in ``not_errors`` (busy,
        stopped) does not make the pass's error the last one."""
        self.passes += 1
        self.files_uploaded += report.files_uploaded
        self.records_uploaded += report.records_uploaded
        self.bytes_uploaded += report.bytes_uploaded
        self.files_moved += report.files_moved
        self.files_left = report.files_left
        self.last_pass_finished = time.time()
        reasons = [r for r in report.left.values() if r not in not_errors]
        if reasons:
            self.last_error = reasons[0]
        elif report.files_uploaded:
            self.last_error = None

    def stats(self, *, uploading: int) -> SyncStats:
        return SyncStats(
            passes=self.passes,
            files_uploaded=self.files_uploaded,
            records_uploaded=self.records_uploaded,
            bytes_uploaded=self.bytes_uploaded,
            files_moved_to_failed=self.files_moved,
            files_left=self.files_left,
            uploading=uploading,
            last_pass_finished=self.last_pass_finished,
            last_error=self.last_error,
        )


def log_pass(report: SyncReport) -> None:
    """One INFO line for a pass that did anything."""
    if report.files_uploaded or report.moved or report.left:
        _log.info(
            "sync pass: %d of %d files uploaded (%d records, %d bytes) in %.1f s%s%s",
            report.files_uploaded,
            report.files_total,
            report.records_uploaded,
            report.bytes_uploaded,
            report.elapsed_s,
            f"; {report.files_moved} moved to failed/" if report.moved else "",
            f"; {report.files_left} left for a later pass" if report.left else "",
        )
