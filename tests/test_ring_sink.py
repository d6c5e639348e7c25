"""micro-server mode: the sink a collector fills the ring through (capture/ring_sink.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ring_helpers import SENSOR_KEYS, T0, FakeServer, build, parse, sensor_sink
from sync_helpers import wait_for
from wire_helpers import struct_to_python, ts_ns

from capsync.capture.ring import RecordRing, RecordTooLargeError
from capsync.capture.ring_sink import RingCollectorSink
from capsync.capture.sink import CaptureSpec
from capsync.proto import data_pb2
from capsync.resources import BinaryResult, Resource, ResourceContext, capture_method
from capsync.service import micro_control
from capsync.service.collector import Collector, CollectorKey, CollectorSettings
from capsync.sync.ring_upload import MAX_REQUEST_BYTES, max_record_bytes_for


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
