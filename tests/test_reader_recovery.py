"""Reading, scanning and recovering capture files, including after a real SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from wire_helpers import struct_to_python

import capsync
from capsync.capture.layout import FAILED_DIR_NAME

SENSOR = {
    "component_type": "rdk:component:sensor",
    "component_name": "imu",
    "method_name": "Readings",
}


def write_file(root: Path, count: int) -> Path:
    with capsync.open_stream(root, **SENSOR) as stream:
        for i in range(count):
            stream.append({"i": i, "s": "x" * (i % 7)}, i, i + 1)
    (path,) = root.rglob("*.capture")
    return path


def test_scan_records_matches_decoding(tmp_path: Path) -> None:
    path = write_file(tmp_path, 50)
    data = path.read_bytes()
    spans = list(capsync.scan_records(path))
    assert len(spans) == 50
    _, records = capsync.read_capture_file(path)
    for (offset, length), record in zip(spans, records, strict=True):
        assert type(record).FromString(data[offset : offset + length]) == record
    last_offset, last_length = spans[-1]
    assert last_offset + last_length == len(data)


def test_every_truncation_reads_the_whole_records_before_it(tmp_path: Path) -> None:
    path = write_file(tmp_path, 12)
    data = path.read_bytes()
    spans = list(capsync.scan_records(path))
    header_end = spans[0][0] - 1
    cut_file = tmp_path / "cut.capture"
    for cut in range(header_end, len(data) + 1):
        cut_file.write_bytes(data[:cut])
        _, records = capsync.read_capture_file(cut_file)
        got = [struct_to_python(r.struct)["readings"]["i"] for r in records]
        whole = sum(1 for offset, length in spans if offset + length <= cut)
        assert got == [float(i) for i in range(whole)]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "file is empty"),
        (b"\x80", "header length is truncated"),
        (b"\x10abc", "header is truncated"),
        (b"\x03\xff\xff\xff", "header does not parse"),
        (b"\x00", "header does not parse"),
    ],
)
def test_bad_headers_name_the_file(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "bad.capture"
    path.write_bytes(content)
    with pytest.raises(capsync.CaptureFileError, match=problem) as caught:
        capsync.read_capture_file(path)
    assert str(path) in str(caught.value)


def test_corrupt_record_in_the_middle_names_file_and_offset(tmp_path: Path) -> None:
    path = write_file(tmp_path, 5)
    offset, length = list(capsync.scan_records(path))[2]
    data = bytearray(path.read_bytes())
    data[offset : offset + length] = b"\xff" * length
    path.write_bytes(bytes(data))
    _, records = capsync.read_capture_file(path)
    with pytest.raises(capsync.CaptureFileError, match=f"record at offset {offset} does not parse"):
        list(records)


def make_prog(root: Path, count: int, extra: bytes = b"") -> Path:
    """A .prog file as a crashed writer leaves it: whole records, maybe a partial one."""
    source = write_file(root / "src", count)
    folder = root / "rdk_component_sensor" / "imu" / "Readings"
    folder.mkdir(parents=True, exist_ok=True)
    prog = folder / source.with_suffix(".prog").name
    prog.write_bytes(source.read_bytes() + extra)
    source.unlink()
    return prog


def test_recover_cuts_a_partial_record_and_completes(tmp_path: Path) -> None:
    prog = make_prog(tmp_path, 7, extra=b"\x40partial")
    (result,) = [r for r in capsync.recover_in_progress(tmp_path) if r.path == str(prog)]
    assert result.action == "completed"
    assert result.records == 7 and result.dropped_bytes == 8
    done = Path(result.new_path)
    assert done.suffix == ".capture" and not prog.exists()
    _, records = capsync.read_capture_file(done)
    assert len(list(records)) == 7
    assert list(capsync.scan_records(done))[-1][0] + list(capsync.scan_records(done))[-1][1] == (
        done.stat().st_size
    )


def test_recover_stops_at_zero_filled_tail(tmp_path: Path) -> None:
    prog = make_prog(tmp_path, 3, extra=bytes(4096))
    (result,) = [r for r in capsync.recover_in_progress(tmp_path) if r.path == str(prog)]
    assert result.action == "completed" and result.records == 3
    assert result.dropped_bytes == 4096


def test_recover_removes_files_without_records(tmp_path: Path) -> None:
    header_only = make_prog(tmp_path, 1)
    data = header_only.read_bytes()
    first_record = next(iter(capsync.scan_records(header_only)))[0] - 1
    header_only.write_bytes(data[:first_record])
    empty = header_only.with_name("empty.prog")
    empty.write_bytes(b"")
    results = {r.path: r for r in capsync.recover_in_progress(tmp_path)}
    assert results[str(header_only)].action == "removed"
    assert results[str(empty)].action == "removed"
    assert not header_only.exists() and not empty.exists()


def test_recover_moves_unreadable_files_to_failed(tmp_path: Path) -> None:
    folder = tmp_path / "rdk_component_sensor" / "imu" / "Readings"
    folder.mkdir(parents=True)
    garbage = folder / "garbage.prog"
    garbage.write_bytes(b"\x03\xff\xff\xff and more bytes")
    (result,) = capsync.recover_in_progress(tmp_path)
    assert result.action == "failed"
    moved = Path(result.new_path)
    assert moved.is_relative_to(tmp_path / FAILED_DIR_NAME)
    assert moved.read_bytes().startswith(b"\x03\xff")
    assert capsync.recover_in_progress(tmp_path) == []  # failed/ is never looked at again


def test_recover_leaves_files_of_live_writers_alone(tmp_path: Path) -> None:
    with capsync.open_stream(tmp_path, **SENSOR) as stream:
        stream.append({"a": 1})
        stream.flush()
        (prog,) = tmp_path.rglob("*.prog")
        (result,) = capsync.recover_in_progress(tmp_path)
        assert result.action == "in_use"
        assert prog.exists()
        stream.append({"a": 2})
    (done,) = tmp_path.rglob("*.capture")
    assert len(list(capsync.read_capture_file(done)[1])) == 2


WRITER = textwrap.dedent(
    """
    import sys, capsync
    stream = capsync.open_stream(sys.argv[1], component_type="rdk:component:sensor",
                                 component_name="imu", method_name="Readings",
                                 fsync_interval_s=0.05, max_file_size_bytes=20000)
    i = 0
    while True:
        stream.append({"i": i})
        if i % 100 == 0:
            stream.flush()
            print(i, flush=True)
        i += 1
    """
)


def test_sigkill_mid_capture_then_recover(tmp_path: Path) -> None:
    """A real writer process killed with SIGKILL: every flushed record survives, in order."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert process.stdout is not None
    flushed = -1
    deadline = time.monotonic() + 30
    while flushed < 3000 and time.monotonic() < deadline:
        flushed = int(process.stdout.readline())
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stdout.close()
    assert flushed >= 3000
    results = capsync.recover_in_progress(tmp_path)
    # The open file, and any full file the flusher thread had not yet renamed, are
    # completed; an empty spare file made for the next rotation is removed.
    actions = [r.action for r in results]
    assert "completed" in actions and set(actions) <= {"completed", "removed"}
    assert all(r.records == 0 for r in results if r.action == "removed")
    assert list(tmp_path.rglob("*.prog")) == []
    values = []
    for path in sorted(tmp_path.rglob("*.capture")):
        values.extend(
            struct_to_python(r.struct)["readings"]["i"] for r in capsync.read_capture_file(path)[1]
        )
    assert values[: flushed + 1] == [float(i) for i in range(flushed + 1)]
    assert values == [float(i) for i in range(len(values))]


def test_inspect_cli_reads_what_a_stream_wrote(tmp_path: Path) -> None:
    write_file(tmp_path, 4)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-m", "capsync", "inspect", str(tmp_path), "--json", "--records"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    summary, *records = lines
    assert summary["records"] == 4
    assert summary["component_name"] == "imu" and summary["type"] == "DATA_TYPE_TABULAR_SENSOR"
    assert summary["first_time_requested"].startswith("1970-01-01T00:00:00")
    assert [r["struct"]["readings"]["i"] for r in records] == [0, 1, 2, 3]
    text = subprocess.run(
        [sys.executable, "-m", "capsync", "inspect", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert "records: 4" in text and "rdk:component:sensor 'imu' Readings" in text


def test_inspect_cli_bad_file_is_one_line_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.capture"
    bad.write_bytes(b"\x03\xff\xff\xff")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-m", "capsync", "inspect", str(bad)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"capsync: error: {bad}: not a capture file (header ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "capsync", "inspect", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert missing.returncode == 1 and "no such file or folder" in missing.stderr
