"""The compiled per-reading path (``capsync.wire._append`` + the template cache in ``_wire``)
against its twin: the same calls write the same bytes, alone and from 8 threads at once."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import ModuleType

import pytest
from conftest import require_compiled
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wire_helpers import decode_frames, struct_to_python

import capsync
from capsync import wire
from capsync.capture.stream import CaptureStream

SENSOR = {
    "component_type": "rdk:component:sensor",
    "component_name": "imu",
    "method_name": "Readings",
}
T0_NS = 1_763_700_000_000_000_000

# Each test here runs both implementations itself.
pytestmark = pytest.mark.wire_independent


@pytest.fixture(scope="module")
def compiled() -> ModuleType:
    require_compiled(wire.COMPILED, "capsync.wire._wire")
    require_compiled(wire.COMPILED_APPEND, "capsync.wire._append")
    return wire.COMPILED


def open_with(module: ModuleType, folder: Path, **options) -> CaptureStream:
    previous = wire.use(module)
    try:
        return capsync.open_stream(folder, **{**SENSOR, **options})
    finally:
        wire.use(previous)


def file_bytes(root: Path) -> list[bytes]:
    """Every capture file's bytes, in the order the files were created (their names)."""
    return [path.read_bytes() for path in sorted(root.rglob("*.capture"))]


def test_the_appender_and_its_twin_have_the_same_api(compiled: ModuleType) -> None:
    import inspect

    ours, twin = wire.COMPILED_APPEND, wire.PURE_APPEND
    assert ours is not None and ours.__all__ == twin.__all__ == ["TabularAppender"]

    def api(module: ModuleType, wire: ModuleType) -> dict[str, object]:
        appender = module.TabularAppender(None, wire.RecordBuffer(16), "readings", 1, 2, 3)
        out: dict[str, object] = {}
        for name in dir(appender):
            value = getattr(appender, name)
            if name.startswith("_") or name == "hooks":  # the twin's hooks is not C-private
                continue
            if callable(value):
                out[name] = [
                    (p.name, p.kind, p.default)
                    for p in inspect.signature(value).parameters.values()
                ]
            else:
                out[name] = type(value).__name__ if name == "buffer" else value
        return out

    assert api(ours, compiled) == api(twin, wire.PURE)


# ----- the template cache: one buffer, many readings ------------------------------------

FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0])
KEY_SETS = st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=6, unique=True)
# What each reading does to the key set: same objects, equal copies, reordered, one not a
# float, one key more.
SHAPES = st.sampled_from(["same", "copies", "reversed", "int", "extra", "nested"])


def _reading(keys: list[str], values: list[float], shape: str) -> dict:
    if shape == "copies":  # equal strings, other objects: must not be taken for the template
        return {"".join(list(k)) + "": v for k, v in zip(keys, values, strict=True)}
    if shape == "reversed":
        return dict(zip(reversed(keys), values, strict=True))
    reading = dict(zip(keys, values, strict=True))
    if shape == "int":
        reading[keys[0]] = 7
    elif shape == "extra":
        reading["extra"] = 1.5
    elif shape == "nested":
        reading[keys[-1]] = {"inner": values[0]}
    return reading


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    keys=KEY_SETS,
    steps=st.lists(st.tuples(st.lists(FLOATS, min_size=6, max_size=6), SHAPES), max_size=12),
    wrap_key=st.sampled_from([None, "", "readings"]),
)
def test_a_sequence_of_readings_encodes_as_the_twin_does(
    compiled: ModuleType, keys: list[str], steps, wrap_key
) -> None:
    ours = compiled.RecordBuffer(16)
    twin = wire.PURE.RecordBuffer(16)
    for i, (values, shape) in enumerate(steps):
        reading = _reading(keys, values[: len(keys)], shape)
        ours.append_readings(reading, T0_NS + i, T0_NS + 2 * i, wrap_key)
        twin.append_readings(reading, T0_NS + i, T0_NS + 2 * i, wrap_key)
        assert ours.getvalue() == twin.getvalue()


def test_the_template_is_patched_not_reused_stale(compiled: ModuleType) -> None:
    """Same key objects, new numbers each time: every record carries its own numbers."""
    keys = ("x", "y", "z")
    buffer = compiled.RecordBuffer(16)
    for i in range(5):
        buffer.append_readings(dict(zip(keys, (i, i + 0.5, -i), strict=True)), i, i, "readings")
        buffer.append_readings(dict.fromkeys(keys, float(i)), i, i, "readings")
    records = decode_frames(buffer.getvalue())
    assert [struct_to_python(r.struct)["readings"]["x"] for r in records] == [
        0.0,
        0.0,
        1.0,
        1.0,
        2.0,
        2.0,
        3.0,
        3.0,
        4.0,
        4.0,
    ]
    assert struct_to_python(records[-1].struct)["readings"] == {"x": 4.0, "y": 4.0, "z": 4.0}


# ----- whole streams ----------------------------------------------------------------------


def _script(stream: CaptureStream) -> None:
    keys = ("x", "y", "z", "roll", "pitch", "yaw")
    for i in range(3000):
        t = T0_NS + i * 1_000_000
        if i % 500 == 7:
            stream.append({"label": f"r{i}", "n": i, "ok": True}, t, t)
        elif i % 300 == 11:
            stream.flush_to_capture()
        stream.append(dict(zip(keys, (i * 0.5, -i, 1e-3 * i, 0.0, 1.0, 2.0), strict=True)), t, t)
    stream.append_batch([T0_NS] * 3, [T0_NS] * 3, [[1.0, 2.0]] * 3, ["a", "b"])
    stream.append({"after": 1.0}, T0_NS, T0_NS)


def test_same_calls_write_the_same_files(compiled: ModuleType, tmp_path: Path) -> None:
    stats = {}
    for name, module in (("compiled", compiled), ("python", wire.PURE)):
        with open_with(module, tmp_path / name, max_file_size_bytes=8192) as stream:
            _script(stream)
        stats[name] = stream.stats()
    ours, twin = file_bytes(tmp_path / "compiled"), file_bytes(tmp_path / "python")
    assert len(ours) > 20
    assert ours == twin
    assert stats["compiled"] == stats["python"]


def test_append_queued_stops_at_what_it_cannot_store(compiled: ModuleType, tmp_path: Path) -> None:
    """The collector's batch hand-off: dicts go in one loop and leave the queue; a reading
    that is not a dict, or one the encoder refuses, stays at the head, and the bytes are
    those of the same readings appended one by one."""
    import collections

    files = {}
    for name, module in (("compiled", compiled), ("python", wire.PURE)):
        queued = open_with(module, tmp_path / name / "queued")
        queue = collections.deque(({"x": i * 0.5}, T0_NS + i, T0_NS + i) for i in range(5))
        queue.append(("not a dict", T0_NS, T0_NS))
        queue.append(({"y": 1.0}, T0_NS, T0_NS))
        assert queued.append_queued(queue, 3) == 3  # the limit
        assert queued.append_queued(queue, 100) == 2  # stops at the string
        assert len(queue) == 2 and queue[0][0] == "not a dict"
        queue.popleft()
        queue.appendleft(({"bad": object()}, T0_NS, T0_NS))
        with pytest.raises(TypeError):
            queued.append_queued(queue, 100)
        assert len(queue) == 2  # the refused reading is still at the head
        queue.popleft()
        assert queued.append_queued(queue, 100) == 1 and not queue
        queued.close()
        one_by_one = open_with(module, tmp_path / name / "one")
        for i in range(5):
            one_by_one.append({"x": i * 0.5}, T0_NS + i, T0_NS + i)
        one_by_one.append({"y": 1.0}, T0_NS, T0_NS)
        one_by_one.close()
        assert queued.stats().records == 6
        files[name] = file_bytes(tmp_path / name / "queued")
        assert files[name] == file_bytes(tmp_path / name / "one")
    assert files["compiled"] == files["python"]


N_THREADS = 8
PER_THREAD = 1500


def _hammer(stream: CaptureStream) -> None:
    """8 threads append at once; every record the same size (floats, fixed-width times)."""
    start = threading.Barrier(N_THREADS)

    def work(thread: int) -> None:
        keys = ("thread", "i", "v")  # the same key objects in every thread
        start.wait()
        for i in range(PER_THREAD):
            t = T0_NS + 100_000_000 + i  # nanos always a 4-byte varint
            stream.append(dict(zip(keys, (float(thread), float(i), i * 0.25), strict=True)), t, t)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(N_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_eight_threads_with_the_flusher_write_the_same_records(
    compiled: ModuleType, tmp_path: Path
) -> None:
    results = {}
    for name, module in (("compiled", compiled), ("python", wire.PURE)):
        # A 5 ms fsync interval keeps the background flusher taking the lock all along.
        with open_with(
            module, tmp_path / name, max_file_size_bytes=16384, fsync_interval_s=0.005
        ) as stream:
            _hammer(stream)
        files = file_bytes(tmp_path / name)
        frames = []
        order: dict[float, list[float]] = {}
        for data in files:
            header_len = data[0]
            assert data[1 : 1 + header_len] == stream._header_bytes
            offsets, lengths, end = module.scan_frames(data, 1 + header_len)
            assert end == len(data)  # whole records only: none torn by a race
            for offset, length in zip(offsets.tolist(), lengths.tolist(), strict=True):
                frames.append(data[offset - 1 : offset + length])
        for record in decode_frames(b"".join(frames)):
            fields = struct_to_python(record.struct)["readings"]
            order.setdefault(fields["thread"], []).append(fields["i"])
        # Each thread's readings arrive once each, in the order it appended them.
        assert order == {float(n): [float(i) for i in range(PER_THREAD)] for n in range(8)}
        results[name] = (sorted(frames), [len(f) for f in files], stream.stats())
    assert results["compiled"][0] == results["python"][0]
    assert results["compiled"][1] == results["python"][1]
    assert results["compiled"][2] == results["python"][2]


def test_rename_create_and_fsync_happen_off_the_writers_thread(
    compiled: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from capsync.capture import layout
    from capsync.capture import stream as stream_module

    writer = threading.current_thread()
    on_writer: list[str] = []
    calls: list[str] = []
    real_fsync, real_rename, real_create = os.fsync, os.rename, layout.create_in_progress

    def track(name: str, function):
        def tracked(*args):
            calls.append(name)
            if threading.current_thread() is writer:
                on_writer.append(name)
            return function(*args)

        return tracked

    monkeypatch.setattr(stream_module.os, "fsync", track("fsync", real_fsync))
    monkeypatch.setattr(stream_module.os, "rename", track("rename", real_rename))
    monkeypatch.setattr(layout, "create_in_progress", track("create", real_create))
    for name, module in (("compiled", compiled), ("python", wire.PURE)):
        stream = open_with(module, tmp_path / name, max_file_size_bytes=8192, fsync_interval_s=0.1)
        try:
            for i in range(12_000):
                stream.append({"i": float(i), "x": 0.5}, T0_NS + i, T0_NS + i)
                if i == 6_000:
                    time.sleep(0.15)  # past the fsync deadline: the next chunk asks for a group
                elif i % 100 == 0:
                    # A collector's writer waits for readings between drains: the GIL is free.
                    time.sleep(0.001)
            assert calls.count("rename") > 20 and calls.count("fsync") > 0
            # The flusher thread renames the full files and runs the fsync groups; it also
            # makes spare files, which the writer uses unless it outran the flusher (then it
            # creates its next file itself: how often depends on the machine).
            assert "rename" not in on_writer and "fsync" not in on_writer
            assert calls.count("create") > on_writer.count("create")
        finally:
            stream.close()
        calls.clear()
        on_writer.clear()
    assert len(file_bytes(tmp_path / "compiled")) == len(file_bytes(tmp_path / "python"))
