"""Disk pressure on a real, small filesystem: a 32 MB tmpfs filled by a fast binary collector.

The tests mount the tmpfs themselves (they run as root in CI) and skip, with
the reason, only where mounting is refused. Timing assertions are generous:
the machine may be slow and busy.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil
from sync_helpers import wait_for
from tmpfs_fixtures import CAMERA, PAYLOAD_BYTES, FirehoseCamera

import capsync
from capsync.capture import layout
from capsync.capture.diskpressure import DiskPressureDeleter
from capsync.resources import ResourceContext
from capsync.service.collector import Collector, CollectorKey, CollectorSettings


def start_collector(capture_dir: Path, hz: float) -> Collector:
    camera = FirehoseCamera("firehose", {}, ResourceContext(capture_dir=str(capture_dir)))
    collector = Collector(
        CollectorKey(CAMERA, "firehose", "ReadImage"),
        camera,
        CollectorSettings(
            frequency_hz=hz,
            additional_params={"mime_type": "image/jpeg"},
            queue_size=50,
            fsync_interval_s=0.1,  # completed files' descriptors are closed soon after
        ),
        capture_dir,
    )
    collector.start()
    return collector


def used_fraction(path: Path) -> float:
    usage = psutil.disk_usage(str(path))
    return 1 - usage.free / usage.total


def capture_files(capture_dir: Path) -> list[Path]:
    return sorted(capture_dir.rglob(f"*{layout.COMPLETED_EXT}"))


def assert_all_readable(capture_dir: Path) -> int:
    """Every completed file opens and holds one whole 100 KB reading; no .prog is left."""
    files = capture_files(capture_dir)
    for path in files:
        header, records = capsync.read_capture_file(path)
        assert header.method_name == "ReadImage" and header.file_extension == ".jpeg"
        (record,) = list(records)
        assert len(record.binary) == PAYLOAD_BYTES
    assert not list(capture_dir.rglob(f"*{layout.IN_PROGRESS_EXT}"))
    return len(files)


def counters(capture_dir: Path) -> set[int]:
    out = set()
    for path in capture_files(capture_dir):
        _, records = capsync.read_capture_file(path)
        out.update(int.from_bytes(r.binary[:8], "big") for r in records)
    return out


def prefill(capture_dir: Path, fraction: float) -> int:
    """Write 100 KB readings straight through a CaptureStream until the disk is that full."""
    written = 0
    payload = bytearray(os.urandom(PAYLOAD_BYTES))
    with capsync.open_stream(
        capture_dir,
        component_type=CAMERA,
        component_name="firehose",
        method_name="ReadImage",
        mime_type="image/jpeg",
    ) as stream:
        while used_fraction(capture_dir) < fraction:
            payload[:8] = (10**9 + written).to_bytes(8, "big")
            stream.append_binary(payload)
            written += 1
    return written


def free_files(capture_dir: Path, share: float) -> int:
    """Remove the oldest ``share`` of the completed files by hand; return how many."""
    files = capture_files(capture_dir)
    doomed = files[: max(1, int(len(files) * share))]
    for path in doomed:
        path.unlink()
    return len(doomed)


def test_deletion_keeps_a_small_disk_around_its_threshold(tmpfs: Path) -> None:
    capture_dir = tmpfs / "capture"
    threshold = 0.9
    prefill(capture_dir, 0.85)
    deleter = DiskPressureDeleter(
        capture_dir,
        usage_threshold=threshold,
        capture_dir_threshold=0.5,
        every_nth=5,
        interval_s=0.2,
    )
    collector = start_collector(capture_dir, hz=100)  # ~10 MB/s into 32 MB
    samples: list[float] = []
    try:
        deleter.start()
        assert wait_for(lambda: deleter.stats().deleted_files > 0, 30), deleter.stats()
        at_first_deletion = collector.stats().records_written
        end = time.monotonic() + 2.5
        while time.monotonic() < end:
            samples.append(used_fraction(tmpfs))
            time.sleep(0.05)  # samples the fill level over a window: no event to wait for
        # Capture went on under pressure, and deletion kept up with it.
        assert wait_for(lambda: collector.stats().records_written > at_first_deletion + 50, 30), (
            collector.stats()
        )
        stats = deleter.stats()
        assert stats.deletion_passes >= 2 and stats.deleted_bytes >= PAYLOAD_BYTES
        assert stats.errors == 0
        # "Around the threshold": every-5th deletion thins the files out, never empties
        # the disk, and usage keeps coming back up to the threshold.
        assert min(samples) > threshold - 0.4, samples
        assert max(samples) >= threshold - 0.05, samples

        # Without deletion the disk fills up and writes fail, but the collector lives on...
        deleter.stop()
        assert wait_for(lambda: collector.stats().write_errors > 0, 30), collector.stats()
        # ...and once space is freed by hand, capture goes on by itself.
        files_at_removal = collector.stats().files
        free_files(capture_dir, 0.3)
        assert wait_for(lambda: collector.stats().files >= files_at_removal + 5, 30), (
            collector.stats()
        )
        free_files(capture_dir, 0.5)  # room for what is queued, so close can write it
    finally:
        deleter.stop()
        collector.close(timeout_s=15)
    assert not deleter.running
    # Deleted files were whole files: every one that is left reads back whole.
    assert assert_all_readable(capture_dir) > 0
    assert any(n < 10**9 for n in counters(capture_dir))  # the collector's own readings


def test_a_full_disk_without_deletion_resumes_once_a_file_is_removed(tmpfs: Path) -> None:
    capture_dir = tmpfs / "capture"
    prefill(capture_dir, 0.9)
    collector = start_collector(capture_dir, hz=100)
    try:
        assert wait_for(lambda: collector.stats().write_errors > 0, 30), collector.stats()
        assert used_fraction(tmpfs) > 0.95
        stalled = collector.stats()
        before = {path.name for path in capture_files(capture_dir)}
        # Still alive: capturing (and dropping what the queue cannot hold), retrying writes.
        assert wait_for(lambda: collector.stats().captures > stalled.captures + 20, 20)
        assert wait_for(lambda: collector.stats().write_errors > stalled.write_errors, 20)

        # Remove a few files by hand: capture resumes by itself.
        free_files(capture_dir, 0.05)
        assert wait_for(
            lambda: {p.name for p in capture_files(capture_dir)} - before != set(), 20
        ), collector.stats()
        assert collector.stats().files > stalled.files
        free_files(capture_dir, 0.5)  # room for what is queued, so close can write it
    finally:
        collector.close(timeout_s=15)
    assert assert_all_readable(capture_dir) > 0
