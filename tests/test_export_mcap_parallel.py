"""``capsync convert --to mcap`` on threads: the same bytes as one thing at a time, and
the compiled encoder's shortcut for readings laid out alike writes what its twin does."""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import count
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from export_helpers import frame_records, run_encoder

from capsync import wire
from capsync.capture.reader import CaptureFileError, parse_header
from capsync.capture.stream import open_stream
from capsync.export.mcap_export import convert_capture_files
from capsync.proto import data_sync_pb2

T0 = 1_714_564_800 * 1_000_000_000


class _Staggered(ThreadPoolExecutor):
    """Two threads, every other job held back a little: later jobs finish first."""

    def __init__(self) -> None:
        super().__init__(2)
        self._jobs = count()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        delay = 0.004 if next(self._jobs) % 2 == 0 else 0.0

        def late() -> Any:
            time.sleep(delay)
            return fn(*args, **kwargs)

        return super().submit(late)


def _capture(root: Path) -> None:
    """Readings of two sensors over many files, images between them."""
    values = np.random.default_rng(8).normal(size=(2_000, 4))
    times = T0 + np.arange(2_000, dtype=np.int64) * 1000
    for name, scale in (("imu", 1.0), ("gps", 1e6)):
        with open_stream(root, component_type="rdk:component:sensor", component_name=name,
                         method_name="Readings", max_file_size_bytes=24_000) as stream:  # fmt: skip
            stream.append_batch(times, times + 7, values * scale, ["a", "b", "c", "d"])
            stream.append({"odd": "é", "n": math.nan}, T0 + 5, T0 + 6)
    with open_stream(root, component_type="rdk:component:camera", component_name="cam",
                     method_name="ReadImage", mime_type="image/jpeg") as stream:  # fmt: skip
        for i in range(3):
            stream.append_binary(b"\xff\xd8\xff\xe0" + bytes([i]) * 9000, T0 + i, T0 + i + 1)


@pytest.mark.parametrize("chunk_size_bytes", [10_000, 300_000])
def test_threads_write_the_same_bytes_as_one_at_a_time(
    tmp_path: Path, chunk_size_bytes: int
) -> None:
    root = tmp_path / "capture"
    _capture(root)
    assert len(list(root.rglob("*.capture"))) > 8
    outputs = []
    for name, options in (
        ("serial", {"workers": 0}),
        ("threads", {"workers": 2}),
        ("staggered", {"executor": _Staggered()}),
    ):
        out = tmp_path / f"{name}.mcap"
        counts = convert_capture_files([root], out, chunk_size_bytes=chunk_size_bytes, **options)
        assert counts.messages == 2 * 2_001 + 3
        outputs.append(out.read_bytes())
        if "executor" in options:
            options["executor"].shutdown()
    assert outputs[1] == outputs[0]
    assert outputs[2] == outputs[0]


def test_a_bad_frame_names_its_file_while_later_files_are_encoded(tmp_path: Path) -> None:
    root = tmp_path / "capture"
    _capture(root)
    files = sorted(root.rglob("*.capture"))
    bad = next(p for p in files if "gps" in str(p))  # the first readings (path order)
    data = bytearray(bad.read_bytes())
    offsets, _, _ = wire.wire().scan_frames(data, parse_header(bad, data).records_offset)
    data[offsets[-1]] = 0x0F  # the last frame's first key: wire type 7, which is none
    bad.write_bytes(bytes(data))
    for workers in (0, 2):
        with pytest.raises(CaptureFileError, match=re.escape(f"{bad}: unsupported wire type 7")):
            convert_capture_files([root], tmp_path / "out.mcap", workers=workers)


# --- the compiled encoder's shortcut -------------------------------------------------


def _frames(values: list[dict[str, Any]]) -> tuple[bytes, list[int], list[int]]:
    records = []
    for i, value in enumerate(values):
        record = data_sync_pb2.SensorData()
        record.metadata.time_requested.seconds = 1_700_000_000 + i
        record.metadata.time_received.seconds = 1_700_000_000 + i
        record.struct.update(value)
        records.append(record)
    return frame_records(records)


def _number(rng: random.Random) -> float:
    return rng.choice(
        [rng.gauss(0, 1), rng.uniform(-1e9, 1e9), math.nan, math.inf, -0.0, 1e300, 3.0, 1e16]
    )


def _alike(rng: random.Random) -> dict[str, Any]:
    """The usual reading, or now and then one laid out a little differently: a key of
    the same length renamed, a flag flipped (the same wire length), a number become a
    string or a list one longer."""
    reading: dict[str, Any] = {
        "a": _number(rng),
        "b": _number(rng),
        "s": "é",
        "ok": True,
        "l": [_number(rng), 2.5],
    }
    change = rng.randrange(12)
    if change == 0:
        reading["c"] = reading.pop("a")
    elif change == 1:
        reading["ok"] = False
    elif change == 2:
        reading["b"] = "12345678"
    elif change == 3:
        reading["l"].append(_number(rng))
    return {"readings": reading}


def test_readings_laid_out_alike_encode_as_the_twin() -> None:
    """Runs of readings laid out alike (the compiled encoder copies the text between
    their numbers from the reading before) among ones that differ by a byte outside
    the numbers, and with a byte damaged anywhere: the twin's output or error."""
    from conftest import require_compiled

    from capsync.export import frames, mcap_export

    _export = mcap_export._COMPILED
    require_compiled(_export, "capsync.export._export")
    rng = random.Random(21)
    for round_ in range(120):
        data, offsets, lengths = _frames([_alike(rng) for _ in range(rng.randrange(2, 40))])
        if round_ % 3:
            at = rng.randrange(offsets[1], len(data))  # after the first reading's frame
            data = data[:at] + bytes([rng.randrange(256)]) + data[at + 1 :]
        args = (data, np.array(offsets), np.array(lengths), 2, 9)
        assert run_encoder(_export.tabular_message_records, *args) == run_encoder(
            frames.tabular_message_records, *args
        )
