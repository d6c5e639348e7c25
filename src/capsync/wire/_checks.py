"""Input normalisation and error wording shared by both wire kernels.

The compiled modules (``ext/capsync/wire/*.pyx``) and their pure-Python twins
accept and refuse the same inputs with the same messages because both call
this module: inputs are normalised here once (numcodecs' pattern: check and
allocate in Python, hand the kernel contiguous arrays), and when a compiled
kernel refuses an input it asks this module to word the refusal (the kernels
themselves only say "no"). Nothing here imports a kernel, so neither kernel
depends on the other.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

MAX_NESTING_DEPTH = 100  # the deepest Struct/ListValue nesting a reading may have
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
U64_MASK = (1 << 64) - 1


# --- varints -------------------------------------------------------------------------------


def read_varint_view(view: memoryview, offset: int) -> tuple[int, int]:
    """Decode the varint at ``offset`` of a byte view; raise ``ValueError`` worded for users."""
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
            return result & U64_MASK, pos
        shift += 7


def upload_region_error(start: int, end: int, size: int, cut_at: int = -1) -> ValueError:
    """Why ``upload_body`` refuses the region ``[start, end)`` of a ``size``-byte buffer."""
    if cut_at < 0:
        return ValueError(f"region [{start}, {end}) is outside a buffer of {size} bytes")
    return ValueError(f"region [{start}, {end}) cuts the frame at {cut_at}")


# --- timestamps and batches ----------------------------------------------------------------


def as_int64(value: Any, name: str) -> int:
    """``value`` as a Python int in the int64 range (the range of a ``*_ns`` timestamp)."""
    number = operator.index(value)
    if not INT64_MIN <= number <= INT64_MAX:
        raise OverflowError(f"{name} {number} does not fit in int64")
    return number


def normalize_batch(
    time_requested_ns: Any, time_received_ns: Any, values: Any, keys: Sequence[str]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Check a batch and return it as contiguous int64, int64 and float64 arrays.

    The messages say which input is off.
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


def check_start_row(start_row: int, n_rows: int) -> None:
    if not 0 <= start_row <= n_rows:
        raise ValueError(f"start_row {start_row} is outside 0..{n_rows}")


def check_binary_prefix(payload_nbytes: int, mime_type: int) -> None:
    if payload_nbytes < 0:
        raise ValueError(f"payload_nbytes must be >= 0, got {payload_nbytes}")
    if mime_type < 0:
        raise ValueError(f"mime_type must be >= 0, got {mime_type}")


def check_capacity(capacity_bytes: int) -> None:
    if capacity_bytes < 1:
        raise ValueError(f"capacity_bytes must be >= 1, got {capacity_bytes}")


# --- readings (a dict of JSON-like values encoded as a protobuf Struct) -------------------


def readings_not_dict(readings: Any) -> TypeError:
    return TypeError(f"readings must be a dict, got {type(readings).__name__}")


def child_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def key_not_string(key: Any, path: str) -> TypeError:
    where = repr(path) if path else "the top level"
    return TypeError(f"reading key {key!r} at {where} is not a string")


def key_not_utf8(path: str) -> TypeError:
    return TypeError(f"reading key {path!r} is not valid UTF-8")


def value_type_error(path: str, value: Any) -> TypeError:
    return TypeError(
        f"reading {path!r} has a value of type {type(value).__name__}, "
        "which has no protobuf Struct representation"
    )


def integer_too_large(path: str) -> TypeError:
    return TypeError(f"reading {path!r} is an integer too large for a double")


def string_not_utf8(path: str) -> TypeError:
    return TypeError(f"reading {path!r} is a string that is not valid UTF-8")


def check_depth(path: str, depth: int) -> None:
    if depth > MAX_NESTING_DEPTH:
        raise ValueError(f"reading {path!r} is nested deeper than {MAX_NESTING_DEPTH} levels")


def reading_error(readings: Any, wrap_key: str | None) -> Exception | None:
    """The exception encoding ``readings`` raises (None when it encodes).

    Walks the reading in the order the encoders do (values, then the wrap key), so a
    compiled encoder that refused a reading reports the same first fault as the twin.
    """
    try:
        _check_struct(readings, "", 2 if wrap_key else 1)
        if wrap_key:
            wrap_key.encode("utf-8")
    except Exception as exc:  # the caller raises it
        return exc
    return None


def _check_value(value: Any, path: str, depth: int) -> None:
    if type(value) is float or isinstance(value, bool) or value is None:
        return
    if isinstance(value, int | float):
        _check_number(value, path)
    elif isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise string_not_utf8(path) from None
    elif isinstance(value, Mapping):
        _check_struct(value, path, depth + 1)
    elif isinstance(value, list | tuple):
        check_depth(path, depth + 1)
        for index, item in enumerate(value):
            _check_value(item, f"{path}[{index}]", depth + 1)
    elif isinstance(value, np.integer | np.floating):
        _check_number(value, path)
    elif not isinstance(value, np.bool_):
        raise value_type_error(path, value)


def _check_number(value: Any, path: str) -> None:
    try:
        float(value)
    except OverflowError:
        raise integer_too_large(path) from None


def _check_struct(fields: Mapping[Any, Any], path: str, depth: int) -> None:
    check_depth(path, depth)
    for key, item in fields.items():
        if not isinstance(key, str):
            raise key_not_string(key, path)
        child = child_path(path, key)
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            raise key_not_utf8(child) from None
        _check_value(item, child, depth)
