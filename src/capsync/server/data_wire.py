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

import numpy as np

from capsync.server.store import TabularRecord

_pack_double = _struct.Struct("<d").pack
_NS_PER_S = 1_000_000_000


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


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
    seconds, nanos = divmod(ns, _NS_PER_S)
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
# A stored batch body holds each reading's ``SensorData`` bytes: ``metadata`` (field 1:
# ``time_requested`` 1, ``time_received`` 2) then ``struct`` (field 2). A ``TabularData``
# holds the same Struct (field 1) and the same two Timestamps (fields 3 and 4), so an
# entry is those byte ranges copied behind new tags, with no Struct decoded or encoded.
# The copy is one numpy gather for a whole run of readings.

def spliced_entries(
    body: bytes, offsets: Any, lengths: Any, metadata_index: int
) -> tuple[bytes, int] | None:
    """The ``data`` fields (tag 2, one ``TabularData`` each) of the readings whose
    ``SensorData`` sits at ``offsets``/``lengths`` (int64 arrays) in ``body``, and the
    total size of the entries (``total_size_bytes``).

    None when some reading is not laid out the plain way (metadata with exactly the
    two times, then the struct, all lengths short): the caller decodes those instead.
    """
    count = len(offsets)
    if count == 0:
        return b"", 0
    if not 0 <= metadata_index < 128:
        return None
    offsets = np.asarray(offsets, dtype=np.int64)
    ends = offsets + np.asarray(lengths, dtype=np.int64)
    low, high = int(offsets.min()), int(ends.max())
    src = np.frombuffer(body, dtype=np.uint8)[low:high]
    o, ends = offsets - low, ends - low
    last = len(src) - 1

    def at(pos: Any) -> Any:
        return src[np.minimum(pos, last)].astype(np.int64)

    meta_len = at(o + 1)
    m = o + 2  # the metadata's body
    requested_len = at(m + 1)
    j = m + 2 + requested_len  # the time_received field
    received_len = at(j + 1)
    p = m + meta_len  # the struct field
    v1, v2 = at(p + 1), at(p + 2)
    long_struct = v1 >= 128
    struct_len = np.where(long_struct, (v1 & 0x7F) | (v2 << 7), v1)
    struct_varint = np.where(long_struct, 2, 1)
    plain = (
        (at(o) == 0x0A) & (meta_len < 128) & (at(m) == 0x0A) & (requested_len < 128)
        & (at(j) == 0x12) & (received_len < 128) & (j + 2 + received_len == p)
        & (at(p) == 0x12) & (~long_struct | (v2 < 128))
        & (p + 1 + struct_varint + struct_len == ends)
    )  # fmt: skip
    if not plain.all():
        return None
    index_len = 2 if metadata_index else 0
    entry_len = (ends - p) + index_len + 1 + (1 + requested_len) + 1 + (1 + received_len)
    if int(entry_len.max()) >= 16_384:
        return None
    two = entry_len >= 128
    varints = np.empty((count, 2), dtype=np.uint8)
    varints[:, 0] = np.where(two, (entry_len & 0x7F) | 0x80, entry_len)
    varints[:, 1] = entry_len >> 7
    base = len(src)
    consts = np.frombuffer(bytes((0x12, 0x0A, 0x10, metadata_index, 0x1A, 0x22)), np.uint8)
    source = np.concatenate((src, consts, varints.ravel()))
    one = np.ones(count, dtype=np.int64)
    starts = np.stack((
        base * one, base + 6 + 2 * np.arange(count, dtype=np.int64), (base + 1) * one,
        p + 1, (base + 2) * one, (base + 4) * one, m + 1, (base + 5) * one, j + 1,
    ), axis=1).ravel()  # fmt: skip
    sizes = np.stack((
        one, 1 + two, one, ends - p - 1, index_len * one, one, 1 + requested_len, one,
        1 + received_len,
    ), axis=1).ravel()  # fmt: skip
    out_starts = np.cumsum(sizes) - sizes
    gather = np.repeat(starts - out_starts, sizes) + np.arange(int(sizes.sum()), dtype=np.int64)
    return source[gather].tobytes(), int(entry_len.sum())
