"""Helpers shared by the wire and stream tests: decode records with the official runtime."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from google.protobuf import struct_pb2

from capsync.proto import data_sync_pb2

NAN = "<nan>"


def expected_value(value: Any) -> Any:
    """What a value must decode to from a Struct: numbers as floats, tuples as lists."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
        return NAN if math.isnan(number) else number
    if isinstance(value, Mapping):
        return {key: expected_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [expected_value(item) for item in value]
    return value


def value_to_python(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "null_value":
        return None
    if kind == "number_value":
        return NAN if math.isnan(value.number_value) else value.number_value
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_to_python(value.struct_value)
    if kind == "list_value":
        return [value_to_python(item) for item in value.list_value.values]
    raise AssertionError(f"Value with no kind set: {value}")


def struct_to_python(struct: struct_pb2.Struct) -> dict[str, Any]:
    return {key: value_to_python(item) for key, item in struct.fields.items()}


def ts_ns(stamp: Any) -> int:
    return int(stamp.seconds) * 1_000_000_000 + int(stamp.nanos)


def decode_frames(data: bytes) -> list[data_sync_pb2.SensorData]:
    """Decode a run of varint-delimited SensorData with protobuf's own varint reader."""
    from google.protobuf.internal.decoder import _DecodeVarint  # type: ignore[attr-defined]

    records = []
    pos = 0
    while pos < len(data):
        length, pos = _DecodeVarint(data, pos)
        records.append(data_sync_pb2.SensorData.FromString(data[pos : pos + length]))
        pos += length
    return records
