"""Property tests: the scanner and reader on truncated, corrupted and random files.

Nothing may crash, hang or raise anything but CaptureFileError (which names the
file); whatever is read back is a prefix-consistent set of real records.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import capsync
from capsync import wire
from capsync.capture.recovery import recover_in_progress

SENSOR = {
    "component_type": "rdk:component:sensor",
    "component_name": "fuzz",
    "method_name": "Readings",
}
# Each example writes, damages and recovers a file in a fresh folder. On a disk, the
# fsyncs and directory removals are nearly all of that time (about 70 ms an example,
# 9 times what the reader and recovery take); in RAM (tmpfs) the same calls, on the same
# code paths, are nearly free. So every example runs, just cheaper.
SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None

VALUES = st.one_of(
    st.floats(allow_nan=False),
    st.integers(-1000, 1000),
    st.text(max_size=30),
    st.booleans(),
    st.none(),
)


def valid_file(folder: Path, readings: list[dict]) -> Path:
    with capsync.open_stream(folder, **SENSOR) as stream:
        for i, reading in enumerate(readings):
            stream.append(reading, i, i)
    (path,) = folder.rglob("*.capture")
    return path


@pytest.mark.wire_independent
@settings(max_examples=2000, deadline=None)
@given(data=st.binary(max_size=600), offset=st.integers(0, 700), max_frames=st.integers(-1, 20))
def test_scanner_on_random_bytes_agrees_across_implementations(data, offset, max_frames):
    compiled = wire.COMPILED or wire.PURE
    results = []
    for module in (compiled, wire.PURE):
        if offset > len(data):
            with pytest.raises(ValueError, match="outside a buffer"):
                module.scan_frames(data, offset, max_frames)
            return
        offsets, lengths, end = module.scan_frames(data, offset, max_frames)
        assert offset <= end <= len(data)
        assert all(o + n <= end for o, n in zip(offsets, lengths, strict=True))
        if max_frames >= 0:
            assert len(offsets) <= max_frames
        results.append((offsets.tolist(), lengths.tolist(), end))
    assert results[0] == results[1]


MUTATIONS = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(
        st.just("flip"),
        st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), min_size=1, max_size=8),
    ),
    st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=40)),
    st.tuples(st.just("random"), st.binary(max_size=400)),
)


def mutate(data: bytes, mutation) -> bytes:
    kind = mutation[0]
    if kind == "truncate":
        return data[: int(len(data) * mutation[1])]
    if kind == "flip":
        out = bytearray(data)
        for where, mask in mutation[1]:
            if out:
                index = min(int(len(out) * where), len(out) - 1)
                out[index] ^= mask
        return bytes(out)
    if kind == "insert":
        at = int(len(data) * mutation[1])
        return data[:at] + mutation[2] + data[at:]
    return mutation[1]


@pytest.mark.slow  # 600 files written, damaged and recovered: ~15 s
@settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    readings=st.lists(
        st.dictionaries(st.text(max_size=8), VALUES, max_size=5), min_size=1, max_size=12
    ),
    mutation=MUTATIONS,
)
def test_reader_and_recovery_survive_any_damage(readings, mutation) -> None:
    with tempfile.TemporaryDirectory(dir=SCRATCH) as folder_name:
        folder = Path(folder_name)
        original = valid_file(folder / "src", readings)
        damaged_bytes = mutate(original.read_bytes(), mutation)
        damaged = folder / "damaged.capture"
        damaged.write_bytes(damaged_bytes)
        read = []
        try:
            _header, records = capsync.read_capture_file(damaged)
            for record in records:
                read.append(record)
        except capsync.CaptureFileError as exc:
            assert str(damaged) in str(exc)
        if mutation[0] == "truncate":  # a truncated file yields a prefix of the records
            assert len(read) <= len(readings)
        spans = []
        with contextlib.suppress(capsync.CaptureFileError):
            spans = list(capsync.scan_records(damaged))
        assert all(o > 0 and o + n <= len(damaged_bytes) for o, n in spans)

        # The same bytes left as a crashed writer's .prog: recovery never raises and
        # never leaves a .prog behind.
        capture_dir = folder / "capture"
        prog_dir = capture_dir / "rdk_component_sensor" / "fuzz" / "Readings"
        prog_dir.mkdir(parents=True)
        (prog_dir / "x.prog").write_bytes(damaged_bytes)
        (result,) = recover_in_progress(capture_dir)
        assert result.action in ("completed", "removed", "failed")
        assert not list(capture_dir.rglob("*.prog"))
        if result.action == "completed":  # completed files hold exactly the kept records
            spans_after = list(capsync.scan_records(result.new_path))
            assert len(spans_after) == result.records
            last_offset, last_length = spans_after[-1]
            assert last_offset + last_length == Path(result.new_path).stat().st_size
