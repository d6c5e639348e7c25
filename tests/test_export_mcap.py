"""``capsync convert --to mcap``: capture files read back through the ``mcap`` reader."""

from __future__ import annotations

import io
import json
import math
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from export_helpers import frame_records, run_encoder
from foxglove_schemas_protobuf.CompressedImage_pb2 import CompressedImage
from foxglove_schemas_protobuf.PackedElementField_pb2 import PackedElementField
from foxglove_schemas_protobuf.PointCloud_pb2 import PointCloud
from google.protobuf import json_format, struct_pb2
from mcap.reader import make_reader
from mcap.records import Message as McapMessage
from mcap.records import MessageIndex
from mcap.stream_reader import StreamReader
from mcap_protobuf.decoder import DecoderFactory
from PIL import Image
from wire_helpers import struct_to_python, ts_ns

from capsync import native_available
from capsync.capture.header import build_header, encode_header
from capsync.capture.reader import read_capture_file
from capsync.capture.stream import open_stream
from capsync.cli import main
from capsync.export.frames import struct_json
from capsync.export.mcap_export import convert_capture_files
from capsync.export.mcap_writer import DEFAULT_CHUNK_SIZE_BYTES

S = 1_000_000_000
T0 = 1_714_564_800 * S


def _image(color: tuple[int, int, int], fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 12), color).save(out, fmt)
    return out.getvalue()


POINTS = np.array(
    [(1.5, -2.0, 3.25, 7), (0.0, 1.0, 2.0, 9)],
    dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<u4")],
)
PCD_BINARY = (
    b"# .PCD v0.7\nVERSION 0.7\nFIELDS x y z rgb\nSIZE 4 4 4 4\nTYPE F F F U\nCOUNT 1 1 1 1\n"
    b"WIDTH 2\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS 2\nDATA binary\n" + POINTS.tobytes()
)
PCD_ASCII = (
    b"VERSION 0.7\nFIELDS x y z rgb\nSIZE 4 4 4 4\nTYPE F F F U\nCOUNT 1 1 1 1\n"
    b"WIDTH 2\nHEIGHT 1\nPOINTS 2\nDATA ascii\n1.5 -2 3.25 7\n0 1 2 9\n"
)


def _readings(i: int) -> dict[str, Any]:
    return {
        "x": i * 0.25 - 3,
        "y": {"deep": -i, "label": f'tick "{i}"\n\u00e9'},
        "ok": i % 2 == 0,
        "none": None,
        "list": [i, "a", {"k": 1.5}, [], True],
    }


@pytest.fixture
def capture_dir(tmp_path: Path) -> Path:
    root = tmp_path / "capture"
    with open_stream(
        root,
        component_type="rdk:component:sensor",
        component_name="imu",
        method_name="Readings",
        max_file_size_bytes=4_000,
    ) as stream:
        for i in range(300):
            stream.append(_readings(i), T0 + i * 1000, T0 + i * 1000 + 500)
    with open_stream(
        root,
        component_type="rdk:component:movement_sensor",
        component_name="gps",
        method_name="Position",
    ) as stream:
        stream.append({"coordinate": {"latitude": 1.0, "longitude": 2.0}, "altitude_m": 0}, 5, 9)
    for mime, fmt, colors in (("image/jpeg", "JPEG", 3), ("image/png", "PNG", 2)):
        with open_stream(
            root,
            component_type="rdk:component:camera",
            component_name="cam",
            method_name="ReadImage",
            mime_type=mime,
        ) as stream:
            for i in range(colors):
                stream.append_binary(_image((40 * i, 0, 200), fmt), T0 + i * S, T0 + i * S + 7)
    with open_stream(
        root,
        component_type="rdk:component:camera",
        component_name="lidar",
        method_name="NextPointCloud",
    ) as stream:
        stream.append_binary(PCD_BINARY, T0, T0 + 3)
        stream.append_binary(PCD_ASCII, T0 + S, T0 + S + 3)
    return root


def _expected(capture_dir: Path) -> dict[tuple[str, str], list[tuple[int, int, Any, str]]]:
    """(component, method) -> [(time_received, time_requested, payload, mime)] in file order."""
    expected: dict[tuple[str, str], list[tuple[int, int, Any, str]]] = defaultdict(list)
    for path in sorted(capture_dir.rglob("*.capture")):
        header, records = read_capture_file(path)
        for record in records:
            payload = (
                record.binary
                if record.WhichOneof("data") == "binary"
                else struct_to_python(record.struct)
            )
            expected[header.component_name, header.method_name].append(
                (
                    ts_ns(record.metadata.time_received),
                    ts_ns(record.metadata.time_requested),
                    payload,
                    header.mime_type,
                )
            )
    return expected


def _read_back(path: Path) -> tuple[Any, dict[str, list[tuple[Any, Any, Any]]]]:
    by_topic: dict[str, list[tuple[Any, Any, Any]]] = defaultdict(list)
    with open(path, "rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        summary = reader.get_summary()
        for schema, channel, message in reader.iter_messages(log_time_order=False):
            by_topic[channel.topic].append((schema, channel, message))
    for messages in by_topic.values():
        messages.sort(key=lambda m: m[2].sequence)
    return summary, by_topic


def _check_message_indexes(path: Path) -> None:
    """Every chunk's MessageIndex records point, in log time order, at exactly the
    chunk's messages (opcode, channel and log time checked at each offset), and the
    chunk's start/end times and sizes are its messages'."""
    import zstandard
    from mcap.records import Chunk

    chunk: Any = None
    body = b""
    seen: set[int] = set()

    def close_chunk() -> None:
        if chunk is None:
            return
        starts, pos = set(), 0
        times = []
        while pos < len(body):
            assert body[pos] == 0x05  # only Message records in a chunk
            starts.add(pos)
            times.append(int.from_bytes(body[pos + 15 : pos + 23], "little"))
            pos += 9 + int.from_bytes(body[pos + 1 : pos + 9], "little")
        assert pos == len(body) == chunk.uncompressed_size
        assert seen == starts
        assert (chunk.message_start_time, chunk.message_end_time) == (min(times), max(times))

    with open(path, "rb") as stream:
        for record in StreamReader(stream, skip_magic=False, emit_chunks=True).records:
            if isinstance(record, Chunk):
                close_chunk()
                chunk, seen = record, set()
                body = (
                    zstandard.decompress(record.data, record.uncompressed_size)
                    if record.compression == "zstd"
                    else record.data
                )
            elif isinstance(record, MessageIndex):
                times = [t for t, _ in record.records]
                assert times == sorted(times)
                for log_time, offset in record.records:
                    assert body[offset] == 0x05
                    assert int.from_bytes(body[offset + 9 : offset + 11], "little") == (
                        record.channel_id
                    )
                    assert int.from_bytes(body[offset + 15 : offset + 23], "little") == log_time
                    assert offset not in seen
                    seen.add(offset)
    close_chunk()
    assert chunk is not None


@pytest.mark.parametrize("chunk_size_bytes", [1_000, 4 << 20])
def test_convert_reads_back_exactly(
    capture_dir: Path, tmp_path: Path, chunk_size_bytes: int
) -> None:
    out = tmp_path / "out.mcap"
    counts = convert_capture_files([capture_dir], out, chunk_size_bytes=chunk_size_bytes)
    expected = _expected(capture_dir)
    summary, by_topic = _read_back(out)
    assert len(list(capture_dir.rglob("*.capture"))) > 8  # the readings rotated over files
    assert counts.skipped == []

    topics = {
        ("imu", "Readings"),
        ("gps", "Position"),
        ("cam", "ReadImage"),
        ("lidar", "NextPointCloud"),
    }
    assert {c.topic for c in summary.channels.values()} == {f"/{c}/{m}" for c, m in topics}
    assert set(expected) == topics
    stats = summary.statistics
    assert stats.message_count == sum(len(v) for v in expected.values()) == counts.messages
    for channel in summary.channels.values():
        key = (channel.metadata["component_name"], channel.metadata["method_name"])
        assert stats.channel_message_counts[channel.id] == len(expected[key])
    with open(out, "rb") as stream:  # read front to back too, as a non-seekable reader does
        records = list(StreamReader(stream, skip_magic=False).records)
    assert sum(isinstance(r, McapMessage) for r in records) == stats.message_count
    _check_message_indexes(out)
    log_times = [r.log_time for r in records if isinstance(r, McapMessage)]
    assert (stats.message_start_time, stats.message_end_time) == (min(log_times), max(log_times))
    if chunk_size_bytes == 1_000:
        assert stats.chunk_count > 10
    assert all(i.compression in ("zstd", "") for i in summary.chunk_indexes)
    assert any(i.compression == "zstd" for i in summary.chunk_indexes)

    schemas = {s.name: s for s in summary.schemas.values()}
    assert {"foxglove.CompressedImage", "foxglove.PointCloud"} <= set(schemas)
    imu_schema = json.loads(schemas["capsync.Readings"].data)
    assert schemas["capsync.Readings"].encoding == "jsonschema"
    assert imu_schema["properties"]["readings"]["properties"]["x"] == {"type": "number"}

    for (component, method), rows in expected.items():
        messages = by_topic[f"/{component}/{method}"]
        assert [m[2].log_time for m in messages] == [r[0] for r in rows]
        assert [m[2].publish_time for m in messages] == [r[1] for r in rows]
        for (_schema, channel, message), (received, _, payload, mime) in zip(
            messages, rows, strict=True
        ):
            if method in ("Readings", "Position"):
                assert channel.message_encoding == "json"
                assert json.loads(message.data) == payload
            elif method == "ReadImage":
                image = CompressedImage.FromString(message.data)
                assert image.data == payload
                assert image.format == mime.split("/")[1]
                assert image.frame_id == component
                assert ts_ns(image.timestamp) == received
            else:
                cloud = PointCloud.FromString(message.data)
                assert [f.name for f in cloud.fields] == ["x", "y", "z", "rgb"]
                assert [f.offset for f in cloud.fields] == [0, 4, 8, 12]
                assert cloud.fields[3].type == PackedElementField.UINT32
                assert cloud.point_stride == 16
                assert cloud.data == POINTS.tobytes()
                assert cloud.pose.orientation.w == 1.0


def test_foxglove_decoders_read_images_and_clouds(capture_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mcap"
    convert_capture_files([capture_dir], out)
    decoded: dict[str, list[Any]] = defaultdict(list)
    with open(out, "rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        for _, channel, _, message in reader.iter_decoded_messages(
            topics=["/cam/ReadImage", "/lidar/NextPointCloud"]
        ):
            decoded[channel.topic].append(message)
    images = decoded["/cam/ReadImage"]
    assert len(images) == 5
    for image in images:
        assert Image.open(io.BytesIO(image.data)).size == (16, 12)
    clouds = decoded["/lidar/NextPointCloud"]
    assert [type(c).__name__ for c in clouds] == ["PointCloud", "PointCloud"]
    points = np.frombuffer(clouds[1].data, dtype=POINTS.dtype)
    assert points.tolist() == POINTS.tolist()


def test_cli_convert(capture_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.mcap"
    assert main(["convert", str(capture_dir), "--to", "mcap", "--out", str(out)]) == 0
    assert "wrote 308 messages on 4 channels" in capsys.readouterr().err
    summary, _ = _read_back(out)
    assert summary.statistics.message_count == 308


def test_cli_convert_threads_give_the_same_file(
    capture_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--threads 0`` (all on the main thread) and ``--threads 2`` write the same bytes;
    a bad count is a usage error naming the option."""
    files = []
    for threads in ("0", "2"):
        out = tmp_path / f"threads-{threads}.mcap"
        assert main(["convert", str(capture_dir), "--out", str(out), "--threads", threads]) == 0
        files.append(out.read_bytes())
    assert files[0] == files[1]
    capsys.readouterr()
    for bad in ("-1", "two"):
        with pytest.raises(SystemExit) as exited:
            main(["convert", str(capture_dir), "--out", str(tmp_path / "x.mcap"), "--threads", bad])
        assert exited.value.code == 2
        assert "argument --threads: must be" in capsys.readouterr().err


def test_cli_convert_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.mcap"
    assert main(["convert", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"capsync: error: {tmp_path / 'nope'}: no such file or folder"
    )
    header = encode_header(
        build_header(
            component_type="rdk:component:sensor", component_name="s", method_name="Readings"
        )
    )
    for name, content in (
        ("bad-header.capture", b"\x05\xff\xff\xff\xff\xff"),
        ("bad-record.capture", bytes([len(header)]) + header + b"\x03\x0a\x10\x00"),
    ):
        broken = tmp_path / name
        broken.write_bytes(content)
        assert main(["convert", str(broken), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"capsync: error: {broken}: "), err
    assert not out.exists() and not list(tmp_path.glob("*.partial"))


def _random_value(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(7 if depth < 3 else 4)
    if kind == 0:
        return rng.choice(
            [
                0.0,
                -0.0,
                1e300,
                -2.5e-310,
                rng.uniform(-1e6, 1e6),
                3.0,
                -7.0,
                1e15,
                1e16,
                -1e16,
                9999999999999998.0,
                float(rng.randrange(-(10**12), 10**12)),
                2.0**63,
                -(2.0**63),
            ]
        )
    if kind == 1:
        return "".join(rng.choice('ab"\\\n\t\x01\u00e9\u2603 ') for _ in range(rng.randrange(6)))
    if kind == 2:
        return rng.random() < 0.5
    if kind == 3:
        return None
    if kind in (4, 5):
        return {f"k{i}": _random_value(rng, depth + 1) for i in range(rng.randrange(4))}
    return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]


def test_struct_json_matches_protobuf_json() -> None:
    rng = random.Random(7)
    for _ in range(300):
        value = {f"f{i}": _random_value(rng, 0) for i in range(rng.randrange(5))}
        message = struct_pb2.Struct()
        message.update(value)
        data = message.SerializeToString()
        text = struct_json(data, 0, len(data))
        assert json.loads(text) == json_format.MessageToDict(message)
        assert text == json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)


def test_struct_json_writes_non_finite_numbers_as_null() -> None:
    message = struct_pb2.Struct()
    message.update({"a": math.nan, "b": math.inf, "c": 1.0})
    data = message.SerializeToString()
    assert json.loads(struct_json(data, 0, len(data))) == {"a": None, "b": None, "c": 1.0}


def _frames(values: list[dict[str, Any]], rng: random.Random) -> tuple[bytes, list[int], list[int]]:
    from capsync.proto import data_sync_pb2

    records = []
    for value in values:
        record = data_sync_pb2.SensorData()
        record.metadata.time_requested.seconds = rng.randrange(-5, 2_000_000_000)
        record.metadata.time_requested.nanos = rng.randrange(1_000_000_000)
        record.metadata.time_received.seconds = rng.randrange(0, 2_000_000_000)
        record.struct.update(value)
        records.append(record)
    return frame_records(records)


def test_compiled_encoder_matches_its_twin() -> None:
    from conftest import require_compiled

    from capsync.export import frames, mcap_export

    _export = mcap_export._COMPILED
    require_compiled(_export, "capsync.export._export")

    rng = random.Random(11)
    for round_ in range(200):
        values = [
            {f"f{i}": _random_value(rng, 0) for i in range(rng.randrange(5))}
            for _ in range(rng.randrange(1, 6))
        ]
        data, offsets, lengths = _frames(values, rng)
        if round_ % 2:  # damage a byte: both must fail (or not) the same way
            at = rng.randrange(len(data))
            data = data[:at] + bytes([rng.randrange(256)]) + data[at + 1 :]
        args = (data, np.array(offsets), np.array(lengths), 3, 2**32 - 2)
        compiled = run_encoder(_export.tabular_message_records, *args)
        assert compiled == run_encoder(frames.tabular_message_records, *args)
        if round_ % 2 == 0:
            records = compiled[0]
            for start, value in zip(compiled[2], values, strict=True):
                size = int.from_bytes(records[start + 1 : start + 9], "little") - 22
                body = records[start + 31 : start + 31 + size]
                message = struct_pb2.Struct()
                message.update(value)
                assert json.loads(body) == json_format.MessageToDict(message)


def test_records_into_a_reused_buffer() -> None:
    """``tabular_records_into`` (compiled and twin alike) writes into a reused buffer,
    longer or shorter than the records, the same records ``tabular_message_records``
    returns, each at its offset; a frame that does not parse is an error."""
    from conftest import require_compiled

    from capsync.export import frames, mcap_export

    _export = mcap_export._COMPILED
    require_compiled(_export, "capsync.export._export")
    rng = random.Random(5)
    values = [{"readings": {"x": rng.uniform(-9, 9), "s": "é" * (i % 3)}} for i in range(40)]
    data, offsets, lengths = _frames(values, rng)
    frame_args = (data, np.array(offsets), np.array(lengths), 3, 7)
    records, log_times, starts = frames.tabular_message_records(*frame_args)
    for fill in (_export.tabular_records_into, frames.tabular_records_into):
        for held in (b"", b"\xee" * 5000, b"\xee" * 50):  # fresh, longer, shorter
            buffer = bytearray(held)
            size, times, at = fill(buffer, *frame_args)
            assert size == len(records)
            assert bytes(buffer[:size]) == records
            assert [int(t) for t in times] == log_times
            assert [int(o) for o in at] == starts
        broken = data[: offsets[5]] + b"\xff" + data[offsets[5] + 1 :]
        with pytest.raises(ValueError):
            fill(bytearray(100), broken, *frame_args[1:])


def test_convert_memory_stays_bounded(tmp_path: Path) -> None:
    """Over 30 MB of capture files go through with a few MB of Python allocations."""
    import tracemalloc

    root = tmp_path / "big"
    payload = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4096  # ~1 MiB "JPEG"
    with open_stream(root, component_type="rdk:component:camera", component_name="cam",
                     method_name="ReadImage", mime_type="image/jpeg") as stream:  # fmt: skip
        for i in range(30):
            stream.append_binary(payload, T0 + i, T0 + i + 1)
    readings = 10_000 if native_available() else 1_000  # the twin is slow under tracemalloc
    values = np.random.default_rng(3).normal(size=(readings, 6))
    times = T0 + np.arange(readings, dtype=np.int64)
    with open_stream(root, component_type="rdk:component:sensor", component_name="imu",
                     method_name="Readings") as stream:  # fmt: skip
        stream.append_batch(times, times + 1, values, ["a", "b", "c", "d", "e", "f"])
    total = sum(p.stat().st_size for p in root.rglob("*.capture"))
    assert total > 31_000_000
    tracemalloc.start()
    try:
        counts = convert_capture_files([root], tmp_path / "big.mcap", chunk_size_bytes=1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert counts.messages == readings + 30
    assert peak < 12_000_000, peak


def test_reading_json_matches_the_capture_file_path() -> None:
    from capsync.export.reading_json import reading_json

    value = {"readings": {"a": math.nan, "b": [math.inf, 1.5, {"c": -math.inf}], "d": "é"}}
    message = struct_pb2.Struct()
    message.update(value)
    data = message.SerializeToString()
    assert json.loads(reading_json(value)) == json.loads(struct_json(data, 0, len(data)))
    assert json.loads(reading_json(value)) == {
        "readings": {"a": None, "b": [None, 1.5, {"c": None}], "d": "é"}
    }


def test_convert_holds_a_few_mb_at_the_default_chunk_size(tmp_path: Path) -> None:
    """Readings only, at the default chunk size, with the encoding threads and the
    compression threads all busy: the writer holds at most about four chunks
    (filling one, two compressing, the batches encoded ahead), a few MB, however
    large the export."""
    root = tmp_path / "capture"
    readings = 60_000 if native_available() else 20_000  # the twin takes longer
    values = np.random.default_rng(5).normal(size=(readings, 6))
    times = T0 + np.arange(readings, dtype=np.int64)
    with open_stream(root, component_type="rdk:component:sensor", component_name="imu",
                     method_name="Readings") as stream:  # fmt: skip
        stream.append_batch(times, times + 1, values, ["a", "b", "c", "d", "e", "f"])
    out = tmp_path / "out.mcap"
    counts = convert_capture_files([root], out, workers=2)
    summary, _ = _read_back(out)
    assert counts.messages == readings
    assert len(summary.chunk_indexes) >= 2
    assert DEFAULT_CHUNK_SIZE_BYTES <= 1 << 20
    assert DEFAULT_CHUNK_SIZE_BYTES <= counts.peak_buffered_bytes <= 5 * DEFAULT_CHUNK_SIZE_BYTES


def test_convert_buffers_about_one_chunk(tmp_path: Path) -> None:
    """With 64 KiB chunks, no chunk holds more than 64 KiB plus one message and the
    writer never holds more than three chunks' worth, though one capture file's
    readings are encoded in batches several times larger than a chunk."""
    chunk_size_bytes = 64 << 10
    root = tmp_path / "capture"
    readings = 12_000 if native_available() else 3_000  # the twin takes longer
    values = np.random.default_rng(4).normal(size=(readings, 6))
    times = T0 + np.arange(readings, dtype=np.int64)
    with open_stream(root, component_type="rdk:component:sensor", component_name="imu",
                     method_name="Readings", max_file_size_bytes=4 << 20) as stream:  # fmt: skip
        stream.append_batch(times, times + 1, values, ["a", "b", "c", "d", "e", "f"])
    payload = b"\xff\xd8\xff\xe0" + bytes(100_000)
    with open_stream(root, component_type="rdk:component:camera", component_name="cam",
                     method_name="ReadImage", mime_type="image/jpeg") as stream:  # fmt: skip
        for i in range(8):
            stream.append_binary(payload, T0 + i, T0 + i + 1)
    assert max(p.stat().st_size for p in root.rglob("*.capture")) > 5 * chunk_size_bytes
    out = tmp_path / "out.mcap"
    counts = convert_capture_files([root], out, chunk_size_bytes=chunk_size_bytes)
    summary, by_topic = _read_back(out)
    assert counts.messages == summary.statistics.message_count == readings + 8
    _check_message_indexes(out)
    largest = max(len(m[2].data) + 31 for rows in by_topic.values() for m in rows)
    sizes = [c.uncompressed_size for c in summary.chunk_indexes]
    assert len(sizes) > 12
    assert max(sizes) <= chunk_size_bytes + largest, (max(sizes), largest)
    assert counts.peak_buffered_bytes <= 3 * (chunk_size_bytes + largest)
    assert counts.peak_buffered_bytes >= chunk_size_bytes  # it is measured, not left at 0


def _number_frame(values: list[float]) -> bytes:
    """A SensorData frame whose struct is ``{"l": [values...]}``, built straight from
    bytes (protobuf's Struct would take seconds for this many values)."""

    def field(tag: int, body: bytes) -> bytes:
        size, prefix = len(body), bytearray([tag])
        while size >= 0x80:
            prefix.append(size & 0x7F | 0x80)
            size >>= 7
        prefix.append(size)
        return bytes(prefix) + body

    items = np.empty(len(values), dtype=[("head", "u1", 3), ("number", "<f8")])
    items["head"] = (0x0A, 0x09, 0x11)  # ListValue.values: Value{number_value}
    items["number"] = values
    entry = field(0x0A, b"l") + field(0x12, field(0x32, items.tobytes()))
    return field(0x12, field(0x0A, entry))


def test_compiled_numbers_are_what_repr_writes() -> None:
    """The compiled encoder writes doubles with Ryu; the twin with repr(): the same text
    for random bit patterns, decimal-looking values, integers and the edge cases."""
    from conftest import require_compiled

    from capsync.export import frames, mcap_export

    _export = mcap_export._COMPILED
    require_compiled(_export, "capsync.export._export")
    rng = np.random.default_rng(12)
    values = np.concatenate(
        [
            rng.integers(0, 2**64, 8_000, dtype=np.uint64).view(np.float64),
            rng.normal(size=8_000) * 10.0 ** rng.integers(-22, 22, 8_000),
            np.round(rng.normal(size=8_000) * 1e6) / 10.0 ** rng.integers(0, 9, 8_000),
            rng.integers(-(2**62), 2**62, 4_000).astype(np.float64),
            rng.integers(0, 2**52, 2_000, dtype=np.uint64).view(np.float64),  # subnormal
            10.0 ** np.arange(-323, 309),
            [5e-324, -5e-324, 1.7976931348623157e308, 0.0, -0.0, 1e16, 1e15, 1e-4, 1e-5],
            [9999999999999998.0, 123456789012345680.0, 2.0**63, 0.1, 1 / 3, -2.5],
        ]
    )
    values = values[np.isfinite(values)].tolist()
    frame = _number_frame(values)
    args = (frame, np.array([0]), np.array([len(frame)]), 1, 0)
    compiled = run_encoder(_export.tabular_message_records, *args)
    assert compiled == run_encoder(frames.tabular_message_records, *args)
    assert compiled[0][31:] == ('{"l":[' + ",".join(map(repr, values)) + "]}").encode()
