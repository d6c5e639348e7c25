"""micro-server mode's upload side: a ring's records sent as ``DataCaptureUpload`` requests.

:class:`RingUploader` sends the ring's oldest records as requests of at most
``max_request_bytes`` (32,000) serialized, and removes a chunk from the ring
only once the server confirmed it. A failed upload keeps the chunk for the
next try. A chunk the server refuses as malformed (``INVALID_ARGUMENT``) would
be refused forever, so it is dropped and counted (``rejected_records``), the
way sync moves a refused file to ``failed/``. The data manager drains the rings
in each sync pass (:mod:`capsync.service.micro_control`).

The request is built from the stored frames (:mod:`capsync.wire.frames`),
parsed once by protobuf; its size is known before it is built:
``metadata field + sum(1 + len(record))``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from capsync._log import RateLimitedLog
from capsync.capture.ring import Chunk, RecordRing
from capsync.proto import data_sync_pb2
from capsync.wire import frames

_log = logging.getLogger("capsync.microserver")

MAX_REQUEST_BYTES = 32_000
DEFAULT_TIMEOUT_S = 60.0

UploadFn = Callable[[data_sync_pb2.DataCaptureUploadRequest], Any]


def max_record_bytes_for(
    metadata: data_sync_pb2.UploadMetadata, max_request_bytes: int = MAX_REQUEST_BYTES
) -> int:
    """The largest stored record (a framed ``SensorData``) one request with ``metadata`` holds."""
    return (
        max_request_bytes - len(frames.metadata_field(metadata)) - len(frames.TAG_SENSOR_CONTENTS)
    )


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
    every request (:meth:`~capsync.capture.sink.CaptureSpec.upload_metadata`).
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
        self._metadata_field = frames.metadata_field(self.metadata)
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

    @property
    def max_record_bytes(self) -> int:
        """The largest record that fits one request (give it to the ring's ``max_record_bytes``)."""
        return self._budget - len(frames.TAG_SENSOR_CONTENTS)

    # ----- one request ------------------------------------------------------------------

    def upload_once(self) -> UploadOutcome:
        """Send the oldest chunk; on success remove it from the ring. Never raises for a
        failed upload: the outcome carries the error and the chunk stays."""
        with self._lock:
            max_records: int | None = None
            while True:
                chunk = self.ring.peek_chunk(
                    self._budget,
                    per_record_overhead=len(frames.TAG_SENSOR_CONTENTS),
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
        raw = frames.request_from_frames(self._metadata_field, chunk.records)
        try:
            return data_sync_pb2.DataCaptureUploadRequest.FromString(raw), 0
        except DecodeError:
            pass
        request = data_sync_pb2.DataCaptureUploadRequest()
        request.metadata.CopyFrom(self.metadata)
        rejected = 0
        for record in chunk.records:
            reading = frames.parse_frame(record)
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
