"""Pure-Python twin of the compiled wire module ``capsync.wire._wire``.

Every public name here exists in ``ext/capsync/wire/_wire.pyx`` with the same
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

import os
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from capsync.wire._checks import (
    as_int64,
    check_binary_prefix,
    check_capacity,
    check_depth,
    check_start_row,
    child_path,
    integer_too_large,
    key_not_string,
    key_not_utf8,
    normalize_batch,
    readings_not_dict,
    string_not_utf8,
    value_type_error,
)
from capsync.wire._framing_py import encode_varint, frame, read_varint, scan_frames, upload_body
from capsync.wire._upload_py import scan_upload

# The API, the same names and signatures as the compiled module's ``__all__``
# (tests/test_wire_parity.py checks it): the record buffer defined here, and the
# framing (``_framing_py``) and upload-scanner (``_upload_py``) functions re-exported
# so that ``capsync.wire._wire_py`` stays the one module the selector switches.
# ``normalize_batch`` is imported for ``capture/stream.py`` (it lives in ``_checks``).
__all__ = [
    "RecordBuffer",
    "encode_varint",
    "frame",
    "read_varint",
    "scan_frames",
    "scan_upload",
    "upload_body",
]

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


def _len_delimited(tag: bytes, body: bytes | bytearray) -> bytes:
    return tag + encode_varint(len(body)) + bytes(body)


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


def _number(value: Any, path: str) -> bytes:
    try:
        return _TAG_VALUE_NUMBER + _pack_double(float(value))
    except OverflowError:
        raise integer_too_large(path) from None


def _string(value: str, path: str) -> bytes:
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        raise string_not_utf8(path) from None
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
    raise value_type_error(path, value)


def _list(values: Sequence[Any], path: str, depth: int) -> bytes:
    check_depth(path, depth)
    out = bytearray()
    for index, item in enumerate(values):
        out += _len_delimited(_TAG_LIST_VALUES, _value(item, f"{path}[{index}]", depth))
    return bytes(out)


def _struct(fields: Mapping[Any, Any], path: str, depth: int) -> bytes:
    check_depth(path, depth)
    out = bytearray()
    for key, item in fields.items():
        if not isinstance(key, str):
            raise key_not_string(key, path)
        child = child_path(path, key)
        try:
            key_utf8 = key.encode("utf-8")
        except UnicodeEncodeError:
            raise key_not_utf8(child) from None
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
        check_capacity(capacity_bytes)
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
            raise readings_not_dict(readings)
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
        check_start_row(start_row, n_rows)
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
        check_binary_prefix(payload_nbytes, mime_type)
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
