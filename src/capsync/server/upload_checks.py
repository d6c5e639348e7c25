"""What the DataSyncService checks in an upload's metadata before it stores anything.

Each failed check raises :class:`InvalidUpload`, which the servicer answers with
``INVALID_ARGUMENT`` (the client sets the file aside instead of retrying).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Any

from capsync.methods import MIME_FILE_EXTENSIONS
from capsync.proto import data_sync_pb2
from capsync.server.blobs import check_extension, payload_folder
from capsync.server.records import timestamp_ns

DataType = data_sync_pb2.DataType
_timestamp_ns = timestamp_ns

__all__ = [
    "InvalidUpload",
    "UploadCancelled",
    "annotations_of",
    "binary_extension",
    "check_file_name",
    "check_storable_times",
    "check_type",
    "checked_folder",
    "file_extension",
    "type_name",
]


class InvalidUpload(ValueError):
    """An upload the server refuses with INVALID_ARGUMENT."""


class UploadCancelled(Exception):
    """A streamed upload whose call ended (client gone, server stopping) before it was whole."""


# --- checks ------------------------------------------------------------------------------

# What the store holds a time as: int64 nanoseconds since the epoch (1677-09-21 to 2262-04-11).
_MIN_NS, _MAX_NS = -(2**63), 2**63 - 1


def check_storable_times(message: Any, where: str, fields: Iterable[str]) -> None:
    """InvalidUpload naming ``<where>.<field>`` for a time the store cannot hold.

    A valid protobuf Timestamp spans years 1-9999; stored as int64 nanoseconds
    it must lie between 1677 and 2262. Anything outside is the client's data,
    so the answer is INVALID_ARGUMENT (the client sets the file aside), never
    an INTERNAL it would retry forever. (A ``DataCaptureUpload`` body gets the
    same check from the wire scanner, ``scan_upload``; this one is for the
    streamed uploads' metadata messages.)
    """
    for field in fields:
        if message.HasField(field) and not _MIN_NS <= _timestamp_ns(message, field) <= _MAX_NS:
            seconds = getattr(message, field).seconds
            raise InvalidUpload(
                f"{where}.{field} ({seconds} s since the epoch) is outside the storable range "
                "of years 1677 to 2262"
            )


_DRIVE = re.compile(r"^[A-Za-z]:")


def check_file_name(file_name: str) -> None:
    """Refuse a file name that is absolute or climbs out of its folder."""
    if not file_name:
        return
    if "\0" in file_name:
        raise InvalidUpload("file_name contains a NUL character")
    normal = file_name.replace("\\", "/")
    if normal.startswith("/") or _DRIVE.match(normal):
        raise InvalidUpload(f"file_name {file_name!r} is absolute; it must be a relative name")
    if ".." in normal.split("/"):
        raise InvalidUpload(f"file_name {file_name!r} climbs out of its folder ('..')")


def type_name(data_type: int) -> str:
    return str(DataType.Name(data_type)) if data_type in DataType.values() else str(data_type)


def checked_folder(metadata: Any, allowed: Iterable[int], rpc: str) -> tuple[str, ...]:
    """Validate an upload's metadata (type, file name); return where its payloads go."""
    check_type(metadata, allowed, rpc)
    check_file_name(metadata.file_name)
    return payload_folder(
        metadata.part_id, metadata.component_type, metadata.component_name, metadata.method_name
    )


def check_type(metadata: Any, allowed: Iterable[int], rpc: str) -> None:
    allowed = tuple(allowed)
    if metadata.type not in allowed:
        names = " or ".join(type_name(t) for t in allowed)
        raise InvalidUpload(f"{rpc} takes type {names}, metadata says {type_name(metadata.type)}")


def annotations_of(sensor_metadata: Any) -> dict[str, Any]:
    if not sensor_metadata.HasField("annotations"):
        return {}
    from google.protobuf import json_format

    return dict(
        json_format.MessageToDict(sensor_metadata.annotations, preserving_proto_field_name=True)
    )


def binary_extension(metadata: Any, mime_type: str) -> str:
    if metadata.file_extension:
        return check_extension(metadata.file_extension)
    return MIME_FILE_EXTENSIONS.get(mime_type, "")


def file_extension(metadata: Any) -> str:
    if metadata.file_extension:
        return check_extension(metadata.file_extension)
    suffix = PurePosixPath(metadata.file_name.replace("\\", "/")).suffix
    if suffix:
        return check_extension(suffix)
    return MIME_FILE_EXTENSIONS.get(metadata.mime_type, "")
