"""Read ``SensorData`` frames of a capture file without building protobuf objects.

The MCAP export turns every tabular reading into JSON text. Decoding each
frame into protobuf messages and then through ``json_format`` costs tens of
microseconds a reading; walking the wire bytes once and writing the JSON text
as it goes costs a fraction of that. The JSON is what ``json.dumps`` of
``MessageToDict(struct)`` would give with ``separators=(",", ":")`` and
``ensure_ascii=False``, except that a number which is not finite (NaN,
±Infinity, which JSON cannot hold) is written ``null``.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

_DOUBLE = struct.Struct("<d")
MAX_DEPTH = 100


class FrameError(ValueError):
    """A frame that does not parse as the message it should be."""


def read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise FrameError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise FrameError("varint too long")


def skip_field(buf: bytes, pos: int, end: int, wire_type: int) -> int:
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
        raise FrameError(f"unsupported wire type {wire_type}")
    if pos > end:
        raise FrameError("field runs past the end of its message")
    return pos


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def timestamp_ns(buf: bytes, pos: int, end: int) -> int:
    """A ``google.protobuf.Timestamp`` in ``buf[pos:end]`` as nanoseconds since the epoch."""
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
    return seconds * 1_000_000_000 + nanos


@dataclass(frozen=True)
class SensorFrame:
    """Where the parts of one ``SensorData`` frame are (offsets into the buffer)."""

    time_requested_ns: int
    time_received_ns: int
    struct_start: int  # -1 when the frame holds no struct
    struct_end: int
    binary_start: int  # -1 when the frame holds no binary
    binary_end: int


def parse_sensor_frame(buf: bytes, pos: int, end: int) -> SensorFrame:
    requested = received = 0
    struct_span = binary_span = (-1, -1)
    while pos < end:
        key, pos = read_varint(buf, pos, end)
        if key in (0x0A, 0x12, 0x1A):
            length, pos = read_varint(buf, pos, end)
            stop = pos + length
            if stop > end:
                raise FrameError("field runs past the end of its message")
            if key == 0x0A:
                requested, received = _metadata_times(buf, pos, stop)
            elif key == 0x12:
                struct_span, binary_span = (pos, stop), (-1, -1)
            else:
                binary_span, struct_span = (pos, stop), (-1, -1)
            pos = stop
        else:
            pos = skip_field(buf, pos, end, key & 7)
    return SensorFrame(requested, received, *struct_span, *binary_span)


def _metadata_times(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    requested = received = 0
    while pos < end:
        key, pos = read_varint(buf, pos, end)
        if key in (0x0A, 0x12):
            length, pos = read_varint(buf, pos, end)
            stop = pos + length
            if stop > end:
                raise FrameError("field runs past the end of its message")
            if key == 0x0A:
                requested = timestamp_ns(buf, pos, stop)
            else:
                received = timestamp_ns(buf, pos, stop)
            pos = stop
        else:
            pos = skip_field(buf, pos, end, key & 7)
    return requested, received


# --- Struct -> JSON text --------------------------------------------------------------


def _json_string(buf: bytes, start: int, stop: int) -> str:
    return json.dumps(bytes(buf[start:stop]).decode("utf-8", "replace"), ensure_ascii=False)


def struct_json(buf: bytes, pos: int, end: int, depth: int = 0) -> str:
    """The ``google.protobuf.Struct`` in ``buf[pos:end]`` as JSON object text."""
    if depth > MAX_DEPTH:
        raise FrameError(f"struct nested deeper than {MAX_DEPTH}")
    parts = []
    while pos < end:
        key, pos = read_varint(buf, pos, end)
        if key != 0x0A:
            pos = skip_field(buf, pos, end, key & 7)
            continue
        length, pos = read_varint(buf, pos, end)
        stop = pos + length
        if stop > end:
            raise FrameError("field runs past the end of its message")
        name = ""
        value = "null"
        while pos < stop:
            entry_key, pos = read_varint(buf, pos, stop)
            if entry_key in (0x0A, 0x12):
                size, pos = read_varint(buf, pos, stop)
                if pos + size > stop:
                    raise FrameError("field runs past the end of its message")
                if entry_key == 0x0A:
                    name = _json_string(buf, pos, pos + size)
                else:
                    value = value_json(buf, pos, pos + size, depth + 1)
                pos += size
            else:
                pos = skip_field(buf, pos, stop, entry_key & 7)
        parts.append((name or '""') + ":" + value)
    return "{" + ",".join(parts) + "}"


def list_json(buf: bytes, pos: int, end: int, depth: int) -> str:
    if depth > MAX_DEPTH:
        raise FrameError(f"struct nested deeper than {MAX_DEPTH}")
    parts = []
    while pos < end:
        key, pos = read_varint(buf, pos, end)
        if key != 0x0A:
            pos = skip_field(buf, pos, end, key & 7)
            continue
        length, pos = read_varint(buf, pos, end)
        if pos + length > end:
            raise FrameError("field runs past the end of its message")
        parts.append(value_json(buf, pos, pos + length, depth + 1))
        pos += length
    return "[" + ",".join(parts) + "]"


def value_json(buf: bytes, pos: int, end: int, depth: int) -> str:
    """A ``google.protobuf.Value`` as JSON text (the last kind set wins, as in protobuf)."""
    text = "null"
    while pos < end:
        key, pos = read_varint(buf, pos, end)
        if key == 0x11:  # number_value
            if pos + 8 > end:
                raise FrameError("truncated double")
            number = _DOUBLE.unpack_from(buf, pos)[0]
            pos += 8
            text = float.__repr__(number) if number - number == 0 else "null"
        elif key == 0x08:  # null_value
            pos = read_varint(buf, pos, end)[1]
            text = "null"
        elif key == 0x20:  # bool_value
            flag, pos = read_varint(buf, pos, end)
            text = "true" if flag else "false"
        elif key in (0x1A, 0x2A, 0x32):
            length, pos = read_varint(buf, pos, end)
            stop = pos + length
            if stop > end:
                raise FrameError("field runs past the end of its message")
            if key == 0x1A:
                text = _json_string(buf, pos, stop)
            elif key == 0x2A:
                text = struct_json(buf, pos, stop, depth)
            else:
                text = list_json(buf, pos, stop, depth)
            pos = stop
        else:
            pos = skip_field(buf, pos, end, key & 7)
    return text


# --- tabular frames -> MCAP Message records ------------------------------------------

_MESSAGE_HEAD = struct.Struct("<BQHIQQ")
_MESSAGE_OPCODE = 0x05


def tabular_message_records(
    buf: bytes, spans: list[tuple[int, int]], channel_id: int, first_sequence: int
) -> tuple[bytes, list[int], list[int]]:
    """MCAP Message records (JSON data) for the tabular frames at ``spans`` of ``buf``.

    Returns the records back to back, each one's log time (``time_received``)
    and each one's offset in the records. Publish time is ``time_requested``;
    a time before the epoch is written as 0. Raises :class:`FrameError`.
    """
    out = bytearray()
    log_times: list[int] = []
    offsets: list[int] = []
    sequence = first_sequence
    pack = _MESSAGE_HEAD.pack
    for start, length in spans:
        frame = parse_sensor_frame(buf, start, start + length)
        if frame.struct_start >= 0:
            text = struct_json(buf, frame.struct_start, frame.struct_end).encode()
        elif frame.binary_start >= 0:
            raise FrameError(f"record at offset {start} holds binary data in a tabular file")
        else:
            text = b"{}"
        log_ns = max(frame.time_received_ns, 0)
        offsets.append(len(out))
        log_times.append(log_ns)
        out += pack(
            _MESSAGE_OPCODE, 22 + len(text), channel_id, sequence & 0xFFFFFFFF,
            log_ns, max(frame.time_requested_ns, 0),
        )  # fmt: skip
        out += text
        sequence += 1
    return bytes(out), log_times, offsets
