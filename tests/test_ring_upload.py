"""micro-server mode: uploading a ring's records (sync/ring_upload.py)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import grpc
from ring_helpers import SENSOR_KEYS, T0, FakeRpcError, FakeServer, build, sensor_sink
from server_fixtures import AUTH, KEY_ID, ServerProcess

from capsync.capture.ring import RecordRing
from capsync.proto import data_sync_pb2
from capsync.server import ItemFilter, list_items
from capsync.sync.ring_upload import MAX_REQUEST_BYTES, RingUploader


def test_a_failed_upload_keeps_the_chunk(wire_impl: Any) -> None:
    server = FakeServer()
    parts = build(10, server, "part-1", **SENSOR_KEYS)
    for i in range(20):
        parts.sink.append({"n": float(i)}, T0 + i, T0 + i)
    before = parts.ring.stats()
    server.fail = 2
    outcome = parts.uploader.upload_once()
    assert not outcome.ok and isinstance(outcome.error, FakeRpcError)
    assert outcome.records == 0
    result = parts.uploader.drain()
    assert result.error is not None and result.requests == 0
    after = parts.ring.stats()
    assert (after.records, after.bytes) == (before.records, before.bytes)
    assert parts.uploader.stats().requests_failed == 2
    assert "UNAVAILABLE" in (parts.uploader.stats().last_error or "")
    result = parts.uploader.drain()  # the server is back
    assert result.error is None and result.records == 20
    assert server.numbers() == [float(i) for i in range(20)]  # each once, in order
    assert len(parts.ring) == 0
    stats = parts.uploader.stats()
    assert stats.records_uploaded == 20 and stats.last_error is None


def test_a_chunk_refused_as_invalid_is_dropped_and_counted(wire_impl: Any) -> None:
    server = FakeServer()
    parts = build(10, server, "part-1", **SENSOR_KEYS)
    for i in range(5):
        parts.sink.append({"n": float(i)}, T0 + i, T0 + i)
    server.fail, server.code = 1, grpc.StatusCode.INVALID_ARGUMENT
    outcome = parts.uploader.upload_once()
    assert outcome.rejected == 5 and not outcome.ok
    assert len(parts.ring) == 0
    assert parts.uploader.stats().rejected_records == 5


def test_every_request_fits_32000_bytes(wire_impl: Any) -> None:
    server = FakeServer()
    parts = build(300, server, "part-1", tags=("lab", "ring"), **SENSOR_KEYS)
    rng = random.Random(7)
    for i in range(2000):
        text = "y" * rng.choice((0, 10, 100, 1000, 5000))
        parts.sink.append({"n": float(i), "text": text}, T0 + i, T0 + i)
    held = len(parts.ring)
    first = parts.ring.stats().overwritten_records
    result = parts.uploader.drain()
    assert result.error is None and result.records == held
    sizes = [len(r.SerializeToString()) for r in server.requests]
    assert max(sizes) <= MAX_REQUEST_BYTES
    assert all(r.ByteSize() <= MAX_REQUEST_BYTES for r in server.requests)
    assert max(sizes) > MAX_REQUEST_BYTES - 6000  # chunks are packed, not one record each
    assert server.numbers() == [float(i) for i in range(first, 2000)]
    assert parts.uploader.stats().largest_request_bytes == max(sizes)
    for request in server.requests:
        assert request.metadata.part_id == "part-1"
        assert list(request.metadata.tags) == ["lab", "ring"]
        assert request.metadata.type == data_sync_pb2.DATA_TYPE_TABULAR_SENSOR


def test_a_record_of_exactly_the_largest_size_goes_alone(wire_impl: Any) -> None:
    server = FakeServer()
    parts = build(100, server, "part-1", **SENSOR_KEYS)
    limit = parts.ring.max_record_bytes

    def size(n: int) -> int:
        buffer = wire_impl.RecordBuffer()
        buffer.append_readings({"text": "z" * n}, T0, T0, "readings")
        return len(buffer.getvalue())

    n = limit - size(0)  # then adjust for the longer length prefixes
    while size(n) > limit:
        n -= 1
    assert size(n) == limit
    text = "z" * n
    parts.sink.append({"small": 1.0}, T0, T0)
    parts.sink.append({"text": text}, T0, T0)
    assert parts.uploader.drain().requests == 2
    assert [r.ByteSize() for r in server.requests][1] == MAX_REQUEST_BYTES


def test_a_record_too_big_for_any_request_does_not_block_the_ring(wire_impl: Any) -> None:
    server = FakeServer()
    ring = RecordRing(100_000)  # built by hand, without the request limit
    sink = sensor_sink(ring)
    sink.append({"text": "x" * 40_000}, T0, T0)
    sink.append({"n": 1.0}, T0, T0)
    metadata = sink.spec.upload_metadata("part-1")
    uploader = RingUploader(ring, server, metadata)
    result = uploader.drain()
    assert result.rejected == 1 and result.records == 1
    assert uploader.stats().rejected_records == 1
    assert len(server.requests) == 1


def test_the_uploader_calls_a_stub_with_the_key_and_a_timeout(wire_impl: Any) -> None:
    calls: list[tuple[Any, Any, Any]] = []

    class Stub:
        def DataCaptureUpload(self, request: Any, metadata: Any = None, timeout: Any = None) -> Any:
            calls.append((request, metadata, timeout))
            return data_sync_pb2.DataCaptureUploadResponse()

    parts = build(10, Stub(), "part-1", call_metadata=AUTH, timeout_s=7.0, **SENSOR_KEYS)
    parts.sink.append({"n": 1.0}, T0, T0)
    assert parts.uploader.drain().records == 1
    ((request, metadata, timeout),) = calls
    assert metadata == AUTH and timeout == 7.0 and len(request.sensor_contents) == 1


def test_failed_drains_keep_every_record_until_the_server_answers(wire_impl: Any) -> None:
    server = FakeServer()
    parts = build(10, server, "part-1", **SENSOR_KEYS)
    for i in range(10):
        parts.sink.append({"n": float(i)}, T0 + i, T0 + i)
    server.fail = 2
    for _ in range(2):
        assert parts.uploader.drain().error is not None
        assert len(parts.ring) == 10
    assert parts.uploader.drain().error is None
    assert len(parts.ring) == 0
    assert server.numbers() == [float(i) for i in range(10)]
    assert parts.uploader.stats().requests_failed == 2


# ----- end to end ----------------------------------------------------------------------------


def test_ring_records_arrive_at_a_real_server_exactly_once(
    wire_impl: Any, ingest_server: ServerProcess, tmp_path: Path
) -> None:
    bad_key = (("key_id", KEY_ID), ("key", "wrong"))
    parts = build(
        100,
        ingest_server.stub(),
        "part-ring",
        call_metadata=AUTH,
        tags=("ring",),
        timeout_s=30,
        **SENSOR_KEYS,
    )
    for i in range(600):
        parts.sink.append({"n": float(i), "pad": "p" * 40}, T0 + i * 1000, T0 + i * 1000 + 1)
    held = parts.ring.stats()
    assert held.overwritten_records == 0 and held.records == 600

    refused = RingUploader(
        parts.ring, ingest_server.stub(), parts.uploader.metadata, call_metadata=bad_key
    )
    result = refused.drain()
    assert result.error is not None and len(parts.ring) == 600  # nothing lost on failure

    result = parts.uploader.drain()
    assert result.error is None and result.records == 600 and result.requests >= 2
    assert len(parts.ring) == 0
    items = list(list_items(ingest_server.data_dir, ItemFilter(part_id="part-ring")))
    numbers = sorted(item["data"]["readings"]["n"] for item in items)
    assert numbers == [float(i) for i in range(600)]  # every one, exactly once
    first = min(items, key=lambda item: item["time_requested_ns"])
    assert first["time_requested_ns"] == T0 and first["tags"] == ["ring"]
    assert first["component_name"] == "thermo" and first["method_name"] == "Readings"
