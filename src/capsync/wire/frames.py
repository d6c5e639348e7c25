"""``DataCaptureUploadRequest`` bodies built from stored frames, and the one walker over
a ``SensorData`` record's fields.

A capture file and a micro-server ring both hold ``SensorData`` records as
frames (``varint length + SensorData``). An upload request is their bytes
behind one tag each, after the ``UploadMetadata`` field, so it is built by
concatenation and never decoded:

    body = metadata_field(metadata) + b"".join(TAG_SENSOR_CONTENTS + frame ...)

which also makes its size known in advance: ``len(head) + sum(1 + len(frame))``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf.message import DecodeError

from capsync import wire
from capsync.proto import data_sync_pb2

TAG_METADATA = b"\x0a"  # DataCaptureUploadRequest.metadata, LEN
TAG_SENSOR_CONTENTS = b"\x12"  # DataCaptureUploadRequest.sensor_contents, LEN
SENSOR_METADATA_FIELD = 1  # SensorData.metadata
SENSOR_BINARY_FIELD = 3  # SensorData.binary

Span = tuple[int, int]  # (offset, length) of a field's bytes


def metadata_field(metadata: data_sync_pb2.UploadMetadata) -> bytes:
    """``DataCaptureUploadRequest.metadata`` as its serialized field (tag, length, body)."""
    body = metadata.SerializeToString(deterministic=True)
    return TAG_METADATA + wire.wire().encode_varint(len(body)) + body


def request_from_frames(head: bytes, frames: Iterable[bytes]) -> bytes:
    """The request body: ``head`` (see :func:`metadata_field`) and each frame (``varint
    length + SensorData``) as one ``sensor_contents`` field."""
    return head + b"".join(TAG_SENSOR_CONTENTS + frame for frame in frames)


def request_from_record(head: bytes, record: Any) -> bytes:
    """The request body carrying one unframed ``SensorData`` record (bytes-like)."""
    length = wire.wire().encode_varint(len(record))
    return b"".join((head, TAG_SENSOR_CONTENTS, length, record))


def sensor_data_fields(data: Any, offset: int, length: int) -> tuple[Span | None, Span | None]:
    """``(metadata, binary)`` field spans of the ``SensorData`` at ``data[offset:offset+length]``,
    without decoding it (None for a field that is absent).

    Raises ValueError when the record does not parse or overruns ``length``.
    """
    read_varint = wire.wire().read_varint
    pos, end = offset, offset + length
    metadata_span = payload_span = None
    while pos < end:
        key, pos = read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            _, pos = read_varint(data, pos)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        elif wire_type == 2:
            size, pos = read_varint(data, pos)
            if number == SENSOR_METADATA_FIELD:
                metadata_span = (pos, size)
            elif number == SENSOR_BINARY_FIELD:
                payload_span = (pos, size)
            pos += size
        else:
            raise ValueError(f"wire type {wire_type}")
    if pos != end:
        raise ValueError("overruns its length")
    return metadata_span, payload_span


def parse_frame(frame: bytes) -> data_sync_pb2.SensorData | None:
    """The ``SensorData`` of one frame, or None when it is not exactly one."""
    try:
        length, start = wire.wire().read_varint(frame, 0)
        if start + length != len(frame):
            return None
        return data_sync_pb2.SensorData.FromString(frame[start:])
    except (ValueError, DecodeError):
        return None
