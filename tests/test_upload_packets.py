"""The client's streamed uploads are framed as bytes straight from the file: each packet
is exactly what protobuf would encode for the same message (issue 11, item 2)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sync_helpers import write_binary

from capsync.proto import data_sync_pb2
from capsync.sync.upload import (
    CHUNK_BYTES,
    IN_FLIGHT_REQUESTS,
    upload_arbitrary_file,
    upload_capture_file,
)


class RecordingClient:
    """An UploadClient that keeps the packets it is given."""

    part_id = "part-1"

    def __init__(self) -> None:
        self.streams: list[tuple[str, list[bytes], Any]] = []

    def streaming_data_capture_upload(
        self, packets: Iterator[bytes], nbytes: int, upload_metadata: Any = None
    ) -> Any:
        self.streams.append(("stream", list(packets), upload_metadata))
        return data_sync_pb2.StreamingDataCaptureUploadResponse()

    def file_upload(self, packets: Iterator[bytes], nbytes: int) -> Any:
        self.streams.append(("file", list(packets), None))
        return data_sync_pb2.FileUploadResponse()


def _parsed(message_class: Any, packets: list[bytes]) -> list[Any]:
    messages = [message_class.FromString(packet) for packet in packets]
    for packet, message in zip(packets, messages, strict=True):
        assert message.SerializeToString(deterministic=True) == packet  # framed as protobuf does
    return messages


def test_a_streamed_binary_reading_is_framed_from_the_file(tmp_path: Path) -> None:
    payload = os.urandom(1_000_000 + 2 * CHUNK_BYTES + 7)  # over the streaming threshold
    path = write_binary(tmp_path, "cam", payload, requested_ns=1_700_000_000_123_456_789)
    client = RecordingClient()
    upload_capture_file(client, path, file_name="cam.capture")  # type: ignore[arg-type]
    ((kind, packets, upload_metadata),) = client.streams
    assert kind == "stream"
    first, *chunks = _parsed(data_sync_pb2.StreamingDataCaptureUploadRequest, packets)
    assert first.WhichOneof("upload_packet") == "metadata"
    assert first.metadata.upload_metadata == upload_metadata
    assert upload_metadata.component_name == "cam" and upload_metadata.part_id == "part-1"
    sensor = first.metadata.sensor_metadata
    assert sensor.time_requested.ToNanoseconds() == 1_700_000_000_123_456_789
    assert all(chunk.WhichOneof("upload_packet") == "data" for chunk in chunks)
    assert [len(chunk.data) for chunk in chunks[:-1]] == [CHUNK_BYTES] * (len(chunks) - 1)
    assert b"".join(chunk.data for chunk in chunks) == payload


def test_an_arbitrary_file_is_framed_in_chunks(tmp_path: Path) -> None:
    body = os.urandom(2 * CHUNK_BYTES + 300)
    path = tmp_path / "notes.bin"
    path.write_bytes(body)
    client = RecordingClient()
    upload_arbitrary_file(client, path, file_name="notes.bin", tags=("a",))  # type: ignore[arg-type]
    ((kind, packets, _),) = client.streams
    assert kind == "file"
    first, *chunks = _parsed(data_sync_pb2.FileUploadRequest, packets)
    assert first.metadata.file_name == "notes.bin" and list(first.metadata.tags) == ["a"]
    assert first.metadata.type == data_sync_pb2.DataType.DATA_TYPE_FILE
    assert [len(chunk.file_contents.data) for chunk in chunks] == [CHUNK_BYTES] * 2 + [300]
    assert b"".join(chunk.file_contents.data for chunk in chunks) == body


class _Future:
    def __init__(self, client: PipeliningClient, body: bytes) -> None:
        self.client, self.body, self.done = client, body, False

    def result(self) -> Any:
        self.done = True
        return data_sync_pb2.DataCaptureUploadResponse()

    def cancel(self) -> None:
        self.done = True


class PipeliningClient(RecordingClient):
    """Counts how many unary uploads are started and not yet waited for."""

    def __init__(self) -> None:
        super().__init__()
        self.futures: list[_Future] = []
        self.most_in_flight = 0

    def data_capture_upload_future(self, body: bytes) -> _Future:
        self.futures.append(_Future(self, body))
        waiting = sum(not future.done for future in self.futures)
        self.most_in_flight = max(self.most_in_flight, waiting)
        return self.futures[-1]


def test_a_binary_files_unary_records_are_in_flight_together_and_confirmed_in_order(
    tmp_path: Path,
) -> None:
    import capsync

    stream = capsync.open_stream(
        tmp_path, component_type="rdk:component:camera", component_name="cam",
        method_name="ReadImage", mime_type="image/jpeg",
    )  # fmt: skip
    payloads = [os.urandom(1000 + i) for i in range(2 * IN_FLIGHT_REQUESTS + 1)]
    with stream:
        for i, payload in enumerate(payloads):
            stream.append_binary(payload, 1_000 + i, 2_000 + i)
    # The stream writes one binary per file (payload i is 1000 + i bytes, so the files sort
    # by size in payload order); join them into one file of several records.
    first, *rest = sorted(tmp_path.rglob("*.capture"), key=lambda p: p.stat().st_size)
    path = tmp_path / "joined.capture"
    path.write_bytes(
        first.read_bytes() + b"".join(p.read_bytes()[_header_bytes(p) :] for p in rest)
    )
    client = PipeliningClient()
    confirmed: list[tuple[int, int]] = []
    upload_capture_file(  # type: ignore[arg-type]
        client, path, file_name="cam.capture", on_confirmed=lambda n, b: confirmed.append((n, b))
    )
    assert client.most_in_flight == IN_FLIGHT_REQUESTS > 1
    assert all(future.done for future in client.futures)
    sent = [
        data_sync_pb2.DataCaptureUploadRequest.FromString(future.body).sensor_contents[0].binary
        for future in client.futures
    ]
    assert sent == payloads  # one request per record, in file order
    assert [n for n, _ in confirmed] == [1] * len(payloads)
    assert sum(b for _, b in confirmed) == path.stat().st_size - _header_bytes(path)


def _header_bytes(path: Path) -> int:
    from capsync.capture.reader import mapped, parse_header

    with mapped(path) as data:
        return int(parse_header(path, data).records_offset)


class _AnsweredFuture:
    """A request the server stored and answered, or (``error``) failed with."""

    def __init__(self, error: Exception | None) -> None:
        self.error, self.cancelled = error, False

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return data_sync_pb2.DataCaptureUploadResponse()

    def cancel(self) -> None:
        self.cancelled = True


class OutOfOrderServer(RecordingClient):
    """A server that stores every request but the ``fail_at``-th, and answers the later
    ones in the window before failing that one (HTTP/2 answers need not come in order)."""

    def __init__(self, fail_at: int | None) -> None:
        super().__init__()
        self.fail_at = fail_at
        self.calls = 0
        self.stored: list[int] = []  # time_requested of every reading the server kept

    def data_capture_upload_future(self, body: bytes) -> _AnsweredFuture:
        self.calls += 1
        if self.calls == self.fail_at:
            return _AnsweredFuture(ConnectionError("the server went away mid-request"))
        request = data_sync_pb2.DataCaptureUploadRequest.FromString(body)
        self.stored += [r.metadata.time_requested.ToNanoseconds() for r in request.sensor_contents]
        return _AnsweredFuture(None)


def test_a_failed_request_is_never_skipped_because_later_ones_in_flight_were_answered(
    tmp_path: Path,
) -> None:
    """The request that failed is sent again on retry even though the server answered the
    requests behind it: the resume point never passes records the server did not store."""
    import pytest
    from sync_helpers import BASE_NS, write_tabular

    path = write_tabular(tmp_path, "s", 600)
    server = OutOfOrderServer(fail_at=2)
    with pytest.raises(ConnectionError):
        upload_capture_file(server, path, file_name="s", request_max_bytes=2048)  # type: ignore[arg-type]
    assert server.calls >= IN_FLIGHT_REQUESTS  # later requests were on the wire
    server.fail_at = None
    upload_capture_file(server, path, file_name="s", request_max_bytes=2048)  # type: ignore[arg-type]
    expected = {BASE_NS + i * 1000 for i in range(600)}
    assert set(server.stored) == expected  # nothing the failed request carried was left out
