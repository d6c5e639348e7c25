"""Upload -> records: ids, the checked body of a tabular upload, and decoding it on read.

Ids are hex sha256 digests, so the same upload sent again gets the same ids:

* tabular batch (``file_id`` of a ``DataCaptureUpload``): sha256 of the batch's
  canonical body (:func:`tabular_batch`), i.e. of its deterministic
  ``UploadMetadata`` and its ``sensor_contents`` bytes as sent;
* tabular reading: ``<batch id>:<index in the batch>``;
* binary reading: ``H("binary", upload metadata, SensorMetadata, sha256(payload))``,
  the same whether it came unary or streamed; it is the ``binary_data_id``;
* file: ``H("file", upload metadata, sha256(payload))``.

Nothing here touches a database or gRPC.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from google.protobuf import json_format, struct_pb2

from capsync import _time, wire
from capsync.methods import MIME_TYPE_ENUM
from capsync.proto import data_sync_pb2
from capsync.server.stores.base import TabularBatch, TabularRecord

_MAX_SAFE_INT_FLOAT = 2.0**53
_MIME_BY_ENUM = {number: mime for mime, number in MIME_TYPE_ENUM.items()}
_METADATA_TAG = b"\x0a"  # DataCaptureUploadRequest.metadata
_SENSOR_CONTENTS_TAG = b"\x12"  # DataCaptureUploadRequest.sensor_contents


def content_id(kind: bytes, *parts: bytes) -> str:
    """Hex sha256 of ``kind`` and ``parts``, each length-prefixed so no two inputs collide."""
    digest = hashlib.sha256()
    for part in (kind, *parts):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def reading_id(batch_id: str, index: int) -> str:
    """The id of reading ``index`` of batch ``batch_id``."""
    return f"{batch_id}:{index}"


def split_reading_id(record_id: str) -> tuple[str, int] | None:
    """(batch id, index) of a tabular reading id, or None when it is not one."""
    batch_id, sep, index = record_id.rpartition(":")
    if not sep or not index.isdigit() or len(batch_id) != 64:
        return None
    return batch_id, int(index)


def deterministic(message: Any) -> bytes:
    return bytes(message.SerializeToString(deterministic=True))


# --- decoding ----------------------------------------------------------------------------


def timestamp_ns(message: Any, field: str) -> int:
    if not message.HasField(field):
        return 0
    return _time.timestamp_ns(getattr(message, field))


def _value_to_py(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return struct_to_dict(value.struct_value)
    if kind == "list_value":
        return [_value_to_py(v) for v in value.list_value.values]
    if kind == "number_value":
        number = value.number_value
        if number.is_integer() and abs(number) <= _MAX_SAFE_INT_FLOAT:
            return int(number)
        return number  # NaN and infinities stay floats
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    return None


def struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as plain Python values (keys sorted: a Struct keeps no order); whole numbers
    become ints, NaN stays NaN."""
    return {key: _value_to_py(struct.fields[key]) for key in sorted(struct.fields)}


def method_parameters(parameters: Any) -> dict[str, Any]:
    """``map<string, Any>`` as JSON: the value when the type is known, else type URL + bytes."""
    result: dict[str, Any] = {}
    for name in sorted(parameters):
        packed = parameters[name]
        try:
            result[name] = json_format.MessageToDict(packed)
        except Exception:  # an Any whose type this server does not know
            result[name] = {"@type": packed.type_url, "value_hex": packed.value.hex()}
    return result


def mime_type(upload_metadata: Any, sensor_metadata: Any | None) -> str:
    if sensor_metadata is not None and sensor_metadata.mime_type in _MIME_BY_ENUM:
        return _MIME_BY_ENUM[sensor_metadata.mime_type]
    return str(upload_metadata.mime_type)


# --- batches -----------------------------------------------------------------------------


def tabular_batch(
    body: Any, scan: tuple[Any, ...], metadata: Any, uploaded_at_ns: int
) -> TabularBatch:
    """The canonical batch of a checked tabular upload ``body`` (``scan`` from ``scan_upload``)."""
    _, _, records_start, records_end, contiguous, offsets, lengths, _, requested, received = scan
    meta = deterministic(metadata)
    head = _METADATA_TAG + wire.wire().encode_varint(len(meta)) + meta
    view = memoryview(body)
    if contiguous:
        canonical = head + view[records_start:records_end]
        new_offsets = offsets - records_start + len(head)
    else:
        canonical, new_offsets = _join_readings(head, view, offsets, lengths)
    return _batch(
        hashlib.sha256(canonical).hexdigest(), metadata, canonical, new_offsets, lengths,
        requested, received, uploaded_at_ns,
    )  # fmt: skip


def _batch(
    batch_id: str, metadata: Any, body: bytes, offsets: Any, lengths: Any,
    requested: Any, received: Any, uploaded_at_ns: int,
) -> TabularBatch:  # fmt: skip
    """A :class:`TabularBatch` of ``body``, its source named by ``metadata`` (UploadMetadata)."""
    return TabularBatch(
        id=batch_id,
        part_id=metadata.part_id,
        component_type=metadata.component_type,
        component_name=metadata.component_name,
        method_name=metadata.method_name,
        file_name=metadata.file_name,
        tags=tuple(metadata.tags),
        mime_type=metadata.mime_type,
        method_parameters=method_parameters(metadata.method_parameters),
        body=body,
        offsets=offsets,
        lengths=lengths,
        time_requested_ns=requested,
        time_received_ns=received,
        uploaded_at_ns=uploaded_at_ns,
    )


def _join_readings(head: bytes, view: Any, offsets: Any, lengths: Any) -> tuple[bytes, Any]:
    encode_varint = wire.wire().encode_varint
    parts = [head]
    new_offsets = np.empty(len(offsets), dtype=np.int64)
    size = len(head)
    for i, (at, length) in enumerate(zip(offsets.tolist(), lengths.tolist(), strict=True)):
        prefix = _SENSOR_CONTENTS_TAG + encode_varint(length)
        parts += (prefix, view[at : at + length])
        new_offsets[i] = size + len(prefix)
        size += len(prefix) + length
    return b"".join(parts), new_offsets


def subset_batch(batch: TabularBatch, keep: Sequence[int]) -> TabularBatch:
    """``batch`` with only the readings at ``keep``; it keeps its id (the upload's answer)."""
    head = batch.body[: _metadata_end(batch.body)]  # a canonical body starts with its metadata
    index = np.asarray(keep, dtype=np.int64)
    body, offsets = _join_readings(head, memoryview(batch.body), batch.offsets[index],
                                   batch.lengths[index])  # fmt: skip
    return dataclasses.replace(
        batch,
        body=body,
        offsets=offsets,
        lengths=batch.lengths[index],
        time_requested_ns=batch.time_requested_ns[index],
        time_received_ns=batch.time_received_ns[index],
    )


def _metadata_end(body: bytes) -> int:
    read_varint = wire.wire().read_varint
    length, after = read_varint(body, 1)
    return int(after + length)


def batch_from_body(body: bytes, batch_id: str, uploaded_at_ns: int) -> TabularBatch:
    """A stored canonical body as a :class:`TabularBatch` again (index rebuilds)."""
    scan = wire.wire().scan_upload(body)
    meta_offset, meta_length = scan[0], scan[1]
    metadata = data_sync_pb2.UploadMetadata.FromString(
        body[meta_offset : meta_offset + meta_length]
    )
    _, _, _, _, _, offsets, lengths, _, requested, received = scan
    return _batch(batch_id, metadata, body, offsets, lengths, requested, received, uploaded_at_ns)


def decode_batch(
    body: bytes, batch_id: str, uploaded_at_ns: int, skip: Iterable[int] = ()
) -> list[TabularRecord]:
    """The readings of a stored canonical body, in upload order (``skip``: deleted indices)."""
    request = data_sync_pb2.DataCaptureUploadRequest.FromString(body)
    metadata = request.metadata
    tags = tuple(metadata.tags)
    parameters = method_parameters(metadata.method_parameters)
    skipped = set(skip)
    return [
        TabularRecord(
            id=reading_id(batch_id, index),
            upload_id=batch_id,
            part_id=metadata.part_id,
            component_type=metadata.component_type,
            component_name=metadata.component_name,
            method_name=metadata.method_name,
            tags=tags,
            time_requested_ns=timestamp_ns(reading.metadata, "time_requested"),
            time_received_ns=timestamp_ns(reading.metadata, "time_received"),
            mime_type=mime_type(metadata, reading.metadata),
            data=struct_to_dict(reading.struct),
            method_parameters=parameters,
            uploaded_at_ns=uploaded_at_ns,
        )
        for index, reading in enumerate(request.sensor_contents)
        if index not in skipped
    ]


def batches_from_records(records: Sequence[TabularRecord]) -> Iterator[TabularBatch]:
    """Decoded readings (an old store's rows) as batches, one per ``upload_id`` and source."""
    groups: dict[tuple[Any, ...], list[TabularRecord]] = defaultdict(list)
    for r in records:
        key = (r.upload_id, r.part_id, r.component_type, r.component_name, r.method_name, r.tags)
        groups[key].append(r)
    for (upload_id, part, ctype, cname, method, tags), group in groups.items():
        metadata = data_sync_pb2.UploadMetadata(
            part_id=part,
            component_type=ctype,
            component_name=cname,
            method_name=method,
            type=data_sync_pb2.DataType.DATA_TYPE_TABULAR_SENSOR,
            tags=list(tags),
            file_name=f"migrated:{upload_id}",
        )
        request = data_sync_pb2.DataCaptureUploadRequest(metadata=metadata)
        for r in group:
            reading = request.sensor_contents.add()
            reading.metadata.time_requested.CopyFrom(_time.timestamp(r.time_requested_ns))
            reading.metadata.time_received.CopyFrom(_time.timestamp(r.time_received_ns))
            reading.struct.update(r.data)
        body = deterministic(request)
        scan = wire.wire().scan_upload(body)
        uploaded_at = min(r.uploaded_at_ns for r in group)
        yield tabular_batch(body, scan, metadata, uploaded_at)
