"""Tabular ``SensorData`` frames as MCAP Message records with JSON data, from the wire bytes.

Decoding each frame into protobuf messages and then through ``json_format``
costs tens of microseconds a reading; walking the wire bytes once and writing
the JSON text as it goes costs a fraction of that. This module is the
pure-Python twin of the compiled ``capsync.export._export``: the same function, the
same output byte for byte, the same errors (``ValueError``).

The JSON is what ``json.dumps(MessageToDict(struct), separators=(",", ":"),
ensure_ascii=False)`` gives, in the order the fields are on the wire, except
that a number that is not finite (NaN, ±Infinity, which JSON cannot hold) is
written ``null``. Where a field is repeated that protobuf keeps once (a
``Value``'s kind, a map entry's key or value, a frame's metadata), the last
one is taken, as protobuf does; a ``Value`` with no kind is ``null``.

Times: ``google.protobuf.Timestamp`` to nanoseconds since the epoch, 0 for
times before it and 2**63-1 for times past what 64 bits hold.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

from capsync.export._json_text import json_string
from capsync.wire._checks import read_varint_view

_DOUBLE = struct.Struct("<d")
_MESSAGE_HEAD = struct.Struct("<BQHIQQ")
MESSAGE_OPCODE = 0x05
MESSAGE_HEAD_BYTES = 31
MAX_DEPTH = 100
MAX_NS = (1 << 63) - 1
_MAX_SECONDS = MAX_NS // 1_000_000_000


def read_varint(buf: Any, pos: int, end: int) -> tuple[int, int]:
    """The varint at ``pos`` of a message ending at ``end`` (the wire layer's reader, with
    the compiled ``_export``'s wording: "truncated varint", "varint too long")."""
    try:
        value, after = read_varint_view(buf, pos)
    except ValueError:
        too_long = pos + 10 <= end and min(buf[pos : pos + 10]) >= 0x80
        raise ValueError("varint too long" if too_long else "truncated varint") from None
    if after > end:
        raise ValueError("truncated varint")
    return value, after


def skip_field(buf: Any, pos: int, end: int, wire_type: int) -> int:
    if wire_type == 0:
        return read_varint(buf, pos, end)[1]
    if wire_type == 1:
        pos += 8
    elif wire_type == 2:
        length, pos = read_varint(buf, pos, end)
        pos += length
    elif wire_type == 5:
        pos += 4
    else:
        raise ValueError(f"unsupported wire type {wire_type}")
    if pos > end:
        raise ValueError("field runs past the end of its message")
    return pos


def _field_end(buf: Any, pos: int, end: int) -> tuple[int, int]:
    """(start, stop) of the length-delimited field whose length is at ``pos``."""
    length, pos = read_varint(buf, pos, end)
    if length > end - pos:
        raise ValueError("field runs past the end of its message")
    return pos, pos + length


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def timestamp_ns(buf: Any, pos: int, end: int) -> int:
    """A ``google.protobuf.Timestamp`` as ns since the epoch, clamped to [0, 2**63-1]."""
    seconds = nanos = 0
    while pos < end:
        key, pos = read_varint(buf, pos, end)
        if key == 0x08:
            value, pos = read_varint(buf, pos, end)
            seconds = _signed64(value)
        elif key == 0x10:
            value, pos = read_varint(buf, pos, end)
            nanos = _signed64(value)
        else:
            pos = skip_field(buf, pos, end, key & 7)
    if seconds > _MAX_SECONDS:
        return MAX_NS
    if seconds < -_MAX_SECONDS:
        return 0
    return min(max(seconds * 1_000_000_000 + nanos, 0), MAX_NS)


def _metadata_times(buf: Any, pos: int, end: int) -> tuple[int, int]:
    requested = received = 0
    while pos < end:
        key, pos = read_varint(buf, pos, end)
        if key in (0x0A, 0x12):
            start, stop = _field_end(buf, pos, end)
            if key == 0x0A:
                requested = timestamp_ns(buf, start, stop)
            else:
                received = timestamp_ns(buf, start, stop)
            pos = stop
        else:
            pos = skip_field(buf, pos, end, key & 7)
    return requested, received


def parse_sensor_frame(buf: Any, pos: int, end: int) -> tuple[int, int, int, int, int]:
    """(time_requested_ns, time_received_ns, data field key (0x12 struct, 0x1A binary,
    0 none), data start, data stop) of the ``SensorData`` in ``buf[pos:end]``."""
    requested = received = 0
    data_key = data_start = data_stop = 0
    while pos < end:
        key, pos = read_varint(buf, pos, end)
        if key in (0x0A, 0x12, 0x1A):
            start, stop = _field_end(buf, pos, end)
            if key == 0x0A:
                requested, received = _metadata_times(buf, start, stop)
            else:
                data_key, data_start, data_stop = key, start, stop
            pos = stop
        else:
            pos = skip_field(buf, pos, end, key & 7)
    return requested, received, data_key, data_start, data_stop


# --- Struct -> JSON text --------------------------------------------------------------

_ESCAPES = {
    ord("\\"): "\\\\",
    ord('"'): '\\"',
    ord("\b"): "\\b",
    ord("\f"): "\\f",
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
}


def _entries(buf: Any, pos: int, end: int, depth: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of each field 1 (a Struct's ``fields`` entry, a ListValue's value)
    of the message at ``[pos, end)``, other fields skipped; ``depth`` checked first."""
    if depth > MAX_DEPTH:
        raise ValueError(f"struct nested deeper than {MAX_DEPTH}")
    return _field_spans(buf, pos, end)


def _field_spans(buf: Any, pos: int, end: int) -> Iterator[tuple[int, int]]:
    while pos < end:
        key, pos = read_varint(buf, pos, end)
        if key != 0x0A:
            pos = skip_field(buf, pos, end, key & 7)
            continue
        span = _field_end(buf, pos, end)
        pos = span[1]
        yield span


def _struct(buf: Any, pos: int, end: int, depth: int, out: bytearray) -> None:
    entries = _entries(buf, pos, end, depth)
    out += b"{"
    first = True
    for start, stop in entries:
        name_span = value_span = None
        while start < stop:
            entry_key, start = read_varint(buf, start, stop)
            if entry_key in (0x0A, 0x12):
                span = _field_end(buf, start, stop)
                if entry_key == 0x0A:
                    name_span = span
                else:
                    value_span = span
                start = span[1]
            else:
                start = skip_field(buf, start, stop, entry_key & 7)
        if not first:
            out += b","
        first = False
        out += json_string(buf, *name_span) if name_span else b'""'
        out += b":"
        if value_span is None:
            out += b"null"
        else:
            _value(buf, value_span[0], value_span[1], depth + 1, out)
    out += b"}"


def _list(buf: Any, pos: int, end: int, depth: int, out: bytearray) -> None:
    entries = _entries(buf, pos, end, depth)
    out += b"["
    first = True
    for start, stop in entries:
        if not first:
            out += b","
        first = False
        _value(buf, start, stop, depth + 1, out)
    out += b"]"


def _value(buf: Any, pos: int, end: int, depth: int, out: bytearray) -> None:
    kind = kind_pos = kind_stop = 0
    while pos < end:
        key, pos = read_varint(buf, pos, end)
        if key == 0x11:
            if end - pos < 8:
                raise ValueError("truncated double")
            kind, kind_pos = key, pos
            pos += 8
        elif key in (0x08, 0x20):
            value, pos = read_varint(buf, pos, end)
            kind, kind_pos = key, value
        elif key in (0x1A, 0x2A, 0x32):
            start, stop = _field_end(buf, pos, end)
            kind, kind_pos, kind_stop = key, start, stop
            pos = stop
        else:
            pos = skip_field(buf, pos, end, key & 7)
    if kind == 0x11:
        number = _DOUBLE.unpack_from(buf, kind_pos)[0]
        out += float.__repr__(number).encode() if number - number == 0 else b"null"
    elif kind == 0x20:
        out += b"true" if kind_pos else b"false"
    elif kind == 0x1A:
        out += json_string(buf, kind_pos, kind_stop)
    elif kind == 0x2A:
        _struct(buf, kind_pos, kind_stop, depth, out)
    elif kind == 0x32:
        _list(buf, kind_pos, kind_stop, depth, out)
    else:
        out += b"null"


def struct_json(buf: Any, pos: int, end: int) -> str:
    """The ``google.protobuf.Struct`` in ``buf[pos:end]`` as JSON object text."""
    out = bytearray()
    _struct(buf, pos, end, 0, out)
    return out.decode()


# --- tabular frames -> MCAP Message records ------------------------------------------


def tabular_message_records(
    buf: Any, offsets: Any, lengths: Any, channel_id: int, first_sequence: int
) -> tuple[bytes, list[int], list[int]]:
    """MCAP Message records (JSON data) for the tabular frames at ``offsets``/``lengths``.

    Returns the records back to back, each one's log time (``time_received``)
    and each one's offset in the records. Publish time is ``time_requested``.
    Raises ValueError for a frame that does not parse.
    """
    out = bytearray()
    size, log_times, record_offsets = tabular_records_into(
        out, buf, offsets, lengths, channel_id, first_sequence
    )
    return bytes(out[:size]), log_times, record_offsets


def tabular_records_into(
    out: bytearray,
    buf: Any,
    offsets: Any,
    lengths: Any,
    channel_id: int,
    first_sequence: int,
) -> tuple[int, list[int], list[int]]:
    """The records of :func:`tabular_message_records` written into ``out`` from its start
    (a reused buffer: it grows when they pass its end, and may be left longer than
    them): ``(size, log_times, record_offsets)``."""
    records = bytearray()
    log_times: list[int] = []
    record_offsets: list[int] = []
    sequence = first_sequence
    pack = _MESSAGE_HEAD.pack
    for start, length in zip(list(offsets), list(lengths), strict=True):
        start, length = int(start), int(length)
        requested, received, data_key, data_start, data_stop = parse_sensor_frame(
            buf, start, start + length
        )
        if data_key == 0x1A:
            raise ValueError(f"record at offset {start} holds binary data in a tabular file")
        base = len(records)
        records += bytes(MESSAGE_HEAD_BYTES)
        if data_key == 0x12:
            _struct(buf, data_start, data_stop, 0, records)
        else:
            records += b"{}"
        records[base : base + MESSAGE_HEAD_BYTES] = pack(
            MESSAGE_OPCODE,
            len(records) - base - 9,
            channel_id,
            sequence & 0xFFFFFFFF,
            received,
            requested,
        )
        record_offsets.append(base)
        log_times.append(received)
        sequence += 1
    out[: len(records)] = records
    return len(records), log_times, record_offsets
