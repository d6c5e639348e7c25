"""Remote parts without a remote: config, addresses, and capsync's copies of Viam's messages."""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any

import pytest

from capsync.config import ConfigError, load_config
from capsync.remote import RemoteSettings, build_remote_resource, remote_resource_config
from capsync.remote.api import method_path
from capsync.resources import ResourceConfigError

pytestmark = pytest.mark.wire_independent

# capsync module -> viam-sdk module holding the messages of the same (unprefixed) names.
COPIES = {
    "capsync.proto.viam.common.v1.common_pb2": "viam.gen.common.v1.common_pb2",
    "capsync.proto.viam.component.board.v1.board_pb2": "viam.gen.component.board.v1.board_pb2",
    "capsync.proto.viam.component.camera.v1.camera_pb2": "viam.gen.component.camera.v1.camera_pb2",
    "capsync.proto.viam.component.movementsensor.v1.movementsensor_pb2":
        "viam.gen.component.movementsensor.v1.movementsensor_pb2",
    "capsync.proto.viam.service.vision.v1.vision_pb2": "viam.gen.service.vision.v1.vision_pb2",
    "capsync.proto.viam.service.datamanager.v1.data_manager_pb2":
        "viam.gen.service.datamanager.v1.data_manager_pb2",
    "capsync.proto.goutils.rpc.v1.auth_pb2": "viam.gen.proto.rpc.v1.auth_pb2",
}  # fmt: skip


def _shape(field: Any) -> tuple[Any, ...]:
    target = field.message_type or field.enum_type
    name = target.full_name.removeprefix("capsync.") if target is not None else None
    return (field.name, field.number, field.type, field.is_repeated, field.has_presence, name)


@pytest.mark.parametrize("ours_name", sorted(COPIES))
def test_message_copies_match_viam_field_for_field(ours_name: str) -> None:
    ours = importlib.import_module(ours_name).DESCRIPTOR
    theirs = importlib.import_module(COPIES[ours_name]).DESCRIPTOR
    assert ours.package == "capsync." + theirs.package
    for name, message in ours.message_types_by_name.items():
        viam = theirs.message_types_by_name[name]
        for field in message.fields:
            assert _shape(field) == _shape(viam.fields_by_number[field.number]), (name, field.name)


def test_method_paths_are_viams() -> None:
    assert method_path("rdk:component:movement_sensor", "GetPosition") == (
        "/viam.component.movementsensor.v1.MovementSensorService/GetPosition"
    )
    assert method_path("rdk:service:vision", "CaptureAllFromCamera") == (
        "/viam.service.vision.v1.VisionService/CaptureAllFromCamera"
    )
    # APIs without a class of their own follow Viam's naming.
    assert method_path("rdk:component:power_sensor", "GetReadings") == (
        "/viam.component.powersensor.v1.PowerSensorService/GetReadings"
    )
    assert method_path("rdk:service:data_manager", "DoCommand") == (
        "/viam.service.datamanager.v1.DataManagerService/DoCommand"
    )


@pytest.mark.parametrize(
    ("address", "insecure", "target"),
    [
        ("esp.local", False, "esp.local:443"),
        ("esp.local", True, "esp.local:8080"),
        ("https://robot.viam.cloud:443/", False, "robot.viam.cloud:443"),
        ("127.0.0.1:9090", True, "127.0.0.1:9090"),
        ("[::1]:9090", True, "[::1]:9090"),
    ],
)
def test_remote_targets(address: str, insecure: bool, target: str) -> None:
    assert RemoteSettings(address, insecure).target == target


def remotes(**remote: Any) -> dict[str, Any]:
    return {"remotes": [{"name": "r", "address": "r.local:8080", **remote}]}


def test_remote_auth_secret_and_ca_file_are_read() -> None:
    auth = {"entity": "key-id", "credentials": {"type": "api-key", "payload": "s3cret"}}
    config = load_config(remotes(auth=auth, ca_file="~/ca.pem"))
    (remote,) = config.remotes
    assert (remote.auth_entity, remote.auth_type, remote.auth_payload) == (
        "key-id",
        "api-key",
        "s3cret",
    )
    assert remote.ca_file == str(Path("~/ca.pem").expanduser())
    assert "s3cret" not in repr(remote)
    assert config.warnings == ()
    (legacy,) = load_config(remotes(secret="loc-secret")).remotes
    assert (legacy.auth_type, legacy.auth_payload) == ("robot-location-secret", "loc-secret")


def test_bad_remote_auth_is_named() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(remotes(auth={"credentials": {"payload": "x"}}))
    assert str(info.value) == (
        'remote "r": auth.credentials.type is required with a payload (e.g. "api-key")'
    )
    config = load_config(remotes(auth={"credentials": {"type": "api-key"}, "colour": 1}))
    assert config.warnings == ('remote "r": unknown key "auth.colour"',)


def test_unreadable_ca_file_is_a_config_error(tmp_path: Path) -> None:
    (remote,) = load_config(remotes(ca_file=str(tmp_path / "missing.pem"))).remotes
    rc = remote_resource_config(remote, "rdk:component:sensor", "s")
    with pytest.raises(ResourceConfigError, match="'ca_file' cannot be read"):
        build_remote_resource(rc)


def test_a_remote_that_does_not_answer_costs_one_deadline() -> None:
    """A listener that never speaks gRPC (accepts, then nothing): the call ends at its
    deadline with DEADLINE_EXCEEDED instead of hanging the collector."""
    import socket

    from capsync.remote import RemoteCallError

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        (remote,) = load_config(
            {"remotes": [{"name": "r", "address": f"127.0.0.1:{port}", "insecure": True}]}
        ).remotes
        rc = remote_resource_config(remote, "rdk:component:sensor", "s")
        resource = build_remote_resource(
            dataclasses.replace(rc, attributes={**rc.attributes, "call_timeout_s": 0.3})
        )
        try:
            with pytest.raises(RemoteCallError) as info:
                resource.capture("Readings", {})
        finally:
            resource.close()
    assert info.value.code is not None and info.value.code.name in (
        "DEADLINE_EXCEEDED",
        "UNAVAILABLE",
    )
