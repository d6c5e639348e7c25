"""MongoDB capture (SPEC §6): every tabular reading written to disk is also inserted into MongoDB.

With ``mongo_capture_config.uri`` set, each reading becomes one document in
``database``/``collection`` (default ``sensorData``/``readings``)::

    {_id: ObjectId, time_requested: Date, time_received: Date, component_name,
     component_type, method_name, data: <the SensorData struct as a document>}

(:func:`capsync.mongo.documents.reading_document`: numbers are doubles, dates
have millisecond precision). Inserting a batch is :mod:`capsync.mongo.inserts`;
this module is the queue and its thread.

Disk capture never waits for MongoDB: :meth:`MongoCaptureWriter.submit` (the
collector's ``on_tabular`` hook) appends to a bounded in-memory queue and
returns; when the queue is full the *oldest* pending reading is dropped and
counted. One background thread converts queued readings into documents and
inserts them with ``insert_many`` in batches. When MongoDB is down (at start
or later) the thread keeps the pending readings, retries with backoff and
logs at a bounded rate; pymongo reconnects by itself. Each document gets its
``_id`` before its first attempt, so a batch re-sent after a connection loss
that hid a success is stored once (the repeats come back as duplicate-key
errors and count as inserted).

Wiring it to collectors::

    writer = MongoCaptureWriter(config.mongo_capture_config)
    collector = Collector(key, resource, settings, capture_dir, on_tabular=writer.submit)
    ...
    writer.close()  # after the collectors are closed

Over 400 lines but one concern: the queue and its thread (submit, drop-oldest, batch,
retry with backoff, stats, close); documents and inserts are their own modules.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pymongo
from pymongo.errors import ConfigurationError, PyMongoError

from capsync._log import RateLimitedLog
from capsync._retry import Backoff
from capsync.config.model import MongoCaptureConfig
from capsync.mongo.client import check_uri, client_options, is_transient, redact_uri, short_error
from capsync.mongo.documents import CollectorKeyLike, reading_document
from capsync.mongo.inserts import create_capture_index, insert_documents

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_QUEUE_SIZE",
    "MongoCaptureStats",
    "MongoCaptureWriter",
    "reading_document",
]

_log = logging.getLogger("capsync.mongo.capture")

DEFAULT_QUEUE_SIZE = 10_000
DEFAULT_BATCH_SIZE = 500
DEFAULT_FLUSH_INTERVAL_S = 0.1  # how long a reading may wait for a batch to fill
# A down server must never hold the writer thread long, nor close.
SERVER_SELECTION_TIMEOUT_MS = 2_000
CONNECT_TIMEOUT_MS = 2_000
SOCKET_TIMEOUT_MS = 10_000  # a server that stops answering mid-insert
ABANDON_WAIT_S = 3.0  # how long close waits for the thread once its client is closed
FIRST_RETRY_S = 0.1
MAX_RETRY_S = 2.0
STILL_DOWN_LOG_INTERVAL_S = 30.0
ERROR_LOG_INTERVAL_S = 5.0


@dataclass(frozen=True)
class MongoCaptureStats:
    inserted: int  # documents MongoDB acknowledged (or already held)
    dropped: int  # readings lost to a full queue, or still pending at close
    failed: int  # documents MongoDB refused, or readings that could not become a document
    queued: int  # readings waiting to be inserted (including a batch in flight)
    connected: bool  # the last attempt to reach MongoDB succeeded


# A queued reading: its arguments, or its document once converted (a retry keeps the _id).
_Pending = tuple[CollectorKeyLike, Mapping[str, Any], int, int] | dict[str, Any]


class MongoCaptureWriter:
    """Inserts tabular readings into MongoDB from a background thread (see the module doc).

    ``config`` is the ``mongo_capture_config`` (``uri``, ``database``,
    ``collection``); a malformed URI (not ``mongodb://`` or ``mongodb+srv://``, an
    unknown option) raises :class:`ValueError`; a server that is down does not.
    ``client_factory(uri, **options)`` makes the client, in the background thread
    so construction never blocks; options the URI sets itself win over capsync's
    defaults (2 s server selection and connect timeouts, 10 s socket timeout,
    ``journal=true`` so that "inserted" survives a crash of MongoDB).

    The thread starts at construction; :meth:`close` ends it.
    """

    def __init__(
        self,
        config: MongoCaptureConfig,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        batch_size: int = DEFAULT_BATCH_SIZE,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        client_factory: Callable[..., pymongo.MongoClient[dict[str, Any]]] = pymongo.MongoClient,
    ) -> None:
        check_uri(config.uri)
        if queue_size < 1 or batch_size < 1:
            raise ValueError("queue_size and batch_size must be >= 1")
        self.config = config
        self.uri_for_logs = redact_uri(config.uri)
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._client_factory = client_factory
        self._queue: collections.deque[_Pending] = collections.deque()
        self._lock = threading.Lock()  # guards _queue's length check and _dropped
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._deadline = float("inf")  # monotonic time close gives the thread
        self._closed = False
        self._abandoned = False  # close gave up on the thread (its batch counts as dropped)
        self._disabled: str | None = None  # a permanent configuration error
        self._inserted = 0
        self._dropped = 0
        self._failed = 0
        self._in_flight = 0
        self._connected = False
        self._ever_connected = False
        self._down_since: float | None = None
        self._last_down_log = 0.0
        self._indexes_ready = False
        self._client: pymongo.MongoClient[dict[str, Any]] | None = None
        self._errors_log = RateLimitedLog(_log, ERROR_LOG_INTERVAL_S)
        self._thread = threading.Thread(
            target=self._run, name=f"mongo capture {config.database}.{config.collection}",
            daemon=True,
        )  # fmt: skip
        self._thread.start()

    # ----- the hook: called by collectors' writer threads ---------------------------------

    def submit(
        self, key: CollectorKeyLike, readings: Mapping[str, Any], t_req_ns: int, t_recv_ns: int
    ) -> None:
        """Queue one reading just written to disk. Never blocks, never raises.

        Matches the collector's ``on_tabular`` hook. ``readings`` is kept by
        reference until the background thread converts it (the collector
        already hands results between threads the same way).
        """
        queue = self._queue
        with self._lock:
            if self._closed or self._disabled is not None:
                if self._disabled is not None:
                    self._failed += 1
                else:
                    self._dropped += 1
                return
            if len(queue) >= self._queue_size:
                queue.popleft()
                self._dropped += 1
            queue.append((key, readings, t_req_ns, t_recv_ns))
            full = len(queue) >= self._batch_size
        if full:
            self._wake.set()

    on_tabular = submit

    def stats(self) -> MongoCaptureStats:
        with self._lock:
            return MongoCaptureStats(
                inserted=self._inserted,
                dropped=self._dropped,
                failed=self._failed,
                queued=len(self._queue) + self._in_flight,
                connected=self._connected,
            )

    def close(self, timeout_s: float = 5.0) -> None:
        """Insert what is queued, for up to ``timeout_s``; what is left counts as dropped."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._deadline = time.monotonic() + max(timeout_s, 0.0)
        self._closing.set()
        self._wake.set()
        self._thread.join(max(timeout_s, 0.0))
        if self._thread.is_alive():
            # An insert begun before close (waiting for a server that is down) is cut
            # short by closing its client; the thread then gives up.
            self._close_client()
            self._thread.join(ABANDON_WAIT_S)
        with self._lock:
            left = len(self._queue)
            self._queue.clear()
            if self._thread.is_alive():  # should not happen: count its batch as lost now
                self._abandoned = True
                left += self._in_flight
                self._in_flight = 0
            self._dropped += left
        if left:
            _log.warning(
                "MongoDB capture: %d readings not inserted into %s before close",
                left, self.uri_for_logs,
            )  # fmt: skip
        self._close_client()

    def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def __enter__(self) -> MongoCaptureWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----- the background thread ------------------------------------------------------

    def _run(self) -> None:
        backoff = Backoff(FIRST_RETRY_S, MAX_RETRY_S)
        while True:
            if not self._closing.is_set():
                self._wake.wait(self._flush_interval_s)
                self._wake.clear()
            while True:
                batch = self._take()
                if not batch:
                    break
                try:
                    ok = self._write(batch)
                except Exception as exc:  # never let the thread die
                    self._count_failed(len(batch))
                    self._errors_log.log(
                        logging.ERROR, f"MongoDB capture: unexpected {type(exc).__name__}: {exc}"
                    )
                    ok = True
                finally:
                    with self._lock:
                        self._in_flight = 0
                if ok:
                    backoff.reset()
                    continue
                if self._closing.is_set() and time.monotonic() >= self._deadline:
                    return
                self._sleep(backoff.next())
            if self._closing.is_set():
                return

    def _sleep(self, seconds: float) -> None:
        if self._closing.is_set():
            time.sleep(max(0.0, min(seconds, self._deadline - time.monotonic())))
        else:
            self._closing.wait(seconds)

    def _take(self) -> list[_Pending]:
        queue = self._queue
        with self._lock:
            count = min(len(queue), self._batch_size)
            batch = [queue.popleft() for _ in range(count)]
            self._in_flight = count
        return batch

    def _requeue(self, docs: Sequence[dict[str, Any]]) -> None:
        """Put a batch back at the head; when that overflows, its oldest are dropped."""
        with self._lock:
            if self._abandoned:
                return
            room = self._queue_size - len(self._queue)
            excess = max(0, len(docs) - room)
            self._dropped += excess
            self._queue.extendleft(reversed(docs[excess:]))
            self._in_flight = 0

    def _count_failed(self, count: int) -> None:
        with self._lock:
            self._failed += count

    def _documents(self, batch: Sequence[_Pending]) -> list[dict[str, Any]]:
        docs: list[dict[str, Any]] = []
        for item in batch:
            if isinstance(item, dict):
                docs.append(item)
                continue
            try:
                docs.append(reading_document(*item))
            except (TypeError, ValueError, OverflowError, RecursionError) as exc:
                self._count_failed(1)
                self._errors_log.log(
                    logging.WARNING,
                    f"MongoDB capture: {item[0].resource_name}/{item[0].method}: "
                    f"reading not stored: {exc}",
                )
        return docs

    def _write(self, batch: Sequence[_Pending]) -> bool:
        """Insert one batch; False when MongoDB is unreachable (the batch is queued again)."""
        if self._disabled is not None:
            self._count_failed(len(batch))
            return True
        docs = self._documents(batch)
        if not docs:
            return True
        try:
            inserted = self._attempt(docs)
        except Exception as exc:
            if self._past_deadline():  # close is waiting: what is left counts as dropped
                self._requeue(docs)
                return False
            return self._failed_attempt(exc, docs)
        with self._lock:
            if self._abandoned:
                self._dropped -= len(docs)
            self._inserted += inserted
            self._failed += len(docs) - inserted
        self._came_up()
        return True

    def _attempt(self, docs: list[dict[str, Any]]) -> int:
        if self._client is None:
            if self._closed:
                raise RuntimeError("closed")
            options = client_options(
                self.config.uri,
                {
                    "serverSelectionTimeoutMS": SERVER_SELECTION_TIMEOUT_MS,
                    "connectTimeoutMS": CONNECT_TIMEOUT_MS,
                    "socketTimeoutMS": SOCKET_TIMEOUT_MS,
                    "appname": "capsync",
                    # "inserted" means it survives a crash of MongoDB.
                    "journal": True,
                },
            )
            self._client = self._client_factory(self.config.uri, **options)
        collection = self._client[self.config.database][self.config.collection]
        # No client-side operation timeout in normal running: it would stretch server
        # selection (serverSelectionTimeoutMS, short) to its own length. At close, bound
        # the whole attempt by the time left.
        with contextlib.ExitStack() as stack:
            if self._closing.is_set():
                stack.enter_context(pymongo.timeout(max(self._deadline - time.monotonic(), 0.05)))
            if not self._indexes_ready:
                create_capture_index(collection)
                self._indexes_ready = True
            return insert_documents(collection, docs, self._errors_log.log)

    def _failed_attempt(self, exc: Exception, docs: list[dict[str, Any]]) -> bool:
        if isinstance(exc, ConfigurationError):
            if self.config.uri.startswith("mongodb+srv://"):  # its DNS lookup failed
                self._requeue(docs)
                self._went_down(exc)
                return False
            self._disable(exc)  # check_uri let through something pymongo refuses
            self._count_failed(len(docs))
            return True
        if isinstance(exc, PyMongoError):
            if is_transient(exc):
                self._requeue(docs)
                self._went_down(exc)
                return False
            self._count_failed(len(docs))
            self._errors_log.log(
                logging.ERROR, f"MongoDB capture: insert refused: {short_error(exc)}"
            )
            self._came_up()
            return True
        raise exc

    def _past_deadline(self) -> bool:
        return self._closing.is_set() and time.monotonic() >= self._deadline

    def _disable(self, exc: BaseException) -> None:
        self._disabled = str(exc)
        _log.error(
            "MongoDB capture: %s unusable (%s); readings are not written to MongoDB",
            self.uri_for_logs, short_error(exc),
        )  # fmt: skip
        with self._lock:
            self._failed += len(self._queue)
            self._queue.clear()

    def _went_down(self, exc: BaseException) -> None:
        now = time.monotonic()
        self._connected = False
        if self._down_since is None:
            self._down_since = now
            self._last_down_log = now
            what = "is not reachable" if not self._ever_connected else "connection lost"
            _log.warning(
                "MongoDB capture: %s %s (%s); readings are queued (up to %d) and retried",
                self.uri_for_logs, what, short_error(exc), self._queue_size,
            )  # fmt: skip
        elif now - self._last_down_log >= STILL_DOWN_LOG_INTERVAL_S:
            self._last_down_log = now
            stats = self.stats()
            _log.warning(
                "MongoDB capture: %s still not reachable after %.0f s (%s); "
                "%d readings queued, %d dropped so far",
                self.uri_for_logs, now - self._down_since, short_error(exc),
                stats.queued, stats.dropped,
            )  # fmt: skip

    def _came_up(self) -> None:
        self._connected = True
        if self._down_since is not None:
            stats = self.stats()
            _log.info(
                "MongoDB capture: %s reachable again after %.1f s (%d readings dropped so far)",
                self.uri_for_logs, time.monotonic() - self._down_since, stats.dropped,
            )  # fmt: skip
            self._down_since = None
        elif not self._ever_connected:
            _log.info(
                "MongoDB capture: writing to %s (%s.%s)",
                self.uri_for_logs, self.config.database, self.config.collection,
            )  # fmt: skip
        self._ever_connected = True
