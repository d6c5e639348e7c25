"""What ``capsync serve`` does besides answering calls: it records the retention
policies uploads announce, compacts readings into Parquet and applies retention.

* :class:`RetentionHeaderInterceptor` reads the ``capsync-retention-bin`` header
  (:mod:`capsync.retention`) of DataSyncService calls into a
  :class:`~capsync.query.retention.RetentionBook`; a malformed one is logged,
  never a reason to refuse an upload.
* :class:`Maintenance` is a background thread: every ``compact_interval_s`` it
  compacts new readings (:mod:`capsync.query.columnar`), and every
  ``retention_interval_s`` it applies retention (logging what it removed).
  Compaction decodes readings in Python, so while uploads keep arriving it waits
  for a quiet interval, up to ``DEFER_COMPACTION_MAX_S`` behind: a sync burst is
  not slowed by it (and the server's memory is not spent on it meanwhile); SQL
  reads the readings not yet compacted from the store all the same.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import grpc

from capsync.query.api import DataQuery
from capsync.query.retention import RetentionBook, RetentionRules, apply_retention
from capsync.retention import RETENTION_HEADER, decode_header
from capsync.server.auth import KEY_HEADER, KEY_ID_HEADER, ApiKeys

log = logging.getLogger(__name__)

DEFAULT_COMPACT_INTERVAL_S = 10.0
DEFAULT_RETENTION_INTERVAL_S = 3600.0
# While uploads keep arriving, compaction waits until it is this far behind.
DEFER_COMPACTION_MAX_S = 60.0
_UPLOAD_PREFIX = "/viam.app.datasync.v1.DataSyncService/"


class RetentionHeaderInterceptor(grpc.ServerInterceptor):
    """Records the retention policy an upload call announces (see the module docstring)."""

    def __init__(self, book: RetentionBook, keys: ApiKeys) -> None:
        self._book = book
        self._keys = keys

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        if (handler_call_details.method or "").startswith(_UPLOAD_PREFIX):
            metadata = dict(handler_call_details.invocation_metadata or ())
            if not self._keys.check(metadata.get(KEY_ID_HEADER, ""), metadata.get(KEY_HEADER, "")):
                return continuation(handler_call_details)  # refused further on
            for name, value in metadata.items():
                if name == RETENTION_HEADER:
                    try:
                        key, policy = decode_header(value)
                    except ValueError as exc:
                        log.warning("ignored a retention header: %s", exc)
                    else:
                        self._book.record(key, policy)
        return continuation(handler_call_details)


class Maintenance:
    """The background compaction and retention of one server."""

    def __init__(
        self,
        query: DataQuery,
        book: RetentionBook,
        rules: RetentionRules,
        *,
        compact_interval_s: float = DEFAULT_COMPACT_INTERVAL_S,
        retention_interval_s: float = DEFAULT_RETENTION_INTERVAL_S,
        activity: Callable[[], int] | None = None,
        defer_max_s: float = DEFER_COMPACTION_MAX_S,
    ) -> None:
        """``activity``: a count that grows with every upload stored (None: compact every
        interval regardless)."""
        self.query = query
        self.book = book
        self.rules = rules
        self.compact_interval_s = compact_interval_s
        self.retention_interval_s = retention_interval_s
        self._activity = activity
        self._seen_activity = 0
        self.defer_max_s = defer_max_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capsync-maintenance", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def run_once(self, *, retention: bool = True, compaction: bool = True) -> None:
        """One compaction pass (when asked), then (when asked) one retention pass."""
        if compaction and self.query.columnar is not None:
            self.query.columnar.compact()
        if retention:
            apply_retention(self.query, self.book, self.rules)

    def compaction_due(self) -> bool:
        """False while uploads arrived since the last call and compaction is less than
        ``defer_max_s`` behind (see the module docstring)."""
        if self._activity is None or self.query.columnar is None:
            return True
        count = self._activity()
        busy, self._seen_activity = count != self._seen_activity, count
        if not busy:
            return True
        lag = self.query.columnar.lag(time.time_ns())
        return lag is None or lag[1] >= self.defer_max_s

    def _run(self) -> None:
        next_retention = time.monotonic()
        while True:
            due = time.monotonic() >= next_retention
            try:
                self.run_once(retention=due, compaction=self.compaction_due())
            except Exception:
                log.exception(
                    "maintenance pass failed; retrying in %.0f s", self.compact_interval_s
                )
            if due:
                next_retention = time.monotonic() + self.retention_interval_s
            wait_s = min(self.compact_interval_s, max(0.0, next_retention - time.monotonic()))
            if self._stop.wait(wait_s):
                return
