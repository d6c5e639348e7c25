"""Viam's own Python SDK (viam-sdk 0.85.1) as the independent peer, in capsync's process.

viam-sdk pins protobuf 6.33.5 and registers Viam's full message names in
protobuf's default descriptor pool; capsync's .proto packages carry a
``capsync.`` prefix so both load side by side, while the gRPC paths on the
wire stay Viam's. Checked here:

* both import in one process, in either order, with no descriptor-pool clash;
* capture files written by capsync decode with Viam's generated classes;
* Viam's grpclib ``DataSyncServiceStub`` uploads to a real ``capsync serve``;
* capsync's sync client uploads to a DataSyncService built from Viam's
  ``DataSyncServiceBase`` on grpclib, which records exactly what arrived.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import google.protobuf
import grpclib.client
import grpclib.server
import pytest
from google.protobuf import json_format, wrappers_pb2
from server_fixtures import (
    AUTH,
    KEY,
    KEY_ID,
    ServerProcess,
    subprocess_env,
)
from sync_helpers import (
    BASE_NS,
    PART_ID,
    capture_files,
    machine_config,
    make_old,
    server_items,
    write_binary,
    write_tabular,
)
from viam.gen.app.datasync.v1 import data_sync_grpc as viam_grpc
from viam.gen.app.datasync.v1 import data_sync_pb2 as viam_pb2

import capsync
from capsync.config import load_config
from capsync.proto import data_sync_pb2
from capsync.sync import Syncer, SyncSettings, resolve_target

pytestmark = pytest.mark.wire_independent

SERVICE = "viam.app.datasync.v1.DataSyncService"


def test_viam_sdk_runs_on_protobuf_6() -> None:
    """The environment is the one a Viam user has: viam-sdk's protobuf pin won."""
    assert google.protobuf.__version__.startswith("6.33.")


@pytest.mark.parametrize(
    "imports",
    [
        "import capsync, capsync.server, capsync.sync, capsync.proto.rpc;"
        " import viam.gen.app.datasync.v1.data_sync_pb2, viam.gen.app.data.v1.data_pb2;"
        " import viam.app.data_client",
        "import viam.gen.app.datasync.v1.data_sync_pb2, viam.gen.app.data.v1.data_pb2;"
        " import viam.app.data_client;"
        " import capsync, capsync.server, capsync.sync, capsync.proto.rpc",
    ],
    ids=["capsync-first", "viam-first"],
)
def test_both_import_in_one_process(imports: str) -> None:
    code = (
        f"{imports}\n"
        "from capsync.proto import data_pb2, data_sync_pb2\n"
        "from google.protobuf import descriptor_pool\n"
        "pool = descriptor_pool.Default()\n"
        "for name in ('viam.app.datasync.v1.DataCaptureUploadRequest',\n"
        "             'capsync.viam.app.datasync.v1.DataCaptureUploadRequest',\n"
        "             'viam.app.data.v1.Annotations', 'capsync.viam.app.data.v1.Annotations'):\n"
        "    pool.FindMessageTypeByName(name)\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"


# --- (a) capture files decode with Viam's classes ------------------------------------------


def _delimited(data: bytes) -> Iterator[bytes]:
    """The varint-length-prefixed frames of a capture file, read without capsync."""
    offset = 0
    while offset < len(data):
        length = shift = 0
        while True:
            byte = data[offset]
            offset += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        yield data[offset : offset + length]
        offset += length
    assert offset == len(data)


def _viam_read(path: Path) -> tuple[Any, list[Any]]:
    header, *records = _delimited(path.read_bytes())
    return (
        viam_pb2.DataCaptureMetadata.FromString(header),
        [viam_pb2.SensorData.FromString(r) for r in records],
    )


def _ns(stamp: Any) -> int:
    return int(stamp.seconds) * 1_000_000_000 + int(stamp.nanos)


def test_a_tabular_capture_file_decodes_with_viams_classes(tmp_path: Path) -> None:
    stream = capsync.open_stream(
        tmp_path,
        component_type="rdk:component:sensor",
        component_name="thermo",
        method_name="Readings",
        tags=["lab", "t2"],
        method_parameters={"units": "celsius", "raw": True},
    )
    readings = [{"c": 20.5 + i, "ok": i % 2 == 0, "name": f"r{i}", "v": [1, 2]} for i in range(5)]
    with stream:
        for i, reading in enumerate(readings):
            stream.append(reading, BASE_NS + i * 1000, BASE_NS + i * 1000 + 7)
        path = stream.flush_to_capture()
    assert path is not None

    header, records = _viam_read(path)
    assert header.component_type == "rdk:component:sensor"
    assert header.component_name == "thermo"
    assert header.method_name == "Readings"
    assert header.type == viam_pb2.DATA_TYPE_TABULAR_SENSOR
    assert list(header.tags) == ["lab", "t2"]
    units = header.method_parameters["units"]
    assert units.type_url == "type.googleapis.com/google.protobuf.StringValue"
    assert units.Unpack(unpacked := wrappers_pb2.StringValue()) and unpacked.value == "celsius"
    assert header.method_parameters["raw"].Unpack(unpacked) and unpacked.value == "true"
    assert [(_ns(r.metadata.time_requested), _ns(r.metadata.time_received)) for r in records] == [
        (BASE_NS + i * 1000, BASE_NS + i * 1000 + 7) for i in range(5)
    ]
    assert [r.WhichOneof("data") for r in records] == ["struct"] * 5
    # Readings are wrapped as Viam wraps them: {"readings": {...}}.
    assert [json_format.MessageToDict(r.struct) for r in records] == [
        {"readings": r} for r in readings
    ]


def test_a_binary_capture_file_decodes_with_viams_classes(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 40
    path = write_binary(tmp_path, "cam", payload, requested_ns=BASE_NS + 5)
    header, records = _viam_read(path)
    assert header.type == viam_pb2.DATA_TYPE_BINARY_SENSOR
    assert (header.component_name, header.method_name) == ("cam", "ReadImage")
    assert header.mime_type == "image/jpeg"
    (record,) = records
    assert record.binary == payload
    assert record.metadata.mime_type == viam_pb2.MIME_TYPE_IMAGE_JPEG
    assert _ns(record.metadata.time_requested) == BASE_NS + 5
    assert _ns(record.metadata.time_received) == BASE_NS + 5 + 9


def test_capsync_and_viam_messages_are_the_same_bytes() -> None:
    """Same field numbers and types: each side's bytes parse as the other's message."""
    request = data_sync_pb2.DataCaptureUploadRequest()
    request.metadata.part_id = "p"
    request.metadata.type = data_sync_pb2.DATA_TYPE_BINARY_SENSOR
    request.metadata.method_parameters["k"].Pack(wrappers_pb2.StringValue(value="v"))
    reading = request.sensor_contents.add(binary=b"\x00\xff")
    reading.metadata.annotations.bboxes.add(label="dog", x_max_normalized=0.5, confidence=0.9)
    reading.metadata.time_requested.FromNanoseconds(BASE_NS)
    wire = request.SerializeToString(deterministic=True)
    theirs = viam_pb2.DataCaptureUploadRequest.FromString(wire)
    assert theirs.SerializeToString(deterministic=True) == wire
    assert theirs.sensor_contents[0].metadata.annotations.bboxes[0].label == "dog"
    assert theirs.sensor_contents[0].metadata.annotations.bboxes[0].confidence == pytest.approx(0.9)
    assert data_sync_pb2.DataCaptureUploadRequest.FromString(wire) == request
    assert type(theirs).DESCRIPTOR.full_name == "viam.app.datasync.v1.DataCaptureUploadRequest"
    assert type(request).DESCRIPTOR.full_name == (
        "capsync.viam.app.datasync.v1.DataCaptureUploadRequest"
    )


# --- (b) Viam's grpclib client uploads to capsync serve ------------------------------------


def _viam_metadata() -> dict[str, str]:
    return dict(AUTH)


async def _viam_uploads(port: int, jpeg: bytes, pcd: bytes, log: bytes) -> list[Any]:
    channel = grpclib.client.Channel("127.0.0.1", port)
    try:
        stub = viam_grpc.DataSyncServiceStub(channel)
        meta = viam_pb2.UploadMetadata
        tabular = viam_pb2.DataCaptureUploadRequest(
            metadata=meta(
                part_id="viam-part",
                component_type="rdk:component:sensor",
                component_name="thermo",
                method_name="Readings",
                type=viam_pb2.DATA_TYPE_TABULAR_SENSOR,
                tags=["viam"],
            )
        )
        for i in range(3):
            reading = tabular.sensor_contents.add()
            reading.metadata.time_requested.FromNanoseconds(BASE_NS + i)
            reading.metadata.time_received.FromNanoseconds(BASE_NS + i + 100)
            reading.struct.update({"readings": {"c": 20 + i, "label": f"r{i}"}})
        replies = [await stub.DataCaptureUpload(tabular, metadata=_viam_metadata())]

        image = viam_pb2.DataCaptureUploadRequest(
            metadata=meta(
                part_id="viam-part",
                component_type="rdk:component:camera",
                component_name="cam",
                method_name="ReadImage",
                type=viam_pb2.DATA_TYPE_BINARY_SENSOR,
                file_extension=".jpeg",
            )
        )
        shot = image.sensor_contents.add(binary=jpeg)
        shot.metadata.time_requested.FromNanoseconds(BASE_NS + 10)
        shot.metadata.time_received.FromNanoseconds(BASE_NS + 11)
        shot.metadata.mime_type = viam_pb2.MIME_TYPE_IMAGE_JPEG
        replies.append(await stub.DataCaptureUpload(image, metadata=_viam_metadata()))

        async with stub.StreamingDataCaptureUpload.open(metadata=_viam_metadata()) as stream:
            first = viam_pb2.StreamingDataCaptureUploadRequest()
            first.metadata.upload_metadata.CopyFrom(
                meta(
                    part_id="viam-part",
                    component_type="rdk:component:camera",
                    component_name="lidar",
                    method_name="NextPointCloud",
                    type=viam_pb2.DATA_TYPE_BINARY_SENSOR,
                    file_extension=".pcd",
                )
            )
            first.metadata.sensor_metadata.time_requested.FromNanoseconds(BASE_NS + 20)
            first.metadata.sensor_metadata.time_received.FromNanoseconds(BASE_NS + 21)
            await stream.send_message(first)
            for i in range(0, len(pcd), 64 * 1024):
                chunk = viam_pb2.StreamingDataCaptureUploadRequest(data=pcd[i : i + 64 * 1024])
                await stream.send_message(chunk)
            await stream.end()
            replies.append(await stream.recv_message())

        async with stub.FileUpload.open(metadata=_viam_metadata()) as stream:
            header = meta(
                part_id="viam-part", type=viam_pb2.DATA_TYPE_FILE, file_name="logs/run.txt"
            )
            await stream.send_message(viam_pb2.FileUploadRequest(metadata=header))
            contents = viam_pb2.FileData(data=log)
            await stream.send_message(viam_pb2.FileUploadRequest(file_contents=contents), end=True)
            replies.append(await stream.recv_message())
        return replies
    finally:
        channel.close()


async def _viam_upload_without_key(port: int) -> None:
    channel = grpclib.client.Channel("127.0.0.1", port)
    try:
        stub = viam_grpc.DataSyncServiceStub(channel)
        await stub.DataCaptureUpload(viam_pb2.DataCaptureUploadRequest())
    finally:
        channel.close()


def test_viams_grpclib_client_uploads_to_capsync_serve(ingest_server: ServerProcess) -> None:
    jpeg = b"\xff\xd8\xff" + bytes(range(256)) * 8
    pcd = b"VERSION .7\n" + bytes(300_000)
    log = b"one line\n" * 50
    replies = asyncio.run(_viam_uploads(ingest_server.port, jpeg, pcd, log))
    assert [type(r).__name__ for r in replies] == [
        "DataCaptureUploadResponse",
        "DataCaptureUploadResponse",
        "StreamingDataCaptureUploadResponse",
        "FileUploadResponse",
    ]
    assert all(r.file_id or r.binary_data_id for r in replies)

    items = server_items(ingest_server.data_dir)
    assert {i["part_id"] for i in items} == {"viam-part"}
    tabular = sorted(
        (i for i in items if i["kind"] == "tabular"), key=lambda i: i["time_requested_ns"]
    )
    assert [(i["time_requested_ns"], i["time_received_ns"]) for i in tabular] == [
        (BASE_NS + i, BASE_NS + i + 100) for i in range(3)
    ]
    assert [i["data"] for i in tabular] == [
        {"readings": {"c": 20 + i, "label": f"r{i}"}} for i in range(3)
    ]
    assert all(i["tags"] == ["viam"] for i in tabular)
    payloads = {
        i["component_name"] or i["file_name"]: Path(i["path"]).read_bytes()
        for i in items
        if i["kind"] != "tabular"
    }
    assert payloads == {"cam": jpeg, "lidar": pcd, "logs/run.txt": log}
    binary = {i["component_name"]: i for i in items if i["kind"] == "binary"}
    assert binary["cam"]["time_requested_ns"] == BASE_NS + 10
    assert binary["lidar"]["time_requested_ns"] == BASE_NS + 20
    assert binary["cam"]["sha256"] == hashlib.sha256(jpeg).hexdigest()


def test_viams_client_without_a_key_is_refused(ingest_server: ServerProcess) -> None:
    with pytest.raises(grpclib.exceptions.GRPCError) as refused:
        asyncio.run(_viam_upload_without_key(ingest_server.port))
    assert refused.value.status == grpclib.const.Status.UNAUTHENTICATED
    assert server_items(ingest_server.data_dir) == []


# --- (c) capsync's sync client uploads to a server built from Viam's classes ---------------


@dataclass
class Received:
    """Every call the Viam-built server answered: (rpc, metadata, requests)."""

    calls: list[tuple[str, dict[str, str], list[Any]]] = field(default_factory=list)

    def of(self, rpc: str) -> list[list[Any]]:
        return [requests for name, _, requests in self.calls if name == rpc]


class ViamDataSync(viam_grpc.DataSyncServiceBase):  # type: ignore[misc]
    """DataSyncService from Viam's generated base class: records and acknowledges."""

    def __init__(self, received: Received) -> None:
        self.received = received

    def _record(self, rpc: str, stream: Any, requests: list[Any]) -> None:
        metadata = {k: v for k, v in stream.metadata.items() if k in ("key_id", "key")}
        self.received.calls.append((rpc, metadata, requests))

    async def DataCaptureUpload(self, stream: Any) -> None:
        request = await stream.recv_message()
        self._record("DataCaptureUpload", stream, [request])
        number = len(self.received.calls)
        await stream.send_message(viam_pb2.DataCaptureUploadResponse(file_id=f"f{number}"))

    async def _stream_unary(self, rpc: str, stream: Any, response: Any) -> None:
        requests = [request async for request in stream]
        self._record(rpc, stream, requests)
        await stream.send_message(response(file_id=f"f{len(self.received.calls)}"))

    async def FileUpload(self, stream: Any) -> None:
        await self._stream_unary("FileUpload", stream, viam_pb2.FileUploadResponse)

    async def StreamingDataCaptureUpload(self, stream: Any) -> None:
        await self._stream_unary(
            "StreamingDataCaptureUpload", stream, viam_pb2.StreamingDataCaptureUploadResponse
        )


@pytest.fixture(name="viam_server")
def viam_server_fixture() -> Iterator[tuple[int, Received]]:
    """A grpclib server of :class:`ViamDataSync` on a free loopback port, in its own thread."""
    received = Received()
    loop = asyncio.new_event_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    started: Future[grpclib.server.Server] = Future()

    def run() -> None:
        asyncio.set_event_loop(loop)  # grpclib's Server binds to the current loop
        try:
            server = grpclib.server.Server([ViamDataSync(received)])
            loop.run_until_complete(server.start(sock=sock))
        except BaseException as exc:
            sock.close()
            started.set_exception(exc)
            return
        started.set_result(server)
        loop.run_forever()

    thread = threading.Thread(target=run, name="viam-datasync", daemon=True)
    thread.start()
    server = started.result(timeout=30)
    try:
        yield port, received
    finally:

        async def shutdown() -> None:
            server.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


def test_capsync_sync_uploads_exact_values_to_a_viam_built_server(
    tmp_path: Path, viam_server: tuple[int, Received]
) -> None:
    port, received = viam_server
    capture_dir = tmp_path / "capture"
    tabular_path = write_tabular(capture_dir, "thermo", 4, tags=["t1"])
    small = bytes(range(256)) * 16
    large = bytes(range(251)) * 5000  # over the streaming threshold (1 MB)
    write_binary(capture_dir, "cam", small, requested_ns=BASE_NS + 50)
    write_binary(capture_dir, "lidar", large, requested_ns=BASE_NS + 60)
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "notes.txt").write_bytes(b"notes\n" * 10)
    make_old(extra / "notes.txt")
    config = machine_config(
        capture_dir,
        address=f"127.0.0.1:{port}",
        additional_sync_paths=[str(extra)],
        file_last_modified_millis=1000,
    )
    machine = load_config(config)
    assert machine.data_manager is not None
    with Syncer(SyncSettings.from_config(machine.data_manager), resolve_target(machine)) as syncer:
        report = syncer.sync_once()
    assert report.complete, report.left
    assert report.files_uploaded == 4
    assert capture_files(capture_dir) == []
    assert not tabular_path.exists()

    assert {(rpc, tuple(sorted(meta.items()))) for rpc, meta, _ in received.calls} >= {
        ("DataCaptureUpload", (("key", KEY), ("key_id", KEY_ID)))
    }
    assert all(meta == {"key_id": KEY_ID, "key": KEY} for _, meta, _ in received.calls)

    uploads = [request for (request,) in received.of("DataCaptureUpload")]
    by_component = {u.metadata.component_name: u for u in uploads}
    assert set(by_component) == {"thermo", "cam"}
    thermo = by_component["thermo"]
    assert thermo.metadata.part_id == PART_ID
    assert thermo.metadata.type == viam_pb2.DATA_TYPE_TABULAR_SENSOR
    assert (thermo.metadata.component_type, thermo.metadata.method_name) == (
        "rdk:component:sensor",
        "Readings",
    )
    assert list(thermo.metadata.tags) == ["t1"]
    assert [
        (_ns(r.metadata.time_requested), _ns(r.metadata.time_received))
        for r in thermo.sensor_contents
    ] == [(BASE_NS + i * 1000, BASE_NS + i * 1000 + 7) for i in range(4)]
    assert [json_format.MessageToDict(r.struct) for r in thermo.sensor_contents] == [
        {"readings": {"i": i, "x": i * 0.25 + 0.1, "name": "thermo"}} for i in range(4)
    ]
    cam = by_component["cam"]
    assert cam.metadata.type == viam_pb2.DATA_TYPE_BINARY_SENSOR
    assert cam.metadata.file_extension == ".jpeg"
    (shot,) = cam.sensor_contents
    assert shot.binary == small
    assert _ns(shot.metadata.time_requested) == BASE_NS + 50

    (lidar_packets,) = received.of("StreamingDataCaptureUpload")
    first, *chunks = lidar_packets
    assert first.WhichOneof("upload_packet") == "metadata"
    assert first.metadata.upload_metadata.component_name == "lidar"
    assert _ns(first.metadata.sensor_metadata.time_requested) == BASE_NS + 60
    assert b"".join(c.data for c in chunks) == large

    (file_packets,) = received.of("FileUpload")
    head, *contents = file_packets
    assert head.metadata.file_name == "notes.txt"
    assert head.metadata.type == viam_pb2.DATA_TYPE_FILE
    assert head.metadata.part_id == PART_ID
    assert b"".join(c.file_contents.data for c in contents) == b"notes\n" * 10
