"""The DataSyncService servicer: checks each upload, stores it, answers with its ids.

Every method takes and answers raw bytes (see :mod:`capsync.server.app`): a
``DataCaptureUpload`` body is checked and indexed by the wire scanner
(``scan_upload``), never decoded into protobuf objects, and a tabular body is
stored as one batch; a stream's payload chunks go to the payload file as views
of their packets (:mod:`capsync.server.stream_packets`). Ids are
deterministic (:mod:`capsync.server.records`), so the same upload sent again
gets the same ids and the store keeps it once. ``file_id`` is the batch id for
a tabular ``DataCaptureUpload`` and the blob id otherwise.

A malformed upload is refused with ``INVALID_ARGUMENT`` before anything is
stored (the client moves it aside instead of retrying); storage trouble is
``RESOURCE_EXHAUSTED`` (disk full), ``UNAVAILABLE`` (database busy or unreachable) or
``INTERNAL``, all of which a client retries.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TypeVar

import grpc
import numpy as np
from google.protobuf.message import DecodeError

from capsync import wire
from capsync.proto import data_sync_pb2
from capsync.server.blobs import BlobStore, PayloadWriter, StoredPayload, UnsafePathError
from capsync.server.counters import ServerCounters
from capsync.server.records import (
    content_id,
    deterministic,
    method_parameters,
    mime_type,
    struct_to_dict,
    tabular_batch,
    timestamp_ns,
)
from capsync.server.stores.base import BlobRecord, Store, StoreUnavailable
from capsync.server.stream_packets import chunks, metadata_packet
from capsync.server.undecodable import UndecodableRequest
from capsync.server.upload_checks import (
    InvalidUpload,
    UploadCancelled,
    annotations_of,
    binary_extension,
    check_storable_times,
    checked_folder,
    file_extension,
    type_name,
)
from capsync.wire import frames

log = logging.getLogger(__name__)

DataType = data_sync_pb2.DataType
TABULAR = DataType.DATA_TYPE_TABULAR_SENSOR
BINARY = DataType.DATA_TYPE_BINARY_SENSOR
FILE = DataType.DATA_TYPE_FILE
UNSPECIFIED = DataType.DATA_TYPE_UNSPECIFIED

FILES_FOLDER = "files"
_SENSOR_TIMES = ("time_requested", "time_received")
_T = TypeVar("_T")
_KIND_NAMES = {0: "no data", 2: "struct", 3: "binary"}
_det = deterministic
_timestamp_ns = timestamp_ns
_method_parameters = method_parameters
_mime_type = mime_type
__all__ = ["DataSyncServicer", "InvalidUpload", "content_id", "struct_to_dict"]


# --- the servicer ------------------------------------------------------------------------


class DataSyncServicer:
    """Stores uploads in ``store`` (records) and ``blobs`` (payload files or GridFS).

    Served as ``viam.app.datasync.v1.DataSyncService`` by
    :func:`capsync.server.app.add_datasync_service`; ``DataCaptureUpload`` gets and
    returns raw bytes.
    """

    def __init__(self, store: Store, blobs: BlobStore) -> None:
        self._store = store
        self._blobs = blobs
        self.counters = ServerCounters()  # uploads, rejections, readings (for metrics)
        # Set just before the server cancels the calls still running at the end of
        # its grace period, so a stream cut by that is never taken for a whole one.
        self.cancelling = threading.Event()

    # gRPC entry points ----------------------------------------------------------------

    def DataCaptureUpload(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._guard(context, "DataCaptureUpload", lambda: self.data_capture_upload(request))

    def StreamingDataCaptureUpload(
        self, request_iterator: Iterator[Any], context: grpc.ServicerContext
    ) -> Any:
        return self._guard(
            context,
            "StreamingDataCaptureUpload",
            lambda: self.streaming_data_capture_upload(request_iterator, context),
        )

    def FileUpload(self, request_iterator: Iterator[Any], context: grpc.ServicerContext) -> Any:
        return self._guard(
            context, "FileUpload", lambda: self.file_upload(request_iterator, context)
        )

    def _guard(self, context: grpc.ServicerContext, rpc: str, handle: Callable[[], _T]) -> _T:
        try:
            response = handle()
            self.counters.accepted(rpc)
            return response
        except (InvalidUpload, UnsafePathError, UndecodableRequest) as exc:
            log.info("%s refused: %s", rpc, exc)
            self.counters.refused(rpc, "INVALID_ARGUMENT")
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except grpc.RpcError:
            raise  # the client went away mid-stream: nothing to answer
        except UploadCancelled as exc:
            log.info("%s dropped: %s", rpc, exc)
            self.counters.refused(rpc, "CANCELLED")
            _abort(context, grpc.StatusCode.CANCELLED, str(exc))
        except OSError as exc:
            log.error("%s: cannot store the upload: %s", rpc, exc)
            code = (
                grpc.StatusCode.RESOURCE_EXHAUSTED
                if exc.errno in (errno.ENOSPC, errno.EDQUOT)
                else grpc.StatusCode.INTERNAL
            )
            self.counters.refused(rpc, code.name)
            _abort(context, code, f"cannot store the upload: {exc.strerror or exc}")
        except (sqlite3.OperationalError, StoreUnavailable) as exc:
            log.error("%s: database unavailable: %s", rpc, exc)
            self.counters.refused(rpc, "UNAVAILABLE")
            _abort(context, grpc.StatusCode.UNAVAILABLE, f"database unavailable: {exc}")
        except Exception:
            log.exception("%s failed", rpc)
            self.counters.refused(rpc, "INTERNAL")
            _abort(context, grpc.StatusCode.INTERNAL, "internal error storing the upload")

    # the work, callable without gRPC ---------------------------------------------------

    def data_capture_upload(self, body: bytes) -> bytes:
        """Check, store and answer one raw ``DataCaptureUploadRequest`` body (raw response)."""
        try:
            scan = wire.wire().scan_upload(body)
        except ValueError as exc:
            raise InvalidUpload(f"DataCaptureUpload is malformed: {exc}") from None
        meta_offset, meta_length = scan[0], scan[1]
        if meta_offset < 0:
            raise InvalidUpload("DataCaptureUpload without metadata")
        try:
            metadata = data_sync_pb2.UploadMetadata.FromString(
                body[meta_offset : meta_offset + meta_length]
            )
        except DecodeError as exc:
            raise InvalidUpload(f"DataCaptureUpload metadata does not parse: {exc}") from None
        folder = checked_folder(metadata, (TABULAR, BINARY), "DataCaptureUpload")
        kinds = scan[7]
        if not len(kinds):
            raise InvalidUpload("DataCaptureUpload with no sensor_contents")
        wanted = 2 if metadata.type == TABULAR else 3
        wrong = np.flatnonzero(kinds != wanted)
        if len(wrong):
            index = int(wrong[0])
            raise InvalidUpload(
                f"sensor_contents[{index}] holds {_KIND_NAMES.get(int(kinds[index]), '?')}, "
                f"but metadata type {type_name(metadata.type)} needs {_KIND_NAMES[wanted]}"
            )
        now_ns = time.time_ns()
        if metadata.type == TABULAR:
            batch = tabular_batch(body, scan, metadata, now_ns)
            added = self._store.record_batch(batch)
            self.counters.stored(batch.count)
            log.debug("tabular batch %s: %d readings, %d new", batch.id, batch.count, added)
            return _upload_response(batch.id, "")
        return self._binary_upload(body, scan, metadata, folder, now_ns)

    def _binary_upload(
        self, body: bytes, scan: tuple[Any, ...], metadata: Any, folder: tuple[str, ...],
        now_ns: int,
    ) -> bytes:  # fmt: skip
        view = memoryview(body)
        metadata_bytes = _det(metadata)
        records: list[BlobRecord] = []
        for at, length in zip(scan[5].tolist(), scan[6].tolist(), strict=True):
            # The payload goes to its file as a view of the body: only the metadata is parsed.
            try:
                meta_span, payload_span = frames.sensor_data_fields(view, at, length)
                sensor_metadata = data_sync_pb2.SensorMetadata.FromString(
                    bytes(view[meta_span[0] : sum(meta_span)]) if meta_span else b""
                )
            except (ValueError, DecodeError) as exc:
                raise InvalidUpload(f"DataCaptureUpload reading does not parse: {exc}") from None
            payload = view[payload_span[0] : sum(payload_span)] if payload_span else b""
            records.append(
                self._binary_record(
                    metadata, metadata_bytes, sensor_metadata, payload, folder, now_ns
                )
            )
        upload_id = content_id(b"upload", metadata_bytes, *(bytes.fromhex(r.id) for r in records))
        self._store.record_blobs(records)
        self.counters.stored(len(records), sum(r.size_bytes for r in records))
        ids = [r.id for r in records]
        return _upload_response(upload_id, ids[0] if len(ids) == 1 else "")

    def _binary_record(
        self,
        metadata: Any,
        metadata_bytes: bytes,
        sensor_metadata: Any,
        payload: bytes | memoryview,
        folder: tuple[str, ...],
        now_ns: int,
    ) -> BlobRecord:
        mime = _mime_type(metadata, sensor_metadata)
        extension = binary_extension(metadata, mime)
        stored = self._blobs.put(folder, extension, payload)
        return self._blob_record(
            metadata, metadata_bytes, sensor_metadata, stored, extension, mime, None, now_ns
        )

    def _blob_record(
        self,
        metadata: Any,
        metadata_bytes: bytes,
        sensor_metadata: Any,
        stored: StoredPayload,
        extension: str,
        mime_type: str,
        upload_id: str | None,
        now_ns: int,
    ) -> BlobRecord:
        blob_id = content_id(
            b"binary", metadata_bytes, _det(sensor_metadata), bytes.fromhex(stored.sha256)
        )
        return _stored_blob(
            metadata,
            stored,
            id=blob_id,
            upload_id=upload_id or blob_id,
            kind="binary",
            time_requested_ns=_timestamp_ns(sensor_metadata, "time_requested"),
            time_received_ns=_timestamp_ns(sensor_metadata, "time_received"),
            mime_type=mime_type,
            file_extension=extension,
            annotations=annotations_of(sensor_metadata),
            uploaded_at_ns=now_ns,
        )

    def _check_whole(self, writer: PayloadWriter, context: grpc.ServicerContext | None) -> None:
        """Refuse to keep a stream that ended because its call was cancelled.

        gRPC ends the request iterator the same way for a client that finished
        and for a cancelled call, and may report the cancellation a moment later:
        so look after the payload is on disk (which takes that moment).
        """
        writer.sync()
        if self.cancelling.is_set():
            raise UploadCancelled("the server stopped before the upload was complete")
        if context is not None and not context.is_active():
            raise UploadCancelled("the call ended before the upload was complete")

    def _receive(
        self,
        packets: Iterator[Any],
        folder: tuple[str, ...],
        extension: str,
        field: str,
        method: str,
        context: grpc.ServicerContext | None,
    ) -> StoredPayload:
        """Write the payload chunks that follow a stream's metadata to a new payload file;
        the stored payload once it is whole."""
        message_class = (
            data_sync_pb2.StreamingDataCaptureUploadRequest
            if field == "data"
            else data_sync_pb2.FileUploadRequest
        )
        with self._blobs.writer(folder, extension) as writer:
            for chunk in chunks(packets, message_class, field, method):
                writer.write(chunk)
            self._check_whole(writer, context)
            return writer.commit()

    def streaming_data_capture_upload(
        self, request_iterator: Iterator[Any], context: grpc.ServicerContext | None = None
    ) -> Any:
        packets = iter(request_iterator)
        first = metadata_packet(
            packets, data_sync_pb2.StreamingDataCaptureUploadRequest, "StreamingDataCaptureUpload"
        )
        if not first.HasField("upload_metadata"):
            raise InvalidUpload("StreamingDataCaptureUpload metadata without upload_metadata")
        metadata = first.upload_metadata
        sensor_metadata = first.sensor_metadata
        check_storable_times(sensor_metadata, "metadata.sensor_metadata", _SENSOR_TIMES)
        folder = checked_folder(metadata, (BINARY,), "StreamingDataCaptureUpload")
        mime_type = _mime_type(metadata, sensor_metadata)
        extension = binary_extension(metadata, mime_type)
        stored = self._receive(
            packets, folder, extension, "data", "StreamingDataCaptureUpload", context
        )
        record = self._blob_record(
            metadata, _det(metadata), sensor_metadata, stored, extension, mime_type,
            None, time.time_ns(),
        )  # fmt: skip
        self._store.record_blob(record)
        self.counters.stored(1, stored.size_bytes)
        blob_id = record.id
        response = data_sync_pb2.StreamingDataCaptureUploadResponse(
            file_id=blob_id, binary_data_id=blob_id
        )
        return response.SerializeToString()

    def file_upload(
        self, request_iterator: Iterator[Any], context: grpc.ServicerContext | None = None
    ) -> Any:
        packets = iter(request_iterator)
        metadata = metadata_packet(packets, data_sync_pb2.FileUploadRequest, "FileUpload")
        check_storable_times(metadata, "metadata", ("file_create_time", "file_modify_time"))
        folder = checked_folder(metadata, (FILE, UNSPECIFIED), "FileUpload")
        if not (metadata.component_type or metadata.component_name or metadata.method_name):
            folder = (folder[0], FILES_FOLDER)  # an arbitrary file, from no component
        extension = file_extension(metadata)
        stored = self._receive(packets, folder, extension, "file_contents", "FileUpload", context)
        now_ns = time.time_ns()
        modified_ns = _timestamp_ns(metadata, "file_modify_time") or _timestamp_ns(
            metadata, "file_create_time"
        )
        blob_id = content_id(b"file", _det(metadata), bytes.fromhex(stored.sha256))
        record = _stored_blob(
            metadata,
            stored,
            id=blob_id,
            upload_id=blob_id,
            kind="file",
            time_requested_ns=modified_ns or now_ns,
            time_received_ns=now_ns,
            mime_type=metadata.mime_type,
            file_extension=extension,
            uploaded_at_ns=now_ns,
        )
        added = self._store.record_blob(record)
        self.counters.stored(1, stored.size_bytes)
        log.debug("file %s (%d bytes) %s", blob_id, stored.size_bytes, "new" if added else "seen")
        response = data_sync_pb2.FileUploadResponse(file_id=blob_id, binary_data_id=blob_id)
        return response.SerializeToString()


def _stored_blob(metadata: Any, stored: StoredPayload, **fields: Any) -> BlobRecord:
    """The record of a payload ``stored`` for the upload ``metadata`` (UploadMetadata) names;
    ``fields``: the rest of the record."""
    return BlobRecord(
        part_id=metadata.part_id,
        component_type=metadata.component_type,
        component_name=metadata.component_name,
        method_name=metadata.method_name,
        tags=tuple(metadata.tags),
        path=stored.path,
        size_bytes=stored.size_bytes,
        sha256=stored.sha256,
        file_name=metadata.file_name,
        dataset_ids=tuple(metadata.dataset_ids),
        method_parameters=_method_parameters(metadata.method_parameters),
        **fields,
    )


def _upload_response(file_id: str, binary_data_id: str) -> bytes:
    response = data_sync_pb2.DataCaptureUploadResponse(
        file_id=file_id, binary_data_id=binary_data_id
    )
    return response.SerializeToString()


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    context.abort(code, message)
    raise AssertionError("context.abort returned")  # pragma: no cover
