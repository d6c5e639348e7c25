"""Capture throughput: capsync's ``CaptureStream`` (compiled wire and its pure-Python twin)
against a plain protobuf-runtime port and against raw ``os.write`` of the same bytes.

Groups (one table each in ``benchmarks/report.py``):

* ``tabular-append``: ``CaptureStream.append`` of one 6-float dict per call ("Readings").
* ``tabular-batch``: one ``append_batch`` of 6-float rows per round, 256 KiB files.
* ``tabular-batch-64MiB-files``: the same with 64 MiB files, encoding apart from rotation.
* ``binary-1KiB`` / ``binary-64KiB`` / ``binary-1MiB``: ``append_binary``, a file per reading;
  its raw floor creates, writes and renames each file (``.prog`` -> ``.capture``).

Each round starts from an empty folder, an ``os.sync()`` and a new stream or
writer (all untimed) and ends with ``close()`` (timed: the last write, the
renames and the group fsync are part of the cost). The baselines follow the same
file policy: same rotation size, header first, ``.prog`` renamed to
``.capture``, completed files fsynced in groups of at most ``MAX_UNSYNCED_FILES``
and then their folder. Every benchmark stores ``records`` and ``bytes`` per round
(and ``impl``) in ``extra_info``. ``CAPSYNC_BENCH_QUICK=1`` runs fewer rounds of the same
size (a shared machine: read the ratios, not the rates).
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO

import numpy as np
import pytest
from google.protobuf import __version__ as protobuf_version
from google.protobuf.internal import api_implementation

from capsync import wire
from capsync.capture import stream as stream_module
from capsync.capture.header import build_header, encode_header
from capsync.capture.stream import CaptureStream, open_stream
from capsync.methods import mime_type_enum, wrap_key_for
from capsync.proto import data_sync_pb2

KEYS = ("x", "y", "z", "roll", "pitch", "yaw")
T0_NS = 1_763_700_000_000_000_000  # a fixed epoch, so every run encodes the same bytes
STEP_NS = 1_000_000  # 1 kHz

MAX_FILE_SIZE_BYTES = 262_144  # the default, set explicitly
BIG_FILE_SIZE_BYTES = 64 * 1024 * 1024
assert stream_module.DEFAULT_MAX_FILE_SIZE_BYTES == MAX_FILE_SIZE_BYTES

TABULAR = {
    "component_type": "rdk:component:movement_sensor",
    "component_name": "imu",
    "method_name": "Readings",
}
BINARY = {
    "component_type": "rdk:component:camera",
    "component_name": "cam",
    "method_name": "ReadImage",
    "mime_type": "image/jpeg",
}

# Records per round and rounds, per implementation: the slow ones run smaller
# rounds; the report compares per-record rates.
APPEND_RECORDS = {"compiled": 20_000, "python": 5_000, "protobuf": 10_000}
APPEND_ROUNDS = {"compiled": 15, "python": 5, "protobuf": 7}
BATCH_ROWS = {"compiled": 100_000, "python": 5_000, "protobuf": 10_000, "raw": 100_000}
BATCH_ROUNDS = {"compiled": 21, "python": 3, "protobuf": 5, "raw": 21}
BINARY_SIZES = {"1KiB": 1024, "64KiB": 64 * 1024, "1MiB": 1024 * 1024}
BINARY_READINGS = {"1KiB": 1000, "64KiB": 250, "1MiB": 64}
BINARY_ROUNDS = 9
# CAPSYNC_BENCH_QUICK=1: the same rounds' sizes (so the same files), fewer rounds; for a
# shared machine, where only the ratios to the baselines of the same run mean anything.
QUICK = os.environ.get("CAPSYNC_BENCH_QUICK", "") not in ("", "0")
if QUICK:
    APPEND_ROUNDS = {name: min(rounds, 5) for name, rounds in APPEND_ROUNDS.items()}
    BATCH_ROUNDS = {name: min(rounds, 7) for name, rounds in BATCH_ROUNDS.items()}
    BINARY_ROUNDS = 5
WARMUP_ROUNDS = 1

WIRE_IMPLS = ("compiled", "python")


# ----- inputs ---------------------------------------------------------------------------


@functools.cache
def _matrix(n_rows: int) -> np.ndarray:
    return np.random.default_rng(7).standard_normal((n_rows, len(KEYS))) * 100.0


@functools.cache
def _times(n_rows: int) -> np.ndarray:
    return T0_NS + np.arange(n_rows, dtype=np.int64) * STEP_NS


@functools.cache
def _dict_rows(n_rows: int) -> tuple[list[dict[str, float]], list[int]]:
    """The rows as the per-record API gets them: dicts of Python floats and int times."""
    rows = [dict(zip(KEYS, row, strict=True)) for row in _matrix(n_rows).tolist()]
    return rows, _times(n_rows).tolist()


@functools.cache
def _payload(nbytes: int) -> bytes:
    return np.random.default_rng(nbytes).bytes(nbytes)


# ----- baselines ------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _delimited_header(options: dict[str, str]) -> bytes:
    header = encode_header(build_header(**options))
    return _varint(len(header)) + header


class GroupSync:
    """``CaptureStream``'s durability policy, for the baselines: completed files are
    fsynced and closed in groups of at most ``MAX_UNSYNCED_FILES``, then their folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._pending: list[BinaryIO | int] = []

    def add(self, file: BinaryIO | int) -> None:
        self._pending.append(file)
        if len(self._pending) >= stream_module.MAX_UNSYNCED_FILES:
            self.sync()

    def sync(self) -> None:
        pending, self._pending = self._pending, []
        for file in pending:
            if isinstance(file, int):
                os.fsync(file)
                os.close(file)
            else:
                os.fsync(file.fileno())
                file.close()
        folder_fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder_fd)
        finally:
            os.close(folder_fd)


class ProtobufTabularWriter:
    """What a plain Python port does: a ``SensorData`` message per record built with the
    protobuf runtime, serialized, written length-delimited through a buffered file,
    rotated at ``max_file_size_bytes``."""

    def __init__(self, folder: Path, max_file_size_bytes: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.bytes_written = 0
        self._header = _delimited_header(TABULAR)
        self._wrap_key = wrap_key_for(TABULAR["method_name"])
        self._max = max_file_size_bytes
        self._sync = GroupSync(folder)
        self._file: BinaryIO | None = None
        self._path = folder
        self._nbytes = 0
        self._count = 0

    def append(
        self, readings: dict[str, Any], time_requested_ns: int, time_received_ns: int
    ) -> None:
        message = data_sync_pb2.SensorData()
        metadata = message.metadata
        metadata.time_requested.FromNanoseconds(time_requested_ns)
        metadata.time_received.FromNanoseconds(time_received_ns)
        message.struct.update({self._wrap_key: readings})
        data = message.SerializeToString()
        record = _varint(len(data)) + data
        if self._file is None:
            self._open()
        assert self._file is not None
        self._file.write(record)
        self._nbytes += len(record)
        if self._nbytes >= self._max:
            self._complete()

    def close(self) -> None:
        if self._file is not None:
            self._complete()
        self._sync.sync()

    def _open(self) -> None:
        self._count += 1
        self._path = self.folder / f"{self._count:06d}.prog"
        self._file = open(self._path, "xb", buffering=stream_module.WRITE_CHUNK_BYTES)  # noqa: SIM115
        self._file.write(self._header)
        self._nbytes = len(self._header)

    def _complete(self) -> None:
        assert self._file is not None
        self._file.flush()
        os.rename(self._path, self._path.with_suffix(".capture"))
        self._sync.add(self._file)
        self._file = None
        self.bytes_written += self._nbytes


class ProtobufBinaryWriter:
    """The plain port of a binary method: ``SensorData(binary=payload)`` serialized and
    written, header first, to a new file per reading."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.bytes_written = 0
        self._header = _delimited_header(BINARY)
        self._mime_type = mime_type_enum(BINARY["mime_type"])
        self._sync = GroupSync(folder)
        self._count = 0

    def append(self, payload: bytes, time_requested_ns: int, time_received_ns: int) -> None:
        message = data_sync_pb2.SensorData(binary=payload)
        metadata = message.metadata
        metadata.time_requested.FromNanoseconds(time_requested_ns)
        metadata.time_received.FromNanoseconds(time_received_ns)
        metadata.mime_type = self._mime_type
        data = message.SerializeToString()
        self._count += 1
        path = self.folder / f"{self._count:06d}.prog"
        file = open(path, "xb")  # noqa: SIM115
        prefix = _varint(len(data))
        file.write(self._header)
        file.write(prefix)
        file.write(data)
        file.flush()
        os.rename(path, path.with_suffix(".capture"))
        self._sync.add(file)
        self.bytes_written += len(self._header) + len(prefix) + len(data)

    def close(self) -> None:
        self._sync.sync()


def _raw_write_files(
    folder: Path, sizes: Sequence[int], chunk_bytes: int, blob: bytes, *, rename: bool = False
) -> int:
    """The floor: ``os.write`` files of these sizes (from ``blob``) in ``chunk_bytes`` writes,
    with the same group fsync; no encoding, no lock. With ``rename`` each file is created
    as ``.prog`` and renamed to ``.capture`` once written, as a binary capture file is."""
    folder.mkdir(parents=True, exist_ok=True)
    sync = GroupSync(folder)
    view = memoryview(blob)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    total = 0
    for index, size in enumerate(sizes):
        path = folder / f"{index:06d}.prog"
        fd = os.open(path, flags, 0o600)
        written = 0
        while written < size:
            written += os.write(fd, view[written : min(size, written + chunk_bytes)])
        if rename:
            os.rename(path, folder / f"{index:06d}.capture")
        sync.add(fd)
        total += size
    sync.sync()
    return total


def _tabular_layout(root: Path, n_rows: int, max_file_size_bytes: int) -> list[int]:
    """The sizes of the files ``append_batch`` writes for ``n_rows`` rows."""
    with tempfile.TemporaryDirectory(dir=root) as scratch:
        stream = open_stream(scratch, **TABULAR, max_file_size_bytes=max_file_size_bytes)
        times = _times(n_rows)
        stream.append_batch(times, times, _matrix(n_rows), KEYS)
        stream.close()
        return sorted(path.stat().st_size for path in Path(scratch).rglob("*.capture"))


def _binary_file_size(payload_nbytes: int) -> int:
    """Header frame + record prefix + payload: the size of one binary capture file."""
    buffer = wire.PURE.RecordBuffer(256)
    buffer.append_frame(encode_header(build_header(**BINARY)))
    buffer.append_binary_prefix(payload_nbytes, T0_NS, T0_NS, mime_type_enum(BINARY["mime_type"]))
    return int(buffer.nbytes) + payload_nbytes


# ----- running rounds -------------------------------------------------------------------


def _open_with(module: ModuleType, folder: Path, options: dict[str, Any]) -> CaptureStream:
    """Open a stream on ``module`` (the implementation is bound when the stream is built)."""
    previous = wire.use(module)
    try:
        stream = open_stream(folder, **options)
    finally:
        wire.use(previous)
    assert stream._wire is module, "the stream did not pick the selected implementation"
    return stream


def _run_rounds(
    benchmark: Any,
    *,
    impl: str,
    workdir: Path,
    records: int,
    rounds: int,
    prepare: Callable[[Path], Any],
    run: Callable[[Any], int],
) -> None:
    """``prepare(empty_folder)`` untimed, then ``run(prepared) -> bytes written`` timed."""
    folder = workdir / "round"
    written: list[int] = []

    def setup() -> tuple[tuple[Any], dict[str, Any]]:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        # Settle the previous round's writeback and deletions (journal commits, discards)
        # before the clock starts, so no round pays for the one before it.
        os.sync()
        return (prepare(folder),), {}

    def target(prepared: Any) -> None:
        written.append(run(prepared))

    benchmark.pedantic(
        target, setup=setup, rounds=rounds, warmup_rounds=WARMUP_ROUNDS, iterations=1
    )
    shutil.rmtree(folder, ignore_errors=True)
    assert len(set(written)) == 1, f"rounds wrote different byte counts: {sorted(set(written))}"
    benchmark.extra_info.update(impl=impl, records=records, bytes=written[-1])
    if impl == "protobuf":
        # upb (the default) or python (PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python).
        benchmark.extra_info["protobuf"] = f"{protobuf_version} {api_implementation.Type()}"


# ----- benchmarks -----------------------------------------------------------------------


@pytest.mark.benchmark(group="tabular-append")
@pytest.mark.parametrize("impl", [*WIRE_IMPLS, "protobuf"])
def test_tabular_append(
    benchmark: Any, impl: str, workdir: Path, wire_module: Callable[[str], ModuleType]
) -> None:
    n = APPEND_RECORDS[impl]
    rows, times = _dict_rows(n)
    options = {**TABULAR, "max_file_size_bytes": MAX_FILE_SIZE_BYTES}

    if impl == "protobuf":

        def prepare(folder: Path) -> Any:
            return ProtobufTabularWriter(folder / "port", MAX_FILE_SIZE_BYTES)

    else:
        module = wire_module(impl)

        def prepare(folder: Path) -> Any:
            return _open_with(module, folder, options)

    def run(writer: Any) -> int:
        append = writer.append
        for readings, t in zip(rows, times, strict=True):
            append(readings, t, t)
        writer.close()
        if isinstance(writer, CaptureStream):
            return writer.stats().bytes_written
        return int(writer.bytes_written)

    _run_rounds(
        benchmark,
        impl=impl,
        workdir=workdir,
        records=n,
        rounds=APPEND_ROUNDS[impl],
        prepare=prepare,
        run=run,
    )


@pytest.mark.parametrize("impl", [*WIRE_IMPLS, "protobuf", "raw"])
@pytest.mark.parametrize(
    "max_file_size_bytes", [MAX_FILE_SIZE_BYTES, BIG_FILE_SIZE_BYTES], ids=["256KiB", "64MiB"]
)
def test_tabular_batch(
    benchmark: Any,
    impl: str,
    max_file_size_bytes: int,
    workdir: Path,
    bench_root: Path,
    wire_module: Callable[[str], ModuleType],
) -> None:
    big = max_file_size_bytes == BIG_FILE_SIZE_BYTES
    benchmark.group = "tabular-batch-64MiB-files" if big else "tabular-batch"
    n = BATCH_ROWS[impl]
    options = {**TABULAR, "max_file_size_bytes": max_file_size_bytes}
    prepare: Callable[[Path], Any]
    run: Callable[[Any], int]

    if impl == "raw":
        sizes = _tabular_layout(bench_root, n, max_file_size_bytes)
        blob = _payload(max(sizes))

        def prepare(folder: Path) -> Any:
            return folder / "raw"

        def run(folder: Path) -> int:
            return _raw_write_files(folder, sizes, stream_module.BATCH_WRITE_BYTES, blob)

    elif impl == "protobuf":
        matrix, stamps = _matrix(n), _times(n)

        def prepare(folder: Path) -> Any:
            return ProtobufTabularWriter(folder / "port", max_file_size_bytes)

        def run(writer: ProtobufTabularWriter) -> int:
            # The port gets the same arrays and makes a dict per row itself.
            append = writer.append
            for row, t in zip(matrix.tolist(), stamps.tolist(), strict=True):
                append(dict(zip(KEYS, row, strict=True)), t, t)
            writer.close()
            return writer.bytes_written

    else:
        module = wire_module(impl)
        matrix, stamps = _matrix(n), _times(n)

        def prepare(folder: Path) -> Any:
            return _open_with(module, folder, options)

        def run(stream: CaptureStream) -> int:
            stream.append_batch(stamps, stamps, matrix, KEYS)
            stream.close()
            return stream.stats().bytes_written

    _run_rounds(
        benchmark,
        impl=impl,
        workdir=workdir,
        records=n,
        rounds=BATCH_ROUNDS[impl],
        prepare=prepare,
        run=run,
    )


@pytest.mark.parametrize("impl", [*WIRE_IMPLS, "protobuf", "raw"])
@pytest.mark.parametrize("size", list(BINARY_SIZES))
def test_binary(
    benchmark: Any,
    impl: str,
    size: str,
    workdir: Path,
    wire_module: Callable[[str], ModuleType],
) -> None:
    benchmark.group = f"binary-{size}"
    n = BINARY_READINGS[size]
    payload = _payload(BINARY_SIZES[size])
    prepare: Callable[[Path], Any]
    run: Callable[[Any], int]

    if impl == "raw":
        sizes = [_binary_file_size(len(payload))] * n
        blob = _payload(sizes[0])

        def prepare(folder: Path) -> Any:
            return folder / "raw"

        def run(folder: Path) -> int:  # create + write + rename + group fsync
            return _raw_write_files(folder, sizes, sizes[0], blob, rename=True)

    elif impl == "protobuf":

        def prepare(folder: Path) -> Any:
            return ProtobufBinaryWriter(folder / "port")

        def run(writer: ProtobufBinaryWriter) -> int:
            append = writer.append
            for i in range(n):
                t = T0_NS + i * STEP_NS
                append(payload, t, t)
            writer.close()
            return writer.bytes_written

    else:
        module = wire_module(impl)
        options = {**BINARY, "max_file_size_bytes": MAX_FILE_SIZE_BYTES}

        def prepare(folder: Path) -> Any:
            return _open_with(module, folder, options)

        def run(stream: CaptureStream) -> int:
            append_binary = stream.append_binary
            for i in range(n):
                t = T0_NS + i * STEP_NS
                append_binary(payload, t, t)
            stream.close()
            return stream.stats().bytes_written

    _run_rounds(
        benchmark,
        impl=impl,
        workdir=workdir,
        records=n,
        rounds=BINARY_ROUNDS,
        prepare=prepare,
        run=run,
    )
