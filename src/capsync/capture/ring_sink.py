"""micro-server mode's collector side: readings encoded into an in-memory ring.

When a capture method sets ``cache_size_kb`` (viam-micro-server's key), its
collector keeps its records in a :class:`~capsync.capture.ring.RecordRing` of
``cache_size_kb * 1000`` bytes instead of capture files. :class:`RingCollectorSink`
encodes each reading into one framed ``SensorData`` with the wire module and
pushes it into the ring. A full ring overwrites its oldest whole record; a
record that can never be uploaded (larger than the ring or than one request
allows) raises :class:`~capsync.capture.ring.RecordTooLargeError` and is
counted. The upload side is :mod:`capsync.sync.ring_upload`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from capsync import wire
from capsync._log import RateLimitedLog
from capsync.capture.header import annotated_record
from capsync.capture.ring import RecordRing, RecordTooLargeError
from capsync.capture.sink import CaptureSpec, RecordSink
from capsync.capture.stream import StreamStats, default_times

if TYPE_CHECKING:
    from capsync.capture.stream import CaptureStream

_log = logging.getLogger("capsync.microserver")

MIN_CACHE_BYTES = 1000


def cache_capacity_bytes(cache_size_kb: float) -> int:
    """``cache_size_kb * 1000`` bytes; less than 1000 bytes is a config error (ValueError)."""
    capacity = int(cache_size_kb * 1000)
    if capacity < MIN_CACHE_BYTES:
        raise ValueError(f"cache_size_kb must be at least 1 (1000 bytes), got {cache_size_kb!r}")
    return capacity


class RingCollectorSink:
    """What a collector writes to instead of a ``CaptureStream`` in micro-server mode.

    A :class:`~capsync.capture.sink.RecordSink`: ``write_error`` is always None
    (memory does not fail), ``flush_to_capture`` and ``close`` have nothing to
    complete, ``stats().bytes_written`` counts bytes put in the ring. ``header``
    is the ``DataCaptureMetadata`` a capture file of the same collector would
    start with.
    """

    def __init__(self, ring: RecordRing, spec: CaptureSpec) -> None:
        self.ring = ring
        self.spec = spec
        self.label = spec.label
        self.folder = f"<memory ring of {ring.capacity_bytes} bytes>"
        self.header = spec.header
        self._binary = spec.is_binary
        self._wrap_key = spec.wrap_key
        self._mime_enum = spec.mime_enum
        self._wire = wire.wire()
        self._buffer = self._wire.RecordBuffer(4096)
        self._lock = threading.Lock()
        self._records = 0
        self._bytes = 0
        self._overwritten = 0
        self._too_large = 0
        self._closed = False
        self._overwrite_log = RateLimitedLog(_log, 60.0)

    @property
    def is_binary(self) -> bool:
        return self._binary

    @property
    def write_error(self) -> OSError | None:
        return None

    def append(
        self,
        readings: Mapping[str, Any],
        time_requested_ns: int | None = None,
        time_received_ns: int | None = None,
    ) -> int:
        """Encode one tabular reading into the ring; return the records it overwrote."""
        if self._binary:
            raise TypeError(f"{self.label} is a binary method: use append_binary")
        requested, received = default_times(time_requested_ns, time_received_ns)
        with self._lock:
            self._check_open()
            self._buffer.clear()
            try:
                self._buffer.append_readings(readings, requested, received, self._wrap_key)
                record = self._buffer.getvalue()
            finally:
                self._buffer.clear()
            return self._push(record)

    def append_binary(
        self,
        payload: Any,
        time_requested_ns: int | None = None,
        time_received_ns: int | None = None,
        *,
        annotations: bytes = b"",
    ) -> int:
        """Encode one binary reading into the ring; return the records it overwrote.

        ``annotations`` (a serialized ``viam.app.data.v1.Annotations``) goes into
        the record's ``SensorMetadata``, as in a capture file."""
        if not self._binary:
            raise TypeError(f"{self.label} is a tabular method: use append")
        view = memoryview(payload).cast("B")
        requested, received = default_times(time_requested_ns, time_received_ns)
        with self._lock:
            self._check_open()
            self._buffer.clear()
            try:
                if annotations:
                    self._buffer.append_frame(
                        annotated_record(view, requested, received, self._mime_enum, annotations)
                    )
                    record = self._buffer.getvalue()
                else:
                    self._buffer.append_binary_prefix(
                        view.nbytes, requested, received, self._mime_enum
                    )
                    record = self._buffer.getvalue() + view.tobytes()
            finally:
                self._buffer.clear()
            return self._push(record)

    def _push(self, record: bytes) -> int:
        try:
            overwritten = self.ring.append(record)
        except RecordTooLargeError:
            self._too_large += 1
            raise
        self._records += 1
        self._bytes += len(record)
        if overwritten:
            self._overwritten += overwritten
            self._overwrite_log.log(
                logging.WARNING,
                f"{self.label}: the {self.ring.capacity_bytes}-byte cache is full; the oldest "
                "readings not yet uploaded are being overwritten",
            )
        return overwritten

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"ring sink {self.label} is closed")

    def flush_to_capture(self) -> None:
        """Nothing to complete: records are in the ring as soon as they are appended."""

    def close(self) -> None:
        """Refuse further readings. The ring keeps what it holds for the uploader."""
        self._closed = True

    def stats(self) -> StreamStats:
        return StreamStats(
            records=self._records,
            bytes_written=self._bytes,
            files_completed=0,
            buffered_bytes=self.ring.nbytes,
            write_errors=0,
            current_path=None,
        )

    @property
    def overwritten_records(self) -> int:
        """Records of this sink's ring overwritten while it appended."""
        return self._overwritten

    @property
    def too_large_records(self) -> int:
        return self._too_large

    def __repr__(self) -> str:
        return f"<RingCollectorSink {self.label} {self.ring!r}>"


if TYPE_CHECKING:  # mypy proves both kinds of sink keep the collector's contract

    def _ring_sink_is_a_sink(sink: RingCollectorSink) -> RecordSink:
        return sink

    def _stream_is_a_sink(stream: CaptureStream) -> RecordSink:
        return stream
