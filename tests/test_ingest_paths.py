"""The ingest server's shared steps and raw stream packets: concurrent binary uploads share
one commit of their rows, and a stream's packets, read as raw bytes, are stored as protobuf
would read them however they are framed."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import grpc
import pytest
from server_fixtures import AUTH, ServerProcess, running_server, streaming_packets
from sync_helpers import wait_for

from capsync.proto import data_sync_pb2
from capsync.server import list_items
from capsync.server.stores.base import BlobRecord
from capsync.server.stores.local import LocalStore
from capsync.server.stores.sqlite_blobs import BlobTable

pytestmark = pytest.mark.wire_independent

T0 = 1_714_564_800_000_000_000
STREAM_PATH = "/viam.app.datasync.v1.DataSyncService/StreamingDataCaptureUpload"
FILE_PATH = "/viam.app.datasync.v1.DataSyncService/FileUpload"


@pytest.fixture(scope="module", name="ingest_server")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("paths")) as server:
        yield server


def blob(n: int) -> BlobRecord:
    return BlobRecord(
        id=f"{n:064x}", upload_id=f"{n:064x}", kind="binary", part_id="p",
        component_type="rdk:component:camera", component_name="cam", method_name="ReadImage",
        tags=(), time_requested_ns=T0 + n, time_received_ns=T0 + n, mime_type="image/jpeg",
        file_extension=".jpeg", path=f"p/{n}.jpeg", size_bytes=1, sha256=f"{n:064x}",
    )  # fmt: skip


def test_concurrent_binary_uploads_share_one_commit_of_their_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    entered, release = threading.Event(), threading.Event()
    add = BlobTable.add

    def held_add(self: BlobTable, records: Sequence[BlobRecord]) -> list[bool]:
        calls.append(len(records))
        if len(calls) == 1:  # the first commit is slow: the others come meanwhile
            entered.set()
            release.wait(30)
        return add(self, records)

    monkeypatch.setattr(BlobTable, "add", held_add)
    with LocalStore(tmp_path) as store:
        answers: dict[int, list[bool]] = {}
        uploads = {0: [blob(0)], 1: [blob(1), blob(2)], 2: [blob(3)], 3: [blob(1), blob(4)]}

        def upload(n: int) -> None:
            answers[n] = store.record_blobs(uploads[n])

        threads = [threading.Thread(target=upload, args=(0,))]
        threads[0].start()
        assert entered.wait(30)
        threads += [threading.Thread(target=upload, args=(n,)) for n in (1, 2, 3)]
        for thread in threads[1:]:
            thread.start()
        # Each later upload either waits for the running commit or commits on its own.
        assert wait_for(lambda: len(calls) > 1 or len(store._blob_rows._pending) == 3, 30)
        release.set()
        for thread in threads:
            thread.join(30)
        assert calls == [1, 5]  # the three that came meanwhile: one transaction
        assert answers[0] == [True] and answers[2] == [True]
        assert sorted([answers[1], answers[3]]) == [[False, True], [True, True]]  # blob 1 once
        assert len(list(store.query())) == 5


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: int, data: bytes) -> bytes:
    return bytes([tag]) + _varint(len(data)) + data


def test_stream_packets_are_stored_as_protobuf_reads_them_however_framed(
    ingest_server: ServerProcess,
) -> None:
    first, *_ = streaming_packets(b"", T0)
    call = ingest_server.channel().stream_unary(
        STREAM_PATH,
        request_serializer=lambda raw: raw,
        response_deserializer=data_sync_pb2.StreamingDataCaptureUploadResponse.FromString,
    )
    packets = [
        first.SerializeToString(),
        _field(0x12, b"plain "),  # the usual framing: data only
        _field(0x12, b"lost") + _field(0x12, b"last wins "),  # a field twice: the last one
        b"\x12\x80\x00",  # an over-long varint for an empty chunk
        _field(0x12, b"unknown field after ") + _field(0x7A, b"ignored"),  # field 15
        _field(0x12, b"x" * 200),  # a two-byte length
    ]
    answer = call(iter(packets), metadata=AUTH, timeout=30)
    [item] = [i for i in list_items(ingest_server.data_dir) if i["id"] == answer.binary_data_id]
    expected = b"plain last wins unknown field after " + b"x" * 200
    assert Path(item["path"]).read_bytes() == expected

    files = ingest_server.channel().stream_unary(
        FILE_PATH,
        request_serializer=lambda raw: raw,
        response_deserializer=data_sync_pb2.FileUploadResponse.FromString,
    )
    metadata = data_sync_pb2.UploadMetadata(
        part_id="p", type=data_sync_pb2.DataType.DATA_TYPE_FILE, file_name="notes.txt"
    )
    file_packets = [
        data_sync_pb2.FileUploadRequest(metadata=metadata).SerializeToString(),
        _field(0x12, _field(0x0A, b"one ")),
        _field(0x12, _field(0x0A, b"lost") + _field(0x0A, b"two ")),
        _field(0x12, _field(0x0A, b"three")) + b"\x78\x01",  # unknown varint field 15
    ]
    answer = files(iter(file_packets), metadata=AUTH, timeout=30)
    [item] = [i for i in list_items(ingest_server.data_dir) if i["id"] == answer.binary_data_id]
    assert Path(item["path"]).read_bytes() == b"one two three"


@pytest.mark.parametrize(
    ("packet", "says"),
    [
        (_field(0x12, b"abc")[:-1], "does not parse"),  # a length past the end
        (b"", "packet 1 holds nothing"),
        (b"\x0a\x00", "packet 1 holds metadata; only the first may be metadata"),
    ],
)
def test_a_bad_stream_packet_is_invalid_argument(
    ingest_server: ServerProcess, packet: bytes, says: str
) -> None:
    first, *_ = streaming_packets(b"", T0)
    call = ingest_server.channel().stream_unary(STREAM_PATH, request_serializer=lambda raw: raw)
    with pytest.raises(grpc.RpcError) as caught:
        call(iter([first.SerializeToString(), packet]), metadata=AUTH, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert says in (caught.value.details() or "")


def test_a_usual_chunk_is_a_view_of_its_packet_not_a_copy() -> None:
    from capsync.server.stream_packets import chunks

    packet = _field(0x12, b"y" * 70_000)
    nested = _field(0x12, _field(0x0A, b"z" * 300))
    [data] = chunks(iter([packet]), data_sync_pb2.StreamingDataCaptureUploadRequest, "data", "S")
    [contents] = chunks(iter([nested]), data_sync_pb2.FileUploadRequest, "file_contents", "F")
    assert isinstance(data, memoryview) and data.obj is packet and data == b"y" * 70_000
    assert isinstance(contents, memoryview) and contents.obj is nested and contents == b"z" * 300


class _Columnar:
    def __init__(self) -> None:
        self.lag_s = 0.0
        self.compactions = 0

    def compact(self) -> int:
        self.compactions += 1
        return 0

    def lag(self, now_ns: int) -> tuple[int, float]:
        return 1000, self.lag_s


def test_compaction_waits_for_a_quiet_interval_while_uploads_arrive_up_to_a_limit() -> None:
    from types import SimpleNamespace

    from capsync.query.retention import RetentionRules
    from capsync.server.maintenance import Maintenance

    columnar = _Columnar()
    stored = [0]
    maintenance = Maintenance(
        SimpleNamespace(columnar=columnar),  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        RetentionRules(),
        activity=lambda: stored[0],
        defer_max_s=60.0,
    )

    def interval(uploads: int, lag_s: float) -> int:
        stored[0] += uploads
        columnar.lag_s = lag_s
        before = columnar.compactions
        maintenance.run_once(retention=False, compaction=maintenance.compaction_due())
        return columnar.compactions - before

    assert interval(0, 5.0) == 1  # quiet: compacts
    assert interval(7, 5.0) == 0  # uploads arrived, little behind: waits
    assert interval(3, 59.0) == 0
    assert interval(3, 60.0) == 1  # uploads still arriving, but a minute behind: compacts
    assert interval(0, 10.0) == 1  # quiet again
    always = Maintenance(
        SimpleNamespace(columnar=columnar),  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        RetentionRules(),
    )
    assert always.compaction_due()  # without an activity count: every interval


def test_a_batch_synced_but_not_indexed_when_the_server_died_is_indexed_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server_fixtures import tabular_request

    from capsync.server.blobs import BlobStore
    from capsync.server.stores.batch_index import BatchIndex
    from capsync.server.sync_servicer import DataSyncServicer

    body = tabular_request([(T0 + i, {"i": i}) for i in range(5)]).SerializeToString()

    def died(self: BatchIndex, rows: object) -> int:
        raise KeyboardInterrupt  # the process ends between the segment sync and the commit

    store = LocalStore(tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr(BatchIndex, "add", died)
        with pytest.raises(KeyboardInterrupt):
            DataSyncServicer(store, BlobStore(tmp_path)).data_capture_upload(body)
    store.close()
    with LocalStore(tmp_path) as store:  # the start reconciles the index with the segments
        assert sorted(r.data["i"] for r in store.query()) == [0, 1, 2, 3, 4]
        answer = DataSyncServicer(store, BlobStore(tmp_path)).data_capture_upload(body)
        assert data_sync_pb2.DataCaptureUploadResponse.FromString(answer).file_id
        assert len(list(store.query())) == 5  # the re-sent batch is stored once
