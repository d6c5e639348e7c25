"""Two servers sharing one data folder never append to the same segment file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from capsync.server.stores.segments import SegmentLog

pytestmark = pytest.mark.wire_independent


def test_two_writers_on_one_folder_each_read_back_what_they_appended(tmp_path: Path) -> None:
    logs = [SegmentLog(tmp_path), SegmentLog(tmp_path)]
    for log in logs:
        log.open()
    written = []
    try:
        for i in range(40):
            body = f"body {i} ".encode() * (i + 1)
            entry, sequence = logs[i % 2].append(hashlib.sha256(body).hexdigest(), body, i)
            logs[i % 2].sync(sequence)
            written.append((entry, body))
        assert len({entry.segment for entry, _ in written}) == 2  # one segment per writer
        for entry, body in written:
            assert logs[0].read(entry.segment, entry.offset, entry.length) == body
    finally:
        for log in logs:
            log.close()
    again = SegmentLog(tmp_path)
    again.open()  # a restart keeps every whole entry
    try:
        for entry, body in written:
            assert again.read(entry.segment, entry.offset, entry.length) == body
    finally:
        again.close()


_WRITER = """
import sys
from capsync.proto import data_sync_pb2
from capsync.server.blobs import BlobStore
from capsync.server.stores.local import LocalStore
from capsync.server.sync_servicer import DataSyncServicer
from server_fixtures import tabular_request

import fcntl, time, types
from capsync.server.stores import segments

def slow_flock(fd, operation):
    time.sleep(0.05)  # the writer descheduled just before it locks a file (a new segment)
    return fcntl.flock(fd, operation)

segments.fcntl = types.SimpleNamespace(
    flock=slow_flock, LOCK_EX=fcntl.LOCK_EX, LOCK_NB=fcntl.LOCK_NB
)
folder, count = sys.argv[1], int(sys.argv[2])
store = LocalStore(folder, segment_max_bytes=2048)  # a new segment every few batches
servicer = DataSyncServicer(store, BlobStore(folder))
print("ready", flush=True)
for i in range(count):
    body = tabular_request([(1_000 * i + j, {"i": float(i), "j": float(j)}) for j in range(5)],
                           component_name="imu", method_name="Readings").SerializeToString()
    answer = data_sync_pb2.DataCaptureUploadResponse.FromString(servicer.data_capture_upload(body))
    print(answer.file_id, flush=True)
store.close()
"""


def test_a_server_starting_beside_a_writer_leaves_its_segments_and_rows_alone(
    tmp_path: Path,
) -> None:
    """Two processes on one folder: one stores batches (starting new segments often)
    while the other opens the store again and again (reconciling at each start).
    The writer never fails, and every batch it confirmed is in the index after each
    reconcile, and once in the end."""
    import subprocess
    import sys
    import threading

    from capsync.server.stores.local import LocalStore

    tests = Path(__file__).parent
    env = {**__import__("os").environ, "PYTHONPATH": str(tests)}
    count = 120
    confirmed: list[str] = []
    starts = 0
    with subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path), str(count)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    ) as writer:  # fmt: skip
        out, err = writer.stdout, writer.stderr
        assert out is not None and err is not None
        assert out.readline().strip() == "ready", err.read()
        reader = threading.Thread(target=lambda: confirmed.extend(line.strip() for line in out))
        reader.start()
        try:
            while writer.poll() is None or starts < 3:
                before = list(confirmed)
                store = LocalStore(tmp_path)  # reconciles at start
                try:
                    dropped = [i for i in before if not store._index.contains(i)]
                finally:
                    store.close()
                assert not dropped, f"a reconcile dropped {len(dropped)} confirmed batches"
                starts += 1
        finally:
            writer.wait(timeout=60)
            reader.join(timeout=60)
        assert writer.returncode == 0, err.read()
    assert len(confirmed) == count and starts >= 3
    store = LocalStore(tmp_path)
    try:
        assert all(store._index.contains(batch_id) for batch_id in confirmed)
        assert len(store._index.places()) == count  # each batch once
    finally:
        store.close()
