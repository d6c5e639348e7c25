"""What the micro-server tests share (test_ring_sink.py, test_ring_upload.py)."""

from __future__ import annotations

from typing import Any

import grpc
from wire_helpers import struct_to_python

from capsync import wire
from capsync.capture.ring import RecordRing
from capsync.capture.ring_sink import RingCollectorSink
from capsync.capture.sink import CaptureSpec
from capsync.proto import data_sync_pb2
from capsync.service import micro_control

T0 = 1_714_564_800_000_000_000  # 2024-05-01T12:00:00Z

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
    length, start = wire.wire().read_varint(record, 0)
    assert start + length == len(record)
    return data_sync_pb2.SensorData.FromString(record[start:])
