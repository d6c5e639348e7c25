"""micro-server mode: the record ring, the sink that fills it and the uploader that drains it."""

from __future__ import annotations

import collections
import random
from pathlib import Path
from typing import Any

import grpc
import pytest
from server_fixtures import (
    AUTH,
    KEY_ID,
    ServerProcess,
)
from sync_helpers import wait_for
from wire_helpers import struct_to_python, ts_ns

from capsync.capture.ring import RecordRing, RecordTooLargeError
from capsync.capture.ring_sink import RingCollectorSink, cache_capacity_bytes
from capsync.capture.sink import CaptureSpec
from capsync.proto import data_pb2, data_sync_pb2
from capsync.resources import BinaryResult, Resource, ResourceContext, capture_method
from capsync.server import ItemFilter, list_items
from capsync.service import micro_control
from capsync.service.collector import Collector, CollectorKey, CollectorSettings
from capsync.sync.ring_upload import MAX_REQUEST_BYTES, RingUploader, max_record_bytes_for

T0 = 1_714_564_800_000_000_000  # 2024-05-01T12:00:00Z

independent = pytest.mark.wire_independent


def rec(i: int, size: int = 30) -> bytes:
    """A recognisable record of ``size`` bytes."""
    head = f"r{i}:".encode()
    return (head * (size // len(head) + 1))[:size]


# ----- the ring ------------------------------------------------------------------------------


@independent
def test_records_come_out_oldest_first_and_leave_only_on_confirm() -> None:
    ring = RecordRing(1000)
    for i in range(5):
        assert ring.append(rec(i)) == 0
    chunk = ring.peek_chunk(100)  # 3 records of 30 bytes fit
    assert chunk.records == [rec(0), rec(1), rec(2)]
    assert chunk.nbytes == 90 and len(ring) == 5
    assert ring.peek_chunk(100).records == chunk.records  # peeking again changes nothing
    assert ring.confirm(chunk.token) == 3
    assert ring.confirm(chunk.token) == 0  # a token confirms once
    assert ring.peek_chunk().records == [rec(3), rec(4)]
    stats = ring.stats()
    assert (stats.records, stats.bytes, stats.confirmed_records, stats.confirmed_bytes) == (
        2,
        60,
        3,
        90,
    )


@independent
def test_a_full_ring_overwrites_the_oldest_whole_records_in_order() -> None:
    ring = RecordRing(100)
    assert [ring.append(rec(i)) for i in range(3)] == [0, 0, 0]  # 90 of 100 bytes
    assert ring.append(rec(3)) == 1  # record 0 goes
    assert ring.peek_chunk().records == [rec(1), rec(2), rec(3)]
    assert ring.append(rec(4, 70)) == 2  # 1 and 2 go; 3 (30) + 4 (70) = 100 bytes: full
    assert ring.peek_chunk().records == [rec(3), rec(4, 70)]
    assert ring.nbytes == 100
    assert ring.append(rec(5, 100)) == 2  # everything goes for a record as large as the ring
    assert ring.peek_chunk(1000).records == [rec(5, 100)]
    stats = ring.stats()
    assert stats.overwritten_records == 5
    assert stats.overwritten_bytes == 30 * 4 + 70
    assert stats.appended_records == 6


@independent
def test_records_that_wrap_around_the_end_read_back_whole() -> None:
    ring = RecordRing(64)
    expected: collections.deque[bytes] = collections.deque()
    for i in range(200):
        record = rec(i, 7 + (i * 13) % 40)
        ring.append(record)
        expected.append(record)
        while sum(map(len, expected)) > 64:
            expected.popleft()
        assert ring.peek_chunk(10_000).records == list(expected)


@independent
def test_a_record_larger_than_the_ring_is_refused_and_counted() -> None:
    ring = RecordRing(100)
    ring.append(rec(0))
    with pytest.raises(RecordTooLargeError) as caught:
        ring.append(rec(1, 101))
    assert (caught.value.nbytes, caught.value.limit) == (101, 100)
    assert isinstance(caught.value, ValueError)
    assert ring.peek_chunk().records == [rec(0)]  # unchanged
    limited = RecordRing(100, max_record_bytes=40)
    with pytest.raises(RecordTooLargeError):
        limited.append(rec(2, 41))
    limited.append(rec(3, 40))
    assert ring.stats().oversize_records == 1 and limited.stats().oversize_records == 1
    with pytest.raises(ValueError, match="empty"):
        ring.append(b"")


@independent
def test_confirm_removes_only_what_is_still_there_and_nothing_newer() -> None:
    ring = RecordRing(100)
    for i in range(3):
        ring.append(rec(i))
    chunk = ring.peek_chunk()
    assert chunk.token.count == 3
    ring.append(rec(3, 60))  # overwrites records 0 and 1 while "uploading"
    assert ring.confirm(chunk.token) == 1  # only record 2 was still held
    assert ring.peek_chunk().records == [rec(3, 60)]  # the newer record stays
    later = ring.peek_chunk()
    ring.append(rec(4, 100))  # overwrites everything, the peeked record included
    assert ring.confirm(later.token) == 0
    assert ring.peek_chunk(1000).records == [rec(4, 100)]


@independent
def test_peek_respects_bytes_overhead_and_count() -> None:
    ring = RecordRing(1000)
    for i in range(10):
        ring.append(rec(i, 10))
    assert len(ring.peek_chunk(50)) == 5
    assert len(ring.peek_chunk(50, per_record_overhead=1)) == 4  # 4 * 11 = 44; 5 * 11 = 55
    assert len(ring.peek_chunk(1000, max_records=3)) == 3
    assert len(ring.peek_chunk(9)) == 0  # the oldest alone does not fit
    assert len(RecordRing(10).peek_chunk()) == 0


@independent
def test_the_ring_agrees_with_a_model_under_random_operations() -> None:
    rng = random.Random(1234)
    ring = RecordRing(500)
    model: collections.deque[tuple[int, bytes]] = collections.deque()  # (seq, record)
    tokens: list[tuple[Any, int]] = []  # (token, end seq)
    overwritten = 0
    for seq in range(5000):
        action = rng.random()
        if action < 0.6:
            record = rec(seq, rng.randint(1, 120))
            ring.append(record)
            model.append((seq, record))
            while sum(len(r) for _, r in model) > 500:
                model.popleft()
                overwritten += 1
        elif action < 0.8:
            chunk = ring.peek_chunk(rng.randint(1, 400))
            expected = [r for _, r in model][: len(chunk)]
            assert chunk.records == expected
            end = model[len(chunk) - 1][0] if len(chunk) else -1
            tokens.append((chunk.token, end))
        elif tokens:
            token, end = tokens.pop(rng.randrange(len(tokens)))
            removed = 0
            while model and model[0][0] <= end:
                model.popleft()
                removed += 1
            assert ring.confirm(token) == removed
        assert len(ring) == len(model)
        assert ring.nbytes == sum(len(r) for _, r in model)
    assert ring.stats().overwritten_records == overwritten


@independent
def test_cache_size_kb_below_one_is_refused() -> None:
    assert cache_capacity_bytes(1) == 1000
    assert cache_capacity_bytes(2.5) == 2500
    for bad in (0, 0.5, 0.999):
        with pytest.raises(ValueError, match="cache_size_kb"):
            cache_capacity_bytes(bad)


# ----- the sink ------------------------------------------------------------------------------


def sensor_sink(ring: RecordRing, name: str = "thermo") -> RingCollectorSink:
    spec = CaptureSpec("rdk:component:sensor", name, "Readings", tags=("lab",))
    return RingCollectorSink(ring, spec)


def build(
    cache_size_kb: float, upload: Any, part_id: str, *, tags: tuple[str, ...] = (), **keys: Any
) -> micro_control.MicroServerCollector:
    """``micro_control.build`` with the spec spelled as keywords (``SENSOR_KEYS``)."""
    options = {k: keys.pop(k) for k in ("call_metadata", "timeout_s") if k in keys}
    spec = CaptureSpec(tags=tags, **keys)
    return micro_control.build(cache_size_kb, upload, part_id, spec, **options)


def parse(record: bytes) -> data_sync_pb2.SensorData:
    from capsync import wire

    length, start = wire.wire().read_varint(record, 0)
    assert start + length == len(record)
    return data_sync_pb2.SensorData.FromString(record[start:])


def test_the_sink_stores_what_a_capture_file_would_hold(wire_impl: Any) -> None:
    ring = RecordRing(10_000)
    sink = sensor_sink(ring)
    assert sink.append({"celsius": 21.5, "ok": True}, T0, T0 + 500) == 0
    buffer = wire_impl.RecordBuffer()
    buffer.append_readings({"celsius": 21.5, "ok": True}, T0, T0 + 500, "readings")
    (stored,) = ring.peek_chunk().records
    assert stored == buffer.getvalue()  # byte for byte what the file writer encodes
    reading = parse(stored)
    assert struct_to_python(reading.struct) == {"readings": {"celsius": 21.5, "ok": True}}
    assert ts_ns(reading.metadata.time_requested) == T0
    assert ts_ns(reading.metadata.time_received) == T0 + 500
    assert sink.header.method_name == "Readings" and list(sink.header.tags) == ["lab"]
    assert sink.write_error is None and not sink.is_binary
    stats = sink.stats()
    assert (stats.records, stats.bytes_written, stats.files_completed) == (1, len(stored), 0)
    with pytest.raises(TypeError):
        sink.append_binary(b"x", T0, T0)
    with pytest.raises(TypeError):
        sink.append({"bad": object()}, T0, T0)
    assert len(ring) == 1  # a reading that does not encode leaves nothing behind
    sink.flush_to_capture()
    sink.close()
    with pytest.raises(ValueError, match="closed"):
        sink.append({"x": 1}, T0, T0)


def test_a_binary_sink_stores_the_payload(wire_impl: Any) -> None:
    ring = RecordRing(10_000)
    spec = CaptureSpec("rdk:component:camera", "cam", "ReadImage", mime_type="image/jpeg")
    sink = RingCollectorSink(ring, spec)
    payload = bytes(range(256)) * 8
    sink.append_binary(memoryview(payload), T0, T0 + 1)
    reading = parse(ring.peek_chunk().records[0])
    assert reading.binary == payload and reading.metadata.mime_type == 1


class AnnotatedCamera(Resource):
    """CaptureAllFromCamera with a detection: a binary reading with ``Annotations``."""

    api = "rdk:component:camera"
    model = "test:models:annotated"

    @capture_method("CaptureAllFromCamera")
    def capture_all(self, params: Any) -> BinaryResult:
        box = data_pb2.Annotations()
        box.bboxes.add(label="cup", x_min_normalized=0.1, x_max_normalized=0.5, confidence=0.9)
        return BinaryResult(b"\xff\xd8jpeg", "image/jpeg", annotations=box.SerializeToString())


def test_an_annotated_camera_capture_goes_into_the_ring(wire_impl: Any, tmp_path: Path) -> None:
    server = FakeServer()
    spec = CaptureSpec(
        "rdk:component:camera", "cam", "CaptureAllFromCamera", mime_type="image/jpeg"
    )
    parts = micro_control.build(10, server, "part-1", spec)
    collector = Collector(
        CollectorKey("rdk:component:camera", "cam", "CaptureAllFromCamera"),
        AnnotatedCamera("cam", {}, ResourceContext(capture_dir=str(tmp_path))),
        CollectorSettings(frequency_hz=100),
        tmp_path,
        sink_factory=lambda mime_type: parts.sink,
    )
    collector.start()
    try:
        wait_for(lambda: len(parts.ring) >= 2, timeout_s=20)
    finally:
        collector.close()
    assert collector.stats().errors == 0
    reading = parse(parts.ring.peek_chunk().records[0])
    assert reading.binary == b"\xff\xd8jpeg" and reading.metadata.mime_type == 1
    (box,) = reading.metadata.annotations.bboxes
    assert box.label == "cup" and box.x_max_normalized == 0.5
    assert parts.uploader.drain().error is None
    assert server.requests[0].sensor_contents[0].metadata.annotations.bboxes[0].label == "cup"


def test_an_oversize_reading_is_an_error_and_counted(wire_impl: Any) -> None:
    parts = build(1, lambda request: None, "part", **SENSOR_KEYS)
    parts.sink.append({"v": 1.0}, T0, T0)
    with pytest.raises(RecordTooLargeError):
        parts.sink.append({"text": "x" * 2000}, T0, T0)  # more than the 1000-byte ring
    assert parts.ring.stats().oversize_records == 1
    assert parts.sink.too_large_records == 1
    assert len(parts.ring) == 1
    # A ring bigger than a request still refuses what no request could carry.
    big = build(64, lambda request: None, "part", **SENSOR_KEYS)
    assert big.ring.max_record_bytes == max_record_bytes_for(big.uploader.metadata)
    assert big.ring.max_record_bytes < MAX_REQUEST_BYTES
    with pytest.raises(RecordTooLargeError):
        big.sink.append({"text": "x" * 40_000}, T0, T0)


def test_overwritten_readings_are_counted_and_the_newest_kept(wire_impl: Any) -> None:
    parts = build(2, lambda request: None, "part", **SENSOR_KEYS)
    overwritten = sum(parts.sink.append({"n": float(i)}, T0 + i, T0 + i) for i in range(200))
    stats = parts.ring.stats()
    assert overwritten == stats.overwritten_records == parts.sink.overwritten_records > 0
    assert stats.records + stats.overwritten_records == 200
    assert stats.bytes <= 2000
    kept = [parse(r) for r in parts.ring.peek_chunk(10**6).records]
    numbers = [struct_to_python(r.struct)["readings"]["n"] for r in kept]
    assert numbers == [float(i) for i in range(200 - len(kept), 200)]


# ----- the uploader --------------------------------------------------------------------------

SENSOR_KEYS = {
    "component_type": "rdk:component:sensor",
    "component_name": "thermo",
    "method_name": "Readings",
}


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str = "") -> None:
        super().__init__(details)
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class FakeServer:
    """Records every request; fails the next ``fail`` calls with ``code``."""

    def __init__(self) -> None:
        self.requests: list[data_sync_pb2.DataCaptureUploadRequest] = []
        self.fail = 0
        self.code = grpc.StatusCode.UNAVAILABLE

    def __call__(self, request: data_sync_pb2.DataCaptureUploadRequest) -> Any:
        if self.fail:
            self.fail -= 1
            raise FakeRpcError(self.code, "try later")
        self.requests.append(request)
        return data_sync_pb2.DataCaptureUploadResponse(file_id="f")

    def numbers(self) -> list[float]:
        return [
            struct_to_python(r.struct)["readings"]["n"]
            for request in self.requests
            for r in request.sensor_contents
        ]


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


# ----- in a collector ------------------------------------------------------------------------


class Counter(Resource):
    """Readings {"n": call number}; every 10th reading is too big for a 1 KB cache."""

    api = "rdk:component:sensor"
    model = "test:models:ring-counter"

    def __init__(self, name: str, attributes: Any, context: Any) -> None:
        super().__init__(name, attributes, context)
        self.calls = 0

    @capture_method("Readings")
    def readings(self, params: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls % 10 == 0:
            return {"n": float(self.calls), "blob": "b" * 2000}
        return {"n": float(self.calls)}


def test_a_collector_fills_the_ring_instead_of_files(wire_impl: Any, tmp_path: Path) -> None:
    server = FakeServer()
    parts = build(1, server, "part-1", **SENSOR_KEYS)
    resource = Counter("thermo", {}, ResourceContext(capture_dir=str(tmp_path)))
    collector = Collector(
        CollectorKey("rdk:component:sensor", "thermo", "Readings"),
        resource,
        CollectorSettings(frequency_hz=200),
        tmp_path,
        sink_factory=lambda mime_type: parts.sink,
    )
    collector.start()
    try:
        wait_for(lambda: parts.ring.stats().overwritten_records >= 20, timeout_s=20)
    finally:
        collector.close()
    stats = collector.stats()
    ring = parts.ring.stats()
    assert ring.overwritten_records >= 20  # the 1000-byte cache filled and wrapped
    assert ring.oversize_records == stats.errors >= 2  # the big readings: errors, counted
    assert stats.files == 0 and not list(tmp_path.iterdir())  # no capture files at all
    assert stats.records_written == ring.appended_records
    assert parts.uploader.drain().error is None
    numbers = server.numbers()
    assert numbers == sorted(numbers) and resource.calls - numbers[-1] <= 1  # the newest
    assert all(n % 10 for n in numbers)
