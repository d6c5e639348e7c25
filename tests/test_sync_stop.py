"""Stopping sync and retrying against a server that does not de-duplicate (issue 9, items 1-2).

The server (:mod:`slow_sync_server`) answers each call after 300 ms and
stores whatever it receives, as any DataSyncService built from Viam's API may:
a file whose upload was abandoned at stop and sent again by the next run
arrives twice. A graceful stop lets the calls in flight finish, deletes what
they confirmed and starts nothing new.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from slow_sync_server import RecordingSyncServer
from sync_helpers import BASE_NS, PART_ID, capture_files, wait_for, write_binary, write_tabular

from capsync.config.model import default_num_sync_threads
from capsync.sync import Syncer, SyncSettings, SyncTarget
from capsync.sync.files import capture_files as eligible_capture_files

pytestmark = pytest.mark.wire_independent  # the stop protocol, not the wire format


@pytest.fixture
def slow_server() -> Iterator[RecordingSyncServer]:
    server = RecordingSyncServer(delay_s=0.3).start()
    try:
        yield server
    finally:
        server.stop()


def syncer_to(
    server: RecordingSyncServer, capture_dir: Path, workers: int = 2, **kwargs: Any
) -> Syncer:
    target = SyncTarget(
        address=server.address, part_id=PART_ID, key_id="k", key="s", insecure=True,
        max_backoff_s=0.5,
    )  # fmt: skip
    settings = SyncSettings(capture_dir=str(capture_dir), max_workers=workers)
    return Syncer(settings, target, first_backoff_s=0.05, **kwargs)


def test_many_graceful_stops_send_no_file_twice(
    tmp_path: Path, slow_server: RecordingSyncServer
) -> None:
    capture_dir = tmp_path / "capture"
    for i in range(24):
        write_binary(capture_dir, f"cam{i}", bytes([i]) * 100, requested_ns=BASE_NS + i)
    write_tabular(capture_dir, "imu", 5)
    rng = random.Random(9)
    for _ in range(5):  # two files in flight: each stop leaves some of the 29 behind
        syncer = syncer_to(slow_server, capture_dir, workers=1, files_in_flight_per_worker=2)
        passing = threading.Thread(target=syncer.sync_once)
        passing.start()
        threading.Event().wait(rng.uniform(0.05, 0.3))  # stop somewhere in a call
        syncer.close(timeout_s=10.0)
        passing.join()
    assert capture_files(capture_dir)  # the stops really came with files left
    with syncer_to(slow_server, capture_dir) as syncer:
        assert syncer.sync_once().complete
    assert capture_files(capture_dir) == []
    twice = {key: n for key, n in slow_server.received.items() if n > 1}
    assert twice == {}
    assert len(slow_server.received) == 24 + 5  # every record of every file, once


class HeldAnswers(RecordingSyncServer):
    """Answers nothing until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__(delay_s=0.0)
        self.release = threading.Event()

    def _answer(self, name: str, context: grpc.ServicerContext) -> None:
        self.release.wait(10.0)
        super()._answer(name, context)


def test_one_worker_keeps_several_files_in_flight_and_deletes_each_after_its_answer(
    tmp_path: Path,
) -> None:
    server = HeldAnswers().start()
    try:
        capture_dir = tmp_path / "capture"
        paths = [write_binary(capture_dir, f"cam{i}", bytes([i]) * 10) for i in range(5)]
        syncer = syncer_to(server, capture_dir, workers=1, files_in_flight_per_worker=3)
        passing = threading.Thread(target=syncer.sync_once)
        passing.start()
        try:
            assert wait_for(lambda: len(server.calls) == 3, 5.0)  # 3 uploads, none answered
            assert all(path.exists() for path in paths)
        finally:
            server.release.set()
            passing.join(10.0)
            syncer.close()
        assert capture_files(capture_dir) == []
        assert sorted(n for n in server.received.values()) == [1] * 5
    finally:
        server.stop()


def test_a_stop_timeout_bounds_the_wait_and_keeps_the_file(tmp_path: Path) -> None:
    server = RecordingSyncServer(delay_s=3.0).start()
    try:
        capture_dir = tmp_path / "capture"
        path = write_binary(capture_dir, "cam", b"x" * 10)
        syncer = syncer_to(server, capture_dir)
        passing = threading.Thread(target=syncer.sync_once)
        passing.start()
        assert wait_for(lambda: server.calls, 5.0)
        syncer.close(timeout_s=0.2)  # the call in flight is cancelled: its file stays
        passing.join(5.0)
        assert not passing.is_alive()
        assert capture_files(capture_dir) == [path]
    finally:
        server.stop()


def test_a_file_in_backoff_does_not_hold_the_only_worker(
    tmp_path: Path, slow_server: RecordingSyncServer
) -> None:
    slow_server.delay_s = 0.02
    capture_dir = tmp_path / "capture"
    bad = write_binary(capture_dir, "a-bad", b"bad", requested_ns=BASE_NS)
    good = [write_binary(capture_dir, f"cam{i}", bytes([i]) * 10) for i in range(5)]
    slow_server.fail[bad.relative_to(capture_dir).as_posix()] = grpc.StatusCode.INTERNAL
    assert eligible_capture_files(str(capture_dir))[0].path == bad  # it goes first
    syncer = syncer_to(slow_server, capture_dir, workers=1)
    done = threading.Event()

    def run() -> None:
        syncer.sync_once(retry_for_s=None)  # retried until close
        done.set()

    passing = threading.Thread(target=run)
    passing.start()
    try:
        assert wait_for(lambda: not any(p.exists() for p in good), 10.0)
        # ... while the bad one is retried on its own schedule
        assert wait_for(lambda: sum("/a-bad/" in name for _, name in slow_server.calls) >= 3)
        assert not done.is_set()
    finally:
        syncer.close()
        passing.join()
    assert capture_files(capture_dir) == [bad]


def test_default_sync_workers_are_at_least_two(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert default_num_sync_threads() >= 2
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert default_num_sync_threads() >= 2


def test_sync_now_is_bounded_and_says_what_happened(tmp_path: Path) -> None:
    import socket

    from sync_helpers import machine_config

    from capsync.service import DataManager

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here
    capture_dir = tmp_path / "capture"
    path = write_tabular(capture_dir, "imu", 3)
    config = machine_config(capture_dir, address=f"127.0.0.1:{port}", sync_disabled=True)
    with DataManager.from_config(config) as manager:
        report = manager.sync_now(timeout_s=1.0)
    assert report.files_uploaded == 0
    assert report.files_left == 1
    assert report.last_error is not None and "cannot reach" in report.last_error
    assert capture_files(capture_dir) == [path]
