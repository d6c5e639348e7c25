"""The ``readings`` rows as an Arrow table: Viam's columns, ``data`` as one struct."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from capsync.query.filters import LOCATION_ID, ORGANIZATION_ID

if TYPE_CHECKING:
    from capsync.server.stores.base import TabularRecord

_TIME = pa.timestamp("us")
_STRING_COLUMNS = (
    "organization_id",
    "location_id",
    "robot_id",
    "part_id",
    "component_type",
    "component_name",
    "method_name",
)


def readings_table(records: Iterable[TabularRecord]) -> pa.Table:
    """The ``readings`` rows of these records as an Arrow table (``data`` a struct)."""
    columns: dict[str, list[Any]] = {
        name: [] for name in (*_STRING_COLUMNS, "time_requested", "time_received", "tags")
    }
    columns["mime_type"] = []
    data: list[dict[str, Any]] = []
    for r in records:
        columns["organization_id"].append(ORGANIZATION_ID)
        columns["location_id"].append(LOCATION_ID)
        columns["robot_id"].append(r.part_id)
        columns["part_id"].append(r.part_id)
        columns["component_type"].append(r.component_type)
        columns["component_name"].append(r.component_name)
        columns["method_name"].append(r.method_name)
        columns["time_requested"].append(
            r.time_requested_ns // 1000 if r.time_requested_ns else None
        )
        columns["time_received"].append(r.time_received_ns // 1000 if r.time_received_ns else None)
        columns["tags"].append(list(r.tags))
        columns["mime_type"].append(r.mime_type)
        data.append(r.data)
    arrays: dict[str, pa.Array] = {
        name: pa.array(columns[name], pa.string()) for name in _STRING_COLUMNS
    }
    arrays["time_requested"] = pa.array(columns["time_requested"], _TIME)
    arrays["time_received"] = pa.array(columns["time_received"], _TIME)
    arrays["tags"] = pa.array(columns["tags"], pa.list_(pa.string()))
    arrays["mime_type"] = pa.array(columns["mime_type"], pa.string())
    arrays["data"] = data_array(data)
    return pa.table(arrays)


def data_array(data: list[dict[str, Any]]) -> pa.Array:
    """The readings as one struct column whose fields are the union of every reading's.

    A field holding different kinds of value in different readings (a number
    here, a string there) cannot be one struct field: then the whole column is
    JSON text instead.
    """
    data = [_as_doubles(d) for d in data]
    try:
        array = pa.array(data)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([json.dumps(d, allow_nan=True) for d in data], pa.string())
    if array.type == pa.null() or (pa.types.is_struct(array.type) and array.type.num_fields == 0):
        # DuckDB has no empty struct: give every row one null field.
        return pa.array([{"_": None}] * len(data), pa.struct([("_", pa.string())]))
    return array


def _as_doubles(value: Any) -> Any:
    """Numbers as floats, as a ``Struct`` carries them (the store keeps whole ones as ints)."""
    if isinstance(value, dict):
        return {k: _as_doubles(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_doubles(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
