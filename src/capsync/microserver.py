"""micro-server mode: a collector's readings in an in-memory ring, uploaded from there.

When a capture method sets ``cache_size_kb`` (viam-micro-server's key), its
collector keeps its records in a :class:`~capsync.capture.ring.RecordRing` of
``cache_size_kb * 1000`` bytes instead of capture files:

* :class:`RingCollectorSink` takes the collector's readings (the same calls a
  :class:`~capsync.capture.stream.CaptureStream` takes: ``append``,
  ``append_binary``, ``flush_to_capture``, ``close``, ``stats``), encodes each
  into one length-delimited ``SensorData`` with the wire module and pushes it
  into the ring. A full ring overwrites its oldest whole record; a record that
  can never be uploaded (larger than the ring or than one request allows)
  raises :class:`~capsync.capture.ring.RecordTooLargeError` and is counted.
* :class:`RingUploader` sends the ring's oldest records as
  ``DataCaptureUpload`` requests of at most ``max_request_bytes`` (32,000)
  serialized, and removes a chunk from the ring only once the server
  confirmed it. A failed upload keeps the chunk for the next try. A chunk the
  server refuses as malformed (``INVALID_ARGUMENT``) would be refused forever,
  so it is dropped and counted (``rejected_records``), the way sync moves a
  refused file to ``failed/``.

The request is built from the stored bytes: ``UploadMetadata`` field, then per
record the ``sensor_contents`` tag and the stored frame (which already is
``varint length + SensorData``), parsed once by protobuf. Its size is therefore
known before it is built: ``metadata field + sum(1 + len(record))``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from capsync import wire
from capsync._log import RateLimitedLog
from capsync.capture.header import build_header, upload_metadata
from capsync.capture.ring import Chunk, RecordRing, RecordTooLargeError
from capsync.capture.stream import StreamStats, default_times
from capsync.methods import is_binary_method, mime_type_enum, wrap_key_for
from capsync.proto import data_sync_pb2

_log = logging.getLogger("capsync.microserver")

MAX_REQUEST_BYTES = 32_000
MIN_CACHE_BYTES = 1000
_TAG_METADATA = b"\x0a"  # DataCaptureUploadRequest.metadata, LEN
_TAG_SENSOR_CONTENTS = b"\x12"  # DataCaptureUploadRequest.sensor_contents, LEN
FIRST_BACKOFF_S = 0.2
DEFAULT_MAX_BACKOFF_S = 60.0
DEFAULT_UPLOAD_INTERVAL_S = 6.0
DEFAULT_TIMEOUT_S = 60.0

UploadFn = Callable[[data_sync_pb2.DataCaptureUploadRequest], Any]


def cache_capacity_bytes(cache_size_kb: float) -> int:
    """``cache_size_kb * 1000`` bytes; less than 1000 bytes is a config error (ValueError)."""
    capacity = int(cache_size_kb * 1000)
    if capacity < MIN_CACHE_BYTES:
        raise ValueError(f"cache_size_kb must be at least 1 (1000 bytes), got {cache_size_kb!r}")
    return capacity


def upload_metadata_for(
    header: data_sync_pb2.DataCaptureMetadata,
    part_id: str,
    *,
    dataset_ids: Iterable[str] = (),
) -> data_sync_pb2.UploadMetadata:
    """The ``UploadMetadata`` of a collector's uploads, from its capture header."""
    return upload_metadata(header, part_id=part_id, dataset_ids=dataset_ids)


def metadata_field_bytes(metadata: data_sync_pb2.UploadMetadata) -> bytes:
    """``DataCaptureUploadRequest.metadata`` as its serialized field (tag, length, body)."""
    body = metadata.SerializeToString(deterministic=True)
    return _TAG_METADATA + wire.wire().encode_varint(len(body)) + body


def max_record_bytes_for(
    metadata: data_sync_pb2.UploadMetadata, max_request_bytes: int = MAX_REQUEST_BYTES
) -> int:
    """The largest stored record (a framed ``SensorData``) one request with ``metadata`` holds."""
    return max_request_bytes - len(metadata_field_bytes(metadata)) - len(_TAG_SENSOR_CONTENTS)


# ----- the collector side ------------------------------------------------------------------


class RingCollectorSink:
    """What a collector writes to instead of a ``CaptureStream`` in micro-server mode.

    Duck-compatible with the parts of ``CaptureStream`` a ``Collector`` uses:
    ``append``, ``append_binary``, ``is_binary``, ``write_error`` (always None:
    memory does not fail), ``flush_to_capture`` and ``close`` (nothing to
    complete), ``stats`` (``bytes_written`` = bytes put in the ring) and
    ``folder``/``label``. ``header`` is the ``DataCaptureMetadata`` a capture
    file of the same collector would start with (for :func:`upload_metadata_for`).
    """

    def __init__(
        self,
        ring: RecordRing,
        *,
        component_type: str,
        component_name: str,
        method_name: str,
        tags: Iterable[str] = (),
        method_parameters: Mapping[str, Any] | None = None,
        mime_type: str = "",
        header: data_sync_pb2.DataCaptureMetadata | None = None,
    ) -> None:
        self.ring = ring
        self.label = f"{component_type}/{component_name}/{method_name}"
        self.folder = f"<memory ring of {ring.capacity_bytes} bytes>"
        self.header = header or build_header(
            component_type=component_type,
            component_name=component_name,
            method_name=method_name,
            tags=tags,
            method_parameters=method_parameters,
            mime_type=mime_type,
        )
        self._binary = is_binary_method(method_name)
        self._wrap_key = wrap_key_for(method_name)
        self._mime_enum = mime_type_enum(mime_type)
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
    ) -> int:
        """Encode one binary reading into the ring; return the records it overwrote."""
        if not self._binary:
            raise TypeError(f"{self.label} is a tabular method: use append")
        view = memoryview(payload).cast("B")
        requested, received = default_times(time_requested_ns, time_received_ns)
        with self._lock:
            self._check_open()
            self._buffer.clear()
            try:
                self._buffer.append_binary_prefix(view.nbytes, requested, received, self._mime_enum)
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


# ----- the upload side ---------------------------------------------------------------------


@dataclass(frozen=True)
class UploadOutcome:
    """What one :meth:`RingUploader.upload_once` did."""

    records: int = 0  # records the server confirmed (and the ring let go of)
    request_bytes: int = 0  # serialized size of the request sent
    rejected: int = 0  # records dropped: refused by the server or unparseable
    error: BaseException | None = None  # the failure that kept the chunk, if any

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class DrainResult:
    requests: int
    records: int
    request_bytes: int
    rejected: int
    error: BaseException | None  # the failure that ended the drain early, if any


@dataclass(frozen=True)
class UploaderStats:
    requests_ok: int
    requests_failed: int
    records_uploaded: int
    bytes_uploaded: int  # serialized request bytes confirmed
    rejected_records: int  # refused as malformed (INVALID_ARGUMENT) or unparseable; dropped
    largest_request_bytes: int
    last_error: str | None


class RingUploader:
    """Uploads a :class:`RecordRing`'s records with ``DataCaptureUpload`` (module doc).

    ``upload`` is a ``DataSyncService`` stub (called with ``call_metadata`` and
    ``timeout_s``) or any callable taking the request; it succeeds by
    returning and fails by raising. ``metadata`` is the ``UploadMetadata`` of
    every request (see :func:`upload_metadata_for`).
    """

    def __init__(
        self,
        ring: RecordRing,
        upload: Any,
        metadata: data_sync_pb2.UploadMetadata,
        *,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        call_metadata: Sequence[tuple[str, str]] = (),
        timeout_s: float = DEFAULT_TIMEOUT_S,
        label: str = "",
    ) -> None:
        self.ring = ring
        self.metadata = data_sync_pb2.UploadMetadata()
        self.metadata.CopyFrom(metadata)
        self.label = label or f"{metadata.component_name}/{metadata.method_name}"
        self.max_request_bytes = max_request_bytes
        self._metadata_field = metadata_field_bytes(self.metadata)
        self._budget = max_request_bytes - len(self._metadata_field)
        if self._budget < 2:
            raise ValueError(
                f"max_request_bytes {max_request_bytes} leaves no room after the "
                f"{len(self._metadata_field)}-byte metadata"
            )
        if hasattr(upload, "DataCaptureUpload"):
            stub_call = upload.DataCaptureUpload
            call_md = tuple(call_metadata)

            def send(request: data_sync_pb2.DataCaptureUploadRequest) -> Any:
                return stub_call(request, metadata=call_md, timeout=timeout_s)

            self._send: UploadFn = send
        elif callable(upload):
            self._send = upload
        else:
            raise TypeError("upload must be a DataSyncService stub or a callable")
        self._lock = threading.Lock()  # one request at a time per ring
        self._errors_log = RateLimitedLog(_log, 5.0)
        self._ok = self._failed = self._records = self._bytes = 0
        self._rejected = self._largest = 0
        self._last_error: str | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def max_record_bytes(self) -> int:
        """The largest record that fits one request (give it to the ring's ``max_record_bytes``)."""
        return self._budget - len(_TAG_SENSOR_CONTENTS)

    # ----- one request ------------------------------------------------------------------

    def upload_once(self) -> UploadOutcome:
        """Send the oldest chunk; on success remove it from the ring. Never raises for a
        failed upload: the outcome carries the error and the chunk stays."""
        with self._lock:
            max_records: int | None = None
            while True:
                chunk = self.ring.peek_chunk(
                    self._budget,
                    per_record_overhead=len(_TAG_SENSOR_CONTENTS),
                    max_records=max_records,
                )
                if not chunk.records:
                    if len(self.ring):  # the oldest record cannot fit any request
                        return self._drop_unsendable()
                    return UploadOutcome()
                request, rejected = self._build(chunk)
                if request is None:  # nothing in the chunk parsed
                    removed = self.ring.confirm(chunk.token)
                    self._rejected += removed
                    return UploadOutcome(rejected=removed)
                size = request.ByteSize()
                if size <= self.max_request_bytes:
                    break
                # Only records that are not what the sink writes can get here.
                if len(chunk) == 1:
                    return self._drop_unsendable()
                max_records = len(chunk) - 1
            try:
                self._send(request)
            except Exception as exc:
                return self._failure(exc, chunk)
            self.ring.confirm(chunk.token)
            sent = len(request.sensor_contents)
            self._ok += 1
            self._records += sent
            self._bytes += size
            self._rejected += rejected
            self._largest = max(self._largest, size)
            self._last_error = None
            return UploadOutcome(records=sent, request_bytes=size, rejected=rejected)

    def _build(self, chunk: Chunk) -> tuple[data_sync_pb2.DataCaptureUploadRequest | None, int]:
        """The request for ``chunk`` and how many of its records did not parse."""
        raw = self._metadata_field + b"".join(_TAG_SENSOR_CONTENTS + r for r in chunk.records)
        try:
            return data_sync_pb2.DataCaptureUploadRequest.FromString(raw), 0
        except DecodeError:
            pass
        request = data_sync_pb2.DataCaptureUploadRequest()
        request.metadata.CopyFrom(self.metadata)
        rejected = 0
        for record in chunk.records:
            reading = _parse_frame(record)
            if reading is None:
                rejected += 1
            else:
                request.sensor_contents.append(reading)
        if rejected:
            self._errors_log.log(
                logging.ERROR, f"{self.label}: {rejected} cached records do not parse; dropped"
            )
        return (request if request.sensor_contents else None), rejected

    def _failure(self, exc: Exception, chunk: Chunk) -> UploadOutcome:
        code = _status_code(exc)
        self._last_error = f"{code.name if code else type(exc).__name__}: {exc}"
        if code is grpc.StatusCode.INVALID_ARGUMENT:
            # Refused as malformed: it would be refused forever and block the ring.
            removed = self.ring.confirm(chunk.token)
            self._rejected += removed
            self._failed += 1
            _log.error(
                "%s: the server refused %d cached records (%s); dropped",
                self.label,
                removed,
                _details(exc),
            )
            return UploadOutcome(rejected=removed, error=exc)
        self._failed += 1
        self._errors_log.log(
            logging.WARNING,
            f"{self.label}: upload of {len(chunk)} cached records failed, kept for retry: "
            f"{self._last_error}",
        )
        return UploadOutcome(error=exc)

    def _drop_unsendable(self) -> UploadOutcome:
        """The oldest record is larger than any request: drop it, or the ring stalls."""
        single = self.ring.peek_chunk(self.ring.capacity_bytes, max_records=1)
        removed = self.ring.confirm(single.token)
        self._rejected += removed
        _log.error(
            "%s: a cached record of %d bytes cannot fit a %d-byte request; dropped",
            self.label,
            single.nbytes,
            self.max_request_bytes,
        )
        return UploadOutcome(rejected=removed)

    # ----- many requests ----------------------------------------------------------------

    def drain(self, max_requests: int | None = None) -> DrainResult:
        """Upload chunks until the ring is empty, a request fails, or ``max_requests``."""
        requests = records = nbytes = rejected = 0
        error: BaseException | None = None
        while max_requests is None or requests < max_requests:
            outcome = self.upload_once()
            rejected += outcome.rejected
            if outcome.request_bytes:
                requests += 1
                records += outcome.records
                nbytes += outcome.request_bytes
            if outcome.error is not None:
                error = outcome.error
                break
            if not outcome.records and not outcome.rejected:
                break  # empty
        return DrainResult(requests, records, nbytes, rejected, error)

    def start(
        self,
        interval_s: float = DEFAULT_UPLOAD_INTERVAL_S,
        *,
        max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
    ) -> RingUploader:
        """Drain every ``interval_s`` in a daemon thread; after a failure retry sooner
        (200 ms, doubling, capped at ``max_backoff_s``) until one succeeds."""
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run,
            args=(interval_s, max_backoff_s),
            name=f"ring upload {self.label}",
            daemon=True,
        )
        self._thread.start()
        return self

    def wake(self) -> None:
        """Make the background thread drain now (a manual sync)."""
        self._wake.set()

    def stop(self, *, final_drain: bool = False, timeout_s: float = 30.0) -> None:
        """Stop the thread; with ``final_drain`` try once more to empty the ring."""
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)
        if final_drain:
            self.drain()

    def _run(self, interval_s: float, max_backoff_s: float) -> None:
        backoff_s = FIRST_BACKOFF_S
        while not self._stop.is_set():
            try:
                result = self.drain()
            except Exception as exc:  # a bug, not an upload failure: keep the thread alive
                _log.exception("%s: ring upload pass failed", self.label)
                result = DrainResult(0, 0, 0, 0, exc)
            if result.error is None:
                backoff_s = FIRST_BACKOFF_S
                wait_s = interval_s
            else:
                wait_s = min(backoff_s, max_backoff_s)
                backoff_s = min(backoff_s * 2, max_backoff_s)
            self._wake.wait(wait_s)
            self._wake.clear()

    def stats(self) -> UploaderStats:
        return UploaderStats(
            requests_ok=self._ok,
            requests_failed=self._failed,
            records_uploaded=self._records,
            bytes_uploaded=self._bytes,
            rejected_records=self._rejected,
            largest_request_bytes=self._largest,
            last_error=self._last_error,
        )


def _parse_frame(record: bytes) -> data_sync_pb2.SensorData | None:
    """The ``SensorData`` of one stored frame, or None when it is not one."""
    try:
        length, start = wire.wire().read_varint(record, 0)
        if start + length != len(record):
            return None
        return data_sync_pb2.SensorData.FromString(record[start:])
    except (ValueError, DecodeError):
        return None


def _status_code(exc: BaseException) -> grpc.StatusCode | None:
    code = getattr(exc, "code", None)
    if not callable(code):
        return None
    try:
        value = code()
    except Exception:
        return None
    return value if isinstance(value, grpc.StatusCode) else None


def _details(exc: BaseException) -> str:
    details = getattr(exc, "details", None)
    if callable(details):
        try:
            return str(details())
        except Exception:
            pass
    return str(exc)


# ----- putting it together -----------------------------------------------------------------


@dataclass
class MicroServerCollector:
    """The ring, sink and uploader of one micro-server collector (see :func:`build`)."""

    ring: RecordRing
    sink: RingCollectorSink
    uploader: RingUploader

    def stats(self) -> dict[str, Any]:
        """Ring and upload counters, for the DataManager's stats."""
        return {"ring": self.ring.stats(), "upload": self.uploader.stats()}


def build(
    cache_size_kb: float,
    upload: Any,
    part_id: str,
    *,
    component_type: str,
    component_name: str,
    method_name: str,
    tags: Iterable[str] = (),
    method_parameters: Mapping[str, Any] | None = None,
    mime_type: str = "",
    call_metadata: Sequence[tuple[str, str]] = (),
    max_request_bytes: int = MAX_REQUEST_BYTES,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> MicroServerCollector:
    """A ring of ``cache_size_kb * 1000`` bytes, a sink writing to it and an uploader of it.

    The ring refuses records larger than one request can carry, so every
    record it keeps can be uploaded.
    """
    capacity = cache_capacity_bytes(cache_size_kb)
    header = build_header(
        component_type=component_type,
        component_name=component_name,
        method_name=method_name,
        tags=tags,
        method_parameters=method_parameters,
        mime_type=mime_type,
    )
    metadata = upload_metadata_for(header, part_id)
    ring = RecordRing(capacity, max_record_bytes=max_record_bytes_for(metadata, max_request_bytes))
    sink = RingCollectorSink(
        ring,
        component_type=component_type,
        component_name=component_name,
        method_name=method_name,
        tags=tags,
        method_parameters=method_parameters,
        mime_type=mime_type,
        header=header,
    )
    uploader = RingUploader(
        ring,
        upload,
        metadata,
        max_request_bytes=max_request_bytes,
        call_metadata=call_metadata,
        timeout_s=timeout_s,
        label=f"{component_name}/{method_name}",
    )
    return MicroServerCollector(ring, sink, uploader)


__all__ = [
    "MAX_REQUEST_BYTES",
    "DrainResult",
    "MicroServerCollector",
    "RingCollectorSink",
    "RingUploader",
    "UploadOutcome",
    "UploaderStats",
    "build",
    "cache_capacity_bytes",
    "max_record_bytes_for",
    "metadata_field_bytes",
    "upload_metadata_for",
]
