"""The ingest path: the upload scanner (both twins), the batch log, exactly-once, repair.

Server tests start a real ``capsync serve`` on 127.0.0.1 and send raw bodies to it.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import numpy as np
import pytest
from google.protobuf.message import DecodeError
from server_fixtures import (
    AUTH,
    BINARY,
    ServerProcess,
    sensor_metadata,
    tabular_request,
    upload_metadata,
)

from capsync.proto import data_sync_pb2
from capsync.server import ItemFilter, list_items
from capsync.server.stores.local import LocalStore
from capsync.server.stores.segments import list_segments, scan_segment, segment_name
from capsync.wire import _wire_py

T0 = 1_714_564_800_000_000_000
S = 1_000_000_000
UPLOAD_PATH = "/viam.app.datasync.v1.DataSyncService/DataCaptureUpload"


def readings(n: int, start: int = 0) -> list[tuple[int, dict[str, Any]]]:
    return [
        (T0 + (start + i) * S + 123, {"readings": {"x": (start + i) * 0.5, "i": start + i}})
        for i in range(n)
    ]


def body(n: int, start: int = 0, **metadata: Any) -> bytes:
    metadata.setdefault("file_name", "f.capture")
    return bytes(tabular_request(readings(n, start), **metadata).SerializeToString())


def raw_call(server: ServerProcess) -> Any:
    return server.channel().unary_unary(
        UPLOAD_PATH, request_serializer=None, response_deserializer=None
    )


def send(server: ServerProcess, data: bytes) -> Any:
    answer = raw_call(server)(data, metadata=AUTH, timeout=30)
    return data_sync_pb2.DataCaptureUploadResponse.FromString(answer)


# --- the scanner -------------------------------------------------------------------------


def _random_request(rng: random.Random) -> data_sync_pb2.DataCaptureUploadRequest:
    request = data_sync_pb2.DataCaptureUploadRequest(metadata=upload_metadata(tags=["a"]))
    for _ in range(rng.randint(0, 6)):
        reading = request.sensor_contents.add()
        if rng.random() < 0.8:
            reading.metadata.CopyFrom(sensor_metadata(rng.randint(-(10**18), 10**18)))
        if rng.random() < 0.5:
            reading.struct.update({"v": {"x": rng.random(), "l": [1, "s", None, True]}})
        else:
            reading.binary = rng.randbytes(rng.randint(0, 40))
    return request


def test_scanner_indexes_what_protobuf_parses(wire_impl: ModuleType) -> None:
    rng = random.Random(11)
    for _ in range(200):
        request = _random_request(rng)
        data = request.SerializeToString()
        scan = wire_impl.scan_upload(data)
        meta_offset, meta_length, start, end, contiguous, offsets, lengths, kinds, req, rec = scan
        assert data[meta_offset : meta_offset + meta_length] == request.metadata.SerializeToString()
        assert contiguous
        assert len(offsets) == len(request.sensor_contents)
        for i, reading in enumerate(request.sensor_contents):
            span = data[offsets[i] : offsets[i] + lengths[i]]
            assert span == reading.SerializeToString()
            assert kinds[i] == {"struct": 2, "binary": 3, None: 0}[reading.WhichOneof("data")]
            stamp = reading.metadata.time_requested
            assert req[i] == stamp.seconds * S + stamp.nanos
            stamp = reading.metadata.time_received
            assert rec[i] == stamp.seconds * S + stamp.nanos
        if len(offsets):
            assert data[start:end] == data[meta_offset + meta_length :]


def test_scanner_twins_agree_on_mutated_bodies(wire_impl: ModuleType) -> None:
    rng = random.Random(12)
    for _ in range(400):
        data = bytearray(_random_request(rng).SerializeToString())
        for _ in range(rng.randint(1, 3)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            del data[rng.randrange(len(data) + 1) :]
        outcomes = []
        for module in (wire_impl, _wire_py):
            try:
                outcomes.append(repr(module.scan_upload(bytes(data))))
            except ValueError as exc:
                outcomes.append(f"error: {exc}")
        assert outcomes[0] == outcomes[1]


def test_upload_body_wraps_file_frames_without_decoding(wire_impl: ModuleType) -> None:
    rng = random.Random(13)
    request = _random_request(rng)
    while len(request.sensor_contents) < 3:
        request = _random_request(rng)
    file_bytes = b"".join(wire_impl.frame(r.SerializeToString()) for r in request.sensor_contents)
    head = b"\x0a" + wire_impl.encode_varint(request.metadata.ByteSize())
    head += request.metadata.SerializeToString()
    made, records = wire_impl.upload_body(head, file_bytes, 0, len(file_bytes))
    assert records == len(request.sensor_contents)
    assert data_sync_pb2.DataCaptureUploadRequest.FromString(made) == request
    assert made == _wire_py.upload_body(head, file_bytes, 0, len(file_bytes))[0]
    with pytest.raises(ValueError, match="cuts the frame"):
        wire_impl.upload_body(head, file_bytes, 0, len(file_bytes) - 1)


def _nested_body(levels: int) -> bytes:
    """A request whose one struct nests ``levels`` structs deep (built by hand: protobuf's
    own runtime refuses to build what it could not parse)."""
    encode_varint = _wire_py.encode_varint

    def field(tag: int, payload: bytes) -> bytes:
        return bytes([tag]) + encode_varint(len(payload)) + payload

    inner = field(0x0A, field(0x0A, b"k") + field(0x12, b"\x11" + bytes(8)))  # {k: 0.0}
    for _ in range(levels):
        inner = field(0x0A, field(0x0A, b"k") + field(0x12, field(0x2A, inner)))
    return field(0x12, field(0x12, inner))


def test_scanner_refuses_what_protobuf_cannot_parse_for_depth(wire_impl: ModuleType) -> None:
    deepest = _nested_body(32)
    data_sync_pb2.DataCaptureUploadRequest.FromString(deepest)
    wire_impl.scan_upload(deepest)
    too_deep = _nested_body(33)
    with pytest.raises(DecodeError):  # protobuf's depth limit (its message varies by version)
        data_sync_pb2.DataCaptureUploadRequest.FromString(too_deep)
    with pytest.raises(ValueError, match="nested deeper than 100"):
        wire_impl.scan_upload(too_deep)


# --- over gRPC ---------------------------------------------------------------------------


def _binary_with_struct() -> bytes:
    request = tabular_request(readings(2), type=BINARY)
    return bytes(request.SerializeToString())


def _timestamp_out_of_range() -> bytes:
    request = tabular_request(readings(2))
    request.sensor_contents[1].metadata.time_requested.seconds = 10**11
    return bytes(request.SerializeToString())


def _nanos_out_of_range() -> bytes:
    request = tabular_request(readings(2))
    request.sensor_contents[0].metadata.time_received.nanos = 1_000_000_000
    return bytes(request.SerializeToString())


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: body(3)[:-5], "runs past the end"),
        (lambda: body(3) + b"\x13", "wire type 3"),
        (lambda: b"\x12\x02\x0a", "runs past the end"),
        (_binary_with_struct, "sensor_contents[0] holds struct, but metadata type"),
        (_timestamp_out_of_range, "sensor_contents[1].metadata.time_requested: 100000000000 s"),
        (_nanos_out_of_range, "sensor_contents[0].metadata.time_received: nanos 1000000000"),
        (lambda: bytes(upload_metadata().SerializeToString()), "field"),
    ],
)
def test_malformed_bodies_are_invalid_argument(
    ingest_server: ServerProcess, make: Any, words: str
) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        send(ingest_server, make())
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in (raised.value.details() or "")
    assert send(ingest_server, body(2)).file_id  # still up and storing


def test_resent_and_resplit_uploads_store_each_reading_once(ingest_server: ServerProcess) -> None:
    whole = body(10)
    first = send(ingest_server, whole)
    assert send(ingest_server, whole).file_id == first.file_id
    # The same file re-split after a crash: other batch boundaries, overlapping.
    for start, n in ((0, 4), (2, 5), (6, 4), (9, 1)):
        send(ingest_server, body(n, start))
    items = [i for i in list_items(ingest_server.data_dir) if i["kind"] == "tabular"]
    assert [(i["time_requested_ns"], i["data"]) for i in items] == [
        (ns, value) for ns, value in readings(10)
    ]
    assert len({i["id"] for i in items}) == 10


# --- the batch log on disk ---------------------------------------------------------------


def _store_some(data_dir: Path, batches: int = 5) -> list[str]:
    from capsync.server.blobs import BlobStore
    from capsync.server.sync_servicer import DataSyncServicer

    with LocalStore(data_dir) as store:
        servicer = DataSyncServicer(store, BlobStore(data_dir))
        answers = [servicer.data_capture_upload(body(4, 4 * b)) for b in range(batches)]
    return [data_sync_pb2.DataCaptureUploadResponse.FromString(a).file_id for a in answers]


def _tabular_ns(data_dir: Path) -> list[int]:
    with LocalStore(data_dir, create=False) as store:
        return [r.time_requested_ns for r in store.query(ItemFilter(kind="tabular"))]


def test_index_is_rebuilt_from_segments_and_torn_tails_are_cut(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _store_some(data_dir)
    expected = _tabular_ns(data_dir)
    assert len(expected) == 20
    folder = data_dir / "tabular"
    for name in ("index.db", "index.db-wal", "index.db-shm"):
        (folder / name).unlink(missing_ok=True)
    segment = folder / segment_name(list_segments(folder)[-1])
    whole = segment.stat().st_size
    with open(segment, "ab") as handle:
        handle.write(b"CSB2" + b"\x00" * 30)  # a torn entry header
    with LocalStore(data_dir) as store:
        assert [r.time_requested_ns for r in store.query()] == expected
    assert segment.stat().st_size == whole
    entries, end = scan_segment(segment, 1)
    assert end == whole and len(entries) == 5


def test_iter_batches_delete_and_filters(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ids = _store_some(data_dir, 3)
    with LocalStore(data_dir) as store:
        batches = list(store.iter_tabular_batches())
        assert [b[0].upload_id for b in batches] == ids
        assert all(len(b) == 4 for b in batches)
        window = ItemFilter(since_ns=T0 + 2 * S, until_ns=T0 + 6 * S)
        assert [len(b) for b in store.iter_tabular_batches(window)] == [2, 2]
        assert store.delete([batches[0][0].id]) == 1
        assert store.delete(item_filter=ItemFilter(since_ns=T0 + 8 * S)) == 4
        left = [r.time_requested_ns for r in store.query()]
    assert left == [T0 + i * S + 123 for i in range(1, 8)]
    with LocalStore(data_dir) as store:  # deletions are durable, and survive a re-index
        assert len(list(store.query())) == 7


OLD_SCHEMA = """
CREATE TABLE tabular (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, upload_id TEXT NOT NULL,
    part_id TEXT NOT NULL, component_type TEXT NOT NULL, component_name TEXT NOT NULL,
    method_name TEXT NOT NULL, method_parameters TEXT NOT NULL, tags TEXT NOT NULL,
    time_requested_ns INTEGER NOT NULL, time_received_ns INTEGER NOT NULL,
    mime_type TEXT NOT NULL, data_json TEXT NOT NULL, uploaded_at_ns INTEGER NOT NULL);
PRAGMA user_version=1;
"""


def _old_store(data_dir: Path) -> list[tuple[int, Any]]:
    data_dir.mkdir()
    conn = sqlite3.connect(data_dir / "capsync.db")
    conn.executescript(OLD_SCHEMA)
    rows = []
    for i in range(6):
        data = {"readings": {"x": i + 0.25, "n": i, "nan": float("nan") if i == 3 else 1}}
        rows.append((f"{i:064x}", f"u{i // 3}", "part-1", "rdk:component:sensor", "thermo",
                     "Readings", "{}", '["lab"]', T0 + i * S + 7, T0 + i * S + 9, "",
                     json.dumps(data), T0))  # fmt: skip
    conn.executemany(
        "INSERT INTO tabular (id, upload_id, part_id, component_type, component_name, "
        "method_name, method_parameters, tags, time_requested_ns, time_received_ns, mime_type, "
        "data_json, uploaded_at_ns) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        rows,
    )
    conn.commit()
    conn.close()
    return [(r[8], r[11]) for r in rows]


def _same(items: list[tuple[int, Any]], expected: list[tuple[int, Any]]) -> bool:
    wanted = [(ns, json.loads(text)) for ns, text in expected]
    return json.dumps(items, sort_keys=True) == json.dumps(wanted, sort_keys=True)


def test_a_previous_release_store_is_read_as_is_then_migrated(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    expected = _old_store(data_dir)
    with LocalStore(data_dir, create=False) as store:  # a reader: as it is
        read = [(r.time_requested_ns, r.data) for r in store.query()]
    assert _same(read, expected)
    with LocalStore(data_dir) as store:  # the server's first start: migrated
        migrated = [(r.time_requested_ns, r.data, r.tags) for r in store.query()]
    assert _same([(ns, data) for ns, data, _ in migrated], expected)
    assert all(tags == ("lab",) for _, _, tags in migrated)
    conn = sqlite3.connect(data_dir / "capsync.db")
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert "tabular" not in tables
    assert list_segments(data_dir / "tabular")
    with LocalStore(data_dir) as store:  # and never twice
        assert len(list(store.query())) == 6


def test_batches_are_written_with_one_entry_each(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _store_some(data_dir, 4)
    _store_some(data_dir, 4)  # the same uploads again: nothing appended
    folder = data_dir / "tabular"
    entries, _ = scan_segment(folder / segment_name(1), 1)
    assert len(entries) == 4
    counts = np.array([len(e.batch_id) for e in entries])
    assert (counts == 64).all()
    assert os.stat(folder / segment_name(1)).st_mode & 0o777 == 0o600
