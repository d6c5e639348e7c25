"""Disk-pressure deletion (SPEC §5) with an injected disk usage: thresholds, order, what is kept."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from sync_helpers import wait_for

from capsync.capture.deletable import completed_capture_files
from capsync.capture.diskpressure import DiskPressureDeleter
from capsync.capture.layout import capture_dir_size
from capsync.config import DataManagerConfig

pytestmark = pytest.mark.wire_independent

SENSOR = Path("rdk_component_sensor") / "imu" / "Readings"
CAMERA = Path("rdk_component_camera") / "cam" / "ReadImage"
TOTAL = 1000  # bytes of the fake filesystem


@dataclass
class Usage:
    total: int
    free: int


class FakeDisk:
    """A disk_usage function: ``free`` is settable; records the paths it was asked about."""

    def __init__(self, total: int = TOTAL, free: int = TOTAL) -> None:
        self.total = total
        self.free = free
        self.asked: list[str] = []

    def __call__(self, path: str) -> Usage:
        self.asked.append(path)
        return Usage(self.total, self.free)

    def used(self, fraction_used: float) -> FakeDisk:
        self.free = round(self.total * (1 - fraction_used))
        return self


def stamp(i: int) -> str:
    return f"2024-05-01T12_00_{i:02d}.000000+00_00"


def make_files(
    root: Path, folder: Path, count: int, size: int = 10, ext: str = ".capture", start: int = 0
) -> list[Path]:
    """``count`` files of ``size`` bytes named by time (oldest first), in ``root/folder``."""
    (root / folder).mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + count):
        path = root / folder / f"{stamp(i)}{ext}"
        path.write_bytes(b"x" * size)
        paths.append(path)
    return paths


def deleter(root: Path, disk: FakeDisk, **options: object) -> DiskPressureDeleter:
    return DiskPressureDeleter(root, disk_usage=disk, **options)  # type: ignore[arg-type]


# ----- thresholds ----------------------------------------------------------------------------


def test_below_the_disk_threshold_nothing_is_measured_or_deleted(tmp_path: Path) -> None:
    files = make_files(tmp_path, SENSOR, 60)  # 600 bytes: the capture dir is 60% of the disk
    report = deleter(tmp_path, FakeDisk().used(0.899)).check_once()
    assert not report.disk_over_threshold
    assert report.capture_dir_bytes is None  # never walked
    assert not report.deleted and not report.warned
    assert all(p.exists() for p in files)


def test_at_both_thresholds_deletion_runs(tmp_path: Path) -> None:
    assert 1 - 100 / TOTAL == 0.9  # "at" the default disk threshold, exactly
    files = make_files(tmp_path, SENSOR, 50)  # 500 bytes: exactly 0.5 of the disk
    disk = FakeDisk(free=100)
    report = deleter(tmp_path, disk).check_once()
    assert report.disk_fraction == 0.9 and report.disk_over_threshold
    assert report.capture_dir_bytes == 500 and report.capture_dir_over_threshold
    assert report.deleted_files == tuple(files[::5])
    assert report.deleted_bytes == 100
    assert not report.warned


def test_above_both_thresholds_deletion_runs(tmp_path: Path) -> None:
    files = make_files(tmp_path, SENSOR, 80)
    report = deleter(tmp_path, FakeDisk().used(0.97)).check_once()
    assert report.capture_dir_over_threshold
    assert len(report.deleted_files) == 16
    assert sum(p.exists() for p in files) == 64


def test_disk_full_but_capture_dir_one_byte_short_only_warns(tmp_path: Path) -> None:
    files = make_files(tmp_path, SENSOR, 49)
    (tmp_path / SENSOR / "partial.prog").write_bytes(b"x" * 9)  # counts: 499 bytes in all
    report = deleter(tmp_path, FakeDisk().used(0.95)).check_once()
    assert report.disk_over_threshold
    assert report.capture_dir_bytes == 499 and not report.capture_dir_over_threshold
    assert report.warned and not report.deleted
    assert all(p.exists() for p in files)


def test_disk_below_threshold_with_a_big_capture_dir_does_nothing(tmp_path: Path) -> None:
    files = make_files(tmp_path, SENSOR, 85)  # 85% of the disk is capture data...
    report = deleter(tmp_path, FakeDisk().used(0.85)).check_once()  # ...but 0.85 < 0.9
    assert not report.deleted and not report.warned
    assert all(p.exists() for p in files)


def test_custom_thresholds(tmp_path: Path) -> None:
    make_files(tmp_path, SENSOR, 20)  # 200 bytes = 0.2
    disk = FakeDisk().used(0.5)
    low = deleter(tmp_path, disk, usage_threshold=0.5, capture_dir_threshold=0.2, every_nth=2)
    assert len(low.check_once().deleted_files) == 10
    high = deleter(tmp_path, disk, usage_threshold=0.51, capture_dir_threshold=0.05)
    assert high.check_once().capture_dir_bytes is None


def test_the_size_walk_stops_at_the_threshold(tmp_path: Path) -> None:
    make_files(tmp_path, SENSOR, 30)
    make_files(tmp_path, CAMERA, 30)
    assert capture_dir_size(tmp_path) == 600
    assert capture_dir_size(tmp_path, stop_at=250) == 250  # stopped after the 25th file
    assert capture_dir_size(tmp_path / "missing") == 0


def test_a_missing_capture_dir_is_measured_on_its_filesystem(tmp_path: Path) -> None:
    disk = FakeDisk().used(0.99)
    report = deleter(tmp_path / "not" / "yet", disk).check_once()
    assert disk.asked == [str(tmp_path)]
    assert report.capture_dir_bytes == 0 and report.warned


# ----- which files, in what order ------------------------------------------------------------


def test_every_nth_in_sorted_walk_order(tmp_path: Path) -> None:
    # Created out of walk order on purpose: the walk sorts, it does not follow creation.
    imu = make_files(tmp_path, SENSOR, 6)
    cam = make_files(tmp_path, CAMERA, 7)
    walk = [path for path, _ in completed_capture_files(tmp_path)]
    assert walk == cam + imu  # rdk_component_camera < rdk_component_sensor; names by time
    report = deleter(tmp_path, FakeDisk().used(0.95), every_nth=5, capture_dir_threshold=0.1)
    assert report.check_once().deleted_files == (cam[0], cam[5], imu[3])


def test_every_first_deletes_every_completed_capture_file(tmp_path: Path) -> None:
    files = make_files(tmp_path, SENSOR, 10) + make_files(tmp_path, CAMERA, 10)
    report = deleter(tmp_path, FakeDisk().used(0.95), every_nth=1, capture_dir_threshold=0.1)
    assert len(report.check_once().deleted_files) == 20
    assert not any(p.exists() for p in files)


def test_in_flight_files_are_skipped_and_keep_their_place(tmp_path: Path) -> None:
    files = make_files(tmp_path, SENSOR, 12)
    uploading = {files[5]}
    asked: list[Path] = []

    def in_flight(path: Path) -> bool:
        asked.append(path)
        return path in uploading

    report = deleter(
        tmp_path, FakeDisk().used(0.95), is_in_flight=in_flight, capture_dir_threshold=0.1
    ).check_once()
    assert report.deleted_files == (files[0], files[10])  # index 5 kept; 10 still 10
    assert report.skipped_in_flight == 1
    assert files[5].exists()
    assert asked == [files[0], files[5], files[10]]  # asked about the due files only


def test_claim_and_release_close_the_race_with_sync(tmp_path: Path) -> None:
    files = make_files(tmp_path, SENSOR, 11)
    claimed: list[Path] = []
    released: list[Path] = []

    def claim(path: Path) -> bool:
        if path == files[10]:
            return False  # a sync worker took it between the walk and the removal
        claimed.append(path)
        return True

    d = deleter(
        tmp_path,
        FakeDisk().used(0.95),
        claim=claim,
        release=released.append,
        capture_dir_threshold=0.1,
    )
    report = d.check_once()
    assert report.deleted_files == (files[0], files[5])
    assert report.skipped_in_flight == 1
    assert claimed == released == [files[0], files[5]]
    with pytest.raises(ValueError, match="claim and release"):
        DiskPressureDeleter(tmp_path, claim=claim)


def test_prog_failed_arbitrary_and_misplaced_files_are_never_deleted(tmp_path: Path) -> None:
    root = tmp_path / "capture"
    good = make_files(root, SENSOR, 3)
    kept = [
        *make_files(root, SENSOR, 3, ext=".prog", start=10),
        *make_files(root, Path("failed") / SENSOR, 3),  # moved aside by sync
        *make_files(root, Path("failed") / "x" / "y", 3),
        *make_files(root, SENSOR, 2, ext=".txt", start=20),
        *make_files(root, SENSOR, 1, ext=".capture.syncprog", start=30),
        *make_files(root, Path("."), 1),  # .capture files where capsync never writes them
        *make_files(root, Path("a") / "b", 1),
        *make_files(root, SENSOR / "deeper", 1),
        *make_files(root, Path("uploads") / "x" / "y", 2),  # an additional sync path
    ]
    (root / SENSOR / "dir.capture").mkdir()
    outside = make_files(tmp_path, Path("elsewhere"), 1)[0]
    os.symlink(outside, root / SENSOR / f"{stamp(40)}.capture")
    d = deleter(
        root,
        FakeDisk().used(0.99),
        every_nth=1,
        capture_dir_threshold=0.01,
        exclude=[root / "uploads"],
    )
    report = d.check_once()
    assert sorted(report.deleted_files) == good
    assert all(p.exists() for p in kept)
    assert outside.exists() and (root / SENSOR / "dir.capture").is_dir()


def test_a_file_gone_before_its_removal_is_not_counted(tmp_path: Path) -> None:
    files = make_files(tmp_path, SENSOR, 6)

    def in_flight(path: Path) -> bool:
        if path == files[5]:
            path.unlink()  # uploaded and deleted by sync in the meantime
        return False

    report = deleter(
        tmp_path, FakeDisk().used(0.95), is_in_flight=in_flight, capture_dir_threshold=0.01
    ).check_once()
    assert report.deleted_files == (files[0],)
    assert report.delete_errors == 0


# ----- warnings, stats, the thread -----------------------------------------------------------


def test_the_small_capture_dir_warning_is_rate_limited(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make_files(tmp_path, SENSOR, 5)
    now = [1000.0]
    d = deleter(tmp_path, FakeDisk().used(0.95), clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="capsync.capture.diskpressure")
    warned = []
    for t in (1000.0, 1010.0, 1059.9, 1060.0, 1061.0, 1119.0, 1120.5):
        now[0] = t
        warned.append(d.check_once().warned)
    assert warned == [True, False, False, True, False, False, True]
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3
    assert "holds only 5.0%" in messages[0] and "no capture files deleted" in messages[0]
    stats = d.stats()
    assert stats.warnings == 3 and stats.checks == 7 and stats.deleted_files == 0


def test_stats_add_up_over_checks(tmp_path: Path) -> None:
    make_files(tmp_path, SENSOR, 50, size=20)  # 1000 bytes on a 2000-byte disk
    disk = FakeDisk(total=2000).used(0.95)
    d = deleter(tmp_path, disk, capture_dir_threshold=0.1)
    first = d.check_once()
    second = d.check_once()
    assert len(first.deleted_files) == 10 and len(second.deleted_files) == 8
    disk.used(0.5)
    d.check_once()
    stats = d.stats()
    assert stats.checks == 3 and stats.deletion_passes == 2
    assert stats.deleted_files == 18 and stats.deleted_bytes == 360
    assert stats.last_report is not None and not stats.last_report.disk_over_threshold


def test_the_thread_checks_on_its_interval_and_survives_errors(tmp_path: Path) -> None:
    files = make_files(tmp_path, SENSOR, 30)
    calls = [0]
    lock = threading.Lock()

    def flaky(path: str) -> Usage:
        with lock:
            calls[0] += 1
            if calls[0] == 2:
                raise OSError("statvfs failed")
        return Usage(TOTAL, 10)

    d = DiskPressureDeleter(
        tmp_path, disk_usage=flaky, interval_s=0.02, every_nth=1, capture_dir_threshold=0.1
    )
    with d:
        assert d.running
        assert wait_for(lambda: d.stats().checks >= 4)
    assert not d.running
    stats = d.stats()
    assert stats.errors == 1
    assert stats.deleted_files == 30 and not any(p.exists() for p in files)
    d.stop()  # idempotent


def test_from_config_takes_the_thresholds(tmp_path: Path) -> None:
    config = DataManagerConfig(
        capture_dir=str(tmp_path),
        additional_sync_paths=(str(tmp_path / "rdk_component_sensor"),),
        delete_every_nth_when_disk_full=3,
        disk_usage_deletion_threshold=0.8,
        capture_dir_deletion_threshold=0.4,
    )
    d = DiskPressureDeleter.from_config(config, interval_s=0.5)
    assert (d.capture_dir, d.every_nth, d.usage_threshold, d.capture_dir_threshold) == (
        tmp_path,
        3,
        0.8,
        0.4,
    )
    assert d.interval_s == 0.5
    make_files(tmp_path, SENSOR, 3)  # inside an additional sync path: arbitrary files
    full = DiskPressureDeleter.from_config(
        config, disk_usage=FakeDisk().used(0.99), capture_dir_threshold=0.01
    )
    assert full.check_once().capture_dir_over_threshold and not full.stats().deleted_files
    defaults = DiskPressureDeleter.from_config(DataManagerConfig(capture_dir=str(tmp_path)))
    assert (defaults.every_nth, defaults.usage_threshold, defaults.capture_dir_threshold) == (
        5,
        0.9,
        0.5,
    )
    assert defaults.interval_s == 30.0


@pytest.mark.parametrize(
    "options",
    [
        {"usage_threshold": 0},
        {"usage_threshold": 1.5},
        {"capture_dir_threshold": -0.1},
        {"every_nth": 0},
        {"every_nth": 2.5},
        {"interval_s": 0},
    ],
)
def test_bad_settings_are_refused(tmp_path: Path, options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        DiskPressureDeleter(tmp_path, **options)  # type: ignore[arg-type]


def test_a_file_locked_by_an_upload_or_its_writer_is_kept(tmp_path: Path) -> None:
    files = make_files(tmp_path, SENSOR, 6)
    fd = os.open(files[0], os.O_RDONLY)  # what a sync worker (or a capture writer) holds
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        report = deleter(tmp_path, FakeDisk().used(0.95), capture_dir_threshold=0.01).check_once()
    finally:
        os.close(fd)
    assert report.deleted_files == (files[5],)
    assert report.skipped_in_flight == 1 and files[0].exists()


def test_paths_are_absolute_like_the_syncers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = make_files(tmp_path, SENSOR, 1)
    monkeypatch.chdir(tmp_path.parent)
    asked: list[Path] = []
    d = deleter(
        Path(tmp_path.name),
        FakeDisk().used(0.95),
        capture_dir_threshold=0.001,
        is_in_flight=lambda p: asked.append(p) or False,
    )
    assert d.check_once().deleted_files == tuple(files)
    assert asked == files and asked[0].is_absolute()
