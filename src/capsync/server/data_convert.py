"""Conversions between Viam's data API messages and the query layer's values."""

from __future__ import annotations

from typing import Any

from google.protobuf import any_pb2, struct_pb2, timestamp_pb2

from capsync import _time
from capsync.proto.viam.app.data.v1 import data_pb2 as pb
from capsync.query.api import box
from capsync.query.filters import LOCATION_ID, ORGANIZATION_ID, DataFilter, QueryError
from capsync.server.stores.base import BlobRecord, TabularBatch, TabularRecord

_TAGS = pb.TagsFilterType


def timestamp(ns: int) -> timestamp_pb2.Timestamp:
    return _time.timestamp(ns)


def timestamp_ns(message: Any, field: str) -> int | None:
    if not message.HasField(field):
        return None
    return _time.timestamp_ns(getattr(message, field))


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out


def component_type(text: str) -> str | None:
    """A filter's component type: ``sensor`` means ``rdk:component:sensor``; "" means any."""
    if not text:
        return None
    return text if ":" in text else f"rdk:component:{text}"


def data_filter(message: Any) -> DataFilter:
    """A :class:`DataFilter` from Viam's ``Filter`` (an unset filter matches everything)."""
    if message.robot_name or message.part_name:
        raise QueryError(
            "filter: machine and part names are not known to a self-hosted server; "
            "filter by part_id (robot_id is the part id)"
        )
    part_id = message.part_id or message.robot_id or None
    if message.part_id and message.robot_id and message.part_id != message.robot_id:
        part_id, nothing = message.part_id, True
    else:
        nothing = False
    tags_filter = message.tags_filter
    tag_match = "any"
    tags: tuple[str, ...] = ()
    if tags_filter.type == _TAGS.TAGS_FILTER_TYPE_TAGGED:
        tag_match = "tagged"
    elif tags_filter.type == _TAGS.TAGS_FILTER_TYPE_UNTAGGED:
        tag_match = "untagged"
    else:
        tags = tuple(tags_filter.tags)
    start_ns = end_ns = None
    if message.HasField("interval"):
        start_ns = timestamp_ns(message.interval, "start")
        end_ns = timestamp_ns(message.interval, "end")
    return DataFilter(
        part_id=part_id,
        component_name=message.component_name or None,
        component_type=component_type(message.component_type),
        method_name=message.method or None,
        tags=tags,
        tag_match=tag_match,  # type: ignore[arg-type]
        start_ns=start_ns,
        end_ns=end_ns,
        mime_types=tuple(message.mime_type),
        bbox_labels=tuple(message.bbox_labels),
        dataset_id=message.dataset_id or None,
        matches_nothing=nothing,
    )


def delete_filter(message: Any) -> DataFilter:
    """A :class:`DataFilter` from Viam's ``DeleteTabularFilter`` (tags are refused)."""
    if message.HasField("tags_filter") and message.tags_filter.ByteSize():
        raise QueryError("filter.tags_filter: deleting tabular data by tags is not supported")
    part_id = message.part_id or message.robot_id or None
    nothing = bool(message.part_id and message.robot_id and message.part_id != message.robot_id)
    return DataFilter(
        part_id=part_id,
        component_name=message.component_name or None,
        component_type=component_type(message.component_type),
        method_name=message.method or None,
        matches_nothing=nothing,
    )


def _parameters(values: dict[str, Any]) -> dict[str, any_pb2.Any]:
    out: dict[str, any_pb2.Any] = {}
    for key, value in values.items():
        packed = any_pb2.Any()
        wrapped = struct_pb2.Value()
        wrapped.MergeFrom(struct({"v": value}).fields["v"])
        packed.Pack(wrapped)
        out[key] = packed
    return out


def capture_metadata(record: TabularRecord | BlobRecord | TabularBatch) -> pb.CaptureMetadata:
    meta = pb.CaptureMetadata(
        organization_id=ORGANIZATION_ID,
        location_id=LOCATION_ID,
        robot_id=record.part_id,
        part_id=record.part_id,
        component_type=record.component_type,
        component_name=record.component_name,
        method_name=record.method_name,
        tags=list(record.tags),
        mime_type=record.mime_type,
    )
    for key, packed in _parameters(record.method_parameters).items():
        meta.method_parameters[key].CopyFrom(packed)
    return meta


def annotations_message(document: dict[str, Any]) -> pb.Annotations:
    out = pb.Annotations()
    for stored in document.get("bboxes", []):
        out.bboxes.append(pb.BoundingBox(**box(stored)))
    for stored in document.get("classifications", []):
        classification = pb.Classification(id=stored.get("id", ""), label=stored.get("label", ""))
        if "confidence" in stored:
            classification.confidence = float(stored["confidence"])
        out.classifications.append(classification)
    return out


def binary_metadata(record: BlobRecord) -> pb.BinaryMetadata:
    meta = pb.BinaryMetadata(
        id=record.id,
        binary_data_id=record.id,
        capture_metadata=capture_metadata(record),
        file_name=record.file_name,
        file_ext=record.file_extension,
        annotations=annotations_message(record.annotations),
        dataset_ids=list(record.dataset_ids),
        file_size_bytes=record.size_bytes,
    )
    if record.time_requested_ns:
        meta.time_requested.CopyFrom(timestamp(record.time_requested_ns))
    if record.time_received_ns:
        meta.time_received.CopyFrom(timestamp(record.time_received_ns))
    return meta


def tabular_metadata(records: list[TabularRecord]) -> tuple[list[pb.CaptureMetadata], list[int]]:
    """Viam's ``metadata`` list (one entry per distinct source) and each record's index in it."""
    index: dict[tuple[Any, ...], int] = {}
    metadata: list[pb.CaptureMetadata] = []
    positions: list[int] = []
    for r in records:
        key = (r.part_id, r.component_type, r.component_name, r.method_name, r.tags, r.mime_type)
        position = index.get(key)
        if position is None:
            position = index[key] = len(metadata)
            metadata.append(capture_metadata(r))
        positions.append(position)
    return metadata, positions


def binary_ids(message: Any) -> list[str]:
    """The ids a request names: ``binary_data_ids``, else the deprecated ``binary_ids``."""
    ids = list(message.binary_data_ids)
    if not ids and hasattr(message, "binary_ids"):
        ids = [b.file_id for b in message.binary_ids]
    return ids
