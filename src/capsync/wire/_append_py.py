"""Pure-Python twin of ``capsync.wire._append``: the per-reading path of a tabular stream.

``TabularAppender.append`` takes the stream's lock, encodes the reading into
the record buffer and counts it; only when the stream has no open file, is
closed, holds too much unwritten data, filled a write chunk or filled its
file does it call back into the stream (lock still held).
"""

from __future__ import annotations

import threading
import time
from typing import Any

__all__ = ["TabularAppender"]  # the same as the compiled module's (tests/test_append.py)


class TabularAppender:
    """Appends tabular readings to ``buffer``; see the module docstring."""

    def __init__(
        self,
        hooks: Any,
        buffer: Any,
        wrap_key: str | None,
        max_file_size_bytes: int,
        max_buffered_bytes: int,
        write_chunk_bytes: int,
    ) -> None:
        self._lock = threading.Lock()
        self.hooks = hooks
        self.buffer = buffer
        self.wrap_key = wrap_key
        self.fd = -1  # the open .prog file descriptor, -1 when none
        self.closed = False
        self.file_nbytes = 0  # bytes of the open file handed to the OS
        self.file_records = 0  # records in the open file, buffered ones included
        self.records = 0  # records accepted since the stream opened
        self.bytes_written = 0  # bytes handed to the OS, headers included
        self.files_completed = 0  # files renamed to .capture
        self.write_errors = 0  # failed write attempts
        self.max_file_size_bytes = max_file_size_bytes
        self.max_buffered_bytes = max_buffered_bytes
        self.write_chunk_bytes = write_chunk_bytes

    def append(
        self,
        readings: Any,
        time_requested_ns: int | None = None,
        time_received_ns: int | None = None,
    ) -> None:
        """Append one tabular reading (a dict of JSON-like values)."""
        if time_requested_ns is None or time_received_ns is None:
            now = time.time_ns()
            if time_requested_ns is None:
                time_requested_ns = now
            if time_received_ns is None:
                time_received_ns = now
        with self._lock:
            buffer = self.buffer
            if self.fd < 0 or self.closed or buffer.nbytes >= self.max_buffered_bytes:
                self.hooks._prepare_append()
            buffer.append_readings(readings, time_requested_ns, time_received_ns, self.wrap_key)
            self.records += 1
            self.file_records += 1
            buffered = buffer.nbytes
            if self.file_nbytes + buffered >= self.max_file_size_bytes:
                self.hooks._file_full()
            elif buffered >= self.write_chunk_bytes:
                self.hooks._chunk_full()

    def append_queued(self, queue: Any, limit: int) -> int:
        """Append readings from the head of ``queue`` (a deque of ``(readings,
        time_requested_ns, time_received_ns)`` tuples), popping each once it is stored.

        Stops after ``limit`` readings, at an empty queue, or at an item whose readings
        is not a ``dict`` (left at the head for the caller); an error raised by an append
        leaves its item at the head too. Returns how many were appended.
        """
        count = 0
        while count < limit and queue:
            readings, time_requested_ns, time_received_ns = queue[0]
            if type(readings) is not dict:
                break
            self.append(readings, time_requested_ns, time_received_ns)
            queue.popleft()
            count += 1
        return count

    def acquire(self, blocking: bool = True) -> bool:
        """Take the stream's lock; with ``blocking=False`` only if it is free (True if taken)."""
        return self._lock.acquire(blocking)

    def release(self) -> None:
        """Release the stream's lock."""
        self._lock.release()

    def __enter__(self) -> TabularAppender:
        self._lock.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()
