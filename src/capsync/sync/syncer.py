"""``Syncer``: one pass uploads every eligible file with a pool of workers.

A pass lists the completed capture files and the ready arbitrary files,
then uploads them with up to ``maximum_num_sync_threads`` workers, each
keeping up to ``files_in_flight_per_worker`` files, and at most
``BYTES_IN_FLIGHT_PER_WORKER`` of them, in flight (one lane, a thread, per
file: see :mod:`capsync.sync.in_flight`). Files bigger than one request stay
one per worker, which bounds the memory of client and server. A lane makes one
attempt at a file at a time: a file waiting out its backoff goes back to the
pass's :class:`~capsync.sync.retryqueue.RetryQueue` and holds no lane, so one
failing file never keeps the others back. A file is claimed before its upload
(in this process by a set, across processes by a non-blocking ``flock``), so
no two workers ever upload the same file at once.
A file is deleted only once the server confirmed every request for it.

Failures (see :mod:`capsync.sync.errors`): a transient one is retried with
exponential backoff; an unreachable server, or one that refuses the key,
pauses every worker (longer, doubling, capped at ``max_backoff_s``); a file the
server refuses as invalid, or one that does not parse, is moved to
``<capture_dir>/failed/`` with an ERROR log line saying why. A pass stops
retrying after ``retry_for_s``; what is left is tried again by a later pass.

:meth:`Syncer.close` stops gracefully: no new call starts, calls in flight may
finish (up to ``timeout_s``, default 10 s) and their completed files are
deleted; what is still in flight then is cancelled (its file resumes later).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import grpc

from capsync._log import RateLimitedLog
from capsync._retry import Backoff
from capsync.capture.reader import CaptureFileError
from capsync.sync import file_job, files
from capsync.sync.connection import (
    DEFAULT_RPC_TIMEOUT_S,
    CallsStopped,
    SyncTarget,
    UploadClient,
    open_channel,
)
from capsync.sync.errors import (
    BACKOFF_JITTER,
    FIRST_BACKOFF_S,
    ErrorKind,
    Gate,
    classify,
    describe_rpc_error,
)
from capsync.sync.file_job import BUSY
from capsync.sync.files import SyncItem
from capsync.sync.in_flight import BYTES_IN_FLIGHT_PER_WORKER as BYTES_PER_WORKER
from capsync.sync.in_flight import FILES_IN_FLIGHT_PER_WORKER, ByteBudget
from capsync.sync.pass_state import Entry, Outcome, PassState
from capsync.sync.report import (
    ProgressFn,
    SyncClosedError,
    SyncReport,
    SyncSettings,
    SyncStats,
    SyncTotals,
    log_pass,
)
from capsync.sync.retryqueue import RetryQueue
from capsync.sync.upload import REQUEST_MAX_BYTES

_log = logging.getLogger("capsync.sync")

# How long a scheduled pass keeps retrying a file before leaving it to the next pass.
DEFAULT_RETRY_FOR_S = 300.0
# How long a graceful stop waits for the uploads in flight before cancelling them.
DEFAULT_STOP_TIMEOUT_S = 10.0
STOPPED = "sync stopped before the upload finished"


class Syncer:
    """Uploads the files of one capture dir (and its additional sync paths) to ``target``."""

    def __init__(
        self,
        settings: SyncSettings,
        target: SyncTarget,
        *,
        request_max_bytes: int = REQUEST_MAX_BYTES,
        rpc_timeout_s: float = DEFAULT_RPC_TIMEOUT_S,
        retry_for_s: float | None = DEFAULT_RETRY_FOR_S,
        first_backoff_s: float = FIRST_BACKOFF_S,
        files_in_flight_per_worker: int = FILES_IN_FLIGHT_PER_WORKER,
    ) -> None:
        self.settings = settings
        self.files_in_flight_per_worker = max(1, files_in_flight_per_worker)
        self._big_slots = threading.BoundedSemaphore(max(1, settings.max_workers))
        self._bytes = ByteBudget(max(1, settings.max_workers) * BYTES_PER_WORKER)
        self.target = target
        self.request_max_bytes = request_max_bytes
        self.retry_for_s = retry_for_s
        self.first_backoff_s = first_backoff_s
        self._channel = open_channel(target)
        self._client = UploadClient(
            self._channel, target, rpc_timeout_s=rpc_timeout_s, retention=dict(settings.retention)
        )
        self._stop = threading.Event()
        self._gate = Gate(target.max_backoff_s)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._running_passes = 0
        self._queues: set[RetryQueue[Entry]] = set()  # of the passes running now
        self._claimed: set[Path] = set()
        self._errors_log = RateLimitedLog(_log, 10.0)
        self._totals = SyncTotals()  # guarded by self._lock

    @property
    def client(self) -> UploadClient:
        """The connection uploads go through (also used for micro-server ring uploads)."""
        return self._client

    @property
    def capture_dir(self) -> Path:
        return Path(self.settings.capture_dir)

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    # ----- queries ----------------------------------------------------------------------

    def uploading(self) -> frozenset[Path]:
        """The files claimed right now: being uploaded (never delete one of these)."""
        with self._lock:
            return frozenset(self._claimed)

    def claim(self, path: Path) -> bool:
        """Claim ``path`` (absolute) so no worker uploads it; False when it is claimed already.

        For others that act on capture files (disk-pressure deletion); undo with
        :meth:`release`.
        """
        with self._lock:
            if path in self._claimed:
                return False
            self._claimed.add(path)
            return True

    def release(self, path: Path) -> None:
        with self._lock:
            self._claimed.discard(path)

    def stats(self) -> SyncStats:
        with self._lock:
            return self._totals.stats(uploading=len(self._claimed))

    def eligible(self) -> list[SyncItem]:
        """What a pass would upload now: capture files first, then arbitrary files."""
        settings = self.settings
        items = files.capture_files(settings.capture_dir)
        if settings.additional_sync_paths:
            items += files.arbitrary_files(
                settings.additional_sync_paths,
                capture_dir=settings.capture_dir,
                min_age_s=settings.file_last_modified_s,
            )
        return items

    # ----- a pass -----------------------------------------------------------------------

    def sync_once(
        self,
        progress: ProgressFn | None = None,
        *,
        retry_for_s: float | Literal["default"] | None = "default",
        retry_rejected: bool = True,
    ) -> SyncReport:
        """Upload every eligible file once; return what happened.

        ``retry_for_s`` bounds how long failed uploads are retried (None: until
        :meth:`close`); ``retry_rejected=False`` ends the pass at once when the
        server refuses the key (a manual sync), instead of waiting for a fixed key.
        """
        with self._lock:
            if self._stop.is_set():
                raise SyncClosedError("the syncer is closed")
            self._running_passes += 1
        try:
            return self._run_pass(
                progress, self.retry_for_s if retry_for_s == "default" else retry_for_s,
                retry_rejected,
            )  # fmt: skip
        finally:
            with self._lock:
                self._running_passes -= 1
                self._idle.notify_all()

    def _run_pass(
        self, progress: ProgressFn | None, retry_for_s: float | None, retry_rejected: bool
    ) -> SyncReport:
        started = time.monotonic()
        files.remove_orphan_resume_files(self.settings.capture_dir)
        items = self.eligible()
        state = PassState(
            items,
            progress,
            None if retry_for_s is None else started + retry_for_s,
            retry_rejected,
        )
        report = SyncReport(files_total=len(items))
        state.start()
        if items:
            backoff_max_s = self.target.max_backoff_s
            queue = RetryQueue(
                [
                    Entry(i, Backoff(self.first_backoff_s, backoff_max_s, jitter=BACKOFF_JITTER))
                    for i in items
                ]
            )
            with self._lock:
                self._queues.add(queue)
                if self._stop.is_set():
                    queue.hurry()
            lanes = self.settings.max_workers * self.files_in_flight_per_worker
            workers = max(1, min(lanes, len(items)))
            pool = ThreadPoolExecutor(workers, thread_name_prefix="capsync-sync")
            report_lock = threading.Lock()
            try:
                futures = [
                    pool.submit(self._work, queue, state, report, report_lock)
                    for _ in range(workers)
                ]
                for future in futures:
                    future.result()
            except BaseException:
                self._abort()  # e.g. Ctrl-C: cancel the calls in flight, keep the files
                raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
                with self._lock:
                    self._queues.discard(queue)
        report.elapsed_s = time.monotonic() - started
        self._record_pass(report)
        return report

    def _work(
        self,
        queue: RetryQueue[Entry],
        state: PassState,
        report: SyncReport,
        report_lock: threading.Lock,
    ) -> None:
        """One lane: an attempt at a time, until every file of the pass is settled."""
        while (entry := queue.take()) is not None:
            retry_at: float | None = None
            try:
                result = self._sync_item(entry, state)
                if isinstance(result, float):
                    retry_at = result
                else:
                    with report_lock:
                        result.add_to(report, entry.item.path)
            finally:
                queue.done(entry, retry_at)

    def _record_pass(self, report: SyncReport) -> None:
        with self._lock:
            self._totals.add(report, not_errors=(BUSY, STOPPED))
        log_pass(report)

    # ----- one file ---------------------------------------------------------------------

    def _sync_item(self, entry: Entry, state: PassState) -> Outcome | float:
        """One attempt at ``entry``: its outcome, or the ``time.monotonic()`` of its next try."""
        item = entry.item
        result: Outcome | float
        try:
            if state.aborted is not None:
                result = self._leave(entry, state.aborted)
            elif self._stop.is_set():
                result = self._leave(entry, STOPPED)
            else:
                result = self._claimed_upload(entry, state)
        except Exception as exc:  # a bug must not take the pass (or the scheduler) down
            _log.exception("%s: unexpected error while syncing", item.path)
            result = self._leave(entry, f"unexpected error: {exc}")
        if isinstance(result, Outcome):
            state.add_bytes(max(0, item.size_bytes - result.file_bytes), file_done=True)
        return result

    @staticmethod
    def _leave(entry: Entry, reason: str) -> Outcome:
        entry.outcome.status = "left"
        entry.outcome.reason = reason
        return entry.outcome

    def _claimed_upload(self, entry: Entry, state: PassState) -> Outcome | float:
        size = entry.item.size_bytes
        with self._bytes.hold(min(size, self.request_max_bytes)):
            if size <= self.request_max_bytes:
                return self._claimed_upload_now(entry, state)
            with self._big_slots:  # big files in flight: at most one per worker
                return self._claimed_upload_now(entry, state)

    def _claimed_upload_now(self, entry: Entry, state: PassState) -> Outcome | float:
        item = entry.item
        if not self.claim(item.path):
            return Outcome("left", BUSY)
        try:
            with file_job.locked(item.path) as refused:
                return refused or self._attempt(entry, state)
        finally:
            self.release(item.path)

    def _attempt(self, entry: Entry, state: PassState) -> Outcome | float:
        """Upload ``entry`` once: its outcome, or when to try again (it holds no worker then)."""
        item, outcome = entry.item, entry.outcome
        outcome.status = "left"
        waited = self._wait_for_gate(state)
        if waited is not None:
            outcome.reason = waited
            return outcome
        try:
            return self._upload(item, outcome, state)
        except FileNotFoundError:
            outcome.status = "gone"
            return outcome
        except CaptureFileError as exc:
            return self._move(item, outcome, f"it does not parse: {exc.problem}")
        except CallsStopped:
            outcome.reason = STOPPED
            return outcome
        except grpc.RpcError as exc:
            if self._stop.is_set():
                outcome.reason = STOPPED
                return outcome
            kind = classify(exc.code() if hasattr(exc, "code") else None)
            reason = describe_rpc_error(exc)
        except ValueError:
            if self._stop.is_set():  # grpc: "Cannot invoke RPC on closed channel!"
                outcome.reason = STOPPED
                return outcome
            raise
        except OSError as exc:
            outcome.reason = f"cannot read or delete it: {exc.strerror or exc}"
            _log.warning("%s: %s", item.path, outcome.reason)
            return outcome
        if kind is ErrorKind.PERMANENT:
            return self._move(item, outcome, f"the server refused it: {reason}")
        if kind is ErrorKind.REJECTED:
            reason = f"the server refused the API key (key id {self.target.key_id!r}): {reason}"
            if not state.retry_rejected:
                if state.aborted is None:
                    state.aborted = reason
                    _log.error("%s; files are kept", reason)
                outcome.reason = reason
                return outcome
            self._errors_log.log(logging.ERROR, f"{reason}; files are kept, retrying")
            return self._retry_after(self._gate.close_for(kind, reason), outcome, state, reason)
        if kind is ErrorKind.UNREACHABLE:
            reason = f"cannot reach {self.target.address}: {reason}"
            self._errors_log.log(logging.WARNING, f"{reason}; retrying")
            return self._retry_after(self._gate.close_for(kind, reason), outcome, state, reason)
        self._errors_log.log(logging.WARNING, f"{item.path}: upload failed: {reason}; retrying")
        return self._retry_after(entry.backoff.next(), outcome, state, reason)

    @staticmethod
    def _retry_after(
        delay_s: float, outcome: Outcome, state: PassState, reason: str
    ) -> Outcome | float:
        """When to try again, or the file left with ``reason`` when the pass is out of time."""
        if state.out_of_time(delay_s):
            outcome.reason = reason
            return outcome
        return time.monotonic() + delay_s

    def _wait_for_gate(self, state: PassState) -> str | None:
        """Wait while the gate is shut; a reason when the pass must leave the file instead."""
        while True:
            delay = self._gate.remaining_s()
            if delay <= 0:
                return STOPPED if self._stop.is_set() else None
            if state.out_of_time(delay):
                return self._gate.reason or "the server was not reachable in time"
            if self._stop.wait(delay):
                return STOPPED

    def _upload(self, item: SyncItem, outcome: Outcome, state: PassState) -> Outcome:
        return file_job.upload_and_delete(
            self._client,
            item,
            outcome,
            state,
            request_max_bytes=self.request_max_bytes,
            tags=self.settings.tags,
            on_confirmed=self._gate.open,
        )

    def _move(self, item: SyncItem, outcome: Outcome, reason: str) -> Outcome:
        return file_job.move_aside(self.capture_dir, item, outcome, reason)

    # ----- lifecycle --------------------------------------------------------------------

    def _abort(self) -> None:
        with self._lock:
            self._stop.set()
            for queue in self._queues:
                queue.hurry()
        self._channel.close()  # calls in flight end with CANCELLED; their files stay

    def close(self, timeout_s: float = DEFAULT_STOP_TIMEOUT_S) -> None:
        """Stop gracefully: start nothing new, let the calls in flight finish.

        Files the server confirmed are deleted. Calls still in flight after
        ``timeout_s`` are cancelled; their files stay (resuming after what
        the server confirmed) for the next run.
        """
        with self._lock:
            self._stop.set()
            self._client.refuse_new_calls()
            for queue in self._queues:
                queue.hurry()
        if not self._wait_idle(timeout_s):
            _log.warning(
                "sync: uploads still in flight after the %.1f s stop timeout are cancelled; "
                "their files stay for the next run",
                timeout_s,
            )
        self._channel.close()  # calls still in flight end with CANCELLED
        self._wait_idle(2.0)

    def _wait_idle(self, timeout_s: float) -> bool:
        """Wait until no pass runs; False when one still does after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._running_passes:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def __enter__(self) -> Syncer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
