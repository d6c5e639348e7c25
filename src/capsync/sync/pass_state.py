"""The state of one sync pass that its workers share: each file's attempts so far, and
the pass's progress (reported to the caller in order, one update at a time)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from capsync._retry import Backoff
from capsync.sync.files import SyncItem
from capsync.sync.report import ProgressFn, SyncProgress, SyncReport

_log = logging.getLogger("capsync.sync")


@dataclass
class Outcome:
    status: Literal["uploaded", "moved", "left", "gone"]
    reason: str = ""
    records: int = 0
    file_bytes: int = 0

    def add_to(self, report: SyncReport, path: Path) -> None:
        """Count this settled file in its pass's report."""
        report.records_uploaded += self.records
        report.bytes_uploaded += self.file_bytes
        if self.status == "uploaded":
            report.files_uploaded += 1
        elif self.status == "moved":
            report.moved[str(path)] = self.reason
        elif self.status == "left":
            report.left[str(path)] = self.reason


@dataclass
class Entry:
    """A file of a pass and what its attempts have done so far."""

    item: SyncItem
    backoff: Backoff
    outcome: Outcome = field(default_factory=lambda: Outcome("left"))


class PassState:
    """The shared state of one pass."""

    def __init__(
        self,
        items: list[SyncItem],
        progress: ProgressFn | None,
        retry_until: float | None,
        retry_rejected: bool,
    ) -> None:
        self.retry_until = retry_until
        self.retry_rejected = retry_rejected
        self.aborted: str | None = None  # set when retrying is pointless (key refused)
        self._progress = progress
        self._lock = threading.Lock()
        self._files_total = len(items)
        self._bytes_total = sum(item.size_bytes for item in items)
        self._files_done = 0
        self._bytes_done = 0

    def out_of_time(self, delay_s: float) -> bool:
        return self.retry_until is not None and time.monotonic() + delay_s > self.retry_until

    def add_bytes(self, nbytes: int, *, file_done: bool = False) -> None:
        with self._lock:  # held for the callback too: it sees progress in order, one at a time
            self._bytes_done += nbytes
            self._files_done += file_done
            if self._progress is None:
                return
            snapshot = SyncProgress(
                self._files_total, self._files_done, self._bytes_total, self._bytes_done
            )
            try:
                self._progress(snapshot)
            except Exception:
                _log.debug("progress callback failed", exc_info=True)

    def start(self) -> None:
        self.add_bytes(0)
