"""Encode the bulk of a ``TabularDataByFilterResponse`` straight to protobuf bytes.

Building a ``google.protobuf.Struct`` per reading with the protobuf runtime and
serializing it costs far more than the bytes themselves; a page of 10,000
readings is mostly those Structs. So the ``data`` entries are written here by
hand (``Struct``/``Value``/``ListValue``/``Timestamp`` wire format), and
appended to the serialized head (metadata, count, last) built with the runtime:
protobuf lets a message's fields come in any order, so the concatenation is one
valid message. ``tests/test_data_wire.py`` checks the output parses to what the
runtime would have built.
"""

from __future__ import annotations

import struct as _struct
from collections.abc import Mapping, Sequence
from typing import Any

from capsync import wire
from capsync._time import NS_PER_S
from capsync.server import _splice_py
from capsync.server.stores.base import TabularRecord

_pack_double = _struct.Struct("<d").pack
_COMPILED = wire._load_compiled("capsync.server._splice")

_encode_varint = wire.PURE.encode_varint  # the byte layer's one varint encoder
_SMALL_VARINTS = [_encode_varint(n) for n in range(1 << 14)]  # lengths are nearly always small
_NUMBER_PREFIXES: dict[str, bytes] = {}  # a Struct entry up to a number's 8 bytes, per key
_MAX_PREFIXES = 65_536


def varint(value: int) -> bytes:
    return _SMALL_VARINTS[value] if value < 16_384 else _encode_varint(value)


def _number_prefix(key: str) -> bytes:
    """``fields`` entry tag, length, key, then the Value tag, length and number tag: all a
    number entry holds but the number itself (the same for every number under ``key``)."""
    prefix = _NUMBER_PREFIXES.get(key)
    if prefix is None:
        key_field = _field(0x0A, key.encode("utf-8", "surrogatepass"))
        prefix = b"\x0a" + varint(len(key_field) + 11) + key_field + b"\x12\x09\x11"
        if len(_NUMBER_PREFIXES) >= _MAX_PREFIXES:
            _NUMBER_PREFIXES.clear()
        _NUMBER_PREFIXES[key] = prefix
    return prefix


def _field(tag: int, body: bytes) -> bytes:
    return bytes((tag,)) + varint(len(body)) + body


def value_bytes(value: Any) -> bytes:
    """One ``google.protobuf.Value``."""
    if type(value) is float:
        return b"\x11" + _pack_double(value)
    if value is True:
        return b"\x20\x01"
    if value is False:
        return b"\x20\x00"
    if isinstance(value, int):
        return b"\x11" + _pack_double(float(value))
    if isinstance(value, str):
        return _field(0x1A, value.encode("utf-8", "surrogatepass"))
    if value is None:
        return b"\x08\x00"
    if isinstance(value, Mapping):
        return _field(0x2A, struct_bytes(value))
    if isinstance(value, Sequence):
        return _field(0x32, b"".join(_field(0x0A, value_bytes(v)) for v in value))
    return _field(0x1A, str(value).encode("utf-8", "surrogatepass"))


def struct_bytes(fields: Mapping[str, Any]) -> bytes:
    """The body of a ``google.protobuf.Struct`` holding ``fields``."""
    parts = []
    for key, v in fields.items():
        kind = type(v)
        if kind is float or kind is int:
            parts.append(_number_prefix(key) + _pack_double(v))
        else:
            key_field = _field(0x0A, key.encode("utf-8", "surrogatepass"))
            parts.append(_field(0x0A, key_field + _field(0x12, value_bytes(v))))
    return b"".join(parts)


_SECONDS: dict[int, bytes] = {}  # readings of a page share their seconds


def timestamp_bytes(ns: int) -> bytes:
    seconds, nanos = divmod(ns, NS_PER_S)
    out = _SECONDS.get(seconds)
    if out is None:
        out = b"\x08" + varint(seconds if seconds > 0 else seconds + (1 << 64)) if seconds else b""
        if len(_SECONDS) >= _MAX_PREFIXES:
            _SECONDS.clear()
        _SECONDS[seconds] = out
    if nanos:
        out += b"\x10" + varint(nanos)
    return out


def tabular_entry(record: TabularRecord, metadata_index: int) -> bytes:
    """One ``TabularData`` (data=1, metadata_index=2, time_requested=3, time_received=4)."""
    body = _field(0x0A, struct_bytes(record.data))
    if metadata_index:
        body += b"\x10" + varint(metadata_index)
    if record.time_requested_ns:
        body += _field(0x1A, timestamp_bytes(record.time_requested_ns))
    if record.time_received_ns:
        body += _field(0x22, timestamp_bytes(record.time_received_ns))
    return body


def tabular_data_field(entries: Sequence[bytes]) -> bytes:
    """The repeated ``data`` field (number 2) of a TabularDataByFilterResponse."""
    return b"".join(_field(0x12, entry) for entry in entries)


# --- splicing stored readings ------------------------------------------------------------
#
# A stored batch body holds each reading as a ``sensor_contents`` field: tag 2, length,
# then the ``SensorData``: ``metadata`` (tag 1, a one-byte length, holding
# ``time_requested`` 1 and ``time_received`` 2) then ``struct`` (field 2). A response's
# ``data`` field is tag 2 too, and a ``TabularData`` of the same length holds
# ``metadata_index`` (field 2: two bytes where the metadata's tag and length were), the
# same two Timestamps (fields 3 and 4) and the same Struct (field 1); protobuf lets
# fields come in any order. So each entry is the stored bytes with five bytes rewritten:
# a run of readings is copied in a few slices and patched with numpy, and no Struct is
# decoded or encoded. (``metadata_index`` 0 is written out rather than left out: the same
# value to a reader.)


def spliced_entries(
    body: bytes, offsets: Any, lengths: Any, metadata_index: int
) -> tuple[bytes, int] | None:
    """The ``data`` fields (tag 2, one ``TabularData`` each) of the readings whose
    ``SensorData`` sits at ``offsets``/``lengths`` (int64 arrays) in ``body``, and the
    total size of the entries (``total_size_bytes``).

    None when some reading is not laid out the plain way (metadata with exactly the
    two times, then the struct): the caller decodes those instead. Compiled
    (``capsync.server._splice``) when the compiled wire is in use, else the twin
    (:mod:`capsync.server._splice_py`): the same bytes either way.
    """
    if _COMPILED is not None and wire.native_available():
        return _COMPILED.spliced_entries(body, offsets, lengths, metadata_index)
    return _splice_py.spliced_entries(body, offsets, lengths, metadata_index)
