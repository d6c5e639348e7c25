"""The wire module: framing, SensorData encoding, scanning, writing; compiled == twin."""

from __future__ import annotations

import math
import os
import struct
from types import ModuleType

import numpy as np
import pytest
from conftest import require_compiled
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wire_helpers import decode_frames, expected_value, struct_to_python, ts_ns

from capsync import wire

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
KEYS = st.text(min_size=0, max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.text(max_size=20)
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=20,
)
READINGS = st.dictionaries(KEYS, VALUES, max_size=8)
WRAP_KEYS = st.sampled_from([None, "", "readings", "docommand_output"])


@pytest.fixture(scope="module")
def compiled() -> ModuleType:
    require_compiled(wire.COMPILED, "capsync.wire._wire")
    return wire.COMPILED


def encode_readings(module: ModuleType, readings, requested, received, wrap_key) -> bytes:
    buffer = module.RecordBuffer(16)
    buffer.append_readings(readings, requested, received, wrap_key)
    return buffer.getvalue()


# ----- framing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (1, b"\x01"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (300, b"\xac\x02"),
        (2**64 - 1, b"\xff" * 9 + b"\x01"),
        (-1, b"\xff" * 9 + b"\x01"),
    ],
)
def test_varint_known_values(wire_impl: ModuleType, value: int, encoded: bytes) -> None:
    assert wire_impl.encode_varint(value) == encoded
    assert wire_impl.read_varint(b"\x00" + encoded, 1) == (value & (2**64 - 1), 1 + len(encoded))


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_varint_round_trip(value: int) -> None:
    kernels = wire.wire()
    encoded = kernels.encode_varint(value)
    assert kernels.read_varint(encoded) == (value, len(encoded))


@pytest.mark.parametrize(
    ("data", "offset", "message"),
    [
        (b"", 0, "truncated varint at offset 0"),
        (b"\x80\x80", 0, "truncated varint at offset 0"),
        (b"\x01\x80", 1, "truncated varint at offset 1"),
        (b"\xff" * 11, 0, "varint longer than 10 bytes at offset 0"),
        (b"\x01", -1, "offset -1 is negative"),
    ],
)
def test_read_varint_refuses_bad_input(wire_impl, data: bytes, offset: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        wire_impl.read_varint(data, offset)


def test_frame_prefixes_length(wire_impl: ModuleType) -> None:
    assert wire_impl.frame(b"") == b"\x00"
    assert wire_impl.frame(b"abc") == b"\x03abc"
    assert wire_impl.frame(bytearray(200)) == b"\xc8\x01" + bytes(200)
    assert wire_impl.frame(np.arange(3, dtype=np.uint8)) == b"\x03\x00\x01\x02"


def test_scan_frames_finds_every_frame_and_stops_at_a_truncated_tail(wire_impl) -> None:
    payloads = [b"", b"a", b"bc" * 100, b"xyz"]
    data = b"HDR" + b"".join(wire_impl.frame(p) for p in payloads)
    offsets, lengths, end = wire_impl.scan_frames(data, 3)
    assert [data[o : o + n] for o, n in zip(offsets, lengths, strict=True)] == payloads
    assert end == len(data)
    assert offsets.dtype == np.int64 and lengths.dtype == np.int64
    for cut in range(3, len(data)):
        offsets, lengths, end = wire_impl.scan_frames(data[:cut], 3)
        whole = [data[o : o + n] for o, n in zip(offsets, lengths, strict=True)]
        assert whole == payloads[: len(whole)]
        assert end <= cut
        assert all(o + n <= end for o, n in zip(offsets, lengths, strict=True))


def test_scan_frames_max_frames_and_resume(wire_impl: ModuleType) -> None:
    data = b"".join(wire_impl.frame(bytes([i]) * i) for i in range(10))
    offsets, _, end = wire_impl.scan_frames(data, 0, 4)
    assert len(offsets) == 4
    rest, _, final = wire_impl.scan_frames(data, end)
    assert len(rest) == 6 and final == len(data)
    with pytest.raises(ValueError, match="outside a buffer"):
        wire_impl.scan_frames(data, len(data) + 1)


def test_scan_frames_stops_at_an_overlong_varint(wire_impl: ModuleType) -> None:
    data = wire_impl.frame(b"ok") + b"\xff" * 12
    offsets, _, end = wire_impl.scan_frames(data)
    assert len(offsets) == 1 and end == 3


# ----- SensorData encoding ----------------------------------------------------------------


def test_readings_decode_with_the_protobuf_runtime(wire_impl: ModuleType) -> None:
    readings = {
        "a": 1.5,
        "b": True,
        "c": "text é",
        "d": None,
        "e": {"f": [1, 2.5, {"g": False}], "h": ()},
        "i": np.int64(3),
        "j": np.float32(0.5),
        "k": np.bool_(True),
        "nan": math.nan,
        "inf": -math.inf,
        "zero": 0.0,
        "empty": "",
    }
    data = encode_readings(
        wire_impl, readings, 1_700_000_000_123_456_789, 1_700_000_001, "readings"
    )
    (record,) = decode_frames(data)
    assert record.WhichOneof("data") == "struct"
    assert ts_ns(record.metadata.time_requested) == 1_700_000_000_123_456_789
    assert ts_ns(record.metadata.time_received) == 1_700_000_001
    assert record.metadata.mime_type == 0
    assert struct_to_python(record.struct) == {"readings": expected_value(readings)}
    assert math.copysign(1, record.struct["readings"]["inf"]) == -1


def test_unwrapped_and_docommand_structs(wire_impl: ModuleType) -> None:
    (plain,) = decode_frames(encode_readings(wire_impl, {"x": 1}, 0, 0, None))
    assert struct_to_python(plain.struct) == {"x": 1.0}
    (command,) = decode_frames(encode_readings(wire_impl, {"ok": 1}, 0, 0, "docommand_output"))
    assert struct_to_python(command.struct) == {"docommand_output": {"ok": 1.0}}
    (empty,) = decode_frames(encode_readings(wire_impl, {}, 5, 6, None))
    assert empty.WhichOneof("data") == "struct" and struct_to_python(empty.struct) == {}


def test_nan_and_infinity_keep_their_bits(wire_impl: ModuleType) -> None:
    for number in (math.nan, math.inf, -math.inf, -0.0):
        data = encode_readings(wire_impl, {"v": number}, 0, 0, None)
        assert struct.pack("<d", number) in data


@pytest.mark.parametrize("ns", [0, 1, 999_999_999, 1_000_000_000, -1, -1_500_000_000, 2**63 - 1])
def test_timestamps_follow_protobuf_rules(wire_impl: ModuleType, ns: int) -> None:
    (record,) = decode_frames(encode_readings(wire_impl, {}, ns, ns, None))
    assert ts_ns(record.metadata.time_requested) == ns
    assert 0 <= record.metadata.time_requested.nanos < 1_000_000_000


@pytest.mark.parametrize(
    ("readings", "error", "message"),
    [
        ({"a": b"bytes"}, TypeError, "reading 'a' has a value of type bytes"),
        ({"a": {"b": [1, object()]}}, TypeError, r"reading 'a\.b\[1\]' has a value of type object"),
        ({"a": {1: 2}}, TypeError, "reading key 1 at 'a' is not a string"),
        ({3: 1}, TypeError, "reading key 3 at the top level is not a string"),
        ({"big": 10**400}, TypeError, "reading 'big' is an integer too large for a double"),
        ({"s": "\ud800"}, TypeError, "reading 's' is a string that is not valid UTF-8"),
        ({"\ud800": 1}, TypeError, "is not valid UTF-8"),
        ({"a": [[[[]]]] * 1}, None, None),
    ],
)
def test_bad_values_name_the_key_and_append_nothing(wire_impl, readings, error, message) -> None:
    buffer = wire_impl.RecordBuffer(16)
    buffer.append_readings({"ok": 1}, 0, 0, "readings")
    before = buffer.getvalue()
    if error is None:
        buffer.append_readings(readings, 0, 0, "readings")
        return
    with pytest.raises(error, match=message):
        buffer.append_readings(readings, 0, 0, "readings")
    assert buffer.getvalue() == before


def test_nesting_limit(wire_impl: ModuleType) -> None:
    deep: dict = {}
    node = deep
    for _ in range(120):
        node["n"] = {}
        node = node["n"]
    with pytest.raises(ValueError, match="nested deeper than 100 levels"):
        wire_impl.RecordBuffer().append_readings(deep, 0, 0, None)


def test_readings_must_be_a_mapping(wire_impl: ModuleType) -> None:
    with pytest.raises(TypeError, match="readings must be a dict, got list"):
        wire_impl.RecordBuffer().append_readings([1], 0, 0)
    with pytest.raises(OverflowError):
        wire_impl.RecordBuffer().append_readings({}, 2**63, 0)


@pytest.mark.wire_independent
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(readings=READINGS, requested=INT64, received=INT64, wrap_key=WRAP_KEYS)
def test_compiled_equals_twin_and_protobuf_agrees(
    compiled: ModuleType, readings, requested, received, wrap_key
) -> None:
    ours = encode_readings(compiled, readings, requested, received, wrap_key)
    twin = encode_readings(wire.PURE, readings, requested, received, wrap_key)
    assert ours == twin
    (record,) = decode_frames(ours)
    decoded = struct_to_python(record.struct)
    expected = expected_value(readings)
    assert decoded == ({wrap_key: expected} if wrap_key else expected)
    assert ts_ns(record.metadata.time_requested) == requested
    assert ts_ns(record.metadata.time_received) == received


# ----- batches ---------------------------------------------------------------------------


def batch(n_rows: int, keys: list[str], seed: int = 0):
    rng = np.random.default_rng(seed)
    requested = 1_700_000_000_000_000_000 + np.arange(n_rows, dtype=np.int64) * 1_000_003
    received = requested + rng.integers(0, 10_000, n_rows)
    values = rng.normal(size=(n_rows, len(keys)))
    return requested, received, values


@pytest.mark.parametrize("wrap_key", [None, "readings"])
def test_batch_rows_equal_single_appends(wire_impl: ModuleType, wrap_key) -> None:
    keys = ["a", "bb", "ccc" * 50, "d", "é", ""]
    requested, received, values = batch(257, keys)
    values[3, 2] = math.nan
    values[4, 0] = math.inf
    one_call = wire_impl.RecordBuffer(16)
    assert one_call.append_batch(requested, received, values, keys, wrap_key) == 257
    singles = wire_impl.RecordBuffer(16)
    for row in range(257):
        fields = dict(zip(keys, values[row].tolist(), strict=True))
        singles.append_readings(fields, int(requested[row]), int(received[row]), wrap_key)
    assert one_call.getvalue() == singles.getvalue()


def test_batch_limit_bytes_and_start_row(wire_impl: ModuleType) -> None:
    keys = ["x", "y"]
    requested, received, values = batch(100, keys)
    buffer = wire_impl.RecordBuffer(16)
    next_row = buffer.append_batch(requested, received, values, keys, None, 0, 1000)
    assert 0 < next_row < 100
    assert buffer.nbytes <= 1000
    rest = wire_impl.RecordBuffer(16)
    assert rest.append_batch(requested, received, values, keys, None, next_row, -1) == 100
    whole = wire_impl.RecordBuffer(16)
    whole.append_batch(requested, received, values, keys)
    assert buffer.getvalue() + rest.getvalue() == whole.getvalue()
    # At least one row even when the limit is already passed.
    tiny = wire_impl.RecordBuffer(16)
    assert tiny.append_batch(requested, received, values, keys, None, 5, 0) == 6
    assert (
        wire_impl.RecordBuffer().append_batch(requested, received, values, keys, None, 100) == 100
    )


def test_batch_accepts_other_dtypes_and_zero_rows(wire_impl: ModuleType) -> None:
    buffer = wire_impl.RecordBuffer()
    assert buffer.append_batch([1, 2], [3, 4], [[1, 2], [3, 4]], ["a", "b"]) == 2
    (_first, second) = decode_frames(buffer.getvalue())
    assert struct_to_python(second.struct) == {"a": 3.0, "b": 4.0}
    empty = wire_impl.RecordBuffer()
    assert empty.append_batch(np.zeros(0), np.zeros(0), np.zeros((0, 2)), ["a", "b"]) == 0
    assert empty.nbytes == 0


@pytest.mark.parametrize(
    ("requested", "received", "values", "keys", "message"),
    [
        (np.zeros(3), np.zeros(3), np.zeros((3, 2)), ["a"], "values has 2 columns but 1 keys"),
        (np.zeros(2), np.zeros(3), np.zeros((3, 1)), ["a"], r"time_requested_ns has shape \(2,\)"),
        (np.zeros(3), np.zeros((3, 1)), np.zeros((3, 1)), ["a"], "time_received_ns has shape"),
        (np.zeros(3), np.zeros(3), np.zeros(3), ["a"], "values must be 2-D"),
        (np.zeros(1), np.zeros(1), np.zeros((1, 2)), ["a", "a"], "batch key 'a' is given twice"),
    ],
)
def test_batch_shape_errors_say_which(wire_impl, requested, received, values, keys, message):
    with pytest.raises(ValueError, match=message):
        wire_impl.RecordBuffer().append_batch(requested, received, values, keys)


def test_batch_keys_must_be_strings(wire_impl: ModuleType) -> None:
    with pytest.raises(TypeError, match="batch key 1 is not a string"):
        wire_impl.RecordBuffer().append_batch([0], [0], [[1.0]], [1])


@pytest.mark.wire_independent
@settings(max_examples=100, deadline=None)
@given(
    n_rows=st.integers(0, 40),
    keys=st.lists(st.text(max_size=8), min_size=1, max_size=7, unique=True),
    wrap_key=WRAP_KEYS,
    seed=st.integers(0, 2**32 - 1),
    limit=st.integers(-1, 4000),
)
def test_batch_compiled_equals_twin(compiled, n_rows, keys, wrap_key, seed, limit) -> None:
    requested, received, values = batch(n_rows, keys, seed)
    outputs = []
    for module in (compiled, wire.PURE):
        buffer = module.RecordBuffer(8)
        row = buffer.append_batch(requested, received, values, keys, wrap_key, 0, limit)
        outputs.append((row, buffer.getvalue()))
    assert outputs[0] == outputs[1]
    rows = decode_frames(outputs[0][1])
    for index, record in enumerate(rows):
        fields = dict(zip(keys, values[index].tolist(), strict=True))
        assert struct_to_python(record.struct) == ({wrap_key: fields} if wrap_key else fields)


# ----- binary ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 127, 128, 70_000, 1_000_001])
def test_binary_prefix_plus_payload_is_one_record(wire_impl, size: int, tmp_path) -> None:
    payload = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8)
    buffer = wire_impl.RecordBuffer(16)
    buffer.append_binary_prefix(size, 10, 20, 2)
    expected_nbytes = buffer.nbytes + size
    path = tmp_path / "out"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        assert buffer.write_to(fd, payload) == expected_nbytes
    finally:
        os.close(fd)
    assert buffer.nbytes == 0
    (record,) = decode_frames(path.read_bytes())
    assert record.WhichOneof("data") == "binary"
    assert record.binary == payload.tobytes()
    assert record.metadata.mime_type == 2
    assert ts_ns(record.metadata.time_received) == 20


@pytest.mark.wire_independent
def test_binary_prefix_compiled_equals_twin(compiled: ModuleType) -> None:
    for size in (0, 5, 300, 2**21):
        for mime in (0, 1, 3):
            a, b = compiled.RecordBuffer(4), wire.PURE.RecordBuffer(4)
            a.append_binary_prefix(size, -7, 2**40, mime)
            b.append_binary_prefix(size, -7, 2**40, mime)
            assert a.getvalue() == b.getvalue()


def test_binary_prefix_refuses_negative_sizes(wire_impl: ModuleType) -> None:
    with pytest.raises(ValueError, match="payload_nbytes must be >= 0"):
        wire_impl.RecordBuffer().append_binary_prefix(-1, 0, 0)
    with pytest.raises(ValueError, match="mime_type must be >= 0"):
        wire_impl.RecordBuffer().append_binary_prefix(1, 0, 0, -1)


# ----- the buffer and writes -------------------------------------------------------------


def test_buffer_grows_and_clears(wire_impl: ModuleType) -> None:
    buffer = wire_impl.RecordBuffer(1)
    for i in range(1000):
        buffer.append_readings({"i": i}, i, i)
    assert buffer.capacity_bytes >= buffer.nbytes > 1000
    assert len(decode_frames(buffer.getvalue())) == 1000
    buffer.clear()
    assert buffer.nbytes == 0 and buffer.getvalue() == b""
    with pytest.raises(ValueError, match="capacity_bytes must be >= 1"):
        wire_impl.RecordBuffer(0)


def test_write_to_a_pipe_in_pieces(wire_impl: ModuleType) -> None:
    buffer = wire_impl.RecordBuffer()
    buffer.append_frame(b"h" * 10)
    tail = b"t" * 200_000  # more than a pipe holds: forces short writes
    read_fd, write_fd = os.pipe()
    received = bytearray()
    import threading

    def drain() -> None:
        while chunk := os.read(read_fd, 65536):
            received.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        assert buffer.write_to(write_fd, tail) == 11 + len(tail)
    finally:
        os.close(write_fd)
        reader.join()
        os.close(read_fd)
    assert bytes(received) == b"\x0a" + b"h" * 10 + tail


def test_write_error_keeps_the_buffer(wire_impl: ModuleType) -> None:
    buffer = wire_impl.RecordBuffer()
    buffer.append_readings({"a": 1}, 0, 0)
    before = buffer.getvalue()
    full = os.open("/dev/full", os.O_WRONLY)
    try:
        with pytest.raises(OSError) as caught:
            buffer.write_to(full)
    finally:
        os.close(full)
    assert caught.value.errno == 28  # ENOSPC
    assert isinstance(caught.value, OSError)
    assert buffer.getvalue() == before
    with pytest.raises(OSError):
        buffer.write_to(-1)
    assert buffer.getvalue() == before
