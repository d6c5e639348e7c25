"""MongoDB: capture into it (``mongo_capture_config``, SPEC §6) and ``capsync serve --mongo-uri``
(SPEC §7), against a real MongoDB wire-protocol server (see ``mongo_fixtures``).

Tests that capture through a :class:`Collector` encode records with the wire module and run
once per implementation; the others are marked ``wire_independent``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from mongo_fixtures import (
    MongoServer,
    client_for,
    free_port,
)
from server_fixtures import (
    AUTH,
    KEY,
    KEY_ID,
    TABULAR,
    ServerProcess,
    binary_request,
    file_packets,
    run_capsync,
    start_server,
    streaming_packets,
    tabular_request,
    write_keys,
)

from capsync import read_capture_file
from capsync.config import MongoCaptureConfig
from capsync.mongo.capture import MongoCaptureWriter, date_ms, reading_document
from capsync.mongo.client import redact_uri
from capsync.resources import build_resource
from capsync.server import ItemFilter, SqliteStore, StoreUnavailable, list_items
from capsync.server.mongo_store import MongoStore
from capsync.server.query import export
from capsync.server.store import BlobRecord, Record, TabularRecord
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

wire_independent = pytest.mark.wire_independent


# --- helpers ---------------------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], timeout_s: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what or condition}")
        time.sleep(0.02)


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


def _value_py(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return struct_py(value.struct_value)
    if kind == "list_value":
        return [_value_py(v) for v in value.list_value.values]
    if kind == "null_value" or kind is None:
        return None
    return getattr(value, kind)


def struct_py(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as Python values, numbers as floats (what the struct holds)."""
    return {key: _value_py(struct.fields[key]) for key in struct.fields}


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


# --- MongoDB capture -------------------------------------------------------------------------


def test_capture_documents_have_the_schema_and_the_disk_values(
    tmp_path: Path, mongo_uri: str, mongo_db: str
) -> None:
    config = MongoCaptureConfig(uri=mongo_uri, database=mongo_db, collection="readings")
    writer = MongoCaptureWriter(config, flush_interval_s=0.02)
    capture_dir = tmp_path / "capture"
    collectors = [
        sensor_collector(capture_dir, writer.submit, hz=200.0),
        sensor_collector(
            capture_dir, writer.submit, method="DoCommand", hz=50.0,
            params={"docommand_input": COMMAND},
        ),
    ]  # fmt: skip
    try:
        time.sleep(0.4)
    finally:
        for collector in collectors:
            collector.close()
        writer.close(10.0)

    on_disk = disk_readings(capture_dir)
    assert {r.method_name for r in on_disk} == {"Readings", "DoCommand"}
    stats = writer.stats()
    assert (stats.inserted, stats.dropped, stats.failed, stats.queued) == (len(on_disk), 0, 0, 0)
    docs = mongo_readings(mongo_uri, mongo_db)
    assert len(docs) == len(on_disk)
    for doc in docs:
        assert set(doc) == SCHEMA
        assert list(doc)[1:] == [
            "time_requested", "time_received", "component_name", "component_type",
            "method_name", "data",
        ]  # fmt: skip
        for field in ("time_requested", "time_received"):
            moment = doc[field]
            assert isinstance(moment, dt.datetime)  # a BSON Date, not a string or a number
            assert moment.utcoffset() == dt.timedelta(0)
            assert moment.microsecond % 1000 == 0
        assert doc["time_requested"] <= doc["time_received"]
        assert doc["component_type"] == SENSOR
        assert doc["component_name"] == "thermo"
        data = doc["data"]
        if doc["method_name"] == "Readings":
            assert list(data) == ["readings"]
            assert set(data["readings"]) == set("abcdef")
        else:
            assert doc["method_name"] == "DoCommand"
            assert data == {
                "docommand_output": {
                    "x": 1.0, "s": "hi",
                    "nested": {"list": [1.0, 2.5, True, None, "t"], "flag": False},
                }
            }  # fmt: skip
        assert all(type(number) is float for number in numbers(data))  # Struct numbers
    # Same readings, same times (to the millisecond), same data as the capture files.
    assert sorted(map(as_compared, docs)) == sorted(r.as_mongo() for r in on_disk)
    client = client_for(mongo_uri)
    try:
        keys = [dict(index["key"]) for index in client[mongo_db]["readings"].list_indexes()]
    finally:
        client.close()
    assert {"component_name": 1, "method_name": 1, "time_received": 1} in keys


def test_capture_with_mongodb_down_at_start(
    tmp_path: Path,
    mongo_server_factory: Callable[[], MongoServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = mongo_server_factory()  # not started yet
    caplog.set_level(logging.INFO, logger="capsync.mongo.capture")
    writer = MongoCaptureWriter(
        MongoCaptureConfig(uri=server.uri, database="sensorData"), flush_interval_s=0.02
    )
    hook = TimedHook(writer.submit)
    capture_dir = tmp_path / "capture"
    collector = sensor_collector(capture_dir, hook, hz=100.0)
    try:
        wait_for(lambda: collector.stats().records_written >= 40, what="readings on disk")
        wait_for(
            lambda: any("not reachable" in r.getMessage() for r in caplog.records),
            what="the warning",
        )
        assert writer.stats().inserted == 0
        assert not writer.stats().connected
        server.start()
        wait_for(lambda: writer.stats().inserted >= 40, what="documents after MongoDB started")
        time.sleep(0.2)
    finally:
        collector.close()
        writer.close(10.0)

    captured = collector.stats()
    assert captured.dropped == 0 and captured.write_errors == 0 and captured.errors == 0
    on_disk = disk_readings(capture_dir)
    assert len(on_disk) == captured.records_written == hook.calls
    stats = writer.stats()
    assert (stats.inserted, stats.dropped, stats.failed) == (len(on_disk), 0, 0)
    docs = mongo_readings(server.uri, "sensorData")
    assert sorted(map(as_compared, docs)) == sorted(r.as_mongo() for r in on_disk)
    assert hook.slowest_s < 0.2, "submit must never wait for MongoDB (>= 0.5 s here)"
    warnings = [r for r in caplog.records if r.name == "capsync.mongo.capture"]
    assert any(r.levelno == logging.WARNING and "not reachable" in r.getMessage() for r in warnings)
    assert not [r for r in warnings if r.levelno >= logging.ERROR]
    assert not [r for r in warnings if r.exc_info]


def test_capture_survives_mongodb_killed_and_restarted(
    tmp_path: Path,
    mongo_server_factory: Callable[[], MongoServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = mongo_server_factory().start()
    caplog.set_level(logging.INFO, logger="capsync.mongo.capture")
    queue_size = 60
    # A short server selection timeout makes the outage visible to the writer sooner.
    uri = server.uri + "?serverSelectionTimeoutMS=500"
    writer = MongoCaptureWriter(
        MongoCaptureConfig(uri=uri, database="sensorData"),
        queue_size=queue_size,
        batch_size=20,
        flush_interval_s=0.02,
    )
    hook = TimedHook(writer.submit)
    capture_dir = tmp_path / "capture"
    collector = sensor_collector(capture_dir, hook, hz=200.0)
    try:
        wait_for(lambda: writer.stats().inserted >= 40, what="documents before the kill")
        server.kill()
        written_at_kill = collector.stats().records_written
        # More readings than the queue holds arrive while MongoDB is down.
        wait_for(lambda: writer.stats().dropped >= 20, what="drops while MongoDB is down")
        wait_for(
            lambda: any("connection lost" in r.getMessage() for r in caplog.records),
            what="the warning",
        )
        assert not writer.stats().connected
        assert collector.stats().records_written > written_at_kill + queue_size
        server.start()
        inserted_at_restart = writer.stats().inserted
        wait_for(
            lambda: writer.stats().inserted > inserted_at_restart + queue_size,
            what="inserts after the restart",
        )
    finally:
        collector.close()
        writer.close(10.0)

    captured = collector.stats()
    assert captured.dropped == 0 and captured.write_errors == 0 and captured.errors == 0
    on_disk = disk_readings(capture_dir)
    assert len(on_disk) == captured.records_written == hook.calls
    stats = writer.stats()
    assert stats.failed == 0 and stats.queued == 0
    assert stats.dropped >= 20
    assert stats.inserted + stats.dropped == len(on_disk)
    assert hook.slowest_s < 0.2, "submit must never wait for MongoDB (>= 0.5 s here)"
    docs = mongo_readings(server.uri, "sensorData")
    # None lost once acknowledged. At most one batch more than acknowledged: a batch MongoDB
    # stored but was killed before acknowledging is retried, and if the queue overflows
    # meanwhile it is dropped (and counted as dropped) although it did arrive.
    assert stats.inserted <= len(docs) <= stats.inserted + 20  # batch_size
    stored = {as_compared(doc) for doc in docs}
    assert len(stored) == len(docs)  # none twice
    # What is missing is the oldest readings queued when the queue overflowed (drop-oldest):
    # one run of consecutive readings, except that the batch in flight when MongoDB came back
    # may have made it in the middle. Never readings captured after MongoDB was back.
    missing = [i for i, reading in enumerate(on_disk) if reading.as_mongo() not in stored]
    assert stats.dropped - (len(docs) - stats.inserted) == len(missing)
    kept_inside = sorted(set(range(missing[0], missing[-1] + 1)) - set(missing))
    assert len(kept_inside) <= 20  # batch_size
    if kept_inside:
        assert kept_inside == list(range(kept_inside[0], kept_inside[0] + len(kept_inside)))
    assert missing[-1] < len(on_disk) - queue_size
    messages = [r.getMessage() for r in caplog.records if r.name == "capsync.mongo.capture"]
    assert any("connection lost" in m for m in messages)
    assert any("reachable again" in m for m in messages)
    assert len(messages) < 10, f"connection trouble must be logged at a bounded rate: {messages}"


@wire_independent
def test_full_queue_drops_the_oldest_and_counts_them(
    mongo_server_factory: Callable[[], MongoServer],
) -> None:
    server = mongo_server_factory()  # down while the readings arrive
    uri = server.uri + "?serverSelectionTimeoutMS=300"
    writer = MongoCaptureWriter(
        MongoCaptureConfig(uri=uri, database="sensorData"), queue_size=10, batch_size=100
    )
    try:
        start = time.perf_counter()
        for seq in range(25):
            writer.submit(Key(), {"seq": seq}, T0 + seq * S, T0 + seq * S + 1000)
        assert time.perf_counter() - start < 0.05
        stats = writer.stats()
        assert (stats.dropped, stats.queued, stats.inserted) == (15, 10, 0)
        server.start()
        wait_for(lambda: writer.stats().inserted == 10, what="the queued readings")
    finally:
        writer.close(5.0)
    assert writer.stats().dropped == 15
    docs = mongo_readings(server.uri, "sensorData")
    assert sorted(doc["data"]["readings"]["seq"] for doc in docs) == [
        float(s) for s in range(15, 25)
    ]
    assert {doc["component_name"] for doc in docs} == {"probe"}


@wire_independent
def test_submit_never_blocks_while_mongodb_is_unreachable() -> None:
    uri = f"mongodb://127.0.0.1:{free_port()}/?serverSelectionTimeoutMS=5000"
    writer = MongoCaptureWriter(MongoCaptureConfig(uri=uri), queue_size=1000, batch_size=50)
    try:
        start = time.perf_counter()
        for seq in range(20_000):
            writer.submit(Key(), {"seq": seq}, T0 + seq, T0 + seq)
        elapsed = time.perf_counter() - start
        stats = writer.stats()
        assert stats.inserted == 0
        assert stats.dropped + stats.queued == 20_000
        assert stats.queued <= 1000 + 50
    finally:
        writer.close(0.5)
    assert elapsed < 2.0
    final = writer.stats()
    assert (final.dropped, final.queued, final.inserted) == (20_000, 0, 0)


@wire_independent
def test_reading_document_and_bad_uris() -> None:
    doc = reading_document(
        Key(method="DoCommand"), {"n": 3, "t": (1, "x")}, T0 + 123_456_789, T0 + 999_999_999
    )
    assert doc["data"] == {"docommand_output": {"n": 3.0, "t": [1.0, "x"]}}
    assert type(doc["data"]["docommand_output"]["n"]) is float
    assert doc["time_requested"] == dt.datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=dt.UTC)
    assert doc["time_received"] == dt.datetime(2024, 5, 1, 12, 0, 0, 999000, tzinfo=dt.UTC)
    plain = reading_document(Key(method="LinearVelocity"), {"x": 1.5}, T0, T0)
    assert plain["data"] == {"x": 1.5}
    for bad in ("http://localhost", "mongodb://", "mongodb://host/?bogusOption=1", ""):
        with pytest.raises(ValueError):
            MongoCaptureWriter(MongoCaptureConfig(uri=bad))
    assert redact_uri("mongodb://user:secret@db:27017/x") == "mongodb://user:***@db:27017/x"
    assert redact_uri("mongodb+srv://user@db/") == "mongodb+srv://user@db/"
    with pytest.raises(ValueError) as caught:
        MongoCaptureWriter(MongoCaptureConfig(uri="mongodb://user:secret@db/?bogus=1"))
    assert "secret" not in str(caught.value)


# --- capsync serve --mongo-uri ------------------------------------------------------------------


def _sync(capture_dir: Path, files_dir: Path, server: ServerProcess) -> None:
    """Upload everything in ``capture_dir`` and ``files_dir`` the way a machine does."""
    from capsync.sync import Syncer, SyncSettings, SyncTarget

    settings = SyncSettings(
        capture_dir=str(capture_dir),
        additional_sync_paths=(str(files_dir),),
        file_last_modified_s=0.0,
    )
    target = SyncTarget(
        address=server.address, part_id="part-1", key_id=KEY_ID, key=KEY, insecure=True
    )
    with Syncer(settings, target) as syncer:
        report = syncer.sync_once(retry_for_s=30.0)
    assert report.files_uploaded >= 3, report
    assert not list(capture_dir.rglob("*.capture")), "every capture file was uploaded"


def _files_under(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def _csv_list(data_dir: Path, *args: str) -> list[dict[str, str]]:
    done = run_capsync("data", "list", "--data", str(data_dir), *args)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    for row in rows:
        if row["path"]:
            row["path"] = Path(row["path"]).relative_to(data_dir.absolute()).as_posix()
        if row["kind"] == "file":
            row.update(time_received="", time_received_ns="")
    return rows


def _same_arrival(item: dict[str, Any]) -> dict[str, Any]:
    """``item`` with the arrival time of a file (when *this* server received it) masked: the
    only thing two servers fed the same files can tell apart."""
    if item["kind"] == "file":
        item.update(time_received="(arrival)", time_received_ns=0)
    return item


def _data_list(data_dir: Path, *args: str) -> list[dict[str, Any]]:
    done = run_capsync("data", "list", "--data", str(data_dir), *args)
    assert done.returncode == 0, done.stderr
    items = [_same_arrival(json.loads(line)) for line in done.stdout.splitlines()]
    for item in items:
        if item.get("path"):
            item["path"] = Path(item["path"]).relative_to(data_dir.absolute()).as_posix()
    return items


def test_serve_mongo_end_to_end_equals_sqlite(
    tmp_path: Path, mongo_uri: str, mongo_db: str
) -> None:
    capture_dir = tmp_path / "capture"
    collectors = [
        sensor_collector(capture_dir, None, hz=100.0),
        sensor_collector(
            capture_dir, None, method="DoCommand", hz=20.0, params={"docommand_input": COMMAND}
        ),
    ]
    camera = build_resource("camera", "fake", "cam", {"width": 32, "height": 24})
    collectors.append(
        Collector(
            CollectorKey(api="rdk:component:camera", resource_name="cam", method="ReadImage"),
            camera,
            CollectorSettings(frequency_hz=10.0),
            capture_dir,
        )
    )
    collectors[-1].start()
    time.sleep(0.5)
    for collector in collectors:
        collector.close()
    files_dir = tmp_path / "files"
    files_dir.mkdir()
    (files_dir / "notes.txt").write_text("calibrated at noon\n")
    captured = disk_readings(capture_dir)
    assert captured

    keys = write_keys(tmp_path / "keys.json")
    sqlite_data, mongo_data = tmp_path / "data-sqlite", tmp_path / "data-mongo"
    mongo_args = ("--mongo-uri", mongo_uri, "--mongo-database", mongo_db)
    servers = [
        start_server(sqlite_data, tmp_path, keys_file=keys),
        start_server(mongo_data, tmp_path, *mongo_args, keys_file=keys),
    ]
    try:
        for server, copy in zip(servers, ("sync-sqlite", "sync-mongo"), strict=True):
            shutil.copytree(capture_dir, tmp_path / copy / "capture")
            shutil.copytree(files_dir, tmp_path / copy / "files")
            _sync(tmp_path / copy / "capture", tmp_path / copy / "files", server)
    finally:
        for server in servers:
            server.stop()
    assert (sqlite_data / "capsync.db").exists()
    assert not (mongo_data / "capsync.db").exists(), "records went to MongoDB, not SQLite"

    from_sqlite = _data_list(sqlite_data)
    from_mongo = _data_list(mongo_data, *mongo_args)
    assert from_mongo == from_sqlite
    kinds = [item["kind"] for item in from_mongo]
    assert kinds.count("tabular") == len(captured)
    assert kinds.count("file") == 1 and kinds.count("binary") >= 2
    tabular = [item for item in from_mongo if item["kind"] == "tabular"]
    assert sorted(
        (i["component_name"], i["method_name"], i["time_requested_ns"], i["time_received_ns"])
        for i in tabular
    ) == sorted(
        (r.component_name, r.method_name, r.time_requested_ns, r.time_received_ns) for r in captured
    )
    # The CLI's CSV with a filter, and the Python API with every kind of filter, agree too.
    middle = sorted(i["time_requested_ns"] for i in tabular)[len(tabular) // 2]
    flags = ("--until", str(middle / S), "--format", "csv")
    sqlite_csv = _csv_list(sqlite_data, *flags)
    assert _csv_list(mongo_data, *mongo_args, *flags) == sqlite_csv
    assert len(sqlite_csv) > 1
    for item_filter in (
        ItemFilter(kind="tabular", component="thermo", method="DoCommand"),
        ItemFilter(kind="binary", component_type="rdk:component:camera"),
        ItemFilter(since_ns=middle, part_id="part-1"),
        ItemFilter(kind="file", tags=()),
        ItemFilter(part_id="part-2"),
    ):
        in_mongo = list(
            list_items(mongo_data, item_filter, mongo_uri=mongo_uri, mongo_database=mongo_db)
        )
        in_sqlite = list(list_items(sqlite_data, item_filter))
        for item in in_mongo:
            if item.get("path"):
                item["path"] = item["path"].replace(str(mongo_data), str(sqlite_data))
        assert list(map(_same_arrival, in_mongo)) == list(map(_same_arrival, in_sqlite))
    # Exports are byte for byte the same.
    for data_dir, out, extra in (
        (sqlite_data, tmp_path / "export-sqlite", ()),
        (mongo_data, tmp_path / "export-mongo", mongo_args),
    ):
        done = run_capsync("data", "export", "--data", str(data_dir), "--out", str(out), *extra)
        assert done.returncode == 0, done.stderr
    exported_sqlite = _files_under(tmp_path / "export-sqlite")
    exported_mongo = _files_under(tmp_path / "export-mongo")
    assert exported_mongo == exported_sqlite
    for relative in exported_mongo:
        mongo_bytes = (tmp_path / "export-mongo" / relative).read_bytes()
        sqlite_bytes = (tmp_path / "export-sqlite" / relative).read_bytes()
        if relative.name == "items.jsonl":
            manifests = [
                [_same_arrival(json.loads(line)) for line in raw.splitlines()]
                for raw in (mongo_bytes, sqlite_bytes)
            ]
            assert manifests[0] == manifests[1]
        else:
            assert mongo_bytes == sqlite_bytes, relative
    # The records are plain documents in MongoDB.
    client = client_for(mongo_uri)
    try:
        db = client[mongo_db]
        assert db["tabular"].count_documents({}) == len(captured)
        doc = db["tabular"].find_one({"method_name": "Readings"})
    finally:
        client.close()
    assert doc is not None and set(doc["data"]["readings"]) == set("abcdef")
    assert isinstance(doc["time_requested"], dt.datetime)


@wire_independent
def test_two_servers_sharing_mongodb_store_a_resent_upload_once(
    tmp_path: Path, mongo_uri: str, mongo_db: str
) -> None:
    keys = write_keys(tmp_path / "keys.json")
    data_dir = tmp_path / "data"  # one data folder for both, as one MongoDB
    mongo_args = ("--mongo-uri", mongo_uri, "--mongo-database", mongo_db)
    servers = [start_server(data_dir, tmp_path, *mongo_args, keys_file=keys) for _ in range(2)]
    tabular = tabular_request(
        [(T0 + i * S, {"readings": {"temp": 20.5 + i}}) for i in range(50)], tags=["lab"]
    )
    jpeg = binary_request(b"\xff\xd8\xff" + bytes(range(256)) * 64, T0 + 3 * S)
    pcd = b"# .PCD v0.7\n" + bytes(range(256)) * 1200
    log_file = b"line\n" * 3000
    results: list[tuple[str, str, str]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def send(server: ServerProcess) -> None:
        try:
            stub = server.stub()
            barrier.wait(10)
            for _ in range(2):  # each server gets everything twice
                answer = stub.DataCaptureUpload(tabular, metadata=AUTH, timeout=30)
                results.append(("tabular", answer.file_id, ""))
                answer = stub.DataCaptureUpload(jpeg, metadata=AUTH, timeout=30)
                results.append(("binary", answer.file_id, answer.binary_data_id))
                answer = stub.StreamingDataCaptureUpload(
                    iter(streaming_packets(pcd, T0 + 4 * S)), metadata=AUTH, timeout=30
                )
                results.append(("stream", answer.file_id, answer.binary_data_id))
                answer = stub.FileUpload(iter(file_packets(log_file)), metadata=AUTH, timeout=30)
                results.append(("file", answer.file_id, answer.binary_data_id))
        except BaseException as exc:
            errors.append(exc)

    try:
        threads = [threading.Thread(target=send, args=(s,)) for s in servers for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for server in servers:
            server.stop()
    assert not errors, errors
    assert len(results) == 4 * 2 * 4
    for kind in ("tabular", "binary", "stream", "file"):
        assert len({r[1:] for r in results if r[0] == kind}) == 1, f"{kind}: same ids everywhere"

    items = list(list_items(data_dir, mongo_uri=mongo_uri, mongo_database=mongo_db))
    kinds = [item["kind"] for item in items]
    assert kinds.count("tabular") == 50
    assert kinds.count("binary") == 2 and kinds.count("file") == 1
    assert len({item["id"] for item in items}) == len(items)
    query_dir = data_dir / "capsync-query"  # the query layer's own (datasets, retention)
    payloads = sorted(
        p
        for p in data_dir.rglob("*")
        if p.is_file() and p.parent != data_dir and query_dir not in p.parents
    )
    assert len(payloads) == 3, payloads  # one file per payload, no temporary leftovers
    client = client_for(mongo_uri)
    try:
        db = client[mongo_db]
        assert db["tabular"].count_documents({}) == 50
        assert db["blobs"].count_documents({}) == 3
        by_name = {i["name"]: i for i in db["tabular"].list_indexes()}
    finally:
        client.close()
    assert by_name["_id_"]["key"] == {"_id": 1}  # the unique key that de-duplicates


@wire_independent
def test_gridfs_blobs_and_resplit_uploads_across_two_servers(
    tmp_path: Path, mongo_uri: str, mongo_db: str
) -> None:
    """``--blobs gridfs``: two servers with their own data folders share only MongoDB;
    payloads are in GridFS once, and a re-split tabular upload stores each reading once."""
    keys = write_keys(tmp_path / "keys.json")
    args = ("--mongo-uri", mongo_uri, "--mongo-database", mongo_db, "--blobs", "gridfs")
    dirs = [tmp_path / "a", tmp_path / "b"]
    servers = [start_server(d, tmp_path, *args, keys_file=keys) for d in dirs]
    readings = [(T0 + i * S, {"readings": {"temp": 20.5 + i}}) for i in range(30)]
    jpeg = binary_request(b"\xff\xd8\xff" + bytes(range(256)) * 64, T0 + 3 * S)
    pcd = b"# .PCD v0.7\n" + bytes(range(256)) * 5000
    log_file = b"line\n" * 3000
    try:
        for server in servers:
            stub = server.stub()
            stub.DataCaptureUpload(
                tabular_request(readings, file_name="f"), metadata=AUTH, timeout=30
            )
            for part in (readings[:10], readings[5:25], readings[20:]):  # re-split
                stub.DataCaptureUpload(
                    tabular_request(part, file_name="f"), metadata=AUTH, timeout=30
                )
            stub.DataCaptureUpload(jpeg, metadata=AUTH, timeout=30)
            stub.StreamingDataCaptureUpload(
                iter(streaming_packets(pcd, T0 + 4 * S)), metadata=AUTH, timeout=30
            )
            stub.FileUpload(iter(file_packets(log_file)), metadata=AUTH, timeout=30)
    finally:
        for server in servers:
            server.stop()
    for data_dir in dirs:  # no payload under either data folder
        stray = [p for p in data_dir.rglob("*") if p.is_file() and p.parent != data_dir]
        # (the query layer's own folder holds datasets and retention, never payloads)
        payloads = [p for p in stray if not {"tabular", "capsync-query"} & set(p.parts)]
        assert payloads == []
    items = list(list_items(dirs[1], mongo_uri=mongo_uri, mongo_database=mongo_db))
    tabular = [(i["time_requested_ns"], i["data"]) for i in items if i["kind"] == "tabular"]
    assert tabular == [(ns, value) for ns, value in readings]
    blobs = [i for i in items if i["kind"] != "tabular"]
    assert len(blobs) == 3 and all(i["path"].startswith("gridfs:") for i in blobs)
    client = client_for(mongo_uri)
    try:
        assert client[mongo_db]["payloads.files"].count_documents({}) == 3
        assert client[mongo_db]["tabular"].count_documents({}) == 30
    finally:
        client.close()
    result = export(dirs[0], None, tmp_path / "out", mongo_uri=mongo_uri, mongo_database=mongo_db)
    assert result.payloads == 3 and not result.missing
    out_files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    exported = sorted(p.read_bytes() for p in out_files if p.suffix != ".jsonl")
    assert exported == sorted([jpeg.sensor_contents[0].binary, pcd, log_file])


# --- MongoStore directly -------------------------------------------------------------------------


def _tabular(i: int, **fields: Any) -> TabularRecord:
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


def _blob(i: int, **fields: Any) -> BlobRecord:
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


def _records() -> list[Record]:
    odd_keys = {"$dollar": 1, "dot.ted": 2, "nul\0key": {"deep": [1, {"x": None}]}}
    return [
        *[_tabular(i) for i in range(10)],
        _tabular(20, part_id="part-2", tags=("field", "lab"), data={"x": -1.5}),
        _tabular(21, component_name="imu", method_name="LinearAcceleration", tags=()),
        _tabular(22, data=odd_keys, method_parameters={"p": {"@type": "t", "value": 1}}),
        _tabular(5, id="f" * 64),  # same time as another: ordered by id
        _blob(5),
        _blob(6, kind="file", component_type="", component_name="", method_name="",
              file_name="logs/a.txt", file_extension=".txt", dataset_ids=("ds",), tags=("lab",)),
        _blob(7, annotations={"nul\0": 1}),
    ]  # fmt: skip


def _store_all(store: Any, records: Sequence[Record]) -> None:
    store.record_tabular([r for r in records if isinstance(r, TabularRecord)])
    for record in records:
        if isinstance(record, BlobRecord):
            store.record_blob(record)


@wire_independent
def test_mongo_store_queries_equal_sqlite_store(
    tmp_path: Path, mongo_uri: str, mongo_db: str
) -> None:
    records = _records()
    with SqliteStore(tmp_path) as sqlite_store, MongoStore(mongo_uri, mongo_db) as mongo_store:
        _store_all(sqlite_store, records)
        _store_all(mongo_store, records)
        _store_all(mongo_store, records)  # again: nothing new
        for item_filter in (
            None,
            ItemFilter(kind="tabular"),
            ItemFilter(kind="binary"),
            ItemFilter(kind="file"),
            ItemFilter(part_id="part-2"),
            ItemFilter(component="thermo", method="Readings"),
            ItemFilter(component_type="rdk:component:camera"),
            ItemFilter(tags=("lab",)),
            ItemFilter(tags=("lab", "field")),
            ItemFilter(since_ns=T0 + 5 * S, until_ns=T0 + 9 * S),
            ItemFilter(until_ns=T0 + 6 * S, kind="binary"),
            ItemFilter(component="nobody"),
        ):
            expected = list(sqlite_store.query(item_filter))
            assert list(mongo_store.query(item_filter)) == expected, item_filter
    assert len(expected) == 0
    everything = list(list_items(tmp_path, mongo_uri=mongo_uri, mongo_database=mongo_db))
    assert everything == list(list_items(tmp_path))
    assert len(everything) == len(records)
    result = export(tmp_path, None, tmp_path / "out", mongo_uri=mongo_uri, mongo_database=mongo_db)
    assert result.items == len(records)


@wire_independent
def test_mongo_store_dedupes_concurrent_inserts(mongo_uri: str, mongo_db: str) -> None:
    records = [_tabular(i) for i in range(200)]
    blob = _blob(1)
    new_counts: list[int] = []
    blob_new: list[bool] = []
    barrier = threading.Barrier(8)

    def insert(store: MongoStore) -> None:
        barrier.wait(10)
        new_counts.append(store.record_tabular(records))
        blob_new.append(store.record_blob(blob))

    stores = [MongoStore(mongo_uri, mongo_db) for _ in range(2)]  # two "processes"
    try:
        threads = [threading.Thread(target=insert, args=(stores[i % 2],)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        for store in stores:
            store.close()
    assert sum(new_counts) == 200 and len(new_counts) == 8
    assert blob_new.count(True) == 1 and len(blob_new) == 8
    client = client_for(mongo_uri)
    try:
        assert client[mongo_db]["tabular"].count_documents({}) == 200
    finally:
        client.close()


@wire_independent
def test_serve_with_mongodb_down_refuses_uploads_until_it_is_up(
    tmp_path: Path, mongo_server_factory: Callable[[], MongoServer]
) -> None:
    mongo = mongo_server_factory()
    uri = mongo.uri + "?serverSelectionTimeoutMS=500"
    keys = write_keys(tmp_path / "keys.json")
    server = start_server(tmp_path / "data", tmp_path, "--mongo-uri", uri, keys_file=keys)
    try:
        stub = server.stub()
        request = tabular_request([(T0, {"readings": {"temp": 1}})])
        with pytest.raises(grpc.RpcError) as caught:
            stub.DataCaptureUpload(request, metadata=AUTH, timeout=30)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        mongo.start()
        answer = stub.DataCaptureUpload(request, metadata=AUTH, timeout=30)
        assert answer.file_id
    finally:
        server.stop()
    assert "uploads are refused (UNAVAILABLE) until MongoDB is reachable" in server.stderr()
    items = list(list_items(tmp_path / "data", mongo_uri=uri))
    assert [item["data"] for item in items] == [{"readings": {"temp": 1}}]


@wire_independent
def test_data_command_errors_with_mongodb(tmp_path: Path, mongo_uri: str, mongo_db: str) -> None:
    down = f"mongodb://127.0.0.1:{free_port()}/?serverSelectionTimeoutMS=300"
    done = run_capsync("data", "list", "--data", str(tmp_path), "--mongo-uri", down)
    assert done.returncode != 0
    assert "MongoDB unavailable" in done.stderr and "Traceback" not in done.stderr
    done = run_capsync(
        "data", "list", "--data", str(tmp_path), "--mongo-uri", mongo_uri,
        "--mongo-database", mongo_db,
    )  # fmt: skip
    assert done.returncode != 0 and "no capsync data in MongoDB database" in done.stderr
    done = run_capsync("data", "list", "--data", str(tmp_path), "--mongo-uri", "mongo://x")
    assert done.returncode != 0 and "--mongo-uri" in done.stderr
    with pytest.raises(StoreUnavailable):
        MongoStore(down, create=False)
