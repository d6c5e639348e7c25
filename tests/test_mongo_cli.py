"""``capsync serve --mongo-uri`` and ``capsync data ... --mongo-uri`` as processes: the same
results as the embedded store, servers sharing one MongoDB, GridFS payloads, MongoDB down.

The end-to-end test captures and syncs (the wire module's hot path), so it runs once per
implementation; the others are marked ``wire_independent``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from mongo_fixtures import MongoServer, client_for, free_port
from mongo_helpers import (
    COMMAND,
    T0,
    S,
    disk_readings,
    sensor_collector,
    wait_for,
    wrote,
)
from server_fixtures import (
    AUTH,
    KEY,
    KEY_ID,
    ServerProcess,
    binary_request,
    file_packets,
    run_capsync,
    start_server,
    streaming_packets,
    tabular_request,
    write_keys,
)

from capsync.resources import build_resource
from capsync.server import ItemFilter, StoreUnavailable, list_items
from capsync.server.query import export
from capsync.server.stores.mongo import MongoStore
from capsync.service.collector import Collector, CollectorKey, CollectorSettings

wire_independent = pytest.mark.wire_independent


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
    wait_for(
        lambda: wrote(collectors, (30, 6, 3)),
        what="readings of every collector on disk",
    )
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

    from_sqlite = [_same_arrival(i) for i in list_items(sqlite_data)]
    from_mongo = [
        _same_arrival(i)
        for i in list_items(mongo_data, mongo_uri=mongo_uri, mongo_database=mongo_db)
    ]
    for item in from_mongo:
        if item.get("path"):
            item["path"] = item["path"].replace(str(mongo_data), str(sqlite_data))
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
    # The Python API with every kind of filter agrees too.
    middle = sorted(i["time_requested_ns"] for i in tabular)[len(tabular) // 2]
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
    # Exports are byte for byte the same (the CLI's are compared in test_data_cli_...).
    export(sqlite_data, None, tmp_path / "export-sqlite")
    export(mongo_data, None, tmp_path / "export-mongo", mongo_uri=mongo_uri,
           mongo_database=mongo_db)  # fmt: skip
    _assert_same_exports(tmp_path / "export-sqlite", tmp_path / "export-mongo")
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


def _assert_same_exports(sqlite_out: Path, mongo_out: Path) -> None:
    exported_sqlite = _files_under(sqlite_out)
    exported_mongo = _files_under(mongo_out)
    assert exported_mongo == exported_sqlite
    assert exported_mongo
    for relative in exported_mongo:
        mongo_bytes = (mongo_out / relative).read_bytes()
        sqlite_bytes = (sqlite_out / relative).read_bytes()
        if relative.name == "items.jsonl":
            manifests = [
                [_same_arrival(json.loads(line)) for line in raw.splitlines()]
                for raw in (mongo_bytes, sqlite_bytes)
            ]
            assert manifests[0] == manifests[1]
        else:
            assert mongo_bytes == sqlite_bytes, relative


@wire_independent
@pytest.mark.slow  # two servers and six CLI processes: ~30 s
def test_data_cli_on_mongo_equals_sqlite(tmp_path: Path, mongo_uri: str, mongo_db: str) -> None:
    """``capsync data list|export --mongo-uri`` print and write what they do for local data."""
    keys = write_keys(tmp_path / "keys.json")
    sqlite_data, mongo_data = tmp_path / "data-sqlite", tmp_path / "data-mongo"
    mongo_args = ("--mongo-uri", mongo_uri, "--mongo-database", mongo_db)
    servers = [
        start_server(sqlite_data, tmp_path, keys_file=keys),
        start_server(mongo_data, tmp_path, *mongo_args, keys_file=keys),
    ]
    readings = [(T0 + i * S, {"readings": {"temp": 20.5 + i, "ok": i % 2 == 0}}) for i in range(20)]
    try:
        for server in servers:
            stub = server.stub()
            stub.DataCaptureUpload(tabular_request(readings, tags=["lab"]), metadata=AUTH)
            stub.DataCaptureUpload(binary_request(b"\xff\xd8\xff" + bytes(500), T0 + 3 * S),
                                   metadata=AUTH)  # fmt: skip
            modified = Timestamp(seconds=T0 // S + 7)  # so both servers give it the same time
            packets = file_packets(b"calibrated at noon\n", file_modify_time=modified)
            stub.FileUpload(iter(packets), metadata=AUTH)
    finally:
        for server in servers:
            server.stop()
    from_mongo = _data_list(mongo_data, *mongo_args)
    assert from_mongo == _data_list(sqlite_data)
    assert [i["kind"] for i in from_mongo].count("tabular") == 20 and len(from_mongo) == 22
    flags = ("--until", str((T0 + 10 * S) / S), "--format", "csv")
    sqlite_csv = _csv_list(sqlite_data, *flags)
    assert _csv_list(mongo_data, *mongo_args, *flags) == sqlite_csv
    assert len(sqlite_csv) == 10 + 2  # ten readings, the binary and the file
    for data_dir, out, extra in (
        (sqlite_data, tmp_path / "export-sqlite", ()),
        (mongo_data, tmp_path / "export-mongo", mongo_args),
    ):
        done = run_capsync("data", "export", "--data", str(data_dir), "--out", str(out), *extra)
        assert done.returncode == 0, done.stderr
    _assert_same_exports(tmp_path / "export-sqlite", tmp_path / "export-mongo")


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
@pytest.mark.slow  # three CLI processes and a connect timeout: ~10 s
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
