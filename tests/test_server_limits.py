"""Client data the store cannot hold is refused as INVALID_ARGUMENT, never INTERNAL (issue 9).

INTERNAL is retried by every client forever, so the file's other readings
never arrive; INVALID_ARGUMENT naming the field makes the client set it aside.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2, timestamp_pb2
from server_fixtures import (
    AUTH,
    ServerProcess,
    binary_request,
    running_server,
    sensor_metadata,
    tabular_request,
    upload_metadata,
)

from capsync.proto import data_sync_pb2

pytestmark = pytest.mark.wire_independent


@pytest.fixture(scope="module", name="ingest_server")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module: every call here is refused or harmless."""
    with running_server(tmp_path_factory.mktemp("limits")) as server:
        yield server


T0 = 1_714_564_800_123_456_789
YEARS_S = {  # seconds since the epoch of January 1st of these years
    1: -62_135_596_800,
    1600: -11_676_096_000,
    2300: 10_413_792_000,
    9999: 253_370_764_800,
}


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"down": value}
    return value


@pytest.mark.parametrize("year", sorted(YEARS_S))
@pytest.mark.parametrize("field", ["time_requested", "time_received"])
def test_a_timestamp_outside_the_storable_range_is_invalid_argument(
    ingest_server: ServerProcess, year: int, field: str
) -> None:
    request = tabular_request([(T0, {"x": 1})])
    getattr(request.sensor_contents[0].metadata, field).CopyFrom(
        timestamp_pb2.Timestamp(seconds=YEARS_S[year])
    )
    with pytest.raises(grpc.RpcError) as caught:
        ingest_server.stub().DataCaptureUpload(request, metadata=AUTH, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"sensor_contents[0].metadata.{field}" in (caught.value.details() or "")


def test_a_binary_reading_with_a_bad_timestamp_is_invalid_argument(
    ingest_server: ServerProcess,
) -> None:
    request = binary_request(b"jpeg", T0)
    request.sensor_contents[0].metadata.time_requested.seconds = YEARS_S[9999]
    with pytest.raises(grpc.RpcError) as caught:
        ingest_server.stub().DataCaptureUpload(request, metadata=AUTH, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "time_requested" in (caught.value.details() or "")


def test_a_struct_nested_too_deep_is_invalid_argument(ingest_server: ServerProcess) -> None:
    request = tabular_request([(T0, {"x": 1})])
    struct = struct_pb2.Struct()
    struct.update(nested(48))
    request.sensor_contents[0].struct.CopyFrom(struct)
    with pytest.raises(grpc.RpcError) as caught:
        ingest_server.stub().DataCaptureUpload(request, metadata=AUTH, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = caught.value.details() or ""
    assert "sensor_contents[0].struct" in details and "nested deeper" in details


def test_a_moderately_nested_struct_and_edge_years_are_stored(ingest_server: ServerProcess) -> None:
    request = tabular_request([(T0, nested(20))])
    request.sensor_contents[0].metadata.time_received.seconds = 9_223_372_035  # 2262
    ingest_server.stub().DataCaptureUpload(request, metadata=AUTH, timeout=10)


def test_a_streamed_payload_with_a_bad_timestamp_is_invalid_argument(
    ingest_server: ServerProcess,
) -> None:
    reading = sensor_metadata(T0)
    reading.time_received.seconds = YEARS_S[1]
    first = data_sync_pb2.StreamingDataCaptureUploadRequest(
        metadata=data_sync_pb2.DataCaptureUploadMetadata(
            upload_metadata=upload_metadata(
                component_type="rdk:component:camera", component_name="cam",
                method_name="ReadImage", type=data_sync_pb2.DataType.DATA_TYPE_BINARY_SENSOR,
                file_extension=".jpeg",
            ),
            sensor_metadata=reading,
        )
    )  # fmt: skip
    packets = [first, data_sync_pb2.StreamingDataCaptureUploadRequest(data=b"jpeg")]
    with pytest.raises(grpc.RpcError) as caught:
        ingest_server.stub().StreamingDataCaptureUpload(iter(packets), metadata=AUTH, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "metadata.sensor_metadata.time_received" in (caught.value.details() or "")


def test_a_file_with_a_bad_modification_time_is_invalid_argument(
    ingest_server: ServerProcess,
) -> None:
    metadata = upload_metadata(
        component_type="", component_name="", method_name="", file_name="notes.txt",
        type=data_sync_pb2.DataType.DATA_TYPE_FILE,
    )  # fmt: skip
    metadata.file_modify_time.seconds = YEARS_S[9999]
    packets = [
        data_sync_pb2.FileUploadRequest(metadata=metadata),
        data_sync_pb2.FileUploadRequest(file_contents=data_sync_pb2.FileData(data=b"hi")),
    ]
    with pytest.raises(grpc.RpcError) as caught:
        ingest_server.stub().FileUpload(iter(packets), metadata=AUTH, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "metadata.file_modify_time" in (caught.value.details() or "")


def test_a_stream_packet_that_does_not_parse_is_invalid_argument(
    ingest_server: ServerProcess,
) -> None:
    call = ingest_server.channel().stream_unary(
        "/viam.app.datasync.v1.DataSyncService/FileUpload",
        request_serializer=lambda raw: raw,
        response_deserializer=data_sync_pb2.FileUploadResponse.FromString,
    )
    with pytest.raises(grpc.RpcError) as caught:
        call(iter([b"\x0a\xff\xff\xff"]), metadata=AUTH, timeout=10)  # a length past the end
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "does not parse" in (caught.value.details() or "")
