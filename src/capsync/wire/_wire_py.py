"""Pure-Python twin of the compiled wire module ``capsync.wire._wire``.

Every public name here exists in ``ext/capsync/_wire.pyx`` with the same
signature and byte-identical output; the test suite runs against both. This
module is the readable specification of the hot path: when in doubt about what
the compiled code does, read this one.

Encoding rules (protobuf wire format, proto3):

* ``SensorData.metadata`` (field 1) is always written; inside it the two
  ``Timestamp`` messages are always written, their ``seconds``/``nanos`` only
  when non-zero, ``mime_type`` (field 3) only when non-zero.
* ``SensorData.struct`` (field 2) / ``binary`` (field 3) are a oneof and so
  always written, even when empty.
* ``google.protobuf.Value`` kinds are a oneof too: ``0.0``, ``False``, ``""``
  and ``null`` are written explicitly. Map entries are written key then value,
  in the mapping's iteration order.
* Integers are stored as doubles (``Struct`` has no integer kind); NaN and
  +/-inf keep their bit pattern.
"""

from __future__ import annotations

import operator
import os
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

# The API, the same names and signatures as the compiled module's ``__all__``
# (tests/test_wire_parity.py checks it). ``as_int64`` and ``normalize_batch`` are
# input normalisation the compiled module borrows from here, not part of the API.
__all__ = [
    "RecordBuffer",
    "encode_varint",
    "frame",
    "read_varint",
    "scan_frames",
    "scan_upload",
    "upload_body",
]

MAX_NESTING_DEPTH = 100
_U64_MASK = (1 << 64) - 1
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_NS_PER_S = 1_000_000_000
_pack_double = struct.Struct("<d").pack

# Field tags: (field_number << 3) | wire_type.
_TAG_METADATA = b"\x0a"  # SensorData.metadata, LEN
_TAG_STRUCT = b"\x12"  # SensorData.struct, LEN
_TAG_BINARY = b"\x1a"  # SensorData.binary, LEN
_TAG_TIME_REQUESTED = b"\x0a"  # SensorMetadata.time_requested, LEN
_TAG_TIME_RECEIVED = b"\x12"  # SensorMetadata.time_received, LEN
_TAG_MIME_TYPE = 0x18  # SensorMetadata.mime_type, VARINT
_TAG_SECONDS = 0x08  # Timestamp.seconds, VARINT
_TAG_NANOS = 0x10  # Timestamp.nanos, VARINT
_TAG_FIELDS_ENTRY = b"\x0a"  # Struct.fields map entry, LEN
_TAG_ENTRY_KEY = b"\x0a"  # map entry key, LEN
_TAG_ENTRY_VALUE = b"\x12"  # map entry value, LEN
_VALUE_NULL = b"\x08\x00"  # Value.null_value = NULL_VALUE
_TAG_VALUE_NUMBER = b"\x11"  # Value.number_value, I64
_TAG_VALUE_STRING = b"\x1a"  # Value.string_value, LEN
_VALUE_TRUE = b"\x20\x01"  # Value.bool_value
_VALUE_FALSE = b"\x20\x00"
_TAG_VALUE_STRUCT = b"\x2a"  # Value.struct_value, LEN
_TAG_VALUE_LIST = b"\x32"  # Value.list_value, LEN
_TAG_LIST_VALUES = b"\x0a"  # ListValue.values, LEN


def encode_varint(value: int) -> bytes:
    """Encode ``value`` as a protobuf varint; negative values as 64-bit two's complement."""
    value &= _U64_MASK
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_varint(buf: Any, offset: int = 0) -> tuple[int, int]:
    """Decode the varint at ``offset``; return ``(value, offset_after)``.

    Raises ``ValueError`` when the buffer ends inside the varint or the varint
    is longer than 10 bytes.
    """
    # Release the views even when raising: a live export would keep an mmap from closing.
    with memoryview(buf) as raw, raw.cast("B") as view:
        return _read_varint(view, offset)


def _read_varint(view: memoryview, offset: int) -> tuple[int, int]:
    if offset < 0:
        raise ValueError(f"offset {offset} is negative")
    result = 0
    shift = 0
    pos = offset
    end = len(view)
    while True:
        if pos >= end:
            raise ValueError(f"truncated varint at offset {offset}")
        if shift >= 70:
            raise ValueError(f"varint longer than 10 bytes at offset {offset}")
        byte = view[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & _U64_MASK, pos
        shift += 7


def frame(payload: Any) -> bytes:
    """Return ``payload`` prefixed with its length as a varint (one delimited record)."""
    data = bytes(memoryview(payload).cast("B"))
    return encode_varint(len(data)) + data


def scan_frames(
    buf: Any, offset: int = 0, max_frames: int = -1
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], int]:
    """Find the length-delimited frames of ``buf`` from ``offset`` on, without decoding them.

    Returns ``(offsets, lengths, end)``: the offset of each frame's payload,
    its length in bytes, and the offset just past the last whole frame. The
    scan stops at the end of the buffer, after ``max_frames`` frames (when
    ``>= 0``), or at a frame that does not fit (a truncated tail: ``end`` then
    points at its length prefix).
    """
    offsets: list[int] = []
    lengths: list[int] = []
    with memoryview(buf) as raw, raw.cast("B") as view:
        size = len(view)
        if offset < 0 or offset > size:
            raise ValueError(f"offset {offset} is outside a buffer of {size} bytes")
        pos = offset
        while pos < size and (max_frames < 0 or len(offsets) < max_frames):
            try:
                length, payload_at = _read_varint(view, pos)
            except ValueError:
                break
            if length > size - payload_at:
                break
            offsets.append(payload_at)
            lengths.append(length)
            pos = payload_at + length
    return np.array(offsets, dtype=np.int64), np.array(lengths, dtype=np.int64), pos


def _len_delimited(tag: bytes, body: bytes | bytearray) -> bytes:
    return tag + encode_varint(len(body)) + bytes(body)


def as_int64(value: Any, name: str) -> int:
    """``value`` as a Python int in the int64 range (the range of a ``*_ns`` timestamp)."""
    number = operator.index(value)
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise OverflowError(f"{name} {number} does not fit in int64")
    return number


def _timestamp(ns: int) -> bytes:
    seconds, nanos = divmod(ns, _NS_PER_S)
    out = bytearray()
    if seconds:
        out.append(_TAG_SECONDS)
        out += encode_varint(seconds)
    if nanos:
        out.append(_TAG_NANOS)
        out += encode_varint(nanos)
    return bytes(out)


def _sensor_metadata(time_requested_ns: int, time_received_ns: int, mime_type: int) -> bytes:
    body = _len_delimited(_TAG_TIME_REQUESTED, _timestamp(time_requested_ns))
    body += _len_delimited(_TAG_TIME_RECEIVED, _timestamp(time_received_ns))
    if mime_type:
        body += bytes([_TAG_MIME_TYPE]) + encode_varint(mime_type)
    return _len_delimited(_TAG_METADATA, body)


def _child_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _type_error(path: str, value: Any) -> TypeError:
    return TypeError(
        f"reading {path!r} has a value of type {type(value).__name__}, "
        "which has no protobuf Struct representation"
    )


def _number(value: Any, path: str) -> bytes:
    try:
        return _TAG_VALUE_NUMBER + _pack_double(float(value))
    except OverflowError:
        raise TypeError(f"reading {path!r} is an integer too large for a double") from None


def _string(value: str, path: str) -> bytes:
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        raise TypeError(f"reading {path!r} is a string that is not valid UTF-8") from None
    return _len_delimited(_TAG_VALUE_STRING, encoded)


def _value(value: Any, path: str, depth: int) -> bytes:
    """Encode one ``google.protobuf.Value``; the type checks run in the compiled order."""
    if type(value) is float:
        return _TAG_VALUE_NUMBER + _pack_double(value)
    if isinstance(value, bool):
        return _VALUE_TRUE if value else _VALUE_FALSE
    if isinstance(value, int | float):
        return _number(value, path)
    if isinstance(value, str):
        return _string(value, path)
    if value is None:
        return _VALUE_NULL
    if isinstance(value, Mapping):
        return _len_delimited(_TAG_VALUE_STRUCT, _struct(value, path, depth + 1))
    if isinstance(value, list | tuple):
        return _len_delimited(_TAG_VALUE_LIST, _list(value, path, depth + 1))
    if isinstance(value, np.bool_):
        return _VALUE_TRUE if value else _VALUE_FALSE
    if isinstance(value, np.integer | np.floating):
        return _number(value, path)
    raise _type_error(path, value)


def _check_depth(path: str, depth: int) -> None:
    if depth > MAX_NESTING_DEPTH:
        raise ValueError(f"reading {path!r} is nested deeper than {MAX_NESTING_DEPTH} levels")


def _list(values: Sequence[Any], path: str, depth: int) -> bytes:
    _check_depth(path, depth)
    out = bytearray()
    for index, item in enumerate(values):
        out += _len_delimited(_TAG_LIST_VALUES, _value(item, f"{path}[{index}]", depth))
    return bytes(out)


def _struct(fields: Mapping[Any, Any], path: str, depth: int) -> bytes:
    _check_depth(path, depth)
    out = bytearray()
    for key, item in fields.items():
        if not isinstance(key, str):
            where = repr(path) if path else "the top level"
            raise TypeError(f"reading key {key!r} at {where} is not a string")
        child = _child_path(path, key)
        try:
            key_utf8 = key.encode("utf-8")
        except UnicodeEncodeError:
            raise TypeError(f"reading key {child!r} is not valid UTF-8") from None
        entry = _len_delimited(_TAG_ENTRY_KEY, key_utf8)
        entry += _len_delimited(_TAG_ENTRY_VALUE, _value(item, child, depth))
        out += _len_delimited(_TAG_FIELDS_ENTRY, entry)
    return bytes(out)


def _wrapped_struct(readings: Mapping[Any, Any], wrap_key: str | None) -> bytes:
    """The ``SensorData.struct`` body: ``readings`` itself, or ``{wrap_key: readings}``."""
    if not wrap_key:
        return _struct(readings, "", 1)
    inner = _len_delimited(_TAG_VALUE_STRUCT, _struct(readings, "", 2))
    entry = _len_delimited(_TAG_ENTRY_KEY, wrap_key.encode("utf-8"))
    entry += _len_delimited(_TAG_ENTRY_VALUE, inner)
    return _len_delimited(_TAG_FIELDS_ENTRY, entry)


def _tabular_record(time_requested_ns: int, time_received_ns: int, struct_body: bytes) -> bytes:
    return _sensor_metadata(time_requested_ns, time_received_ns, 0) + _len_delimited(
        _TAG_STRUCT, struct_body
    )


class RecordBuffer:
    """A growable byte buffer that length-delimited ``SensorData`` records are encoded into.

    Numpy owns the memory. ``write_to`` hands the bytes to a file descriptor
    and empties the buffer only once everything was written.
    """

    def __init__(self, capacity_bytes: int = 65536) -> None:
        if capacity_bytes < 1:
            raise ValueError(f"capacity_bytes must be >= 1, got {capacity_bytes}")
        self._array = np.empty(capacity_bytes, dtype=np.uint8)
        self._size = 0

    @property
    def nbytes(self) -> int:
        """Bytes currently held (encoded and not yet written)."""
        return self._size

    @property
    def capacity_bytes(self) -> int:
        """Bytes the buffer can hold before it grows."""
        return int(self._array.shape[0])

    def _append(self, data: bytes) -> int:
        needed = self._size + len(data)
        if needed > self._array.shape[0]:
            grown = np.empty(max(needed, 2 * self._array.shape[0]), dtype=np.uint8)
            grown[: self._size] = self._array[: self._size]
            self._array = grown
        self._array[self._size : needed] = np.frombuffer(data, dtype=np.uint8)
        self._size = needed
        return len(data)

    def append_frame(self, payload: Any) -> int:
        """Append an already-encoded message as one delimited frame; return bytes appended."""
        return self._append(frame(payload))

    def append_readings(
        self,
        readings: Mapping[Any, Any],
        time_requested_ns: int,
        time_received_ns: int,
        wrap_key: str | None = None,
    ) -> int:
        """Encode one tabular ``SensorData`` from a dict; return bytes appended.

        With ``wrap_key`` (e.g. ``"readings"``) the struct is ``{wrap_key: readings}``.
        On error nothing is appended.
        """
        if not isinstance(readings, Mapping):
            raise TypeError(f"readings must be a dict, got {type(readings).__name__}")
        requested = as_int64(time_requested_ns, "time_requested_ns")
        received = as_int64(time_received_ns, "time_received_ns")
        record = _tabular_record(requested, received, _wrapped_struct(readings, wrap_key))
        return self._append(frame(record))

    def append_batch(
        self,
        time_requested_ns: Any,
        time_received_ns: Any,
        values: Any,
        keys: Sequence[str],
        wrap_key: str | None = None,
        start_row: int = 0,
        limit_bytes: int = -1,
    ) -> int:
        """Encode rows of ``values`` (float64, shape (n, k)) as records keyed by ``keys``.

        Starts at ``start_row`` and stops before the row that would take the
        buffer past ``limit_bytes`` (when ``>= 0``), but always encodes at least
        one row. Returns the index of the next row to encode.
        """
        requested, received, matrix = normalize_batch(
            time_requested_ns, time_received_ns, values, keys
        )
        n_rows = matrix.shape[0]
        if not 0 <= start_row <= n_rows:
            raise ValueError(f"start_row {start_row} is outside 0..{n_rows}")
        row = start_row
        while row < n_rows:
            fields = dict(zip(keys, (float(v) for v in matrix[row]), strict=True))
            struct_body = _wrapped_struct(fields, wrap_key)
            record = frame(_tabular_record(int(requested[row]), int(received[row]), struct_body))
            if row > start_row and limit_bytes >= 0 and self._size + len(record) > limit_bytes:
                break
            self._append(record)
            row += 1
        return row

    def append_binary_prefix(
        self, payload_nbytes: int, time_requested_ns: int, time_received_ns: int, mime_type: int = 0
    ) -> int:
        """Encode a binary ``SensorData`` up to its payload, which ``write_to`` sends after it."""
        if payload_nbytes < 0:
            raise ValueError(f"payload_nbytes must be >= 0, got {payload_nbytes}")
        if mime_type < 0:
            raise ValueError(f"mime_type must be >= 0, got {mime_type}")
        requested = as_int64(time_requested_ns, "time_requested_ns")
        received = as_int64(time_received_ns, "time_received_ns")
        head = _sensor_metadata(requested, received, mime_type)
        head += _TAG_BINARY + encode_varint(payload_nbytes)
        return self._append(encode_varint(len(head) + payload_nbytes) + head)

    def write_to(self, fd: int, tail: Any = None) -> int:
        """Write the buffered bytes, then ``tail`` (any buffer) when given, to ``fd``.

        Retries short writes and ``EINTR``. On success the buffer is emptied and
        the byte count returned; on an ``OSError`` the buffer is left as it was
        (the caller decides what to do with what reached the file).
        """
        parts = [memoryview(self._array.data)[: self._size]]
        if tail is not None:
            parts.append(memoryview(tail).cast("B"))
        total = sum(len(p) for p in parts)
        written = 0
        while written < total:
            pending = _skip(parts, written)
            try:
                written += os.writev(fd, pending)
            except InterruptedError:
                continue
        self._size = 0
        return total

    def getvalue(self) -> bytes:
        """A copy of the buffered bytes."""
        return self._array[: self._size].tobytes()

    def clear(self) -> None:
        """Drop the buffered bytes."""
        self._size = 0


def _skip(parts: list[memoryview], count: int) -> list[memoryview]:
    """The views that remain after the first ``count`` bytes of ``parts``."""
    out = []
    for part in parts:
        if count >= len(part):
            count -= len(part)
            continue
        out.append(part[count:])
        count = 0
    return out


def normalize_batch(
    time_requested_ns: Any, time_received_ns: Any, values: Any, keys: Sequence[str]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Check a batch and return it as contiguous int64, int64 and float64 arrays.

    Shared by both implementations so that they accept and refuse the same
    inputs with the same messages, which say which input is off.
    """
    requested = np.ascontiguousarray(time_requested_ns, dtype=np.int64)
    received = np.ascontiguousarray(time_received_ns, dtype=np.int64)
    values = np.ascontiguousarray(values, dtype=np.float64)
    if isinstance(keys, str):
        raise TypeError("keys must be a sequence of strings, not a single string")
    seen: set[str] = set()
    for key in keys:
        if not isinstance(key, str):
            raise TypeError(f"batch key {key!r} is not a string")
        if key in seen:
            raise ValueError(f"batch key {key!r} is given twice")
        seen.add(key)
    if values.ndim != 2:
        raise ValueError(f"values must be 2-D (rows, keys), got {values.ndim}-D")
    n_rows, n_cols = values.shape
    if n_cols != len(keys):
        raise ValueError(f"values has {n_cols} columns but {len(keys)} keys were given")
    for name, times in (("time_requested_ns", requested), ("time_received_ns", received)):
        if times.ndim != 1 or times.shape[0] != n_rows:
            raise ValueError(f"{name} has shape {times.shape} but values has {n_rows} rows")
    return requested, received, values


# --- the upload scanner (server side) ------------------------------------------------------
#
# ``scan_upload`` checks a ``DataCaptureUploadRequest`` body at the wire level and
# indexes it without building protobuf objects. What it accepts, the official
# runtime parses; what it refuses gets one message naming the field at fault.

_KIND_NONE = 0  # a SensorData with neither struct nor binary
_KIND_STRUCT = 2  # SensorData.struct (field 2)
_KIND_BINARY = 3  # SensorData.binary (field 3)
_MAX_MESSAGE_DEPTH = 100  # upb's default decode depth limit; the request is depth 0
_WT_VARINT, _WT_I64, _WT_LEN, _WT_I32 = 0, 1, 2, 5
_NS_MIN_S = _INT64_MIN // _NS_PER_S  # whole seconds that fit in int64 nanoseconds
_NS_MAX_S = _INT64_MAX // _NS_PER_S

_UploadScan = tuple[
    int,  # metadata offset (payload of field 1), -1 when absent
    int,  # metadata length
    int,  # records_start: offset of the first sensor_contents field's tag
    int,  # records_end: offset just past the last one
    bool,  # contiguous: nothing but sensor_contents between records_start and records_end
    npt.NDArray[np.int64],  # offsets of each SensorData payload
    npt.NDArray[np.int64],  # their lengths
    npt.NDArray[np.int8],  # their kinds (_KIND_*)
    npt.NDArray[np.int64],  # time_requested, ns since the epoch (0 when unset)
    npt.NDArray[np.int64],  # time_received, ns
]


class _Bad(ValueError):
    pass


def _field(view: memoryview, pos: int, end: int, where: str) -> tuple[int, int, int, int]:
    """Read one field header at ``pos``; return (number, wire type, body start, body end).

    For a varint field the body is the varint itself; ``end`` bounds the message."""
    try:
        key, pos = _read_varint(view, pos)
    except ValueError:
        raise _Bad(f"{where}: truncated field tag") from None
    if pos > end:
        raise _Bad(f"{where}: truncated field tag")
    number, wire_type = key >> 3, key & 7
    if number == 0 or number > 0x1FFFFFFF:
        raise _Bad(f"{where}: field number {number} is not valid")
    if wire_type == _WT_VARINT:
        start = pos
        try:
            _, pos = _read_varint(view, pos)
        except ValueError:
            raise _Bad(f"{where}: field {number}: truncated varint") from None
        if pos > end:
            raise _Bad(f"{where}: field {number}: truncated varint")
        return number, wire_type, start, pos
    if wire_type in (_WT_I64, _WT_I32):
        size = 8 if wire_type == _WT_I64 else 4
        if pos + size > end:
            raise _Bad(f"{where}: field {number}: truncated fixed-size value")
        return number, wire_type, pos, pos + size
    if wire_type == _WT_LEN:
        try:
            length, pos = _read_varint(view, pos)
        except ValueError:
            raise _Bad(f"{where}: field {number}: truncated length") from None
        if pos > end or length > end - pos:
            raise _Bad(f"{where}: field {number}: length {length} runs past the end of the message")
        return number, wire_type, pos, pos + length
    raise _Bad(f"{where}: field {number} has wire type {wire_type} (groups are not supported)")


def _expect(wire_type: int, wanted: int, where: str, name: str) -> None:
    if wire_type != wanted:
        raise _Bad(f"{where}: {name} has wire type {wire_type}, expected {wanted}")


def _check_value_kind(
    view: memoryview, pos: int, end: int, depth: int, kind: str, where: str
) -> None:
    """Walk a Struct, Value or ListValue message at ``depth`` (the request is 1)."""
    if depth > _MAX_MESSAGE_DEPTH:
        raise _Bad(f"{where}: struct nested deeper than {_MAX_MESSAGE_DEPTH} messages")
    while pos < end:
        number, wire_type, start, stop = _field(view, pos, end, where)
        if kind == "struct" and number == 1:  # fields: map entry
            _expect(wire_type, _WT_LEN, where, "struct entry")
            _check_value_kind(view, start, stop, depth + 1, "entry", where)
        elif kind == "entry" and number == 1:
            _expect(wire_type, _WT_LEN, where, "struct key")
        elif kind == "entry" and number == 2:
            _expect(wire_type, _WT_LEN, where, "struct value")
            _check_value_kind(view, start, stop, depth + 1, "value", where)
        elif kind == "list" and number == 1:
            _expect(wire_type, _WT_LEN, where, "list value")
            _check_value_kind(view, start, stop, depth + 1, "value", where)
        elif kind == "value" and number in (1, 4):
            _expect(wire_type, _WT_VARINT, where, "null/bool value")
        elif kind == "value" and number == 2:
            _expect(wire_type, _WT_I64, where, "number value")
        elif kind == "value" and number == 3:
            _expect(wire_type, _WT_LEN, where, "string value")
        elif kind == "value" and number == 5:
            _expect(wire_type, _WT_LEN, where, "struct value")
            _check_value_kind(view, start, stop, depth + 1, "struct", where)
        elif kind == "value" and number == 6:
            _expect(wire_type, _WT_LEN, where, "list value")
            _check_value_kind(view, start, stop, depth + 1, "list", where)
        pos = stop


def _timestamp_ns(view: memoryview, pos: int, end: int, where: str) -> int:
    seconds = nanos = 0
    while pos < end:
        number, wire_type, start, stop = _field(view, pos, end, where)
        if number in (1, 2):
            _expect(wire_type, _WT_VARINT, where, "seconds" if number == 1 else "nanos")
            value, _ = _read_varint(view, start)
            if number == 1:
                seconds = value - (1 << 64) if value >= 1 << 63 else value
            else:
                nanos = value - (1 << 64) if value >= 1 << 63 else value
        pos = stop
    if not 0 <= nanos < _NS_PER_S:
        raise _Bad(f"{where}: nanos {nanos} is outside [0, 999999999]")
    if not _NS_MIN_S < seconds < _NS_MAX_S:
        raise _Bad(f"{where}: {seconds} s is out of range (int64 nanoseconds since 1970)")
    return seconds * _NS_PER_S + nanos


def _scan_reading(view: memoryview, pos: int, end: int, where: str) -> tuple[int, int, int]:
    """(kind, time_requested_ns, time_received_ns) of one SensorData."""
    kind = _KIND_NONE
    requested = received = 0
    seen_metadata = False
    while pos < end:
        number, wire_type, start, stop = _field(view, pos, end, where)
        if number == 1:
            _expect(wire_type, _WT_LEN, where, "metadata")
            if seen_metadata:
                raise _Bad(f"{where}: metadata appears twice")
            seen_metadata = True
            meta_pos = start
            while meta_pos < stop:
                m_number, m_type, m_start, m_stop = _field(
                    view, meta_pos, stop, where + ".metadata"
                )
                if m_number in (1, 2):
                    name = "time_requested" if m_number == 1 else "time_received"
                    _expect(m_type, _WT_LEN, where + ".metadata", name)
                    ns = _timestamp_ns(view, m_start, m_stop, f"{where}.metadata.{name}")
                    if m_number == 1:
                        requested = ns
                    else:
                        received = ns
                elif m_number == 3:
                    _expect(m_type, _WT_VARINT, where + ".metadata", "mime_type")
                elif m_number == 4:
                    _expect(m_type, _WT_LEN, where + ".metadata", "annotations")
                meta_pos = m_stop
        elif number in (_KIND_STRUCT, _KIND_BINARY):
            _expect(wire_type, _WT_LEN, where, "struct" if number == _KIND_STRUCT else "binary")
            if kind != _KIND_NONE:
                raise _Bad(f"{where}: holds more than one of struct and binary")
            kind = number
            if number == _KIND_STRUCT:
                _check_value_kind(view, start, stop, 2, "struct", where + ".struct")
        pos = stop
    return kind, requested, received


def scan_upload(body: Any) -> _UploadScan:
    """Check and index a ``DataCaptureUploadRequest`` body without decoding it.

    Raises ``ValueError`` naming what is wrong: bad framing, a wire type that does
    not match the schema, a struct nested past protobuf's depth limit, a metadata
    or reading given twice in one place, a timestamp outside int64 nanoseconds.
    Unknown fields are skipped, as protobuf does.
    """
    with memoryview(body) as raw, raw.cast("B") as view:
        return _scan_upload(view)


def _scan_upload(view: memoryview) -> _UploadScan:
    end = len(view)
    pos = 0
    meta_offset, meta_length = -1, 0
    records_start = records_end = -1
    contiguous = True
    offsets: list[int] = []
    lengths: list[int] = []
    kinds: list[int] = []
    requested: list[int] = []
    received: list[int] = []
    while pos < end:
        number, wire_type, start, stop = _field(view, pos, end, "request")
        if number == 1:
            _expect(wire_type, _WT_LEN, "request", "metadata")
            if meta_offset >= 0:
                raise _Bad("request: metadata appears twice")
            meta_offset, meta_length = start, stop - start
        elif number == 2:
            where = f"sensor_contents[{len(offsets)}]"
            _expect(wire_type, _WT_LEN, "request", where)
            kind, t_req, t_rec = _scan_reading(view, start, stop, where)
            if records_start < 0:
                records_start = pos
            elif records_end != pos:
                contiguous = False
            records_end = stop
            offsets.append(start)
            lengths.append(stop - start)
            kinds.append(kind)
            requested.append(t_req)
            received.append(t_rec)
        pos = stop
    if records_start < 0:
        records_start = records_end = end
    return (
        meta_offset,
        meta_length,
        records_start,
        records_end,
        contiguous,
        np.array(offsets, dtype=np.int64),
        np.array(lengths, dtype=np.int64),
        np.array(kinds, dtype=np.int8),
        np.array(requested, dtype=np.int64),
        np.array(received, dtype=np.int64),
    )


_TAG_SENSOR_CONTENTS = 0x12  # DataCaptureUploadRequest.sensor_contents, LEN


def upload_body(head: Any, buf: Any, start: int, end: int) -> tuple[bytes, int]:
    """``head`` then every frame of ``buf[start:end]`` behind the ``sensor_contents`` tag.

    A capture file's records are length-delimited frames; a ``DataCaptureUploadRequest``
    holds the same frames, each behind one tag byte. So a request body is built
    from the file's bytes without decoding a record. Returns ``(body, records)``;
    raises ``ValueError`` when the region does not end on a frame boundary.
    """
    with memoryview(buf) as raw, raw.cast("B") as view:
        if not 0 <= start <= end <= len(view):
            raise ValueError(f"region [{start}, {end}) is outside a buffer of {len(view)} bytes")
        parts = [bytes(memoryview(head).cast("B"))]
        pos = start
        records = 0
        while pos < end:
            try:
                length, payload_at = _read_varint(view[:end], pos)
            except ValueError:
                raise ValueError(f"region [{start}, {end}) cuts the frame at {pos}") from None
            if length > end - payload_at:
                raise ValueError(f"region [{start}, {end}) cuts the frame at {pos}")
            parts.append(bytes((_TAG_SENSOR_CONTENTS,)))
            parts.append(bytes(view[pos : payload_at + length]))
            pos = payload_at + length
            records += 1
    return b"".join(parts), records
