"""``capsync run --listen``: viam-sdk's data manager client triggers a sync, with an API key."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_fixtures import (
    KEY,
    KEY_ID,
    ServerProcess,
    running_server,
    start_listening,
    subprocess_env,
    write_keys,
)
from sync_helpers import machine_config, server_items, wait_for, write_config

from capsync.config import load_config
from capsync.remote import build_remote_resource, remote_resource_config

pytestmark = pytest.mark.wire_independent

LISTEN_PREFIX = "data manager API listening on "


class RunProcess:
    """``capsync run CONFIG --listen 127.0.0.1:0``; knows the port it printed."""

    def __init__(self, config: Path, keys: Path, tmp_path: Path) -> None:
        args = [sys.executable, "-m", "capsync", "run", str(config), "--quiet"]
        args += ["--listen", "127.0.0.1:0", "--api-keys", str(keys)]
        self.stderr_path = tmp_path / "run.log"
        self.proc, self.port, _ = start_listening(args, self.stderr_path, LISTEN_PREFIX)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(30)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return code


# One server and one robot for the module: each is a process that takes seconds to start.
@pytest.fixture(name="ingest_server", scope="module")
def ingest_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("server")) as server:
        yield server


@pytest.fixture(name="robot", scope="module")
def robot_fixture(
    tmp_path_factory: pytest.TempPathFactory, ingest_server: ServerProcess
) -> Iterator[tuple[RunProcess, Path]]:
    tmp_path = tmp_path_factory.mktemp("robot")
    api_keys_file = write_keys(tmp_path / "keys.json")
    capture_dir = tmp_path / "capture"
    sensor = {
        "name": "thermo",
        "type": "sensor",
        "model": "fake",
        "service_configs": [
            {
                "type": "data_manager",
                "attributes": {
                    "capture_methods": [{"method": "Readings", "capture_frequency_hz": 20}]
                },
            }
        ],
    }
    config = machine_config(
        capture_dir, ingest_server, components=[sensor], sync_interval_mins=60.0
    )
    run = RunProcess(write_config(tmp_path / "robot.json", config), api_keys_file, tmp_path)
    try:
        yield run, capture_dir
    finally:
        assert run.stop() == 0


async def _call(port: int, calls: Any) -> Any:
    from grpclib.client import Channel

    channel = Channel("127.0.0.1", port)
    try:
        return await calls(channel)
    finally:
        channel.close()


def authenticate(port: int, key_id: str = KEY_ID, key: str = KEY) -> dict[str, str]:
    """viam's way: AuthService.Authenticate with the API key, then a bearer token."""
    from viam.gen.proto.rpc.v1.auth_grpc import AuthServiceStub
    from viam.gen.proto.rpc.v1.auth_pb2 import AuthenticateRequest, Credentials

    async def calls(channel: Any) -> Any:
        request = AuthenticateRequest(
            entity=key_id, credentials=Credentials(type="api-key", payload=key)
        )
        return await AuthServiceStub(channel).Authenticate(request)

    token = asyncio.run(_call(port, calls)).access_token
    return {"authorization": f"Bearer {token}"}


@pytest.mark.slow
def test_sdk_client_triggers_a_sync_into_a_real_server(
    robot: tuple[RunProcess, Path], ingest_server: ServerProcess
) -> None:
    from viam.gen.service.datamanager.v1.data_manager_grpc import DataManagerServiceStub
    from viam.gen.service.datamanager.v1.data_manager_pb2 import SyncRequest

    run, capture_dir = robot

    def tabular() -> list[dict[str, Any]]:
        return [i for i in server_items(ingest_server.data_dir) if i["kind"] == "tabular"]

    assert wait_for(lambda: any(capture_dir.rglob("*.prog")))
    before = len(tabular())  # scheduled sync is an hour away: only Sync calls upload
    metadata = authenticate(run.port)

    async def sync(channel: Any) -> Any:
        return await DataManagerServiceStub(channel).Sync(
            SyncRequest(name="dm"), metadata=metadata, timeout=30
        )

    asyncio.run(_call(run.port, sync))  # answers once the pass is done: all of it arrived
    items = tabular()
    assert len(items) > before
    assert {(i["component_name"], i["method_name"]) for i in items} == {("thermo", "Readings")}
    assert not list(capture_dir.rglob("*.capture"))


def test_calls_without_a_valid_key_are_refused(
    robot: tuple[RunProcess, Path], ingest_server: ServerProcess
) -> None:
    from grpclib.const import Status
    from grpclib.exceptions import GRPCError
    from viam.gen.service.datamanager.v1.data_manager_grpc import DataManagerServiceStub
    from viam.gen.service.datamanager.v1.data_manager_pb2 import SyncRequest

    run, _ = robot

    async def sync(channel: Any, metadata: Any) -> Any:
        return await DataManagerServiceStub(channel).Sync(SyncRequest(), metadata=metadata)

    for metadata in (None, {"authorization": "Bearer made-up"}, {"key_id": KEY_ID, "key": "x"}):
        with pytest.raises(GRPCError) as info:
            asyncio.run(_call(run.port, lambda c, m=metadata: sync(c, m)))
        assert info.value.status == Status.UNAUTHENTICATED
    with pytest.raises(GRPCError) as info:
        authenticate(run.port, key="wrong")
    assert info.value.status == Status.UNAUTHENTICATED
    # capsync's own key_id/key metadata works too.
    asyncio.run(_call(run.port, lambda c: sync(c, {"key_id": KEY_ID, "key": KEY})))


def test_upload_binary_data_to_datasets(
    robot: tuple[RunProcess, Path], ingest_server: ServerProcess
) -> None:
    from viam.gen.app.datasync.v1.data_sync_pb2 import MIME_TYPE_IMAGE_PNG
    from viam.gen.service.datamanager.v1.data_manager_grpc import DataManagerServiceStub
    from viam.gen.service.datamanager.v1.data_manager_pb2 import (
        UploadBinaryDataToDatasetsRequest,
    )

    run, capture_dir = robot
    payload = b"\x89PNG\r\n\x1a\n not really"
    request = UploadBinaryDataToDatasetsRequest(
        name="dm",
        binary_data=payload,
        tags=["labelled"],
        dataset_ids=["ds-1", "ds-2"],
        mime_type=MIME_TYPE_IMAGE_PNG,
    )
    metadata = authenticate(run.port)

    async def upload(channel: Any) -> Any:
        return await DataManagerServiceStub(channel).UploadBinaryDataToDatasets(
            request, metadata=metadata, timeout=30
        )

    asyncio.run(_call(run.port, upload))
    (item,) = [i for i in server_items(ingest_server.data_dir) if i["kind"] == "file"]
    assert Path(item["path"]).read_bytes() == payload
    assert item["dataset_ids"] == ["ds-1", "ds-2"]
    assert "labelled" in item["tags"]
    assert item["file_name"].endswith(".png")
    assert not list((capture_dir / "dataset").iterdir())  # nothing left behind


def test_status_and_do_command_as_a_remote_with_api_key_auth(
    robot: tuple[RunProcess, Path], tmp_path: Path
) -> None:
    """capsync's remote client authenticates the viam way against a server that asks for it:
    the running robot's data manager, captured as a remote's ``DoCommand``."""
    run, _ = robot
    remote = {
        "name": "robot",
        "address": f"127.0.0.1:{run.port}",
        "insecure": True,
        "auth": {"entity": KEY_ID, "credentials": {"type": "api-key", "payload": KEY}},
    }
    config = load_config({"remotes": [remote]}).remotes[0]
    rc = remote_resource_config(config, "rdk:service:data_manager", "dm")
    resource = build_remote_resource(rc)
    try:
        status = resource.capture("DoCommand", {"docommand_input": {"command": "status"}})
        assert status["collectors"]["thermo/Readings"]["captures"] > 0
    finally:
        resource.close()
    bad = dict(remote, auth={"entity": KEY_ID, "credentials": {"type": "api-key", "payload": "x"}})
    rc = remote_resource_config(load_config({"remotes": [bad]}).remotes[0], rc.api, "dm")
    resource = build_remote_resource(rc)
    try:
        with pytest.raises(Exception, match="UNAUTHENTICATED"):
            resource.capture("DoCommand", {"docommand_input": {"command": "status"}})
    finally:
        resource.close()


def test_listen_needs_api_keys(tmp_path: Path) -> None:
    config = write_config(tmp_path / "robot.json", machine_config(tmp_path / "capture"))
    result = subprocess.run(
        [sys.executable, "-m", "capsync", "run", str(config), "--listen", "127.0.0.1:0"],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "capsync: error: --listen needs --api-keys FILE (who may call the API)"
    ]


@pytest.mark.slow
def test_sync_says_unavailable_when_the_server_is_down(
    robot: tuple[RunProcess, Path], ingest_server: ServerProcess
) -> None:
    """Last in the module: it stops the shared server."""
    from grpclib.const import Status
    from grpclib.exceptions import GRPCError
    from viam.gen.service.datamanager.v1.data_manager_grpc import DataManagerServiceStub
    from viam.gen.service.datamanager.v1.data_manager_pb2 import SyncRequest

    run, capture_dir = robot
    ingest_server.stop()
    assert wait_for(lambda: any(capture_dir.rglob("*.prog")))
    metadata = authenticate(run.port)

    async def sync(channel: Any) -> Any:
        return await DataManagerServiceStub(channel).Sync(
            SyncRequest(name="dm"), metadata=metadata, timeout=4
        )

    with pytest.raises(GRPCError) as info:
        asyncio.run(_call(run.port, sync))
    assert info.value.status == Status.UNAVAILABLE
    assert "files not uploaded" in (info.value.message or "")
    assert list(capture_dir.rglob("*.capture"))  # kept for the next pass
