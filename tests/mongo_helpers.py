"""Shared by the MongoDB tests: readings on disk and in MongoDB, sample records, waiting.

The MongoDB server itself comes from ``mongo_fixtures`` (fixtures ``mongo_uri``,
``mongo_db``, ``mongo_server_factory``).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import struct_pb2
from mongo_fixtures import client_for
from server_fixtures import TABULAR

from capsync import read_capture_file
from capsync.mongo.documents import date_ms
from capsync.resources import build_resource
from capsync.server.stores.base import BlobRecord, Record, TabularRecord
from capsync.service.collector import Collector, CollectorKey, CollectorSettings

S = 1_000_000_000
T0 = 1_714_564_800 * S  # 2024-05-01T12:00:00Z
SCHEMA = {
    "_id",
    "time_requested",
    "time_received",
    "component_name",
    "component_type",
    "method_name",
    "data",
}
SENSOR = "rdk:component:sensor"
COMMAND = {"x": 1, "s": "hi", "nested": {"list": [1, 2.5, True, None, "t"], "flag": False}}


# --- helpers ---------------------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], timeout_s: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what or condition}")
        time.sleep(0.02)


def wrote(collectors: Sequence[Collector], counts: Sequence[int]) -> bool:
    """Whether each collector has written at least its count of readings to disk."""
    return all(c.stats().records_written >= n for c, n in zip(collectors, counts, strict=True))


class TimedHook:
    """Wraps ``writer.submit``: counts calls and keeps the slowest call's duration."""

    def __init__(self, submit: Callable[[Any, Mapping[str, Any], int, int], None]) -> None:
        self._submit = submit
        self.calls = 0
        self.slowest_s = 0.0

    def __call__(self, key: Any, readings: Mapping[str, Any], t_req: int, t_recv: int) -> None:
        start = time.perf_counter()
        self._submit(key, readings, t_req, t_recv)
        self.slowest_s = max(self.slowest_s, time.perf_counter() - start)
        self.calls += 1


def sensor_collector(
    capture_dir: Path,
    hook: Callable[..., None] | None,
    *,
    method: str = "Readings",
    hz: float = 200.0,
    name: str = "thermo",
    params: Mapping[str, Any] | None = None,
) -> Collector:
    resource = build_resource("sensor", "fake", name, {})
    key = CollectorKey(api=SENSOR, resource_name=name, method=method)
    settings = CollectorSettings(frequency_hz=hz, additional_params=dict(params or {}))
    collector = Collector(key, resource, settings, capture_dir, on_tabular=hook)
    collector.start()
    return collector


def value_py(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return struct_py(value.struct_value)
    if kind == "list_value":
        return [value_py(v) for v in value.list_value.values]
    if kind == "null_value" or kind is None:
        return None
    return getattr(value, kind)


def struct_py(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as Python values, numbers as floats (what the struct holds)."""
    return {key: value_py(struct.fields[key]) for key in struct.fields}


@dataclass(frozen=True)
class DiskReading:
    component_name: str
    method_name: str
    time_requested_ns: int
    time_received_ns: int
    data: dict[str, Any]

    def as_mongo(self) -> tuple[str, str, dt.datetime, dt.datetime, str]:
        return (
            self.component_name,
            self.method_name,
            date_ms(self.time_requested_ns),
            date_ms(self.time_received_ns),
            json.dumps(self.data, sort_keys=True),
        )


def disk_readings(capture_dir: Path) -> list[DiskReading]:
    """Every tabular reading in the capture files under ``capture_dir``, in capture order."""
    readings = []
    for path in sorted(capture_dir.rglob("*.capture")) + sorted(capture_dir.rglob("*.prog")):
        header, records = read_capture_file(path)
        if header.type != TABULAR:
            continue
        for record in records:
            meta = record.metadata
            readings.append(
                DiskReading(
                    header.component_name,
                    header.method_name,
                    meta.time_requested.seconds * S + meta.time_requested.nanos,
                    meta.time_received.seconds * S + meta.time_received.nanos,
                    struct_py(record.struct),
                )
            )
    readings.sort(key=lambda r: (r.component_name, r.method_name, r.time_requested_ns))
    return readings


def mongo_readings(uri: str, database: str, collection: str = "readings") -> list[dict[str, Any]]:
    client = client_for(uri)
    try:
        return list(client[database][collection].find({}))
    finally:
        client.close()


def as_compared(doc: Mapping[str, Any]) -> tuple[str, str, dt.datetime, dt.datetime, str]:
    return (
        doc["component_name"],
        doc["method_name"],
        doc["time_requested"],
        doc["time_received"],
        json.dumps(doc["data"], sort_keys=True),
    )


def numbers(value: Any) -> Iterator[Any]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from numbers(item)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield value


@dataclass(frozen=True)
class Key:
    api: str = SENSOR
    resource_name: str = "probe"
    method: str = "Readings"


# --- records for the stores ----------------------------------------------------------------


def tabular_record(i: int, **fields: Any) -> TabularRecord:
    values: dict[str, Any] = {
        "id": f"{i:064x}",
        "upload_id": "u" * 64,
        "part_id": "part-1",
        "component_type": SENSOR,
        "component_name": "thermo",
        "method_name": "Readings",
        "tags": ("lab",),
        "time_requested_ns": T0 + i * S,
        "time_received_ns": T0 + i * S + 1000,
        "mime_type": "",
        "data": {"readings": {"temp": 20 + i, "ok": True, "f": 0.25}},
        "method_parameters": {},
        "uploaded_at_ns": T0,
    }
    values.update(fields)
    return TabularRecord(**values)


def blob_record(i: int, **fields: Any) -> BlobRecord:
    values: dict[str, Any] = {
        "id": f"{i:064x}",
        "upload_id": f"{i:064x}",
        "kind": "binary",
        "part_id": "part-1",
        "component_type": "rdk:component:camera",
        "component_name": "cam",
        "method_name": "ReadImage",
        "tags": (),
        "time_requested_ns": T0 + i * S,
        "time_received_ns": T0 + i * S + 5,
        "mime_type": "image/jpeg",
        "file_extension": ".jpeg",
        "path": f"part-1/rdk_component_camera/cam/ReadImage/{i:064x}.jpeg",
        "size_bytes": 10,
        "sha256": "0" * 64,
        "annotations": {"bboxes": [{"label": "cat", "x_min_normalized": 0.1}]},
    }
    values.update(fields)
    return BlobRecord(**values)


def sample_records() -> list[Record]:
    odd_keys = {"$dollar": 1, "dot.ted": 2, "nul\0key": {"deep": [1, {"x": None}]}}
    return [
        *[tabular_record(i) for i in range(10)],
        tabular_record(20, part_id="part-2", tags=("field", "lab"), data={"x": -1.5}),
        tabular_record(21, component_name="imu", method_name="LinearAcceleration", tags=()),
        tabular_record(22, data=odd_keys, method_parameters={"p": {"@type": "t", "value": 1}}),
        tabular_record(5, id="f" * 64),  # same time as another: ordered by id
        blob_record(5),
        blob_record(6, kind="file", component_type="", component_name="", method_name="",
              file_name="logs/a.txt", file_extension=".txt", dataset_ids=("ds",), tags=("lab",)),
        blob_record(7, annotations={"nul\0": 1}),
    ]  # fmt: skip


def store_all(store: Any, records: Sequence[Record]) -> None:
    store.record_tabular([r for r in records if isinstance(r, TabularRecord)])
    for record in records:
        if isinstance(record, BlobRecord):
            store.record_blob(record)
