"""A collector: calls one method of one resource on a schedule and writes what it returns.

Two threads per collector, joined by a bounded queue (``capture_queue_size``):

* the capture thread keeps the schedule. It calls the method, stamps
  ``time_requested``/``time_received`` around the call, and queues the result.
  It never blocks on the disk: when the queue is full the reading is dropped
  and counted.
* the writer thread drains the queue into the capture streams in small slices
  (yielding the GIL between slices so the capture thread is never held up for
  long). A write error leaves the reading at the head of the queue; the writer
  reports the error at a bounded rate and retries with backoff until the cause
  goes away.

On close, capture stops first, then every queued reading is written and the
open file is completed to ``.capture``.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capsync._log import RateLimitedLog
from capsync._retry import Backoff
from capsync.capture.sink import RecordSink
from capsync.capture.stream import CaptureStream, CaptureWriteError
from capsync.methods import is_binary_method
from capsync.resources import BinaryResult, EndOfData, NoCaptureToStore, Resource
from capsync.service.realtime import PROCESS_SHARE, tune_capture_thread, tune_writer_thread
from capsync.service.schedule import Ticker

_log = logging.getLogger("capsync.collector")

DRAIN_INTERVAL_S = 0.002
DRAIN_SLICE = 4  # readings written one at a time between two GIL yields
BATCH_SLICE = 8  # plain tabular readings appended in one compiled loop between two yields
MAX_WRITE_BACKOFF_S = 5.0
FIRST_WRITE_BACKOFF_S = 0.05


@dataclass(frozen=True)
class CollectorKey:
    """What identifies a collector across reconfigurations."""

    api: str
    resource_name: str
    method: str


@dataclass(frozen=True)
class CollectorSettings:
    frequency_hz: float
    additional_params: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    queue_size: int = 250
    max_file_size_bytes: int = 262_144
    fsync_interval_s: float = 1.0
    cache_size_kb: float | None = None  # micro-server mode: an in-memory ring, no files
    realtime_priority: int = 0  # SCHED_FIFO priority of the capture thread; 0: normal
    # With realtime_priority: the process's other threads under SCHED_FIFO too, below the
    # collectors, and a short GIL switch interval (capsync.service.realtime.ProcessShare).
    realtime_whole_process: bool = False


@dataclass(frozen=True)
class CollectorStats:
    captures: int  # method calls that returned a result
    skipped_ticks: int  # ticks missed because calls or the machine ran late
    errors: int  # method calls that raised, or results that could not be encoded
    write_errors: int  # failed attempts to write to disk
    dropped: int  # readings lost: queue full, or disk unwritable past the memory bound
    queue_depth: int  # readings waiting for the writer
    records_written: int  # readings handed to the capture streams
    bytes_written: int  # bytes handed to the OS
    files: int  # capture files completed
    finished: bool  # the resource said its data ended (a non-looping replay)


class Collector:
    def __init__(
        self,
        key: CollectorKey,
        resource: Resource,
        settings: CollectorSettings,
        capture_dir: str | os.PathLike[str],
        *,
        on_tabular: Callable[[CollectorKey, Mapping[str, Any], int, int], None] | None = None,
        sink_factory: Callable[[str], RecordSink] | None = None,
    ) -> None:
        if settings.frequency_hz <= 0:
            raise ValueError(f"{key.resource_name}/{key.method}: frequency must be > 0")
        self.key = key
        self.resource = resource
        self.settings = settings
        self.capture_dir = Path(capture_dir)
        self._on_tabular = on_tabular
        # Makes the writer's sink for a MIME type; default: a capture stream (files on disk).
        self._sink_factory = sink_factory
        self._binary = is_binary_method(key.method)
        self._params = dict(settings.additional_params)
        self._streams: dict[str, RecordSink] = {}
        self._streams_lock = threading.Lock()
        if not self._binary:
            self._stream_for("")  # open now so folder errors surface at start
        self._queue: collections.deque[tuple[Any, int, int]] = collections.deque()
        self._wake = threading.Event()
        self._stop_capture = threading.Event()
        self._capture_done = threading.Event()
        self._stop_writer = threading.Event()
        self._abandon = threading.Event()  # close gave up waiting for the disk
        self._ticker = Ticker(int(1e9 / settings.frequency_hz))
        self._errors_log = RateLimitedLog(_log)
        self._captures = 0
        self._errors = 0
        self._write_errors = 0
        self._dropped = 0
        self._records_written = 0
        self._finished = False
        self.realtime = False  # the capture thread runs under SCHED_FIFO
        self._closed_streams_bytes = 0
        self._closed_streams_files = 0
        label = f"{key.resource_name}/{key.method}"
        self.label = label
        self._capture_thread = threading.Thread(
            target=self._capture_loop, name=f"capture {label}", daemon=True
        )
        self._writer_thread = threading.Thread(
            target=self._writer_loop, name=f"write {label}", daemon=True
        )

    # ----- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        self._writer_thread.start()
        self._capture_thread.start()

    def retime(self, frequency_hz: float) -> None:
        """Change the capture frequency without stopping (queued readings are kept)."""
        self._ticker.retime(int(1e9 / frequency_hz))
        self.settings = dataclasses.replace(self.settings, frequency_hz=frequency_hz)

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop capturing, write every queued reading, complete the open files."""
        self._stop_capture.set()
        if self._capture_thread.is_alive():
            self._capture_thread.join()
        self._capture_done.set()
        self._stop_writer.set()
        self._wake.set()
        if self._writer_thread.is_alive():
            self._writer_thread.join(timeout_s)
        if self._writer_thread.is_alive():
            _log.error("%s: writer did not finish within %.0f s", self.label, timeout_s)
            self._abandon.set()
            self._writer_thread.join(MAX_WRITE_BACKOFF_S + 1)
        if self._queue:
            self._dropped += len(self._queue)
            _log.error(
                "%s: %d readings could not be written before close", self.label, len(self._queue)
            )
            self._queue.clear()
        with self._streams_lock:
            streams = list(self._streams.values())
            self._streams.clear()
        for stream in streams:
            try:
                stream.close()
            except OSError as exc:
                _log.error("%s: closing %s failed: %s", self.label, stream.folder, exc)
            stats = stream.stats()
            self._closed_streams_bytes += stats.bytes_written
            self._closed_streams_files += stats.files_completed

    def flush_to_capture(self) -> None:
        """Complete the open tabular file now (before a sync pass)."""
        with self._streams_lock:
            streams = list(self._streams.values())
        for stream in streams:
            if not stream.is_binary:
                try:
                    stream.flush_to_capture()
                except OSError as exc:
                    self._errors_log.log(logging.WARNING, f"{self.label}: {exc}")

    def stats(self) -> CollectorStats:
        with self._streams_lock:
            stream_stats = [s.stats() for s in self._streams.values()]
        return CollectorStats(
            captures=self._captures,
            skipped_ticks=self._ticker.skipped,
            errors=self._errors,
            write_errors=self._write_errors,
            dropped=self._dropped,
            queue_depth=len(self._queue),
            records_written=self._records_written,
            bytes_written=self._closed_streams_bytes + sum(s.bytes_written for s in stream_stats),
            files=self._closed_streams_files + sum(s.files_completed for s in stream_stats),
            finished=self._finished,
        )

    # ----- capture thread ---------------------------------------------------------------

    def _capture_loop(self) -> None:
        capture = self.resource.capture
        method = self.key.method
        params = self._params
        queue = self._queue
        queue_size = self.settings.queue_size
        wake_at = max(1, queue_size // 2)
        time_ns = time.time_ns
        self.realtime = tune_capture_thread(self.label, self.settings.realtime_priority)
        shares = self.realtime and self.settings.realtime_whole_process
        if shares:
            PROCESS_SHARE.enter(self.settings.realtime_priority)
        self._ticker.restart()
        try:
            while self._ticker.wait(self._stop_capture):
                requested = time_ns()
                try:
                    result = capture(method, params)
                except EndOfData as exc:
                    self._finished = True
                    _log.info("%s: %s; capture stopped", self.label, exc)
                    return
                except NoCaptureToStore:
                    continue
                except Exception as exc:
                    self._errors += 1
                    self._errors_log.log(
                        logging.WARNING, f"{self.label}: {type(exc).__name__}: {exc}"
                    )
                    continue
                received = time_ns()
                self._captures += 1
                if len(queue) >= queue_size:
                    self._dropped += 1
                    self._errors_log.log(
                        logging.WARNING,
                        f"{self.label}: capture queue full ({queue_size}); dropping readings",
                    )
                    self._wake.set()
                    continue
                queue.append((result, requested, received))
                if len(queue) >= wake_at:
                    self._wake.set()
        finally:
            if shares:
                PROCESS_SHARE.leave()
            self._capture_done.set()
            self._wake.set()

    # ----- writer thread ----------------------------------------------------------------

    def _writer_loop(self) -> None:
        if self.settings.realtime_priority > 1:
            # One step below the capture thread: the writer holds the GIL the capture
            # thread needs, so it must not be pre-empted by other processes meanwhile.
            tune_writer_thread(self.settings.realtime_priority - 1)
        backoff = Backoff(FIRST_WRITE_BACKOFF_S, MAX_WRITE_BACKOFF_S)
        while True:
            self._wake.wait(DRAIN_INTERVAL_S)
            self._wake.clear()
            if self._drain():
                backoff.reset()
            else:  # the disk refused: wait, then retry the same reading
                if self._abandon.wait(backoff.next()):
                    return
                continue
            if self._stop_writer.is_set() and self._capture_done.is_set() and not self._queue:
                return

    def _drain(self) -> bool:
        """Write queued readings; False when a write error leaves one at the head.

        Plain tabular readings go in slices of ``BATCH_SLICE`` through the stream's
        ``append_queued`` (one compiled loop, so the writer holds the GIL for a few µs per
        reading instead of a Python frame each); anything else, and any reading that
        loop refuses, goes one at a time through :meth:`_write`.
        """
        queue = self._queue
        batch = self._batch_append()
        written = 0
        while queue:
            if batch is not None:
                try:
                    count = batch(queue, BATCH_SLICE)
                except Exception:  # the head reading goes the slow way below
                    count = 0
                if count:
                    self._records_written += count
                    time.sleep(0)  # let the capture thread keep its schedule
                    continue
                if not queue:
                    break
            result, requested, received = queue[0]
            try:
                self._write(result, requested, received)
            except CaptureWriteError as exc:
                queue.popleft()
                self._dropped += 1
                self._write_errors += 1
                self._errors_log.log(logging.ERROR, f"{self.label}: reading dropped: {exc}")
                continue
            except OSError as exc:
                self._write_errors += 1
                self._errors_log.log(logging.ERROR, f"{self.label}: cannot write: {exc}")
                return False
            except (TypeError, ValueError) as exc:
                queue.popleft()
                self._errors += 1
                self._errors_log.log(logging.WARNING, f"{self.label}: result not stored: {exc}")
                continue
            queue.popleft()
            self._records_written += 1
            written += 1
            if written % DRAIN_SLICE == 0:
                time.sleep(0)  # let the capture thread keep its schedule
        self._report_buffered_write_errors()
        return True

    def _batch_append(self) -> Callable[[Any, int], int] | None:
        """The tabular stream's ``append_queued``, when readings need nothing else."""
        if self._binary or self._on_tabular is not None:
            return None
        return getattr(self._stream_for(""), "append_queued", None)

    def _report_buffered_write_errors(self) -> None:
        with self._streams_lock:
            streams = list(self._streams.values())
        for stream in streams:
            error = stream.write_error
            if error is not None:
                self._write_errors += 1
                self._errors_log.log(logging.ERROR, f"{self.label}: cannot write: {error}")

    def _write(self, result: Any, requested: int, received: int) -> None:
        if isinstance(result, BinaryResult):
            self._write_binary(result, requested, received)
        elif isinstance(result, list):
            for item in result:
                if not isinstance(item, BinaryResult):
                    raise TypeError(f"expected binary results, got {type(item).__name__}")
                self._write_binary(item, requested, received)
        elif self._binary:
            raise TypeError(
                f"{self.key.method} must return binary data, got {type(result).__name__}"
            )
        else:
            self._stream_for("").append(result, requested, received)
            if self._on_tabular is not None:
                self._on_tabular(self.key, result, requested, received)

    def _write_binary(self, result: BinaryResult, requested: int, received: int) -> None:
        if result.time_requested_ns is not None:  # a reading held back (filtered camera)
            requested = result.time_requested_ns
            received = result.time_received_ns or requested
        stream = self._stream_for(result.mime_type)
        if result.annotations:
            stream.append_binary(
                result.payload, requested, received, annotations=result.annotations
            )
        else:
            stream.append_binary(result.payload, requested, received)

    def _stream_for(self, mime_type: str) -> RecordSink:
        stream = self._streams.get(mime_type)
        if stream is not None:
            return stream
        with self._streams_lock:
            stream = self._streams.get(mime_type)
            if stream is None and self._sink_factory is not None:
                stream = self._sink_factory(mime_type)
                self._streams[mime_type] = stream
            elif stream is None:
                stream = CaptureStream(
                    self.capture_dir,
                    component_type=self.key.api,
                    component_name=self.key.resource_name,
                    method_name=self.key.method,
                    tags=self.settings.tags,
                    method_parameters=string_params(self._params),
                    mime_type=mime_type,
                    max_file_size_bytes=self.settings.max_file_size_bytes,
                    fsync_interval_s=self.settings.fsync_interval_s,
                )
                self._streams[mime_type] = stream
            return stream


def string_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """additional_params as the header stores them: strings (nested values as their str)."""
    return {
        key: value if isinstance(value, str | int | float | bool) else str(value)
        for key, value in params.items()
    }
