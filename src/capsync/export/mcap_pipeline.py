"""Tabular batches encoded on worker threads and handed to the MCAP writer in order.

A readings export is two kinds of work: encoding frames to JSON Message records
(``tabular_records_into``: the compiled one runs without the GIL) and compressing
chunks (zstd, which releases it too). :class:`TabularPipeline` sends each batch of
frames to a thread pool as it is found, keeps a few batches in flight, and hands
their records to :meth:`McapChunkWriter.add_records` strictly in the order they
were submitted, which cuts chunks exactly where encoding in place would. So the
file is the same bytes whatever the threads do and however many there are (the
:class:`InlineExecutor` runs everything in the caller, one at a time: the
serial reference the tests compare with).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future, wait
from dataclasses import dataclass, field
from typing import Any

from capsync.capture.reader import CaptureFileError
from capsync.export.mcap_writer import McapChunkWriter


def default_workers() -> int:
    """Threads for an export: two (encoding and compression side by side) when the
    machine has two cores to give them, else one."""
    return 2 if (os.cpu_count() or 1) >= 2 else 1


class InlineExecutor(Executor):
    """Runs each job when it is submitted, in the caller's thread."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # delivered by result(), as a pool's would be
            future.set_exception(exc)
        return future


@dataclass
class _Job:
    path: Any  # the capture file, named by the error a bad frame raises
    channel_id: int
    buffer: bytearray  # the records, once the job is done
    future: Future[Any]
    then: list[Callable[[], None]] = field(default_factory=list)  # after it is handed on


class TabularPipeline:
    """Encodes batches of tabular frames with ``fill`` (``tabular_records_into``) on
    ``executor`` and hands their records to ``writer`` in submission order, with at
    most ``in_flight`` batches waiting."""

    def __init__(
        self,
        writer: McapChunkWriter,
        fill: Callable[..., tuple[int, Any, Any]],
        executor: Executor,
        *,
        in_flight: int,
    ) -> None:
        self._writer = writer
        self._fill = fill
        self._executor = executor
        self._in_flight = max(0, in_flight)
        self._queue: deque[_Job] = deque()
        self._spares: list[bytearray] = []  # handed-on batches' buffers, for the next ones

    def submit(
        self,
        path: Any,
        data: Any,
        offsets: Any,
        lengths: Any,
        channel_id: int,
        first_sequence: int,
    ) -> None:
        """Encode the frames at ``offsets``/``lengths`` of ``data`` (kept open until
        :meth:`after_queued`'s callbacks run) as messages of ``channel_id``."""
        buffer = self._spares.pop() if self._spares else bytearray()
        future = self._executor.submit(
            self._fill,
            buffer,
            data,
            offsets,
            lengths,
            channel_id,
            first_sequence,
        )
        self._queue.append(_Job(path, channel_id, buffer, future))
        while len(self._queue) > self._in_flight:
            self._hand_oldest()

    def after_queued(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the batches submitted so far are handed on (now, if
        they are): a capture file's map is closed when its batches are encoded."""
        if self._queue:
            self._queue[-1].then.append(callback)
        else:
            callback()

    def _hand_oldest(self) -> None:
        job = self._queue.popleft()
        try:
            try:
                size, log_times, offsets = job.future.result()
            except ValueError as exc:
                raise CaptureFileError(job.path, str(exc)) from None
            held = sum(_done_bytes(queued) for queued in self._queue)
            self._writer.add_records(
                job.channel_id, job.buffer, size, log_times, offsets, held_bytes=held
            )
            self._spares.append(job.buffer)
        finally:
            for callback in job.then:
                callback()

    def drain(self) -> None:
        """Hand every batch on (before messages added to the writer directly)."""
        while self._queue:
            self._hand_oldest()

    def close(self) -> None:
        """Wait for the batches still in flight, drop them and run their callbacks
        (after an error: nothing more is written)."""
        while self._queue:
            job = self._queue.popleft()
            job.future.cancel()
            wait([job.future])  # a running job reads its file: that stays open till it ends
            for callback in job.then:
                callback()


def _done_bytes(job: _Job) -> int:
    """The record bytes a finished job holds (0 while it runs)."""
    if not job.future.done() or job.future.cancelled() or job.future.exception() is not None:
        return 0
    return int(job.future.result()[0])
