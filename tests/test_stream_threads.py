"""One CaptureStream shared by 8 writer threads while the background flusher runs.

The stream's lock is the only thing that keeps its ``RecordBuffer`` (compiled
or twin, neither locked itself) consistent. Small files and a short fsync
interval make rotations and flusher visits happen in the middle of the
appends; every record must then be read back from the completed files exactly
once, with each thread's records in the order it appended them. Runs on both
implementations.
"""

from __future__ import annotations

import collections
import threading
from pathlib import Path

import numpy as np
import pytest

import capsync
from capsync.capture.reader import read_capture_file

N_THREADS = 8
PER_THREAD = 600  # records per thread: 300 one by one, 300 in batches of 50
BATCH_ROWS = 50
BASE_NS = 1_700_000_000_000_000_000


def test_eight_threads_and_the_flusher_write_every_record_once(tmp_path: Path) -> None:
    stream = capsync.open_stream(
        tmp_path,
        component_type="rdk:component:sensor",
        component_name="shared",
        method_name="Readings",
        max_file_size_bytes=8 * 1024,  # rotates every ~100 records
        fsync_interval_s=0.001,  # every flusher visit finds the deadline passed
    )
    flusher_came = threading.Event()
    flush_if_due = stream.flush_if_due

    def noted_flush_if_due() -> None:  # the flusher calls the instance attribute
        flusher_came.set()
        flush_if_due()

    stream.flush_if_due = noted_flush_if_due  # type: ignore[method-assign]
    start = threading.Barrier(N_THREADS)
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            start.wait()
            for i in range(0, PER_THREAD, 2 * BATCH_ROWS):
                for j in range(i, i + BATCH_ROWS):
                    ns = BASE_NS + thread * 1_000_000 + j
                    stream.append({"thread": thread, "i": j, "s": f"t{thread}"}, ns, ns + 1)
                rows = np.arange(i + BATCH_ROWS, i + 2 * BATCH_ROWS, dtype=np.float64)
                times = BASE_NS + thread * 1_000_000 + rows.astype(np.int64)
                values = np.column_stack([np.full_like(rows, thread), rows])
                stream.append_batch(times, times + 1, values, ["thread", "i"])
                if i % 200 == 0:
                    stream.flush_to_capture()  # a writer completing the file under the others
                if i == PER_THREAD // 2:  # half done: let the flusher visit mid-run
                    flusher_came.wait(10)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(N_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flusher_visited_mid_run = flusher_came.is_set()
    stream.close()
    assert errors == []

    seen: collections.Counter[tuple[int, int]] = collections.Counter()
    order: dict[int, list[int]] = collections.defaultdict(list)
    files = sorted(tmp_path.rglob("*.capture"))
    for path in files:
        _, records = read_capture_file(path)
        for record in records:
            fields = dict(record.struct["readings"].items())
            thread, i = int(fields["thread"]), int(fields["i"])
            requested = record.metadata.time_requested.ToNanoseconds()
            assert requested == BASE_NS + thread * 1_000_000 + i
            seen[(thread, i)] += 1
            order[thread].append(i)
    assert not list(tmp_path.rglob("*.prog"))
    expected = {(t, i) for t in range(N_THREADS) for i in range(PER_THREAD)}
    assert set(seen) == expected
    assert set(seen.values()) == {1}
    # Files are named by creation time, so reading them in name order keeps each
    # thread's records in the order it appended them.
    assert all(order[t] == list(range(PER_THREAD)) for t in range(N_THREADS))
    assert len(files) > N_THREADS  # rotations happened during the run
    assert stream.stats().records == N_THREADS * PER_THREAD
    assert flusher_visited_mid_run


def _stream_without_flusher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, max_file_size_bytes: int
) -> capsync.CaptureStream:
    """A stream whose flusher thread is never woken (the test plays the flusher) and whose
    fsync interval never passes, so full files wait for ``complete_in_background``."""
    from capsync.capture.flusher import FLUSHER

    monkeypatch.setattr(FLUSHER, "wake", lambda stream: None)
    return capsync.open_stream(
        tmp_path,
        component_type="rdk:component:sensor",
        component_name=name,
        method_name="Readings",
        max_file_size_bytes=max_file_size_bytes,
        fsync_interval_s=3600,
    )


def test_the_flusher_completes_files_while_a_writer_holds_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long ``append_batch`` holds the stream's lock throughout; the flusher must still
    rename the files it filled and make spares, without waiting for that lock."""
    stream = _stream_without_flusher(tmp_path, monkeypatch, "held", 2048)
    for i in range(300):
        stream.append({"i": float(i)}, BASE_NS + i, BASE_NS + i)
    assert stream._full_files, "no full file waits for the flusher"
    finished = threading.Event()

    def flusher() -> None:
        stream.complete_in_background()
        finished.set()

    with stream._lock:  # what the writer of a long batch holds
        thread = threading.Thread(target=flusher)
        thread.start()
        done = finished.wait(30)
        renamed = sorted(tmp_path.rglob("*.capture"))
        spares = len(stream._spares)
    thread.join()
    assert done, "the flusher waited for the writer's lock"
    assert renamed and not stream._full_files and spares >= 1
    stream.append({"i": 300.0}, BASE_NS + 300, BASE_NS + 300)
    stream.close()
    records = [
        record
        for path in sorted(tmp_path.rglob("*.capture"))
        for record in read_capture_file(path)[1]
    ]
    values = [int(dict(r.struct["readings"].items())["i"]) for r in records]
    assert values == list(range(301))
    assert stream.stats().files_completed == len(list(tmp_path.rglob("*.capture")))
    assert not list(tmp_path.rglob("*.prog"))


def test_the_flusher_fsyncs_what_piles_up_behind_a_held_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past ``MAX_UNSYNCED_FILES`` renamed files the flusher fsyncs and closes them itself
    when the writer holds the lock; the writer then only counts them."""
    import os

    from capsync.capture import stream_files

    monkeypatch.setattr(stream_files, "MAX_UNSYNCED_FILES", 3)
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    stream = _stream_without_flusher(tmp_path, monkeypatch, "piled", 1024)
    for i in range(200):
        stream.append({"i": float(i)}, BASE_NS + i, BASE_NS + i)
    full = [fd for fd, _ in stream._full_files]
    assert len(full) >= 3
    with stream._lock:
        thread = threading.Thread(target=stream.complete_in_background)
        thread.start()
        thread.join(30)
        alive = thread.is_alive()
        left = list(stream._renamed)
    assert not alive
    assert set(full) <= set(synced)  # fsynced on the flusher's thread, lock held elsewhere
    assert [fd for fd, _ in left] == [-1] * len(full)  # and closed there: nothing to fsync
    stream.close()
    assert stream.stats().files_completed == len(list(tmp_path.rglob("*.capture")))
    assert stream.stats().records == 200


def _descriptors_into(folder: Path) -> list[str]:
    import os

    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:  # closed meanwhile (the listing's own descriptor)
            continue
        if target.startswith(str(folder)):
            found.append(target)
    return found


def test_the_flusher_syncing_twice_behind_a_held_lock_closes_every_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second pile-up synced by the flusher before the writer counted the first: every
    completed file is closed (a descriptor left open keeps the file's flock, and sync then
    takes the file for one another process is still writing) and counted once."""
    from capsync.capture import stream_files

    monkeypatch.setattr(stream_files, "MAX_UNSYNCED_FILES", 3)
    stream = _stream_without_flusher(tmp_path, monkeypatch, "piled", 1024)
    failures: list[BaseException] = []

    def flusher_behind_the_lock() -> None:
        def run() -> None:
            try:
                stream.complete_in_background()
            except BaseException as exc:  # reported by the test
                failures.append(exc)

        with stream._lock:
            thread = threading.Thread(target=run)
            thread.start()
            thread.join(30)

    for round_ in range(2):
        for i in range(200):
            n = round_ * 200 + i
            stream.append({"i": float(n)}, BASE_NS + n, BASE_NS + n)
        assert len(stream._full_files) >= 3
        flusher_behind_the_lock()
    stream.close()
    assert failures == []
    assert _descriptors_into(tmp_path) == []
    assert stream.stats().files_completed == len(list(tmp_path.rglob("*.capture")))
    assert stream.stats().records == 400
