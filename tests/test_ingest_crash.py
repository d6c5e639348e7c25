"""Kill -9 loop on the server: SIGKILL ``capsync serve`` during ingest, restart it on the
same ``--data``, again and again. Every batch it answered is there, the index agrees
with the segments, and no reading is stored twice, even when answered batches are
sent again whole or re-split.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import grpc
import pytest
from server_fixtures import AUTH, start_server, tabular_request, write_keys

from capsync.proto import data_sync_pb2
from capsync.server.stores.batch_index import BatchIndex
from capsync.server.stores.local import LocalStore
from capsync.server.stores.segments import SegmentLog

pytestmark = pytest.mark.slow

KILLS = 5
READINGS_PER_BATCH = 50
T0 = 1_714_564_800_000_000_000
UPLOAD_PATH = "/viam.app.datasync.v1.DataSyncService/DataCaptureUpload"


def batch_body(k: int, start: int = 0, n: int = READINGS_PER_BATCH) -> bytes:
    readings = [
        (T0 + (k * READINGS_PER_BATCH + i) * 1000, {"readings": {"k": k, "i": i, "x": i / 7}})
        for i in range(start, start + n)
    ]
    return bytes(tabular_request(readings, file_name=f"file-{k}").SerializeToString())


def test_kill9_during_ingest_loses_nothing_answered_and_stores_nothing_twice(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    keys = write_keys(tmp_path / "keys.json")
    rng = random.Random(9)
    answered: dict[int, str] = {}  # batch number -> file_id answered
    lock = threading.Lock()
    counter = iter(range(1_000_000))
    for _ in range(KILLS):
        server = start_server(data_dir, tmp_path, keys_file=keys)
        channel = grpc.insecure_channel(server.address)
        call = channel.unary_unary(UPLOAD_PATH)
        # Answered batches sent again after the restart: whole, and re-split in two.
        for k in list(answered)[-3:]:
            again = data_sync_pb2.DataCaptureUploadResponse.FromString(
                call(batch_body(k), metadata=AUTH, timeout=30)
            )
            assert again.file_id == answered[k]
            call(batch_body(k, 0, 20), metadata=AUTH, timeout=30)
            call(batch_body(k, 10, 40), metadata=AUTH, timeout=30)
        stop = threading.Event()

        def sender(call: grpc.UnaryUnaryMultiCallable, stop: threading.Event) -> None:
            while not stop.is_set():
                with lock:
                    k = next(counter)
                try:
                    answer = call(batch_body(k), metadata=AUTH, timeout=30)
                except grpc.RpcError:
                    return  # killed
                with lock:
                    answered[k] = data_sync_pb2.DataCaptureUploadResponse.FromString(answer).file_id

        threads = [threading.Thread(target=sender, args=(call, stop)) for _ in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(0.3, 1.0))  # a random kill moment while the uploads run
        server.proc.kill()
        server.wait(10)  # also closes its stdout pipe
        stop.set()
        for thread in threads:
            thread.join(30)
        channel.close()
    assert len(answered) > KILLS

    folder = data_dir / "tabular"
    # What the segments hold, before any repair: the index must agree after a start.
    log = SegmentLog(folder)
    log.open(writable=False)
    entries = {(e.segment, e.offset): e.batch_id for e in log.iter_entries()}
    log.close()
    with LocalStore(data_dir) as store:
        readings = [(r.time_requested_ns, r.upload_id) for r in store.query()]
    index = BatchIndex(folder)
    try:
        places = index.places()
        for k, file_id in answered.items():
            assert index.contains(file_id), f"answered batch {k} is missing"
    finally:
        index.close()
    assert places == {place: i for place, i in entries.items() if place in places}
    assert set(places.values()) == set(entries.values())  # every entry indexed
    times = [ns for ns, _ in readings]
    assert len(times) == len(set(times)), "a reading is stored twice"
    for k in answered:
        first = T0 + k * READINGS_PER_BATCH * 1000
        expected = {first + i * 1000 for i in range(READINGS_PER_BATCH)}
        assert expected <= set(times), f"readings of answered batch {k} are missing"
