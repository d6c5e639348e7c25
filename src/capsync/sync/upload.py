"""Uploading one file: the requests a capture file or an arbitrary file becomes.

* A tabular capture file becomes ``DataCaptureUpload`` requests of at most
  ``request_max_bytes`` each (one record more when a single record is bigger).
  Records are scanned from a memory map and copied into one request at a
  time, so a file of any size costs about one request of memory.
* A binary capture file becomes one request per record: a payload over
  1,000,000 bytes goes as a ``StreamingDataCaptureUpload`` of 64 KiB chunks
  sliced from the map, a smaller one as a unary ``DataCaptureUpload``.
* An arbitrary file becomes a ``FileUpload`` stream of 64 KiB chunks.

Every request of a file carries the same ``UploadMetadata``, so the server's
ids (and its de-duplication) do not depend on how the file was split.
A capture file that takes several requests records how far the server
confirmed it (:mod:`capsync.sync.resume`); an upload that starts again skips
that part. Nothing here deletes a file: the caller does, once this returns.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError

from capsync import _time, wire
from capsync.capture.header import upload_metadata
from capsync.capture.reader import CaptureFileError, iter_spans, mapped, parse_header
from capsync.proto import data_sync_pb2
from capsync.sync.connection import UploadClient
from capsync.sync.resume import ResumePoint, ResumeRecord
from capsync.wire import frames

_log = logging.getLogger("capsync.sync")

REQUEST_MAX_BYTES = 1 << 20  # well under gRPC's 4 MiB default message limit
IN_FLIGHT_REQUESTS = 4  # DataCaptureUpload calls one file keeps on the wire at once
STREAMING_THRESHOLD_BYTES = 1_000_000  # binary payloads above this are streamed
CHUNK_BYTES = 64 * 1024

_METADATA_TAG = b"\x0a"  # DataCaptureUploadRequest.metadata, length-delimited
_STREAM_SENSOR_METADATA_TAG = b"\x12"  # DataCaptureUploadMetadata.sensor_metadata
_STREAM_DATA_TAG = b"\x12"  # StreamingDataCaptureUploadRequest.data
_FILE_CONTENTS_TAG = b"\x12"  # FileUploadRequest.file_contents
_FILE_DATA_TAG = b"\x0a"  # FileData.data

DataType = data_sync_pb2.DataType
TABULAR = DataType.DATA_TYPE_TABULAR_SENSOR
BINARY = DataType.DATA_TYPE_BINARY_SENSOR

# Called after each confirmed request with the records and the file bytes it covered.
Confirmed = Callable[[int, int], None]


@dataclass
class UploadResult:
    """What one upload sent (not counting what an earlier attempt had confirmed)."""

    records: int = 0
    requests: int = 0
    file_bytes: int = 0  # bytes of the file the confirmed requests covered
    resumed_records: int = 0  # records skipped: confirmed by an earlier attempt


def capture_upload_metadata(
    header: data_sync_pb2.DataCaptureMetadata, *, part_id: str, file_name: str
) -> data_sync_pb2.UploadMetadata:
    """The ``UploadMetadata`` of every request made from a capture file with ``header``."""
    return upload_metadata(header, part_id=part_id, file_name=file_name)


# --- capture files -----------------------------------------------------------------------


def upload_capture_file(
    client: UploadClient,
    path: str | os.PathLike[str],
    *,
    file_name: str,
    request_max_bytes: int = REQUEST_MAX_BYTES,
    on_confirmed: Confirmed | None = None,
) -> UploadResult:
    """Send every record of the capture file at ``path`` not yet confirmed.

    Raises :class:`CaptureFileError` for a file that does not parse and
    ``grpc.RpcError`` for a failed call; either way the file is left as it
    is, with its resume record up to date.
    """
    path = Path(path)
    resume = ResumeRecord(path, os.stat(path))
    with mapped(path) as data:
        span = parse_header(path, data)
        header = span.header
        metadata = capture_upload_metadata(header, part_id=client.part_id, file_name=file_name)
        start, done = span.records_offset, 0
        point = resume.load()
        if point is not None and span.records_offset <= point.offset <= len(data):
            start, done = point.offset, point.records
            _log.debug("%s: resuming after %d confirmed records", path, done)
        result = UploadResult(resumed_records=done)
        job = _Job(client, path, data, metadata, resume, result, on_confirmed)
        if header.type == TABULAR:
            end = job.send_tabular(start, done, request_max_bytes)
        elif header.type == BINARY:
            end = job.send_binary(start, done)
        else:
            raise CaptureFileError(
                path, f"header has data type {header.type}: not tabular or binary"
            )
        if end < len(data):
            _log.warning(
                "%s: %d bytes after the last whole record were left out (a truncated record)",
                path,
                len(data) - end,
            )
    return result


class _Job:
    """The upload of one mapped capture file."""

    def __init__(
        self,
        client: UploadClient,
        path: Path,
        data: Any,
        metadata: data_sync_pb2.UploadMetadata,
        resume: ResumeRecord,
        result: UploadResult,
        on_confirmed: Confirmed | None,
    ) -> None:
        self.client = client
        self.path = path
        self.data = data
        self.metadata = metadata
        self.resume = resume
        self.result = result
        self.on_confirmed = on_confirmed
        self.wire = wire.wire()

    def confirmed(self, records: int, start: int, end: int, total_records: int) -> None:
        """Count a confirmed request covering ``[start, end)``; remember it unless the last."""
        self.result.records += records
        self.result.requests += 1
        self.result.file_bytes += end - start
        if end < len(self.data):
            self.resume.save(ResumePoint(end, total_records))
        if self.on_confirmed is not None:
            self.on_confirmed(records, end - start)

    # tabular ---------------------------------------------------------------------------

    def send_tabular(self, start: int, done: int, request_max_bytes: int) -> int:
        """Send the records from ``start`` in bounded requests; the end of the last whole record.

        Each body is the metadata field plus the records' frames copied from the
        file behind one tag byte each (``upload_body``), never decoded; up to
        ``IN_FLIGHT_REQUESTS`` are on the wire at once, confirmed (and remembered
        for resuming) in file order."""
        head = frames.metadata_field(self.metadata)
        offsets, lengths, end = self.wire.scan_frames(self.data, start)
        if not len(offsets):
            return int(end)
        empty = np.flatnonzero(lengths == 0)
        if len(empty):
            raise CaptureFileError(self.path, f"empty record at offset {offsets[empty[0]]}")
        frame_ends = offsets + lengths
        # Bytes each record adds to a body: its tag, length prefix and bytes.
        sizes = np.diff(frame_ends, prepend=start) + 1
        cumulative = np.cumsum(sizes)
        in_flight: deque[tuple[Any, int, int, int, int]] = deque()
        first = 0
        try:
            while first < len(offsets):
                base = cumulative[first - 1] if first else 0
                budget = request_max_bytes - len(head) + base
                last = max(first + 1, int(np.searchsorted(cumulative, budget, side="right")))
                batch_start = int(frame_ends[first - 1]) if first else start
                batch_end = int(frame_ends[last - 1])
                done += last - first
                in_flight.append(self._start_batch(head, batch_start, batch_end, done))
                if len(in_flight) >= IN_FLIGHT_REQUESTS:
                    self._finish(in_flight)
                first = last
            while in_flight:
                self._finish(in_flight)
        except BaseException:
            self._settle(in_flight)
            raise
        return int(end)

    def _settle(self, in_flight: deque[tuple[Any, int, int, int, int]]) -> None:
        """After a failure that was not a request's own (a record that does not parse,
        a stopped client): confirm what the server still answers, in order, so a retry
        resumes after it. ``_finish`` empties the queue at the first failed answer."""
        while in_flight:
            try:
                self._finish(in_flight)
            except Exception:
                break

    def _start_batch(
        self, head: bytes, start: int, end: int, total: int
    ) -> tuple[Any, int, int, int, int]:
        body, records = self.wire.upload_body(head, self.data, start, end)
        try:
            self.wire.scan_upload(body)
        except ValueError as exc:
            raise CaptureFileError(
                self.path, f"records between offsets {start} and {end} do not parse: {exc}"
            ) from None
        return self.client.data_capture_upload_future(body), records, start, end, total

    def _finish(self, in_flight: deque[tuple[Any, int, int, int, int]]) -> None:
        """Wait for the oldest request in flight and confirm it.

        When its answer is a failure, every later request is cancelled and forgotten
        even if the server answered it: confirming a later request would move the
        resume point past records the server never stored."""
        future, records, start, end, total = in_flight.popleft()
        try:
            future.result()
        except BaseException:
            for pending in in_flight:
                pending[0].cancel()
            in_flight.clear()
            raise
        self.confirmed(records, start, end, total)

    # binary ----------------------------------------------------------------------------

    def send_binary(self, start: int, done: int) -> int:
        """Send each record from ``start`` on its own; the end of the last whole record.

        Unary requests keep up to ``IN_FLIGHT_REQUESTS`` on the wire; a streamed
        one waits for those first. Records are confirmed in file order."""
        end = start
        in_flight: deque[tuple[Any, int, int, int, int]] = deque()
        try:
            for offset, length in iter_spans(self.data, start):
                if length == 0:
                    raise CaptureFileError(self.path, f"empty record at offset {offset}")
                metadata_span, payload_span = self._fields(offset, length)
                done += 1
                if payload_span is not None and payload_span[1] > STREAMING_THRESHOLD_BYTES:
                    while in_flight:
                        self._finish(in_flight)
                    self._stream(metadata_span, payload_span)
                    self.confirmed(1, end, offset + length, done)
                else:
                    future = self._unary(offset, length)
                    in_flight.append((future, 1, end, offset + length, done))
                    if len(in_flight) >= IN_FLIGHT_REQUESTS:
                        self._finish(in_flight)
                end = offset + length
            while in_flight:
                self._finish(in_flight)
        except BaseException:
            self._settle(in_flight)
            raise
        return end

    def _unary(self, offset: int, length: int) -> Any:
        """Start the unary upload of the record at ``offset``; its future."""
        body = frames.request_from_record(
            frames.metadata_field(self.metadata), self.data[offset : offset + length]
        )
        try:
            self.wire.scan_upload(body)
        except ValueError as exc:
            raise CaptureFileError(
                self.path, f"record at offset {offset} does not parse: {exc}"
            ) from None
        return self.client.data_capture_upload_future(body)

    def _stream(self, metadata_span: frames.Span | None, payload_span: frames.Span) -> None:
        """One ``StreamingDataCaptureUpload``: its packets framed as bytes straight from
        the map (the metadata packet, then 64 KiB ``data`` packets), never re-encoded."""
        sensor_metadata = b""
        if metadata_span is not None:
            at, length = metadata_span
            sensor_metadata = bytes(self.data[at : at + length])
            try:
                data_sync_pb2.SensorMetadata.FromString(sensor_metadata)  # refuse it here
            except DecodeError as exc:
                raise CaptureFileError(
                    self.path, f"sensor metadata at offset {at} does not parse: {exc}"
                ) from None
        encode_varint = self.wire.encode_varint
        upload = self.metadata.SerializeToString(deterministic=True)
        inner = b"".join((
            _METADATA_TAG, encode_varint(len(upload)), upload,
            _STREAM_SENSOR_METADATA_TAG, encode_varint(len(sensor_metadata)), sensor_metadata,
        ))  # fmt: skip
        first = _METADATA_TAG + encode_varint(len(inner)) + inner
        data = self.data
        begin, size = payload_span

        def packets() -> Iterator[bytes]:
            yield first
            for at in range(begin, begin + size, CHUNK_BYTES):
                end = min(at + CHUNK_BYTES, begin + size)
                yield b"".join((_STREAM_DATA_TAG, encode_varint(end - at), data[at:end]))

        self.client.streaming_data_capture_upload(packets(), size, self.metadata)

    def _fields(self, offset: int, length: int) -> tuple[frames.Span | None, frames.Span | None]:
        """(offset, length) of a SensorData record's metadata and binary fields, undecoded."""
        try:
            return frames.sensor_data_fields(self.data, offset, length)
        except ValueError as exc:
            raise CaptureFileError(
                self.path, f"record at offset {offset} does not parse: {exc}"
            ) from None


# --- arbitrary files ---------------------------------------------------------------------


def file_upload_metadata(
    path: Path,
    *,
    part_id: str,
    file_name: str,
    tags: tuple[str, ...],
    dataset_ids: tuple[str, ...],
    mtime_ns: int,
) -> data_sync_pb2.UploadMetadata:
    modified = _time.timestamp(mtime_ns)
    return data_sync_pb2.UploadMetadata(
        part_id=part_id,
        type=data_sync_pb2.DataType.DATA_TYPE_FILE,
        file_name=file_name,
        file_extension=path.suffix,
        tags=list(tags),
        dataset_ids=list(dataset_ids),
        file_modify_time=modified,
    )


def upload_arbitrary_file(
    client: UploadClient,
    path: str | os.PathLike[str],
    *,
    file_name: str,
    tags: tuple[str, ...] = (),
    dataset_ids: tuple[str, ...] = (),
) -> UploadResult:
    """Send the file at ``path`` as one ``FileUpload`` stream of 64 KiB chunks."""
    path = Path(path)
    with open(path, "rb") as handle:
        st = os.fstat(handle.fileno())
        metadata = file_upload_metadata(
            path,
            part_id=client.part_id,
            file_name=file_name,
            tags=tags,
            dataset_ids=dataset_ids,
            mtime_ns=st.st_mtime_ns,
        )

        encode_varint = wire.wire().encode_varint
        metadata_bytes = metadata.SerializeToString(deterministic=True)

        def packets() -> Iterator[bytes]:
            """The metadata packet, then ``file_contents`` packets framed around each chunk."""
            yield _METADATA_TAG + encode_varint(len(metadata_bytes)) + metadata_bytes
            while chunk := handle.read(CHUNK_BYTES):
                inner = encode_varint(len(chunk))
                yield b"".join((
                    _FILE_CONTENTS_TAG, encode_varint(1 + len(inner) + len(chunk)),
                    _FILE_DATA_TAG, inner, chunk,
                ))  # fmt: skip

        client.file_upload(packets(), st.st_size)
    return UploadResult(records=0, requests=1, file_bytes=st.st_size)
