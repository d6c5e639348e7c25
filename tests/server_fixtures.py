"""Fixtures and helpers for tests of the ingest server (``capsync serve``) and ``capsync data``.

The server always runs as a real process on loopback, started and stopped by
the test. The fixtures ``api_keys_file`` and ``ingest_server`` are registered for
every test module by tests/conftest.py (``pytest_plugins``): ask for them by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2, timestamp_pb2

from capsync.proto import data_sync_pb2, rpc

SRC = Path(__file__).resolve().parents[1] / "src"
KEY_ID = "test-key-id"
KEY = "test-secret-0123456789"
AUTH = (("key_id", KEY_ID), ("key", KEY))
LISTEN_PREFIX = "capsync serve: listening on "
START_TIMEOUT_S = 30.0
CHUNK_BYTES = 64 * 1024

DataType = data_sync_pb2.DataType
TABULAR = DataType.DATA_TYPE_TABULAR_SENSOR
BINARY = DataType.DATA_TYPE_BINARY_SENSOR
FILE = DataType.DATA_TYPE_FILE


def subprocess_env() -> dict[str, str]:
    """The environment for a capsync subprocess: this checkout's src first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_capsync(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``python -m capsync ARGS`` to completion, capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "capsync", *args],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write_keys(path: Path, keys: Sequence[tuple[str, str]] = ((KEY_ID, KEY),)) -> Path:
    path.write_text(json.dumps({"keys": [{"id": i, "key": k} for i, k in keys]}))
    path.chmod(0o600)
    return path


@dataclass
class ServerProcess:
    """A running ``capsync serve``; :meth:`stop` sends SIGTERM and waits."""

    proc: subprocess.Popen[str]
    data_dir: Path
    port: int
    stderr_path: Path
    root_cert: bytes | None = None
    _channels: list[grpc.Channel] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def channel(self) -> grpc.Channel:
        if self.root_cert is None:
            channel = grpc.insecure_channel(self.address)
        else:
            channel = grpc.secure_channel(
                f"localhost:{self.port}", grpc.ssl_channel_credentials(self.root_cert)
            )
        self._channels.append(channel)
        return channel

    def stub(self) -> Any:
        return rpc.data_sync_stub(self.channel())

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 30.0) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.stdout is not None and self.proc.poll() is not None:
                self.proc.stdout.close()

    def stop(self) -> int:
        for channel in self._channels:
            channel.close()
        self._channels.clear()
        self.terminate()
        try:
            return self.wait(30.0)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.wait(10.0)
            raise


def start_server(
    data_dir: Path,
    tmp_path: Path,
    *extra_args: str,
    keys_file: Path | None = None,
    root_cert: bytes | None = None,
) -> ServerProcess:
    """Start ``capsync serve`` on a free loopback port; return once it prints its port."""
    args = [sys.executable, "-m", "capsync", "serve", "--data", str(data_dir)]
    args += ["--listen", "127.0.0.1:0"]
    if keys_file is not None:
        args += ["--api-keys", str(keys_file)]
    args += list(extra_args)
    stderr_path = tmp_path / f"serve-{len(list(tmp_path.glob('serve-*.log')))}.log"
    proc, port, _ = start_listening(args, stderr_path, LISTEN_PREFIX)
    return ServerProcess(proc, data_dir, port, stderr_path, root_cert)


def start_listening(
    args: Sequence[str], stderr_path: Path, prefix: str
) -> tuple[subprocess.Popen[str], int, list[str]]:
    """Start a capsync process (stderr to ``stderr_path``); once it prints ``prefix`` and
    its address, return it, the port and the lines it printed before (killed if it exits
    or never prints it)."""
    with open(stderr_path, "w") as stderr:
        proc = subprocess.Popen(
            list(args), stdout=subprocess.PIPE, stderr=stderr, text=True, env=subprocess_env()
        )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    before: list[str] = []
    try:
        while True:
            line = lines.get(timeout=START_TIMEOUT_S)
            if line is None:
                proc.wait(10)
                raise RuntimeError(
                    f"{' '.join(args[2:4])} exited ({proc.returncode}): {stderr_path.read_text()}"
                )
            if line.startswith(prefix):
                return proc, int(line[len(prefix) :].strip().rpartition(":")[2]), before
            before.append(line)
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        raise


@contextlib.contextmanager
def running_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A plaintext server on a fresh data dir under ``tmp_path``, with the key (KEY_ID, KEY),
    stopped afterwards (for module-scoped fixtures)."""
    server = start_server(tmp_path / "data", tmp_path, keys_file=write_keys(tmp_path / "k.json"))
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            server.stop()


@pytest.fixture(name="api_keys_file")
def api_keys_fixture(tmp_path: Path) -> Path:
    return write_keys(tmp_path / "keys.json")


@pytest.fixture(name="ingest_server")
def ingest_server_fixture(tmp_path: Path, api_keys_file: Path) -> Iterator[ServerProcess]:
    """A plaintext server on a fresh data dir, with the key (KEY_ID, KEY)."""
    server = start_server(tmp_path / "data", tmp_path, keys_file=api_keys_file)
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            server.stop()


# --- messages ----------------------------------------------------------------------------


def timestamp(ns: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000)


def sensor_metadata(
    requested_ns: int, received_ns: int | None = None, mime_type: int = 0
) -> data_sync_pb2.SensorMetadata:
    return data_sync_pb2.SensorMetadata(
        time_requested=timestamp(requested_ns),
        time_received=timestamp(received_ns if received_ns is not None else requested_ns + 1000),
        mime_type=mime_type,
    )


def upload_metadata(**fields: Any) -> data_sync_pb2.UploadMetadata:
    defaults: dict[str, Any] = {
        "part_id": "part-1",
        "component_type": "rdk:component:sensor",
        "component_name": "thermo",
        "method_name": "Readings",
        "type": TABULAR,
    }
    defaults.update(fields)
    return data_sync_pb2.UploadMetadata(**defaults)


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(value)
    return message


def tabular_request(
    readings: Sequence[tuple[int, dict[str, Any]]], **metadata: Any
) -> data_sync_pb2.DataCaptureUploadRequest:
    """A DataCaptureUpload of (time_requested_ns, struct) readings."""
    return data_sync_pb2.DataCaptureUploadRequest(
        metadata=upload_metadata(**metadata),
        sensor_contents=[
            data_sync_pb2.SensorData(metadata=sensor_metadata(ns), struct=struct(value))
            for ns, value in readings
        ],
    )


def binary_request(
    payload: bytes, requested_ns: int, **metadata: Any
) -> data_sync_pb2.DataCaptureUploadRequest:
    fields: dict[str, Any] = {
        "component_type": "rdk:component:camera",
        "component_name": "cam",
        "method_name": "ReadImage",
        "type": BINARY,
        "file_extension": ".jpeg",
    }
    fields.update(metadata)
    return data_sync_pb2.DataCaptureUploadRequest(
        metadata=upload_metadata(**fields),
        sensor_contents=[
            data_sync_pb2.SensorData(
                metadata=sensor_metadata(requested_ns, mime_type=1), binary=payload
            )
        ],
    )


def streaming_packets(
    payload: bytes, requested_ns: int, **metadata: Any
) -> list[data_sync_pb2.StreamingDataCaptureUploadRequest]:
    fields: dict[str, Any] = {
        "component_type": "rdk:component:camera",
        "component_name": "lidar",
        "method_name": "NextPointCloud",
        "type": BINARY,
        "file_extension": ".pcd",
    }
    fields.update(metadata)
    first = data_sync_pb2.StreamingDataCaptureUploadRequest(
        metadata=data_sync_pb2.DataCaptureUploadMetadata(
            upload_metadata=upload_metadata(**fields),
            sensor_metadata=sensor_metadata(requested_ns, mime_type=3),
        )
    )
    chunks = [
        data_sync_pb2.StreamingDataCaptureUploadRequest(data=payload[i : i + CHUNK_BYTES])
        for i in range(0, len(payload), CHUNK_BYTES)
    ]
    return [first, *chunks]


def file_packets(payload: bytes, **metadata: Any) -> list[data_sync_pb2.FileUploadRequest]:
    fields: dict[str, Any] = {
        "component_type": "",
        "component_name": "",
        "method_name": "",
        "type": FILE,
        "file_name": "logs/run.txt",
    }
    fields.update(metadata)
    first = data_sync_pb2.FileUploadRequest(metadata=upload_metadata(**fields))
    chunks = [
        data_sync_pb2.FileUploadRequest(
            file_contents=data_sync_pb2.FileData(data=payload[i : i + CHUNK_BYTES])
        )
        for i in range(0, len(payload), CHUNK_BYTES)
    ]
    return [first, *chunks]
