"""wire/frames.py: upload bodies from stored frames, and the one SensorData field walker."""

from __future__ import annotations

from typing import Any

import pytest

from capsync.proto import data_sync_pb2
from capsync.wire import frames

T0 = 1_714_564_800_000_000_000


def _record(binary: bytes = b"", mime_type: int = 0) -> bytes:
    reading = data_sync_pb2.SensorData(binary=binary)
    reading.metadata.time_requested.FromNanoseconds(T0)
    reading.metadata.mime_type = mime_type  # type: ignore[assignment]
    return reading.SerializeToString()


def test_bodies_from_frames_and_records_parse_as_requests(wire_impl: Any) -> None:
    metadata = data_sync_pb2.UploadMetadata(part_id="p", component_name="cam", tags=["t"])
    head = frames.metadata_field(metadata)
    records = [_record(b"a" * 200), _record(b"b")]
    framed = [wire_impl.encode_varint(len(r)) + r for r in records]
    body = frames.request_from_frames(head, framed)
    request = data_sync_pb2.DataCaptureUploadRequest.FromString(body)
    assert request.metadata == metadata
    assert [r.binary for r in request.sensor_contents] == [b"a" * 200, b"b"]
    assert len(body) == len(head) + sum(1 + len(f) for f in framed)  # known before building
    one = data_sync_pb2.DataCaptureUploadRequest.FromString(
        frames.request_from_record(head, memoryview(records[0]))
    )
    assert one.sensor_contents[0].binary == b"a" * 200
    assert frames.parse_frame(framed[1]) == data_sync_pb2.SensorData.FromString(records[1])
    assert frames.parse_frame(framed[1] + b"x") is None and frames.parse_frame(b"\xff") is None


def test_the_field_walker_finds_metadata_and_payload_without_decoding(wire_impl: Any) -> None:
    record = _record(b"payload", mime_type=1)
    data = b"junk" + record
    metadata_span, payload_span = frames.sensor_data_fields(data, 4, len(record))
    assert payload_span is not None and metadata_span is not None
    at, size = payload_span
    assert data[at : at + size] == b"payload"
    at, size = metadata_span
    assert data_sync_pb2.SensorMetadata.FromString(data[at : at + size]).mime_type == 1
    assert frames.sensor_data_fields(b"", 0, 0) == (None, None)
    with pytest.raises(ValueError, match="overruns"):
        frames.sensor_data_fields(record, 0, len(record) - 1)
    with pytest.raises(ValueError):
        frames.sensor_data_fields(b"\x0f", 0, 1)  # wire type 7
