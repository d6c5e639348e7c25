"""The protobuf schema shared with Viam (SPEC §2 and §4).

Three kinds of check:

* staleness: the checked-in generated modules match what protoc builds from the
  .proto files now (compared as parsed descriptors, so a newer protoc that
  prints the modules differently does not matter);
* the contract: every message, field number, field type, oneof, reserved number,
  enum value and RPC of the SPEC, read from the generated descriptors;
* the wire: hand-written bytes for tiny messages, so the field numbers are
  proven on the wire and not only in the descriptors, and the gRPC method paths
  (Viam's, without the ``capsync.`` prefix of the .proto packages).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, struct_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor

import capsync.proto
from capsync.proto import data_pb2, data_sync_pb2, rpc
from capsync.proto.generate import SRC_ROOT, descriptor_set, proto_files, strip_version_check

pytestmark = pytest.mark.wire_independent

FDP = descriptor_pb2.FieldDescriptorProto

DATA_PROTO = "capsync/proto/viam/app/data/v1/data.proto"
DATA_SYNC_PROTO = "capsync/proto/viam/app/datasync/v1/data_sync.proto"
HEALTH_PROTO = "capsync/proto/grpc/health/v1/health.proto"
DATASET_PROTO = "capsync/proto/viam/app/dataset/v1/dataset.proto"
GENERATED = {
    DATA_PROTO: "capsync.proto.viam.app.data.v1.data_pb2",
    DATASET_PROTO: "capsync.proto.viam.app.dataset.v1.dataset_pb2",
    DATA_SYNC_PROTO: "capsync.proto.viam.app.datasync.v1.data_sync_pb2",
    HEALTH_PROTO: "capsync.proto.grpc.health.v1.health_pb2",
    # What capsync calls remote parts with, and its own DataManagerService (tests/test_remote*.py).
    "capsync/proto/goutils/rpc/v1/auth.proto": "capsync.proto.goutils.rpc.v1.auth_pb2",
    "capsync/proto/viam/common/v1/common.proto": "capsync.proto.viam.common.v1.common_pb2",
    "capsync/proto/viam/component/board/v1/board.proto":
        "capsync.proto.viam.component.board.v1.board_pb2",
    "capsync/proto/viam/component/camera/v1/camera.proto":
        "capsync.proto.viam.component.camera.v1.camera_pb2",
    "capsync/proto/viam/component/movementsensor/v1/movementsensor.proto":
        "capsync.proto.viam.component.movementsensor.v1.movementsensor_pb2",
    "capsync/proto/viam/service/datamanager/v1/data_manager.proto":
        "capsync.proto.viam.service.datamanager.v1.data_manager_pb2",
    "capsync/proto/viam/service/vision/v1/vision.proto":
        "capsync.proto.viam.service.vision.v1.vision_pb2",
}  # fmt: skip
SERVICE = "viam.app.datasync.v1.DataSyncService"  # on the wire
PROTO_SERVICE = "capsync.viam.app.datasync.v1.DataSyncService"  # in the descriptor pool


def _default_json_name(name: str) -> str:
    """protoc's default JSON name of a field: snake_case to lowerCamelCase."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _without_default_json_names(
    fd: descriptor_pb2.FileDescriptorProto,
) -> descriptor_pb2.FileDescriptorProto:
    """Drop the json_name protoc fills in for every field in --descriptor_set_out.

    The generated Python modules leave it out; an explicit, non-default
    ``json_name`` option is kept, so a change to one is still caught.
    """
    fd = descriptor_pb2.FileDescriptorProto.FromString(fd.SerializeToString())
    messages = list(fd.message_type)
    while messages:
        message = messages.pop()
        messages.extend(message.nested_type)
        for field in [*message.field, *message.extension]:
            if field.json_name == _default_json_name(field.name):
                field.ClearField("json_name")
    return fd


@pytest.fixture(scope="module")
def protoc_files() -> dict[str, descriptor_pb2.FileDescriptorProto]:
    """What protoc builds from the .proto files now, by file name."""
    fds = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set())
    return {fd.name: fd for fd in fds.file}


# --------------------------------------------------------------------------- staleness


def test_every_proto_file_has_a_generated_module(
    protoc_files: dict[str, descriptor_pb2.FileDescriptorProto],
) -> None:
    names = {p.relative_to(SRC_ROOT).as_posix() for p in proto_files()}
    assert names == set(GENERATED)
    assert set(protoc_files) == set(GENERATED)


@pytest.mark.parametrize("proto_name", sorted(GENERATED))
def test_generated_module_is_up_to_date(
    proto_name: str, protoc_files: dict[str, descriptor_pb2.FileDescriptorProto]
) -> None:
    module = importlib.import_module(GENERATED[proto_name])
    # Loaded from the checked-in file, not compiled on the fly by an import hook.
    proto_path = SRC_ROOT / proto_name
    assert module.__file__ is not None
    assert Path(module.__file__).resolve() == proto_path.with_name(proto_path.stem + "_pb2.py")
    assert proto_path.with_name(proto_path.stem + "_pb2.pyi").is_file()

    checked_in = descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
    assert _without_default_json_names(checked_in) == _without_default_json_names(
        protoc_files[proto_name]
    ), f"{GENERATED[proto_name]} is stale: run `make proto` (python -m capsync.proto.generate)"


class _RecordingChannel:
    """Stands in for grpc.Channel: records what a generated stub asks for."""

    def __init__(self) -> None:
        self.calls: dict[str, tuple[str, Any, Any]] = {}

    def _record(self, kind: str) -> Any:
        def make(
            path: str,
            request_serializer: Any = None,
            response_deserializer: Any = None,
            **_: Any,
        ) -> str:
            self.calls[path] = (kind, request_serializer, response_deserializer)
            return kind

        return make

    def __getattr__(self, kind: str) -> Any:
        if kind in {"unary_unary", "unary_stream", "stream_unary", "stream_stream"}:
            return self._record(kind)
        raise AttributeError(kind)


class _RecordingServer:
    """Stands in for grpc.Server: records the handlers a servicer is registered with."""

    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        pass

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        for method, handler in handlers.items():
            self.handlers[f"/{service}/{method}"] = handler


def _kind(client_streaming: bool, server_streaming: bool) -> str:
    return (
        f"{'stream' if client_streaming else 'unary'}_{'stream' if server_streaming else 'unary'}"
    )


# The RPCs of SPEC §4: path -> (shape, request, response).
RPCS = {
    f"/{SERVICE}/DataCaptureUpload": (
        "unary_unary",
        "DataCaptureUploadRequest",
        "DataCaptureUploadResponse",
    ),
    f"/{SERVICE}/FileUpload": ("stream_unary", "FileUploadRequest", "FileUploadResponse"),
    f"/{SERVICE}/StreamingDataCaptureUpload": (
        "stream_unary",
        "StreamingDataCaptureUploadRequest",
        "StreamingDataCaptureUploadResponse",
    ),
}


def test_rpc_stub_and_handlers_use_viams_paths(
    protoc_files: dict[str, descriptor_pb2.FileDescriptorProto],
) -> None:
    (service,) = protoc_files[DATA_SYNC_PROTO].service
    assert f"{protoc_files[DATA_SYNC_PROTO].package}.{service.name}" == PROTO_SERVICE
    from_proto = {
        f"/{SERVICE}/{m.name}": _kind(m.client_streaming, m.server_streaming)
        for m in service.method
    }
    assert from_proto == {path: shape for path, (shape, _, _) in RPCS.items()}
    assert rpc.wire_service_name(rpc.data_sync_service()) == rpc.DATA_SYNC_SERVICE == SERVICE

    channel = _RecordingChannel()
    stub = rpc.data_sync_stub(channel)
    assert set(channel.calls) == set(RPCS)
    for path, (shape, request, response) in RPCS.items():
        kind, serializer, deserializer = channel.calls[path]
        assert kind == shape, path
        assert getattr(stub, path.rpartition("/")[2]) == shape
        assert serializer == getattr(data_sync_pb2, request).SerializeToString
        assert deserializer == getattr(data_sync_pb2, response).FromString

    class Servicer:
        def DataCaptureUpload(self, request: Any, context: Any) -> Any: ...
        def FileUpload(self, requests: Any, context: Any) -> Any: ...
        def StreamingDataCaptureUpload(self, requests: Any, context: Any) -> Any: ...

    server = _RecordingServer()
    rpc.add_service(server, rpc.data_sync_service(), Servicer())  # type: ignore[arg-type]
    assert set(server.handlers) == set(RPCS)
    for path, (shape, request, response) in RPCS.items():
        handler = server.handlers[path]
        assert _kind(handler.request_streaming, handler.response_streaming) == shape, path
        assert handler.request_deserializer == getattr(data_sync_pb2, request).FromString
        assert handler.response_serializer == getattr(data_sync_pb2, response).SerializeToString


def test_health_service_uses_the_standard_paths_and_bytes() -> None:
    from grpc_health.v1 import health_pb2 as standard

    from capsync.proto.grpc.health.v1 import health_pb2
    from capsync.server.health import health_service

    assert health_pb2.DESCRIPTOR.package == "capsync.grpc.health.v1"
    channel = _RecordingChannel()
    rpc.ServiceStub(channel, health_service())
    assert {path: kind for path, (kind, _, _) in channel.calls.items()} == {
        "/grpc.health.v1.Health/Check": "unary_unary",
        "/grpc.health.v1.Health/Watch": "unary_stream",
    }
    ours = health_pb2.HealthCheckResponse
    statuses = {
        v.name: v.number for v in ours.DESCRIPTOR.enum_types_by_name["ServingStatus"].values
    }
    assert statuses == {"UNKNOWN": 0, "SERVING": 1, "NOT_SERVING": 2, "SERVICE_UNKNOWN": 3}
    for name, number in statuses.items():
        assert standard.HealthCheckResponse.ServingStatus.Value(name) == number
    request = health_pb2.HealthCheckRequest(service="x").SerializeToString()
    assert request == standard.HealthCheckRequest(service="x").SerializeToString() == b"\x0a\x01x"
    reply = ours(status=ours.NOT_SERVING).SerializeToString()
    assert (
        standard.HealthCheckResponse.FromString(reply).status
        == standard.HealthCheckResponse.NOT_SERVING
    )


def test_a_servicer_missing_an_rpc_is_refused_at_registration() -> None:
    class Partial:
        def DataCaptureUpload(self, request: Any, context: Any) -> Any: ...

    with pytest.raises(TypeError, match="Partial has no method FileUpload"):
        rpc.add_service(_RecordingServer(), rpc.data_sync_service(), Partial())  # type: ignore[arg-type]


def test_a_service_outside_the_capsync_packages_is_refused() -> None:
    fd = descriptor_pb2.FileDescriptorProto(name="elsewhere.proto", package="viam.app.x.v1")
    fd.service.add(name="S")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    service = pool.FindServiceByName("viam.app.x.v1.S")
    with pytest.raises(ValueError, match=r"not in a capsync\.-prefixed package"):
        rpc.wire_service_name(service)


def test_package_reexports_the_generated_modules() -> None:
    assert sorted(capsync.proto.__all__) == ["data_pb2", "data_sync_pb2"]
    assert data_pb2.__name__ == GENERATED[DATA_PROTO]
    assert data_sync_pb2.__name__ == GENERATED[DATA_SYNC_PROTO]
    with pytest.raises(AttributeError):
        _ = capsync.proto.no_such_module  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- protobuf 6 and 7


@pytest.mark.parametrize("proto_name", sorted(GENERATED))
def test_generated_modules_carry_no_runtime_version_check(proto_name: str) -> None:
    """viam-sdk pins protobuf 6: a module generated by a newer protoc must still load there."""
    source = (SRC_ROOT / proto_name).with_name(Path(proto_name).stem + "_pb2.py").read_text()
    assert "_runtime_version" not in source
    assert "_builder.BuildTopDescriptorsAndMessages" in source
    assert not list((SRC_ROOT / proto_name).parent.glob("*_pb2_grpc.py"))


def test_strip_version_check_removes_exactly_the_check() -> None:
    generated = (
        "from google.protobuf import descriptor as _descriptor\n"
        "from google.protobuf import runtime_version as _runtime_version\n"
        "from google.protobuf.internal import builder as _builder\n"
        "_runtime_version.ValidateProtobufRuntimeVersion(\n"
        "    _runtime_version.Domain.PUBLIC,\n"
        "    7,\n"
        "    35,\n"
        "    1,\n"
        "    '',\n"
        "    'x.proto'\n"
        ")\n"
        "# @@protoc_insertion_point(imports)\n"
    )
    assert strip_version_check(generated) == (
        "from google.protobuf import descriptor as _descriptor\n"
        "from google.protobuf.internal import builder as _builder\n"
        "# @@protoc_insertion_point(imports)\n"
    )
    with pytest.raises(RuntimeError, match="changed shape"):
        strip_version_check("_runtime_version.ValidateProtobufRuntimeVersion(7, 35)\n")


# --------------------------------------------------------------------------- the contract

ANY = "google.protobuf.Any"
TIMESTAMP = "google.protobuf.Timestamp"
DS = "capsync.viam.app.datasync.v1"
DATA = "capsync.viam.app.data.v1"

# message -> field -> (number, type). Types read "string", "repeated string",
# "optional double", "map<string, google.protobuf.Any>", or a full message/enum name.
MESSAGES: dict[str, dict[str, tuple[int, str]]] = {
    f"{DATA}.Annotations": {
        "bboxes": (1, f"repeated {DATA}.BoundingBox"),
        "classifications": (2, f"repeated {DATA}.Classification"),
    },
    f"{DATA}.BoundingBox": {
        "id": (1, "string"),
        "label": (2, "string"),
        "x_min_normalized": (3, "double"),
        "y_min_normalized": (4, "double"),
        "x_max_normalized": (5, "double"),
        "y_max_normalized": (6, "double"),
        "confidence": (7, "optional double"),
    },
    f"{DATA}.Classification": {
        "label": (1, "string"),
        "confidence": (2, "optional double"),
        "id": (3, "string"),
    },
    f"{DS}.DataCaptureMetadata": {
        "component_type": (1, "string"),
        "component_name": (2, "string"),
        "method_name": (4, "string"),
        "type": (5, f"{DS}.DataType"),
        "method_parameters": (6, f"map<string, {ANY}>"),
        "file_extension": (7, "string"),
        "tags": (8, "repeated string"),
        "mime_type": (10, "string"),
    },
    f"{DS}.SensorMetadata": {
        "time_requested": (1, TIMESTAMP),
        "time_received": (2, TIMESTAMP),
        "mime_type": (3, f"{DS}.MimeType"),
        "annotations": (4, f"{DATA}.Annotations"),
    },
    f"{DS}.SensorData": {
        "metadata": (1, f"{DS}.SensorMetadata"),
        "struct": (2, "google.protobuf.Struct"),
        "binary": (3, "bytes"),
    },
    f"{DS}.UploadMetadata": {
        "part_id": (1, "string"),
        "component_type": (2, "string"),
        "component_name": (3, "string"),
        "method_name": (5, "string"),
        "type": (6, f"{DS}.DataType"),
        "file_name": (7, "string"),
        "method_parameters": (8, f"map<string, {ANY}>"),
        "file_extension": (9, "string"),
        "tags": (10, "repeated string"),
        "dataset_ids": (12, "repeated string"),
        "mime_type": (13, "string"),
        "file_create_time": (14, TIMESTAMP),
        "file_modify_time": (15, TIMESTAMP),
    },
    f"{DS}.DataCaptureUploadRequest": {
        "metadata": (1, f"{DS}.UploadMetadata"),
        "sensor_contents": (2, f"repeated {DS}.SensorData"),
    },
    f"{DS}.DataCaptureUploadResponse": {"file_id": (1, "string"), "binary_data_id": (2, "string")},
    f"{DS}.FileData": {"data": (1, "bytes")},
    f"{DS}.FileUploadRequest": {
        "metadata": (1, f"{DS}.UploadMetadata"),
        "file_contents": (2, f"{DS}.FileData"),
    },
    f"{DS}.FileUploadResponse": {"file_id": (1, "string"), "binary_data_id": (2, "string")},
    f"{DS}.DataCaptureUploadMetadata": {
        "upload_metadata": (1, f"{DS}.UploadMetadata"),
        "sensor_metadata": (2, f"{DS}.SensorMetadata"),
    },
    f"{DS}.StreamingDataCaptureUploadRequest": {
        "metadata": (1, f"{DS}.DataCaptureUploadMetadata"),
        "data": (2, "bytes"),
    },
    f"{DS}.StreamingDataCaptureUploadResponse": {
        "file_id": (1, "string"),
        "binary_data_id": (2, "string"),
    },
}

# message -> real (non-synthetic) oneof -> its fields.
ONEOFS: dict[str, dict[str, set[str]]] = {
    f"{DS}.SensorData": {"data": {"struct", "binary"}},
    f"{DS}.FileUploadRequest": {"upload_packet": {"metadata", "file_contents"}},
    f"{DS}.StreamingDataCaptureUploadRequest": {"upload_packet": {"metadata", "data"}},
}

RESERVED: dict[str, set[int]] = {
    f"{DS}.DataCaptureMetadata": {3, 9},
    f"{DS}.UploadMetadata": {4, 11},
}

ENUMS: dict[str, dict[str, int]] = {
    f"{DS}.DataType": {
        "DATA_TYPE_UNSPECIFIED": 0,
        "DATA_TYPE_BINARY_SENSOR": 1,
        "DATA_TYPE_TABULAR_SENSOR": 2,
        "DATA_TYPE_FILE": 3,
    },
    f"{DS}.MimeType": {
        "MIME_TYPE_UNSPECIFIED": 0,
        "MIME_TYPE_IMAGE_JPEG": 1,
        "MIME_TYPE_IMAGE_PNG": 2,
        "MIME_TYPE_APPLICATION_PCD": 3,
        "MIME_TYPE_VIDEO_MP4": 4,
    },
}

MODULES: dict[str, ModuleType] = {DATA: data_pb2, DS: data_sync_pb2}


def _message(full_name: str) -> descriptor_pb2.DescriptorProto:
    package, _, name = full_name.rpartition(".")
    descriptor: Descriptor = MODULES[package].DESCRIPTOR.message_types_by_name[name]
    assert descriptor.full_name == full_name
    proto = descriptor_pb2.DescriptorProto()
    descriptor.CopyToProto(proto)
    return proto


def _field_type(message: descriptor_pb2.DescriptorProto, field: FDP) -> str:
    if field.type in (FDP.TYPE_MESSAGE, FDP.TYPE_ENUM):
        base = field.type_name.removeprefix(".")
    else:
        base = FDP.Type.Name(field.type).removeprefix("TYPE_").lower()
    if field.label == FDP.LABEL_REPEATED:
        entry_name = field.type_name.rpartition(".")[2]
        for nested in message.nested_type:
            if nested.name == entry_name and nested.options.map_entry:
                key, value = sorted(nested.field, key=lambda f: f.number)
                return f"map<{_field_type(nested, key)}, {_field_type(nested, value)}>"
        return f"repeated {base}"
    if field.proto3_optional:
        return f"optional {base}"
    return base


def test_files_define_exactly_the_contract() -> None:
    assert data_pb2.DESCRIPTOR.package == DATA
    assert data_sync_pb2.DESCRIPTOR.package == DS
    for package, module in MODULES.items():
        messages = {f"{package}.{name}" for name in module.DESCRIPTOR.message_types_by_name}
        expected_messages = {m for m in MESSAGES if m.rpartition(".")[0] == package}
        enums = {f"{package}.{name}" for name in module.DESCRIPTOR.enum_types_by_name}
        expected_enums = {e for e in ENUMS if e.rpartition(".")[0] == package}
        if package == DATA:
            # data.proto also holds the data API's messages, each checked against
            # viam-sdk's own descriptor in tests/test_data_api_proto.py.
            assert expected_messages <= messages
            assert expected_enums <= enums
        else:
            assert messages == expected_messages
            assert enums == expected_enums
    assert set(data_pb2.DESCRIPTOR.services_by_name) == set()
    assert set(data_sync_pb2.DESCRIPTOR.services_by_name) == {"DataSyncService"}


@pytest.mark.parametrize("full_name", sorted(MESSAGES))
def test_message_fields(full_name: str) -> None:
    message = _message(full_name)
    actual = {f.name: (f.number, _field_type(message, f)) for f in message.field}
    assert actual == MESSAGES[full_name]


@pytest.mark.parametrize("full_name", sorted(MESSAGES))
def test_message_oneofs(full_name: str) -> None:
    message = _message(full_name)
    oneofs: dict[str, set[str]] = {}
    for field in message.field:
        if field.HasField("oneof_index") and not field.proto3_optional:
            oneofs.setdefault(message.oneof_decl[field.oneof_index].name, set()).add(field.name)
    assert oneofs == ONEOFS.get(full_name, {})


@pytest.mark.parametrize("full_name", sorted(MESSAGES))
def test_message_reserved_numbers(full_name: str) -> None:
    message = _message(full_name)
    reserved = {n for r in message.reserved_range for n in range(r.start, r.end)}
    assert reserved == RESERVED.get(full_name, set())


@pytest.mark.parametrize("full_name", sorted(ENUMS))
def test_enum_values(full_name: str) -> None:
    package, _, name = full_name.rpartition(".")
    enum = MODULES[package].DESCRIPTOR.enum_types_by_name[name]
    assert {v.name: v.number for v in enum.values} == ENUMS[full_name]


def test_spec_examples() -> None:
    """The examples the brief singles out, spelled out with the runtime descriptors."""
    capture = data_sync_pb2.DataCaptureMetadata.DESCRIPTOR
    params = capture.fields_by_name["method_parameters"]
    assert params.number == 6
    assert params.message_type.GetOptions().map_entry
    assert params.message_type.fields_by_name["value"].message_type.full_name == ANY
    upload = data_sync_pb2.UploadMetadata.DESCRIPTOR
    assert upload.fields_by_name["file_modify_time"].number == 15
    sensor = data_sync_pb2.SensorData.DESCRIPTOR
    assert {f.name: f.number for f in sensor.oneofs_by_name["data"].fields} == {
        "struct": 2,
        "binary": 3,
    }


# --------------------------------------------------------------------------- the wire


def test_sensor_data_struct_on_the_wire() -> None:
    reading = data_sync_pb2.SensorData(
        metadata=data_sync_pb2.SensorMetadata(
            time_requested=timestamp_pb2.Timestamp(seconds=1, nanos=2),
            time_received=timestamp_pb2.Timestamp(seconds=3, nanos=4),
        ),
    )
    reading.struct.update({"x": 1.5})
    expected = (
        b"\x0a\x0c"  # 1 metadata, 12 bytes
        b"\x0a\x04\x08\x01\x10\x02"  # 1 time_requested {1 seconds: 1, 2 nanos: 2}
        b"\x12\x04\x08\x03\x10\x04"  # 2 time_received {1 seconds: 3, 2 nanos: 4}
        b"\x12\x10"  # 2 struct, 16 bytes
        b"\x0a\x0e"  # Struct 1 fields (map entry), 14 bytes
        b"\x0a\x01x"  # key "x"
        b"\x12\x09\x11\x00\x00\x00\x00\x00\x00\xf8\x3f"  # value {2 number_value: 1.5}
    )
    assert reading.SerializeToString(deterministic=True) == expected
    assert data_sync_pb2.SensorData.FromString(expected) == reading


def test_sensor_data_binary_on_the_wire() -> None:
    reading = data_sync_pb2.SensorData(
        metadata=data_sync_pb2.SensorMetadata(mime_type=data_sync_pb2.MIME_TYPE_IMAGE_PNG),
        binary=b"\x89P",
    )
    reading.metadata.annotations.classifications.add(label="c", confidence=0.0)
    expected = (
        b"\x0a\x12"  # 1 metadata, 18 bytes
        b"\x18\x02"  # 3 mime_type: MIME_TYPE_IMAGE_PNG
        b"\x22\x0e"  # 4 annotations, 14 bytes
        b"\x12\x0c"  # Annotations 2 classifications, 12 bytes
        b"\x0a\x01c"  # 1 label "c"
        b"\x11\x00\x00\x00\x00\x00\x00\x00\x00"  # 2 confidence: 0.0 (optional: present)
        b"\x1a\x02\x89P"  # 3 binary
    )
    assert reading.SerializeToString(deterministic=True) == expected
    assert data_sync_pb2.SensorData.FromString(expected) == reading


def test_data_capture_metadata_on_the_wire() -> None:
    header = data_sync_pb2.DataCaptureMetadata(
        component_type="s",
        component_name="n",
        method_name="m",
        type=data_sync_pb2.DATA_TYPE_TABULAR_SENSOR,
        method_parameters={"k": any_pb2.Any(type_url="u")},
        file_extension=".dat",
        tags=["t"],
        mime_type="p",
    )
    expected = (
        b"\x0a\x01s"  # 1 component_type
        b"\x12\x01n"  # 2 component_name
        b"\x22\x01m"  # 4 method_name
        b"\x28\x02"  # 5 type: DATA_TYPE_TABULAR_SENSOR
        b"\x32\x08\x0a\x01k\x12\x03\x0a\x01u"  # 6 method_parameters {"k": Any{type_url "u"}}
        b"\x3a\x04.dat"  # 7 file_extension
        b"\x42\x01t"  # 8 tags
        b"\x52\x01p"  # 10 mime_type
    )
    assert header.SerializeToString(deterministic=True) == expected
    assert data_sync_pb2.DataCaptureMetadata.FromString(expected) == header


def test_upload_metadata_timestamps_on_the_wire() -> None:
    metadata = data_sync_pb2.UploadMetadata(
        dataset_ids=["d"],
        file_create_time=timestamp_pb2.Timestamp(seconds=1),
        file_modify_time=timestamp_pb2.Timestamp(seconds=2),
    )
    expected = (
        b"\x62\x01d"  # 12 dataset_ids
        b"\x72\x02\x08\x01"  # 14 file_create_time {seconds: 1}
        b"\x7a\x02\x08\x02"  # 15 file_modify_time {seconds: 2}
    )
    assert metadata.SerializeToString(deterministic=True) == expected


def test_struct_is_the_well_known_type() -> None:
    field = data_sync_pb2.SensorData.DESCRIPTOR.fields_by_name["struct"]
    assert field.message_type is struct_pb2.Struct.DESCRIPTOR
