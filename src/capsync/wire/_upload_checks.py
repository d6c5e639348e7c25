"""The rules a ``DataCaptureUploadRequest`` body must follow, and how a refusal is worded.

``scan_upload`` (both kernels) checks a request body at the wire level and
indexes it without building protobuf objects. What it accepts, the official
runtime parses; what it refuses gets one message naming the field at fault.
This module is those rules, walked in Python: the twin (``_upload_py``) runs
it to index a body, the compiled scanner (``ext/capsync/wire/_upload.pyx``)
runs the same rules in C and calls :func:`walk_upload` only to word a refusal.

Strings are checked the way protobuf checks proto3 ``string`` fields: struct
keys and string values inside ``SensorData.struct`` and the string fields of
``UploadMetadata`` must be valid UTF-8.
"""

from __future__ import annotations

from capsync.wire._checks import INT64_MAX, INT64_MIN, read_varint_view

_NS_PER_S = 1_000_000_000
_KIND_NONE = 0  # a SensorData with neither struct nor binary
_KIND_STRUCT = 2  # SensorData.struct (field 2)
_KIND_BINARY = 3  # SensorData.binary (field 3)
_MAX_MESSAGE_DEPTH = 100  # upb's default decode depth limit; the request is depth 0
_WT_VARINT, _WT_I64, _WT_LEN, _WT_I32 = 0, 1, 2, 5
_NS_MIN_S = INT64_MIN // _NS_PER_S  # whole seconds that fit in int64 nanoseconds
_NS_MAX_S = INT64_MAX // _NS_PER_S
# UploadMetadata's string fields (proto3 ``string``, single or repeated): number -> name.
METADATA_STRINGS = {
    1: "part_id",
    2: "component_type",
    3: "component_name",
    5: "method_name",
    7: "file_name",
    9: "file_extension",
    10: "tags",
    12: "dataset_ids",
    13: "mime_type",
}

# What walk_upload returns: the fields of ``_upload_py.UploadScan``, with lists for arrays.
UploadIndex = tuple[int, int, int, int, bool, list[int], list[int], list[int], list[int], list[int]]


class _Bad(ValueError):
    pass


def _field(view: memoryview, pos: int, end: int, where: str) -> tuple[int, int, int, int]:
    """Read one field header at ``pos``; return (number, wire type, body start, body end).

    For a varint field the body is the varint itself; ``end`` bounds the message."""
    try:
        key, pos = read_varint_view(view, pos)
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
            _, pos = read_varint_view(view, pos)
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
            length, pos = read_varint_view(view, pos)
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
            _check_utf8(view, start, stop, where, "struct key")
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
            _check_utf8(view, start, stop, where, "string value")
        elif kind == "value" and number == 5:
            _expect(wire_type, _WT_LEN, where, "struct value")
            _check_value_kind(view, start, stop, depth + 1, "struct", where)
        elif kind == "value" and number == 6:
            _expect(wire_type, _WT_LEN, where, "list value")
            _check_value_kind(view, start, stop, depth + 1, "list", where)
        pos = stop


def _check_utf8(view: memoryview, start: int, stop: int, where: str, name: str) -> None:
    try:
        str(view[start:stop], "utf-8")
    except UnicodeDecodeError:
        raise _Bad(f"{where}: {name} is not valid UTF-8") from None


def _check_metadata(view: memoryview, pos: int, end: int) -> None:
    """The string fields of ``UploadMetadata`` are valid UTF-8 (other fields: protobuf's)."""
    while pos < end:
        number, wire_type, start, stop = _field(view, pos, end, "request.metadata")
        name = METADATA_STRINGS.get(number)
        if name is not None and wire_type == _WT_LEN:
            _check_utf8(view, start, stop, "request.metadata", name)
        pos = stop


def _timestamp_ns(view: memoryview, pos: int, end: int, where: str) -> int:
    seconds = nanos = 0
    while pos < end:
        number, wire_type, start, stop = _field(view, pos, end, where)
        if number in (1, 2):
            _expect(wire_type, _WT_VARINT, where, "seconds" if number == 1 else "nanos")
            value, _ = read_varint_view(view, start)
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


def walk_upload(view: memoryview) -> UploadIndex:
    """Check and index a request body (a byte view); raise ``ValueError`` naming the fault."""
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
            _check_metadata(view, start, stop)
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
        offsets,
        lengths,
        kinds,
        requested,
        received,
    )
