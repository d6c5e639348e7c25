"""Disk-pressure deletion (SPEC §5): when the disk fills up, thin out the capture dir.

Every ``interval_s`` (30 s by default) while capture is on, :class:`DiskPressureDeleter`
looks at the filesystem that holds the capture dir:

* ``disk fraction`` is ``1 - free / total`` from psutil (``free`` is what an
  unprivileged writer can still use, so root-reserved blocks count as used, as
  in viam-server). Below ``usage_threshold`` nothing else happens: one
  ``statvfs`` per check.
* At or above it, the capture dir is measured (the sum of its files' sizes,
  ``st_size``, every file under it counted). The walk stops as soon as the
  sum reaches ``capture_dir_threshold * total``, so a big capture dir is not
  walked twice in full.
* If the capture dir holds at least ``capture_dir_threshold`` of the
  filesystem, every Nth completed capture file is deleted (``every_nth``);
  otherwise the disk is full of something else and deleting capture data
  would not help: a warning is logged, at most once per ``warning_interval_s``.

Which files may go ("completed capture files", :mod:`capsync.capture.deletable`;
this module is the thread that decides when): regular files ending in
``.capture`` that sit exactly at ``<capture_dir>/<api>/<name>/<Method>/`` (the
only place capsync writes them). Never a ``.prog`` file, never anything under
``<capture_dir>/failed/`` or an ``exclude``d folder, never any other file,
never a symlink, and never a file being uploaded: a file is removed only while
the deleter holds its ``flock`` (which the sync layer's workers take, in this
process or another, for the whole upload, and which a capture writer keeps on
a file it has not closed yet), and ``is_in_flight`` (optional, e.g. the
syncer's set of claimed files) can rule out more. ``claim``/``release``
(optional) let the sync layer lend its own claim.

Order: the deletion walk is depth first with every directory's entries in
sorted name order (what Go's ``filepath.WalkDir`` does in viam-server). Capture
file names are their creation time, so within a folder files come oldest
first. Counting the completed capture files met in that order from 0, those
whose index is a multiple of N are deleted: 0, N, 2N, ... A file at such an
index that is in flight is skipped (and still counted), as viam-server does,
so one pass removes about ``1/N`` of the files, spread over every folder and
over time.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psutil

from capsync._log import RateLimitedLog
from capsync.capture.deletable import Outcome, completed_capture_files, unlink_unless_locked
from capsync.capture.layout import capture_dir_size

_log = logging.getLogger("capsync.capture.diskpressure")

DEFAULT_INTERVAL_S = 30.0
DEFAULT_WARNING_INTERVAL_S = 60.0


class DiskUsageLike(Protocol):
    """What ``psutil.disk_usage`` returns, as far as deletion needs it."""

    @property
    def total(self) -> int: ...

    @property
    def free(self) -> int: ...


DiskUsageFn = Callable[[str], DiskUsageLike]
PathPredicate = Callable[[Path], bool]


@dataclass(frozen=True)
class DeletionReport:
    """What one check saw and did."""

    disk_total_bytes: int
    disk_free_bytes: int
    disk_fraction: float  # 1 - free / total
    disk_over_threshold: bool
    # Measured only when the disk is over its threshold (else None). The walk stops once the
    # capture dir threshold is reached, so when it is reached this is a lower bound.
    capture_dir_bytes: int | None
    capture_dir_fraction: float | None
    capture_dir_over_threshold: bool
    deleted_files: tuple[Path, ...] = ()
    deleted_bytes: int = 0
    # Files due for deletion that were being uploaded (or still held by their writer): kept.
    skipped_in_flight: int = 0
    delete_errors: int = 0  # removals that failed (other than "already gone")
    warned: bool = False  # the "disk full but capture dir small" warning was logged now

    @property
    def deleted(self) -> bool:
        return bool(self.deleted_files)


@dataclass(frozen=True)
class DeleterStats:
    checks: int  # checks run (each looks at the disk usage)
    deletion_passes: int  # checks that ran a deletion pass
    deleted_files: int
    deleted_bytes: int
    skipped_in_flight: int
    warnings: int  # "disk full but capture dir small" warnings logged
    errors: int  # checks that failed (disk usage unreadable, walk error) + failed removals
    last_report: DeletionReport | None


class DiskPressureDeleter:
    """Deletes every Nth completed capture file when the disk is full (see the module doc).

    ``check_once()`` runs one check in the caller's thread; ``start()``/``stop()``
    run checks every ``interval_s`` in a background thread (the first right away).
    ``disk_usage``, ``is_in_flight``, ``claim``/``release`` and ``clock`` are
    injectable for tests and for the sync layer. Paths handed to ``is_in_flight``,
    ``claim`` and ``release`` are ``Path(os.path.abspath(capture_dir)) / api / name /
    Method / file`` (the form ``capsync.sync`` uses for the files it claims).
    """

    def __init__(
        self,
        capture_dir: str | os.PathLike[str],
        *,
        usage_threshold: float = 0.9,
        capture_dir_threshold: float = 0.5,
        every_nth: int = 5,
        interval_s: float = DEFAULT_INTERVAL_S,
        disk_usage: DiskUsageFn = psutil.disk_usage,
        is_in_flight: PathPredicate | None = None,
        claim: PathPredicate | None = None,
        release: Callable[[Path], None] | None = None,
        exclude: Iterable[str | os.PathLike[str]] = (),
        warning_interval_s: float = DEFAULT_WARNING_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value in (
            ("usage_threshold", usage_threshold),
            ("capture_dir_threshold", capture_dir_threshold),
        ):
            if not 0 < value <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {value!r}")
        if isinstance(every_nth, bool) or not isinstance(every_nth, int) or every_nth < 1:
            raise ValueError(f"every_nth must be an integer >= 1, got {every_nth!r}")
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
        if (claim is None) != (release is None):
            raise ValueError("claim and release go together: give both or neither")
        self.capture_dir = Path(os.path.abspath(capture_dir))
        self.usage_threshold = float(usage_threshold)
        self.capture_dir_threshold = float(capture_dir_threshold)
        self.every_nth = every_nth
        self.interval_s = float(interval_s)
        self.warning_interval_s = float(warning_interval_s)
        self._disk_usage = disk_usage
        self._is_in_flight = is_in_flight
        self._claim = claim
        self._release = release
        self._exclude = {os.path.realpath(p) for p in exclude}
        self._clock = clock
        self._check_lock = threading.Lock()  # one check at a time (thread + manual calls)
        self._stats_lock = threading.Lock()
        self._last_warning: float | None = None
        self._checks = 0
        self._passes = 0
        self._deleted_files = 0
        self._deleted_bytes = 0
        self._skipped = 0
        self._warnings = 0
        self._errors = 0
        self._last_report: DeletionReport | None = None
        self._errors_log = RateLimitedLog(_log, DEFAULT_WARNING_INTERVAL_S)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_config(cls, config: Any, **options: Any) -> DiskPressureDeleter:
        """A deleter for a :class:`capsync.config.DataManagerConfig` (``options`` override).

        Its ``additional_sync_paths`` are excluded: arbitrary files are never deleted.
        """
        settings: dict[str, Any] = {
            "usage_threshold": config.disk_usage_deletion_threshold,
            "capture_dir_threshold": config.capture_dir_deletion_threshold,
            "every_nth": config.delete_every_nth_when_disk_full,
            "exclude": tuple(config.additional_sync_paths),
        }
        settings.update(options)
        return cls(config.capture_dir, **settings)

    # ----- one check --------------------------------------------------------------------

    def check_once(self) -> DeletionReport:
        """Look at the disk; delete or warn as the thresholds say. Raises if the disk
        usage cannot be read (the background thread logs and counts that instead)."""
        with self._check_lock:
            report = self._check()
        with self._stats_lock:
            self._checks += 1
            self._passes += 1 if report.capture_dir_over_threshold else 0
            self._deleted_files += len(report.deleted_files)
            self._deleted_bytes += report.deleted_bytes
            self._skipped += report.skipped_in_flight
            self._errors += report.delete_errors
            self._warnings += 1 if report.warned else 0
            self._last_report = report
        if report.deleted_files:
            _log.warning(
                "disk %.1f%% full, capture dir %s holds >= %.1f%% of it: deleted %d capture "
                "files (%d bytes)%s",
                100 * report.disk_fraction,
                self.capture_dir,
                100 * (report.capture_dir_fraction or 0.0),
                len(report.deleted_files),
                report.deleted_bytes,
                f", {report.skipped_in_flight} being uploaded were kept"
                if report.skipped_in_flight
                else "",
            )
        return report

    def _check(self) -> DeletionReport:
        usage = self._disk_usage(str(_existing_ancestor(self.capture_dir)))
        total, free = int(usage.total), int(usage.free)
        if total <= 0:
            raise OSError(f"the filesystem holding {self.capture_dir} reports a size of {total}")
        report = DeletionReport(
            disk_total_bytes=total,
            disk_free_bytes=free,
            disk_fraction=1.0 - free / total,
            disk_over_threshold=False,
            capture_dir_bytes=None,
            capture_dir_fraction=None,
            capture_dir_over_threshold=False,
        )
        if report.disk_fraction < self.usage_threshold:
            return report
        limit = self.capture_dir_threshold * total
        dir_bytes = capture_dir_size(self.capture_dir, stop_at=limit)
        report = dataclasses.replace(
            report,
            disk_over_threshold=True,
            capture_dir_bytes=dir_bytes,
            capture_dir_fraction=dir_bytes / total,
        )
        if dir_bytes < limit:
            warned = self._maybe_warn(report.disk_fraction, dir_bytes / total)
            return dataclasses.replace(report, warned=warned)
        deleted: list[Path] = []
        deleted_bytes = skipped = errors = 0
        candidates = completed_capture_files(self.capture_dir, self._exclude)
        for index, (path, size) in enumerate(candidates):
            if index % self.every_nth:
                continue
            outcome = self._delete(path)
            if outcome is Outcome.DELETED:
                deleted.append(path)
                deleted_bytes += size
            elif outcome is Outcome.IN_FLIGHT:
                skipped += 1
            elif outcome is Outcome.ERROR:
                errors += 1
        return dataclasses.replace(
            report,
            capture_dir_over_threshold=True,
            deleted_files=tuple(deleted),
            deleted_bytes=deleted_bytes,
            skipped_in_flight=skipped,
            delete_errors=errors,
        )

    def _delete(self, path: Path) -> Outcome:
        if self._is_in_flight is not None and self._is_in_flight(path):
            return Outcome.IN_FLIGHT
        if self._claim is not None and not self._claim(path):
            return Outcome.IN_FLIGHT
        try:
            return unlink_unless_locked(path)
        finally:
            if self._release is not None:
                self._release(path)

    def _maybe_warn(self, disk_fraction: float, dir_fraction: float) -> bool:
        now = self._clock()
        last = self._last_warning
        if last is not None and now - last < self.warning_interval_s:
            return False
        self._last_warning = now
        _log.warning(
            "disk is %.1f%% full (threshold %.1f%%) but the capture dir %s holds only %.1f%% of "
            "it (deletion needs %.1f%%): no capture files deleted; free space elsewhere",
            100 * disk_fraction,
            100 * self.usage_threshold,
            self.capture_dir,
            100 * dir_fraction,
            100 * self.capture_dir_threshold,
        )
        return True

    # ----- background thread ------------------------------------------------------------

    def start(self) -> DiskPressureDeleter:
        """Check now and then every ``interval_s`` in a daemon thread, until :meth:`stop`."""
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"disk pressure {self.capture_dir}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the thread (a check in progress finishes first); idempotent."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check_once()
            except Exception as exc:
                with self._stats_lock:
                    self._errors += 1
                    self._checks += 1
                self._errors_log.log(
                    logging.ERROR, f"disk pressure check of {self.capture_dir} failed: {exc}"
                )
            self._stop.wait(self.interval_s)

    def stats(self) -> DeleterStats:
        with self._stats_lock:
            return DeleterStats(
                checks=self._checks,
                deletion_passes=self._passes,
                deleted_files=self._deleted_files,
                deleted_bytes=self._deleted_bytes,
                skipped_in_flight=self._skipped,
                warnings=self._warnings,
                errors=self._errors,
                last_report=self._last_report,
            )

    def __enter__(self) -> DiskPressureDeleter:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _existing_ancestor(path: Path) -> Path:
    """``path`` or its nearest existing parent: the filesystem that holds (or will hold) it."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return path
