"""``SyncScheduler``: a background thread that runs a sync pass every interval.

Before each pass it asks ``should_sync`` (``sync_disabled``, the selective
syncer sensor) and calls ``before_pass`` (complete the open tabular files).
A pass that fails unexpectedly is logged; the next interval tries again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from capsync.sync.report import SyncClosedError
from capsync.sync.syncer import DEFAULT_STOP_TIMEOUT_S, Syncer

_log = logging.getLogger("capsync.sync")


class SyncScheduler:
    def __init__(
        self,
        syncer: Syncer,
        *,
        interval_s: Callable[[], float],
        should_sync: Callable[[], bool] = lambda: True,
        before_pass: Callable[[], None] | None = None,
    ) -> None:
        self.syncer = syncer
        self._interval_s = interval_s
        self._should_sync = should_sync
        self._before_pass = before_pass
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="capsync-sync-scheduler", daemon=True
        )

    def start(self) -> SyncScheduler:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = DEFAULT_STOP_TIMEOUT_S) -> None:
        """Stop scheduling and close the syncer gracefully (see :meth:`Syncer.close`)."""
        self._stop.set()
        self.syncer.close(timeout_s)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(max(0.01, self._interval_s())):
            try:
                if not self._should_sync():
                    continue
                if self._before_pass is not None:
                    self._before_pass()
                if self._stop.is_set():
                    return
                self.syncer.sync_once()
            except SyncClosedError:
                return
            except Exception:
                _log.exception("sync pass failed")
