"""Readings as MCAP's JSON messages: a channel's JSON schema from its first reading, and a
stored reading's JSON text (the server-side twin of what capture files convert to)."""

from __future__ import annotations

import json
from typing import Any


def json_schema(value: Any) -> dict[str, Any]:
    """A JSON schema describing ``value`` (the first reading of a channel)."""
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int | float):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "string"}
    if isinstance(value, dict):
        return {
            "type": "object",
            "properties": {key: json_schema(item) for key, item in value.items()},
        }
    if isinstance(value, list):
        return {"type": "array", "items": json_schema(value[0]) if value else {}}
    return {}


_encode_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if value - value == 0 else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def reading_json(data: dict[str, Any]) -> bytes:
    """A stored reading as JSON text, NaN and ±Infinity as null (as capture files convert)."""
    try:
        return _encode_json(data).encode()
    except ValueError:  # a number JSON cannot hold
        return _encode_json(_finite(data)).encode()
