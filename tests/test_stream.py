"""CaptureStream: layout, naming, headers, rotation, binary files, durability, bad input."""

from __future__ import annotations

import math
import os
import re
import stat
import time
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import wrappers_pb2
from sync_helpers import wait_for
from wire_helpers import struct_to_python, ts_ns

import capsync
from capsync.capture import stream as stream_module
from capsync.proto import data_sync_pb2

SENSOR = {
    "component_type": "rdk:component:sensor",
    "component_name": "imu",
    "method_name": "Readings",
}
CAMERA = {
    "component_type": "rdk:component:camera",
    "component_name": "cam",
    "method_name": "ReadImage",
    "mime_type": "image/jpeg",
}
NAME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d_\d\d_\d\d\.\d{6}[+-]\d\d_\d\d(_\d+)?\.(capture|prog)$")


def files(root: Path, suffix: str = ".capture") -> list[Path]:
    return sorted(root.rglob("*" + suffix))


def all_records(root: Path):
    out = []
    for path in files(root):
        _, records = capsync.read_capture_file(path)
        out.extend(records)
    return out


def test_layout_names_and_modes(tmp_path: Path) -> None:
    with capsync.open_stream(tmp_path, **SENSOR) as stream:
        stream.append({"a": 1})
        (prog,) = files(tmp_path, ".prog")
    (done,) = files(tmp_path)
    assert files(tmp_path, ".prog") == []
    assert done.parent == tmp_path / "rdk_component_sensor" / "imu" / "Readings"
    assert NAME.match(done.name), done.name
    assert prog.stem == done.stem
    assert stat.S_IMODE(done.stat().st_mode) == 0o600
    for folder in (done.parent, done.parent.parent, done.parent.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_header_fields(tmp_path: Path) -> None:
    params = {"reader_name": "a1", "flag": True}
    with capsync.open_stream(tmp_path, tags=["t1", "t2"], method_parameters=params, **SENSOR) as s:
        s.append({"a": 1})
    header, _ = capsync.read_capture_file(files(tmp_path)[0])
    assert header.component_type == "rdk:component:sensor"
    assert header.component_name == "imu"
    assert header.method_name == "Readings"
    assert header.type == data_sync_pb2.DATA_TYPE_TABULAR_SENSOR
    assert header.file_extension == ".dat"
    assert list(header.tags) == ["t1", "t2"]
    value = wrappers_pb2.StringValue()
    assert header.method_parameters["reader_name"].Unpack(value) and value.value == "a1"
    assert header.method_parameters["flag"].Unpack(value) and value.value == "true"


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("Readings", lambda r: {"readings": r}),
        ("DoCommand", lambda r: {"docommand_output": r}),
        ("Position", lambda r: r),
    ],
)
def test_struct_wrapping_by_method(tmp_path: Path, method: str, expected) -> None:
    readings = {"x": 1.5, "nested": {"ok": True}}
    with capsync.open_stream(
        tmp_path,
        component_type="rdk:component:movement_sensor",
        component_name="m",
        method_name=method,
    ) as stream:
        stream.append(readings, 11, 22)
    (record,) = all_records(tmp_path)
    assert struct_to_python(record.struct) == expected(readings)
    assert ts_ns(record.metadata.time_requested) == 11
    assert ts_ns(record.metadata.time_received) == 22


def test_default_times_are_now(tmp_path: Path) -> None:
    before = time.time_ns()
    with capsync.open_stream(tmp_path, **SENSOR) as stream:
        stream.append({"a": 1})
        stream.append({"a": 2}, time_requested_ns=5)
    after = time.time_ns()
    first, second = all_records(tmp_path)
    assert before <= ts_ns(first.metadata.time_requested) <= after
    assert ts_ns(first.metadata.time_requested) == ts_ns(first.metadata.time_received)
    assert ts_ns(second.metadata.time_requested) == 5
    assert before <= ts_ns(second.metadata.time_received) <= after


def test_rotation_by_size_keeps_every_record_in_order(tmp_path: Path) -> None:
    with capsync.open_stream(tmp_path, max_file_size_bytes=2048, **SENSOR) as stream:
        for i in range(500):
            stream.append({"i": i, "pad": "x" * 20}, i, i)
        assert stream.stats().files_completed >= 10
    paths = files(tmp_path)
    assert len(paths) >= 10
    one_record = 80
    assert all(p.stat().st_size < 2048 + one_record for p in paths)
    values = [struct_to_python(r.struct)["readings"]["i"] for r in all_records(tmp_path)]
    assert values == [float(i) for i in range(500)]


def test_batch_spans_files_and_matches_rows(tmp_path: Path) -> None:
    n_rows = 20_000
    requested = np.arange(n_rows, dtype=np.int64) * 1000 + 1_700_000_000_000_000_000
    received = requested + 7
    values = np.random.default_rng(1).normal(size=(n_rows, 6))
    keys = ["a", "b", "c", "d", "e", "f"]
    with capsync.open_stream(tmp_path, **SENSOR) as stream:
        stream.append_batch(requested, received, values, keys)
        assert stream.stats().records == n_rows
    paths = files(tmp_path)
    assert len(paths) > 5
    assert all(p.stat().st_size <= 262_144 for p in paths)
    records = all_records(tmp_path)
    assert len(records) == n_rows
    for row in (0, 1, n_rows // 2, n_rows - 1):
        fields = struct_to_python(records[row].struct)["readings"]
        assert fields == dict(zip(keys, values[row].tolist(), strict=True))
        assert ts_ns(records[row].metadata.time_requested) == requested[row]
        assert ts_ns(records[row].metadata.time_received) == received[row]


def test_batch_shape_error_writes_nothing(tmp_path: Path) -> None:
    with capsync.open_stream(tmp_path, **SENSOR) as stream:
        with pytest.raises(ValueError, match="values has 2 columns but 3 keys"):
            stream.append_batch([1], [1], [[1.0, 2.0]], ["a", "b", "c"])
        assert stream.stats().records == 0
    assert files(tmp_path) == []


def test_flush_to_capture_completes_and_next_append_starts_a_new_file(tmp_path: Path) -> None:
    with capsync.open_stream(tmp_path, **SENSOR) as stream:
        stream.append({"a": 1})
        completed = stream.flush_to_capture()
        assert completed is not None and completed.suffix == ".capture"
        assert files(tmp_path, ".prog") == []
        assert stream.flush_to_capture() is None  # nothing open
        stream.append({"a": 2})
        assert len(files(tmp_path, ".prog")) == 1
    assert len(files(tmp_path)) == 2


def test_close_is_idempotent_and_append_after_close_fails(tmp_path: Path) -> None:
    stream = capsync.open_stream(tmp_path, **SENSOR)
    stream.append({"a": 1})
    stream.close()
    stream.close()
    with pytest.raises(
        capsync.StreamClosedError, match="rdk:component:sensor/imu/Readings is closed"
    ):
        stream.append({"a": 2})
    with pytest.raises(capsync.StreamClosedError):
        stream.flush()
    assert len(all_records(tmp_path)) == 1


def test_a_stream_with_no_records_leaves_no_file(tmp_path: Path) -> None:
    with capsync.open_stream(tmp_path, **SENSOR) as stream:
        with pytest.raises(TypeError, match="reading 'bad'"):
            stream.append({"bad": object()})
    assert files(tmp_path) == [] and files(tmp_path, ".prog") == []


def test_bad_reading_is_refused_and_the_rest_kept(tmp_path: Path) -> None:
    with capsync.open_stream(tmp_path, **SENSOR) as stream:
        stream.append({"a": 1})
        with pytest.raises(TypeError, match=r"reading 'x\.y' has a value of type bytes"):
            stream.append({"x": {"y": b"raw"}})
        stream.append({"a": math.nan, "b": math.inf, "c": -math.inf})
    _first, second = all_records(tmp_path)
    values = struct_to_python(second.struct)["readings"]
    assert math.isnan(second.struct["readings"]["a"])
    assert values["b"] == math.inf and values["c"] == -math.inf


def test_binary_one_file_per_reading(tmp_path: Path) -> None:
    payloads = [b"\xff\xd8one", bytes(range(256)) * 10, np.arange(1000, dtype=np.uint8)]
    with capsync.open_stream(tmp_path, tags=["cam"], **CAMERA) as stream:
        paths = [stream.append_binary(p, 1, 2) for p in payloads]
        paths.append(stream.append_binary(memoryview(b"view"), 3, 4))
    assert sorted(paths) == files(tmp_path)
    assert len(set(paths)) == 4
    for path, payload in zip(paths, [*payloads, b"view"], strict=True):
        header, records = capsync.read_capture_file(path)
        (record,) = list(records)
        assert header.type == data_sync_pb2.DATA_TYPE_BINARY_SENSOR
        assert header.file_extension == ".jpeg"
        assert header.mime_type == "image/jpeg"
        assert record.binary == bytes(memoryview(payload).cast("B"))
        assert record.metadata.mime_type == data_sync_pb2.MIME_TYPE_IMAGE_JPEG


@pytest.mark.parametrize(
    ("method", "mime", "extension"),
    [
        ("ReadImage", "image/png", ".png"),
        ("ReadImage", "pointcloud/pcd", ".pcd"),
        ("NextPointCloud", "", ".pcd"),
        ("GetImages", "image/jpeg", ""),  # as rdk: only ReadImage's comes from the MIME type
        ("PointCloudMap", "pointcloud/pcd", ""),
        ("CaptureAllFromCamera", "image/jpeg", ""),
    ],
)
def test_binary_extensions(tmp_path: Path, method: str, mime: str, extension: str) -> None:
    with capsync.open_stream(
        tmp_path,
        component_type="rdk:component:camera",
        component_name="c",
        method_name=method,
        mime_type=mime,
    ) as stream:
        stream.append_binary(b"x")
    header, _ = capsync.read_capture_file(files(tmp_path)[0])
    assert header.file_extension == extension


def test_wrong_kind_of_append(tmp_path: Path) -> None:
    with capsync.open_stream(tmp_path, **CAMERA) as camera:
        with pytest.raises(TypeError, match="binary method: use append_binary"):
            camera.append({"a": 1})
    with capsync.open_stream(tmp_path, **SENSOR) as sensor:
        with pytest.raises(TypeError, match="tabular method"):
            sensor.append_binary(b"x")


def test_unwritable_capture_dir_names_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(OSError, match="not-a-folder"):
        capsync.open_stream(blocker / "capture", **SENSOR)


@pytest.mark.parametrize("name", ["", "a/b", "..", "."])
def test_bad_component_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="component_name"):
        capsync.open_stream(
            tmp_path,
            component_type="rdk:component:sensor",
            component_name=name,
            method_name="Readings",
        )


def test_name_collisions_get_a_suffix(tmp_path: Path, monkeypatch) -> None:
    from capsync.capture import layout

    monkeypatch.setattr(
        layout, "timestamp_name", lambda now_ns=None: "2026-01-01T00_00_00.000000+00_00"
    )
    with capsync.open_stream(tmp_path, **CAMERA) as stream:
        paths = [stream.append_binary(b"x") for _ in range(3)]
    assert [p.name for p in paths] == [
        "2026-01-01T00_00_00.000000+00_00.capture",
        "2026-01-01T00_00_00.000000+00_00_1.capture",
        "2026-01-01T00_00_00.000000+00_00_2.capture",
    ]


def test_flush_hands_bytes_to_the_os(tmp_path: Path) -> None:
    with capsync.open_stream(tmp_path, fsync_interval_s=3600, **SENSOR) as stream:
        stream.append({"a": 1})
        (prog,) = files(tmp_path, ".prog")
        assert prog.stat().st_size == 0  # still buffered
        stream.flush()
        _, records = capsync.read_capture_file(prog)
        assert len(list(records)) == 1


def test_idle_stream_is_flushed_in_the_background(tmp_path: Path) -> None:
    with capsync.open_stream(tmp_path, fsync_interval_s=0.1, **SENSOR) as stream:
        stream.append({"a": 1})
        (prog,) = files(tmp_path, ".prog")
        assert wait_for(lambda: prog.stat().st_size > 0, 30)  # 0.1 s when idle


def test_fsync_happens_in_groups_not_per_record(tmp_path: Path, monkeypatch) -> None:
    calls = []
    real_fsync = os.fsync
    monkeypatch.setattr(stream_module.os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd)))
    with capsync.open_stream(
        tmp_path, fsync_interval_s=3600, max_file_size_bytes=4096, **SENSOR
    ) as stream:
        for i in range(2000):
            stream.append({"i": i})
        assert calls == []  # 2000 records and ~10 rotations: no fsync before the interval
    assert 0 < len(calls) <= stream_module.MAX_UNSYNCED_FILES + 2


def test_write_errors_are_retried_and_nothing_is_lost(tmp_path: Path) -> None:
    """A descriptor that fails like a full disk, then recovers: every record arrives once."""
    with capsync.open_stream(tmp_path, fsync_interval_s=3600, **SENSOR) as stream:
        for i in range(10):
            stream.append({"i": i})
        stream.flush()
        real_fd = stream._fd
        saved = os.dup(real_fd)
        full = os.open("/dev/full", os.O_WRONLY)
        os.dup2(full, real_fd)  # every write now fails with ENOSPC
        try:
            for i in range(10, 20):
                stream.append({"i": i})
            with pytest.raises(OSError) as caught:
                stream.flush()
            assert caught.value.errno == 28
            assert stream.write_error is not None
            assert stream.stats().write_errors >= 1
            assert stream.stats().buffered_bytes > 0
        finally:
            os.dup2(saved, real_fd)  # the disk has room again
            os.close(saved)
            os.close(full)
        stream.append({"i": 20})
        stream.flush()
        assert stream.write_error is None
    values = [struct_to_python(r.struct)["readings"]["i"] for r in all_records(tmp_path)]
    assert values == [float(i) for i in range(21)]


def test_memory_bound_refuses_new_records_while_writes_fail(tmp_path: Path) -> None:
    with capsync.open_stream(tmp_path, max_buffered_bytes=2000, **SENSOR) as stream:
        stream.append({"i": 0})
        stream.flush()
        real_fd = stream._fd
        saved = os.dup(real_fd)
        full = os.open("/dev/full", os.O_WRONLY)
        os.dup2(full, real_fd)
        try:
            accepted = 0
            with pytest.raises(capsync.CaptureWriteError, match="unwritten bytes"):
                for i in range(1, 1000):
                    stream.append({"i": i, "pad": "p" * 30})
                    accepted += 1
            assert 0 < accepted < 100
        finally:
            os.dup2(saved, real_fd)
            os.close(saved)
            os.close(full)
    assert len(all_records(tmp_path)) == accepted + 1


def test_binary_write_error_removes_the_partial_file(tmp_path: Path, monkeypatch) -> None:
    from capsync.capture import layout

    real_create = layout.create_in_progress

    def create_on_full_disk(folder):
        fd, path = real_create(folder)
        full = os.open("/dev/full", os.O_WRONLY)
        os.dup2(full, fd)
        os.close(full)
        return fd, path

    with capsync.open_stream(tmp_path, **CAMERA) as stream:
        monkeypatch.setattr(layout, "create_in_progress", create_on_full_disk)
        with pytest.raises(OSError, match="cannot write capture file") as caught:
            stream.append_binary(b"payload")
        assert caught.value.errno == 28
        monkeypatch.setattr(layout, "create_in_progress", real_create)
        stream.append_binary(b"second try")
    assert files(tmp_path, ".prog") == []
    (path,) = files(tmp_path)
    (record,) = list(capsync.read_capture_file(path)[1])
    assert record.binary == b"second try"


def test_stream_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_file_size_bytes must be > 0"):
        capsync.open_stream(tmp_path, max_file_size_bytes=0, **SENSOR)
    with pytest.raises(ValueError, match="fsync_interval_s must be > 0"):
        capsync.open_stream(tmp_path, fsync_interval_s=0, **SENSOR)


@pytest.mark.parametrize("tz", ["UTC", "America/Los_Angeles", "Asia/Kolkata"])
def test_timestamp_names_carry_the_local_offset(monkeypatch, tz: str) -> None:
    import datetime as dt

    from capsync.capture import layout

    monkeypatch.setenv("TZ", tz)
    time.tzset()
    try:
        moment_ns = 1_795_302_002_723_808_123
        name = layout.timestamp_name(moment_ns)
        expected = dt.datetime.fromtimestamp(moment_ns / 1e9).astimezone()
        offset = expected.strftime("%z")
        assert name == expected.strftime("%Y-%m-%dT%H_%M_%S.723808") + f"{offset[:3]}_{offset[3:]}"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
