"""The ``DataCaptureMetadata`` message that opens every capture file.

Built with the protobuf runtime: it is written once per file, so exactness
matters more than speed here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf import any_pb2, wrappers_pb2
from google.protobuf.message import Message

from capsync.methods import file_extension_for, is_binary_method
from capsync.proto import data_sync_pb2


def pack_method_parameters(parameters: Mapping[str, Any] | None) -> dict[str, any_pb2.Any]:
    """``additional_params`` as ``map<string, Any>``: strings as ``StringValue``, as viam does."""
    packed: dict[str, any_pb2.Any] = {}
    for key, value in (parameters or {}).items():
        if not isinstance(key, str):
            raise TypeError(f"method parameter name {key!r} is not a string")
        container = any_pb2.Any()
        if isinstance(value, Message):
            container.Pack(value)
        elif isinstance(value, str | int | float | bool):
            text = str(value).lower() if isinstance(value, bool) else str(value)
            container.Pack(wrappers_pb2.StringValue(value=text))
        else:
            raise TypeError(
                f"method parameter {key!r} must be a string or protobuf message, "
                f"got {type(value).__name__}"
            )
        packed[key] = container
    return packed


def build_header(
    *,
    component_type: str,
    component_name: str,
    method_name: str,
    tags: Iterable[str] = (),
    method_parameters: Mapping[str, Any] | None = None,
    mime_type: str = "",
) -> data_sync_pb2.DataCaptureMetadata:
    """The header of a capture file for one (resource, method)."""
    binary = is_binary_method(method_name)
    header = data_sync_pb2.DataCaptureMetadata(
        component_type=component_type,
        component_name=component_name,
        method_name=method_name,
        type=(
            data_sync_pb2.DATA_TYPE_BINARY_SENSOR
            if binary
            else data_sync_pb2.DATA_TYPE_TABULAR_SENSOR
        ),
        file_extension=file_extension_for(method_name, mime_type),
        tags=list(tags),
        mime_type=mime_type,
    )
    for key, value in pack_method_parameters(method_parameters).items():
        header.method_parameters[key].CopyFrom(value)
    return header


def annotated_record(
    payload: Any, time_requested_ns: int, time_received_ns: int, mime_type: int, annotations: bytes
) -> bytes:
    """A binary ``SensorData`` whose metadata carries ``annotations`` (serialized
    ``viam.app.data.v1.Annotations``), encoded by the protobuf runtime: such
    records are rare (vision captures), so exactness beats speed here too."""
    record = data_sync_pb2.SensorData(binary=bytes(payload))
    metadata = record.metadata
    metadata.time_requested.FromNanoseconds(time_requested_ns)
    metadata.time_received.FromNanoseconds(time_received_ns)
    metadata.mime_type = mime_type  # type: ignore[assignment]
    metadata.annotations.MergeFromString(annotations)
    return record.SerializeToString()


def encode_header(header: data_sync_pb2.DataCaptureMetadata) -> bytes:
    """Serialized header; deterministic, so the same stream always writes the same bytes."""
    return header.SerializeToString(deterministic=True)


def upload_metadata(
    header: data_sync_pb2.DataCaptureMetadata,
    *,
    part_id: str,
    file_name: str = "",
    dataset_ids: Iterable[str] = (),
) -> data_sync_pb2.UploadMetadata:
    """The ``UploadMetadata`` of uploads made from data with this capture ``header``."""
    metadata = data_sync_pb2.UploadMetadata(
        part_id=part_id,
        component_type=header.component_type,
        component_name=header.component_name,
        method_name=header.method_name,
        type=header.type,
        file_name=file_name,
        file_extension=header.file_extension,
        tags=list(header.tags),
        dataset_ids=list(dataset_ids),
        mime_type=header.mime_type,
    )
    for key, value in header.method_parameters.items():
        metadata.method_parameters[key].CopyFrom(value)
    return metadata
