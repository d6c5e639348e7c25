"""The ingest server (``capsync serve``), always as a real process on loopback (SPEC §4, §7)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from server_fixtures import (
    AUTH,
    BINARY,
    CHUNK_BYTES,
    FILE,
    KEY,
    KEY_ID,
    TABULAR,
    ServerProcess,
    binary_request,
    file_packets,
    run_capsync,
    sensor_metadata,
    start_server,
    streaming_packets,
    struct,
    tabular_request,
    timestamp,
    upload_metadata,
    write_keys,
)
from sync_helpers import wait_for

from capsync.proto import data_sync_pb2
from capsync.server import ItemFilter, list_items

pytestmark = pytest.mark.wire_independent

T0 = 1_714_564_800_123_456_789  # 2024-05-01T12:00:00.123456789Z


def stored(server: ServerProcess, **criteria: Any) -> list[dict[str, Any]]:
    return list(list_items(server.data_dir, ItemFilter(**criteria)))


def partial_uploads(data_dir: Path) -> list[Path]:
    """The payloads of streamed uploads the server is receiving (``.upload-*.tmp``, non-empty)."""
    return [p for p in data_dir.rglob(".upload-*.tmp") if p.stat().st_size > 0]


def payload_files(data_dir: Path) -> list[Path]:
    """Every file under the data dir except the databases, the segments, the keys file and
    the query layer's own folder (datasets, Parquet copies)."""
    skip = {"capsync.db", "capsync.db-wal", "capsync.db-shm", "api-keys.json"}
    return sorted(
        p
        for p in data_dir.rglob("*")
        if p.is_file()
        and p.name not in skip
        and p.relative_to(data_dir).parts[0] not in ("tabular", "capsync-query")
    )


# --- health ------------------------------------------------------------------------------


def test_health_is_serving_without_a_key(ingest_server: ServerProcess) -> None:
    health = health_pb2_grpc.HealthStub(ingest_server.channel())
    for service in ("", "viam.app.datasync.v1.DataSyncService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


# --- tabular -----------------------------------------------------------------------------


def test_tabular_upload_is_stored_with_identical_values(ingest_server: ServerProcess) -> None:
    readings = [
        (T0, {"readings": {"temp": 21.5, "count": 3, "ok": True, "label": "a", "none": None}}),
        (T0 + 100_000_000, {"readings": {"nested": {"list": [1, 2.25, "x", [False]]}}}),
        (T0 + 200_000_000, {"readings": {"big": 2.0**60, "neg": -7}}),
    ]
    request = tabular_request(readings, tags=["lab", "run-1"], mime_type="")
    response = ingest_server.stub().DataCaptureUpload(request, metadata=AUTH, timeout=10)
    assert len(response.file_id) == 64
    assert response.binary_data_id == ""

    items = stored(ingest_server)
    assert [item["data"] for item in items] == [value for _, value in readings]
    for item, (ns, _) in zip(items, readings, strict=True):
        assert item["kind"] == "tabular"
        assert item["part_id"] == "part-1"
        assert item["component_type"] == "rdk:component:sensor"
        assert item["component_name"] == "thermo"
        assert item["method_name"] == "Readings"
        assert item["tags"] == ["lab", "run-1"]
        assert item["time_requested_ns"] == ns
        assert item["time_received_ns"] == ns + 1000
        assert item["upload_id"] == response.file_id
    assert items[0]["time_requested"] == "2024-05-01T12:00:00.123456789Z"


def test_tabular_nan_and_infinity_survive(ingest_server: ServerProcess) -> None:
    request = tabular_request([(T0, {"v": float("nan"), "w": float("inf")})])
    ingest_server.stub().DataCaptureUpload(request, metadata=AUTH, timeout=10)
    [item] = stored(ingest_server)
    assert item["data"]["v"] != item["data"]["v"]
    assert item["data"]["w"] == float("inf")


def test_same_tabular_request_twice_is_stored_once_with_the_same_id(
    ingest_server: ServerProcess,
) -> None:
    stub = ingest_server.stub()
    request = tabular_request([(T0, {"a": 1}), (T0 + 1, {"a": 2})])
    first = stub.DataCaptureUpload(request, metadata=AUTH, timeout=10)
    second = stub.DataCaptureUpload(request, metadata=AUTH, timeout=10)
    assert first.file_id == second.file_id
    assert len(stored(ingest_server)) == 2
    # Other metadata (another part) is another upload.
    other = tabular_request([(T0, {"a": 1}), (T0 + 1, {"a": 2})], part_id="part-2")
    third = stub.DataCaptureUpload(other, metadata=AUTH, timeout=10)
    assert third.file_id != first.file_id
    assert len(stored(ingest_server)) == 4
    assert len(stored(ingest_server, part_id="part-2")) == 2


# --- binary ------------------------------------------------------------------------------


def test_binary_unary_upload_is_stored_byte_identical(ingest_server: ServerProcess) -> None:
    payload = b"\xff\xd8\xff\xe0" + os.urandom(50_000) + b"\xff\xd9"
    request = binary_request(payload, T0, tags=["cam"], dataset_ids=["ds-1"])
    stub = ingest_server.stub()
    response = stub.DataCaptureUpload(request, metadata=AUTH, timeout=10)
    again = stub.DataCaptureUpload(request, metadata=AUTH, timeout=10)
    assert (again.file_id, again.binary_data_id) == (response.file_id, response.binary_data_id)

    [item] = stored(ingest_server)
    assert item["kind"] == "binary"
    assert item["id"] == response.binary_data_id
    assert item["mime_type"] == "image/jpeg"
    assert item["file_extension"] == ".jpeg"
    assert item["size_bytes"] == len(payload)
    assert item["sha256"] == hashlib.sha256(payload).hexdigest()
    assert item["tags"] == ["cam"] and item["dataset_ids"] == ["ds-1"]
    assert item["time_requested_ns"] == T0
    path = Path(item["path"])
    assert path.read_bytes() == payload
    assert path.suffix == ".jpeg"
    expected_folder = ingest_server.data_dir / "part-1/rdk_component_camera/cam/ReadImage"
    assert path.parent == expected_folder
    assert payload_files(ingest_server.data_dir) == [path]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_binary_extension_comes_from_the_mime_type_when_not_given(
    ingest_server: ServerProcess,
) -> None:
    request = binary_request(b"\x89PNG....", T0, file_extension="")
    request.sensor_contents[0].metadata.mime_type = data_sync_pb2.MIME_TYPE_IMAGE_PNG
    ingest_server.stub().DataCaptureUpload(request, metadata=AUTH, timeout=10)
    [item] = stored(ingest_server)
    assert item["file_extension"] == ".png" and item["path"].endswith(".png")


def test_streaming_upload_over_1mb_is_stored_byte_identical(ingest_server: ServerProcess) -> None:
    payload = os.urandom(2_500_000 + 123)
    packets = streaming_packets(payload, T0, tags=["lidar"])
    assert len(packets) > 30 and all(len(p.data) <= CHUNK_BYTES for p in packets[1:])
    stub = ingest_server.stub()
    response = stub.StreamingDataCaptureUpload(iter(packets), metadata=AUTH, timeout=30)
    again = stub.StreamingDataCaptureUpload(iter(packets), metadata=AUTH, timeout=30)
    assert response.file_id == again.file_id and response.binary_data_id == again.binary_data_id

    [item] = stored(ingest_server)
    assert item["id"] == response.binary_data_id
    assert item["kind"] == "binary" and item["method_name"] == "NextPointCloud"
    assert item["mime_type"] == "pointcloud/pcd" and item["file_extension"] == ".pcd"
    assert Path(item["path"]).read_bytes() == payload
    assert Path(item["path"]).suffix == ".pcd"
    assert payload_files(ingest_server.data_dir) == [Path(item["path"])]


def test_the_same_binary_unary_or_streamed_gets_one_id(ingest_server: ServerProcess) -> None:
    payload = os.urandom(1000)
    stub = ingest_server.stub()
    unary = stub.DataCaptureUpload(binary_request(payload, T0), metadata=AUTH, timeout=10)
    metadata = binary_request(payload, T0).metadata
    first = data_sync_pb2.StreamingDataCaptureUploadRequest(
        metadata=data_sync_pb2.DataCaptureUploadMetadata(
            upload_metadata=metadata, sensor_metadata=sensor_metadata(T0, mime_type=1)
        )
    )
    packets = [first, data_sync_pb2.StreamingDataCaptureUploadRequest(data=payload)]
    streamed = stub.StreamingDataCaptureUpload(iter(packets), metadata=AUTH, timeout=10)
    assert streamed.binary_data_id == unary.binary_data_id
    assert len(stored(ingest_server)) == 1


# --- files -------------------------------------------------------------------------------


def test_file_upload_keeps_tags_dataset_ids_and_bytes(ingest_server: ServerProcess) -> None:
    payload = os.urandom(200_000)
    packets = file_packets(
        payload,
        file_name="logs/run-7.log",
        tags=["field", "dock"],
        dataset_ids=["ds-a", "ds-b"],
        file_modify_time=timestamp(T0),
    )
    stub = ingest_server.stub()
    response = stub.FileUpload(iter(packets), metadata=AUTH, timeout=30)
    again = stub.FileUpload(iter(packets), metadata=AUTH, timeout=30)
    assert response.file_id == again.file_id

    [item] = stored(ingest_server, kind="file")
    assert item["id"] == response.file_id
    assert item["file_name"] == "logs/run-7.log"
    assert item["file_extension"] == ".log"
    assert item["tags"] == ["field", "dock"]
    assert item["dataset_ids"] == ["ds-a", "ds-b"]
    assert item["time_requested_ns"] == T0  # the file's modification time
    path = Path(item["path"])
    assert path.read_bytes() == payload and path.suffix == ".log"
    assert path.parent == ingest_server.data_dir / "part-1" / "files"


def test_empty_file_is_accepted(ingest_server: ServerProcess) -> None:
    packets = file_packets(b"", file_name="empty.txt")
    ingest_server.stub().FileUpload(iter(packets), metadata=AUTH, timeout=10)
    [item] = stored(ingest_server)
    assert item["size_bytes"] == 0 and Path(item["path"]).read_bytes() == b""


# --- authentication ----------------------------------------------------------------------

BAD_CREDENTIALS = [
    pytest.param((), id="no-key"),
    pytest.param((("key_id", KEY_ID),), id="no-secret"),
    pytest.param((("key_id", KEY_ID), ("key", KEY + "x")), id="wrong-secret"),
    pytest.param((("key_id", KEY_ID), ("key", KEY[:-1])), id="short-secret"),
    pytest.param((("key_id", "other"), ("key", KEY)), id="wrong-id"),
    pytest.param((("key_id", ""), ("key", "")), id="empty"),
]


def _all_rpcs(stub: Any, metadata: Any) -> list[Callable[[], Any]]:
    return [
        lambda: stub.DataCaptureUpload(
            tabular_request([(T0, {"a": 1})]), metadata=metadata, timeout=10
        ),
        lambda: stub.DataCaptureUpload(binary_request(b"x", T0), metadata=metadata, timeout=10),
        lambda: stub.StreamingDataCaptureUpload(
            iter(streaming_packets(os.urandom(300_000), T0)), metadata=metadata, timeout=10
        ),
        lambda: stub.FileUpload(iter(file_packets(b"data")), metadata=metadata, timeout=10),
    ]


@pytest.mark.parametrize("credentials", BAD_CREDENTIALS)
def test_bad_or_missing_key_is_unauthenticated_and_stores_nothing(
    ingest_server: ServerProcess, credentials: Any
) -> None:
    stub = ingest_server.stub()
    for call in _all_rpcs(stub, credentials):
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert stored(ingest_server) == []
    assert payload_files(ingest_server.data_dir) == []


def test_any_key_of_the_file_is_accepted(tmp_path: Path) -> None:
    keys = write_keys(tmp_path / "k.json", [("first", "secret-1"), ("second", "secret-2")])
    server = start_server(tmp_path / "data", tmp_path, keys_file=keys)
    try:
        stub = server.stub()
        for key_id, key in (("first", "secret-1"), ("second", "secret-2")):
            stub.DataCaptureUpload(
                tabular_request([(T0, {"k": key_id})]),
                metadata=(("key_id", key_id), ("key", key)),
                timeout=10,
            )
        with pytest.raises(grpc.RpcError) as caught:  # a secret belongs to its own id only
            stub.DataCaptureUpload(
                tabular_request([(T0, {"k": 0})]),
                metadata=(("key_id", "first"), ("key", "secret-2")),
                timeout=10,
            )
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert len(stored(server)) == 2
    finally:
        assert server.stop() == 0


def test_without_api_keys_a_key_is_generated_in_the_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = start_server(data_dir, tmp_path)
    keys_path = data_dir / "api-keys.json"
    try:
        assert stat.S_IMODE(keys_path.stat().st_mode) == 0o600
        [entry] = json.loads(keys_path.read_text())["keys"]
        assert len(entry["key"]) >= 32
        server.stub().DataCaptureUpload(
            tabular_request([(T0, {"a": 1})]),
            metadata=(("key_id", entry["id"]), ("key", entry["key"])),
            timeout=10,
        )
    finally:
        assert server.stop() == 0
    assert str(keys_path) in server.stderr()
    # A restart keeps the key.
    before = keys_path.read_text()
    server = start_server(data_dir, tmp_path)
    assert server.stop() == 0
    assert keys_path.read_text() == before


def test_unreadable_keys_file_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"keys": [{"id": "x"}]}')
    result = run_capsync(
        "serve", "--data", str(tmp_path / "d"), "--listen", "127.0.0.1:0",
        "--api-keys", str(tmp_path / "bad.json"),
    )  # fmt: skip
    assert result.returncode == 2  # a usage error, as in every other command
    [line] = [line for line in result.stderr.splitlines() if "error" in line]
    assert line.startswith("capsync: error:") and "keys[0].key" in line
    assert "Traceback" not in result.stderr


# --- malformed uploads -------------------------------------------------------------------


def _tabular_with(**changes: Any) -> data_sync_pb2.DataCaptureUploadRequest:
    request = tabular_request([(T0, {"a": 1})])
    for name, value in changes.items():
        setattr(request.metadata, name, value)
    return request


def _unary(request: Any) -> Callable[[Any], Any]:
    return lambda stub: stub.DataCaptureUpload(request, metadata=AUTH, timeout=10)


def _streaming(packets: list[Any]) -> Callable[[Any], Any]:
    return lambda stub: stub.StreamingDataCaptureUpload(iter(packets), metadata=AUTH, timeout=10)


def _file(packets: list[Any]) -> Callable[[Any], Any]:
    return lambda stub: stub.FileUpload(iter(packets), metadata=AUTH, timeout=10)


def _tabular_holding_binary() -> Any:
    request = tabular_request([(T0, {"a": 1})])
    request.sensor_contents.add(metadata=sensor_metadata(T0 + 1), binary=b"\x00")
    return request


def _binary_holding_struct() -> Any:
    request = binary_request(b"x", T0)
    request.sensor_contents[0].struct.CopyFrom(struct({"a": 1}))
    return request


def _streaming_twice_metadata() -> list[Any]:
    packets = streaming_packets(b"x" * 10, T0)
    return [packets[0], packets[1], packets[0]]


MALFORMED: list[Any] = [
    pytest.param(
        _unary(
            data_sync_pb2.DataCaptureUploadRequest(
                sensor_contents=[
                    data_sync_pb2.SensorData(metadata=sensor_metadata(T0), struct=struct({"a": 1}))
                ]
            )
        ),
        id="unary-no-metadata",
    ),
    pytest.param(_unary(_tabular_holding_binary()), id="tabular-with-binary"),
    pytest.param(_unary(_binary_holding_struct()), id="binary-with-struct"),
    pytest.param(
        _unary(data_sync_pb2.DataCaptureUploadRequest(metadata=upload_metadata())),
        id="no-sensor-contents",
    ),
    pytest.param(
        _unary(
            data_sync_pb2.DataCaptureUploadRequest(
                metadata=upload_metadata(),
                sensor_contents=[data_sync_pb2.SensorData(metadata=sensor_metadata(T0))],
            )
        ),
        id="reading-without-data",
    ),
    pytest.param(_unary(_tabular_with(type=0)), id="type-unspecified"),
    pytest.param(_unary(_tabular_with(type=FILE)), id="unary-type-file"),
    pytest.param(_unary(_tabular_with(file_name="../../escape.dat")), id="unary-dotdot-name"),
    pytest.param(_unary(_tabular_with(part_id="../x")), id="part-id-dotdot"),
    pytest.param(_unary(_tabular_with(part_id="a/b")), id="part-id-slash"),
    pytest.param(_unary(_tabular_with(part_id="capsync.db")), id="part-id-reserved"),
    pytest.param(_unary(_tabular_with(component_name="..")), id="component-dotdot"),
    pytest.param(_unary(_tabular_with(method_name="a\\b")), id="method-backslash"),
    pytest.param(_unary(binary_request(b"x", T0, file_extension="/../../x")), id="extension-slash"),
    pytest.param(_streaming([]), id="streaming-empty"),
    pytest.param(_streaming(streaming_packets(b"x" * 10, T0)[1:]), id="streaming-no-metadata"),
    pytest.param(_streaming(streaming_packets(b"x", T0, type=TABULAR)), id="streaming-tabular"),
    pytest.param(_streaming(_streaming_twice_metadata()), id="streaming-metadata-twice"),
    pytest.param(
        _streaming(
            [
                data_sync_pb2.StreamingDataCaptureUploadRequest(
                    metadata=data_sync_pb2.DataCaptureUploadMetadata(
                        sensor_metadata=sensor_metadata(T0)
                    )
                ),
                data_sync_pb2.StreamingDataCaptureUploadRequest(data=b"x"),
            ]
        ),
        id="streaming-no-upload-metadata",
    ),
    pytest.param(
        _streaming(streaming_packets(b"x", T0, file_name="/etc/passwd")), id="streaming-abs-name"
    ),
    pytest.param(_file([]), id="file-empty"),
    pytest.param(_file(file_packets(b"abc")[1:]), id="file-no-metadata"),
    pytest.param(_file(file_packets(b"abc", type=TABULAR)), id="file-type-tabular"),
    pytest.param(_file(file_packets(b"abc", type=BINARY)), id="file-type-binary"),
    pytest.param(_file(file_packets(b"abc", file_name="../../etc/x")), id="file-dotdot"),
    pytest.param(_file(file_packets(b"abc", file_name="a/../../x")), id="file-inner-dotdot"),
    pytest.param(_file(file_packets(b"abc", file_name="/etc/passwd")), id="file-absolute"),
    pytest.param(_file(file_packets(b"abc", file_name="..\\..\\x")), id="file-backslash"),
    pytest.param(_file(file_packets(b"abc", file_name="C:\\x.txt")), id="file-drive"),
    pytest.param(_file(file_packets(b"abc", file_name="a\0b")), id="file-nul"),
]


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp_path = tmp_path_factory.mktemp("malformed")
    keys = write_keys(tmp_path / "keys.json")
    server = start_server(tmp_path / "data", tmp_path, keys_file=keys)
    yield server
    assert server.stop() == 0


@pytest.mark.parametrize("call", MALFORMED)
def test_malformed_upload_is_invalid_argument_and_stores_nothing(
    shared_server: ServerProcess, call: Callable[[Any], Any]
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        call(shared_server.stub())
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert caught.value.details()
    assert stored(shared_server) == []
    leftovers = payload_files(shared_server.data_dir)
    assert leftovers == [], leftovers  # no payload, no temporary file left behind


# --- several processes, one data dir -----------------------------------------------------


def test_two_servers_sharing_a_data_dir_store_each_upload_once(
    tmp_path: Path, api_keys_file: Path
) -> None:
    data_dir = tmp_path / "data"
    servers = [start_server(data_dir, tmp_path, keys_file=api_keys_file) for _ in range(2)]
    try:
        stubs = [server.stub() for server in servers]
        requests = [tabular_request([(T0 + i, {"i": i}) for i in range(20)], part_id=f"p{n}")
                    for n in range(5)]  # fmt: skip
        images = [binary_request(bytes([n]) * 5000, T0 + n) for n in range(5)]

        def send(index: int) -> tuple[str, ...]:
            stub = stubs[index % 2]
            ids = [stub.DataCaptureUpload(r, metadata=AUTH, timeout=30).file_id for r in requests]
            ids += [stub.DataCaptureUpload(r, metadata=AUTH, timeout=30).file_id for r in images]
            return tuple(ids)

        with futures.ThreadPoolExecutor(8) as pool:
            answers = set(pool.map(send, range(16)))
        assert len(answers) == 1  # every sender got the same ids
    finally:
        for server in servers:
            assert server.stop() == 0
    items = list(list_items(data_dir))
    assert sum(item["kind"] == "tabular" for item in items) == 100
    assert sum(item["kind"] == "binary" for item in items) == 5
    assert len(payload_files(data_dir)) == 5


def test_a_taken_port_is_a_one_line_error(ingest_server: ServerProcess, tmp_path: Path) -> None:
    result = run_capsync(
        "serve", "--data", str(tmp_path / "other"), "--listen", ingest_server.address,
        "--api-keys", str(tmp_path / "keys.json"),
    )  # fmt: skip
    assert result.returncode == 2  # a user error, like every bad address
    assert "cannot listen" in result.stderr and "Traceback" not in result.stderr


# --- TLS ---------------------------------------------------------------------------------


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def test_tls(tmp_path: Path, api_keys_file: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server = start_server(
        tmp_path / "data",
        tmp_path,
        "--tls-cert", str(cert), "--tls-key", str(key),
        keys_file=api_keys_file,
        root_cert=cert.read_bytes(),
    )  # fmt: skip
    try:
        response = server.stub().DataCaptureUpload(
            tabular_request([(T0, {"secure": True})]), metadata=AUTH, timeout=10
        )
        assert response.file_id
        health = health_pb2_grpc.HealthStub(server.channel())
        reply = health.Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        # A plaintext client cannot talk to it.
        with grpc.insecure_channel(server.address) as plain:
            stub = health_pb2_grpc.HealthStub(plain)
            with pytest.raises(grpc.RpcError) as caught:
                stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        assert server.stop() == 0
    assert [item["data"] for item in list_items(tmp_path / "data")] == [{"secure": True}]


def test_tls_cert_without_key_is_a_one_line_error(tmp_path: Path) -> None:
    result = run_capsync("serve", "--data", str(tmp_path), "--tls-cert", "c.pem")
    assert result.returncode == 2 and "--tls-key" in result.stderr


# --- graceful shutdown -------------------------------------------------------------------


def test_sigterm_lets_a_streaming_upload_in_flight_finish(ingest_server: ServerProcess) -> None:
    payload = os.urandom(3_000_000)
    packets = streaming_packets(payload, T0)
    half = len(packets) // 2
    sent_half = threading.Event()
    resume = threading.Event()

    def slow_packets() -> Any:
        for index, packet in enumerate(packets):
            if index == half:
                sent_half.set()
                resume.wait(30)
            elif index > half:
                time.sleep(0.01)  # a slow client: the second half is in flight for a while
            yield packet

    future = ingest_server.stub().StreamingDataCaptureUpload.future(
        slow_packets(), metadata=AUTH, timeout=60
    )
    assert sent_half.wait(30)
    # The first half reaches the server: the call is in flight.
    assert wait_for(lambda: partial_uploads(ingest_server.data_dir), 30)
    ingest_server.terminate()
    # The server is now stopping, with the upload in flight.
    assert wait_for(lambda: "stopping" in ingest_server.stderr(), 30)
    assert ingest_server.proc.poll() is None
    resume.set()
    response = future.result(timeout=60)
    assert ingest_server.wait(30) == 0
    [item] = list_items(ingest_server.data_dir)
    assert item["id"] == response.binary_data_id
    assert Path(item["path"]).read_bytes() == payload
    assert "stopping" in ingest_server.stderr()


def test_sigint_stops_with_exit_code_zero(ingest_server: ServerProcess) -> None:
    ingest_server.proc.send_signal(2)
    assert ingest_server.wait(30) == 0


def _stalled_stream(server: ServerProcess, payload: bytes) -> tuple[Any, threading.Event]:
    """A streaming upload that sends half its packets, then waits for the returned event."""
    packets = streaming_packets(payload, T0)
    sent_half, resume = threading.Event(), threading.Event()

    def stalling() -> Any:
        for index, packet in enumerate(packets):
            if index == len(packets) // 2:
                sent_half.set()
                resume.wait(60)
            yield packet

    future = server.stub().StreamingDataCaptureUpload.future(stalling(), metadata=AUTH, timeout=60)
    assert sent_half.wait(30)
    assert wait_for(lambda: partial_uploads(server.data_dir), 30)  # the call is in flight
    return future, resume


def test_a_stream_cut_by_the_client_is_not_stored(ingest_server: ServerProcess) -> None:
    future, resume = _stalled_stream(ingest_server, os.urandom(2_000_000))
    future.cancel()
    resume.set()
    # The server sees the call end and drops the partial payload; nothing was stored.
    assert wait_for(lambda: not partial_uploads(ingest_server.data_dir), 30)
    assert stored(ingest_server) == []
    assert payload_files(ingest_server.data_dir) == []


def test_a_stream_still_running_after_the_grace_period_is_not_stored(
    tmp_path: Path, api_keys_file: Path
) -> None:
    server = start_server(tmp_path / "data", tmp_path, "--grace", "0.5", keys_file=api_keys_file)
    future, resume = _stalled_stream(server, os.urandom(2_000_000))
    try:
        server.terminate()
        assert server.wait(30) == 0
        with pytest.raises(grpc.RpcError):
            future.result(timeout=30)
    finally:
        resume.set()
        server.stop()
    assert list(list_items(server.data_dir)) == []
    assert payload_files(server.data_dir) == []
