"""MongoDB capture on the robot (``mongo_capture_config``, SPEC §6) against a real MongoDB
wire-protocol server (see ``mongo_fixtures``): documents, a server down at start or
killed, the bounded queue.

Tests that capture through a :class:`Collector` encode records with the wire module and run
once per implementation; the others are marked ``wire_independent``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from mongo_fixtures import MongoServer, client_for, free_port
from mongo_helpers import (
    COMMAND,
    SCHEMA,
    SENSOR,
    T0,
    Key,
    S,
    TimedHook,
    as_compared,
    disk_readings,
    mongo_readings,
    numbers,
    sensor_collector,
    wait_for,
    wrote,
)

from capsync.config import MongoCaptureConfig
from capsync.mongo.capture import MongoCaptureWriter
from capsync.mongo.client import redact_uri
from capsync.mongo.documents import reading_document

wire_independent = pytest.mark.wire_independent


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
        wait_for(
            lambda: wrote(collectors, (40, 10)),
            what="readings of both methods on disk",
        )
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
