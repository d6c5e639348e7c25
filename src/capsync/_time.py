"""The one home for time conversions: nanoseconds since the epoch <-> protobuf
``Timestamp``, ISO-8601 text, UTC days (``YYYY-MM-DD``) and BSON dates.

capsync keeps every instant as an ``int`` of nanoseconds since 1970-01-01 UTC
(``*_ns``); these helpers are the only places that turn it into something else
and back. (The wire kernels encode ``Timestamp`` bytes themselves, in C and in
their twins: that is the byte layer, not a conversion between Python types.)
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from google.protobuf import timestamp_pb2

NS_PER_S = 1_000_000_000
_NS_PER_MS = 1_000_000
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def timestamp(ns: int) -> timestamp_pb2.Timestamp:
    """A protobuf ``Timestamp`` of ``ns`` (floor division: nanos is always in [0, 1e9))."""
    from google.protobuf import timestamp_pb2  # protobuf loads only where it is used

    seconds, nanos = divmod(ns, NS_PER_S)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def timestamp_ns(stamp: Any) -> int:
    """Nanoseconds since the epoch of a protobuf ``Timestamp`` (anything with seconds, nanos)."""
    return int(stamp.seconds) * NS_PER_S + int(stamp.nanos)


def bson_date(ns: int) -> dt.datetime:
    """UTC nanoseconds as an aware datetime truncated to the millisecond (a BSON Date)."""
    return EPOCH + dt.timedelta(milliseconds=ns // _NS_PER_MS)


def parse_time(text: str) -> int:
    """Nanoseconds since the epoch from ISO-8601 (no zone means UTC) or epoch seconds."""
    text = text.strip()
    try:
        epoch_s = decimal.Decimal(text)
    except decimal.InvalidOperation:
        pass
    else:
        if not epoch_s.is_finite():
            raise ValueError(f"not a time: {text!r}")
        return int(epoch_s * NS_PER_S)
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    fraction_ns = 0
    # datetime keeps microseconds only: take a longer fraction apart.
    head, dot, rest = iso.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        fraction_ns = int((rest[:digits] + "000000000")[:9]) if digits else 0
        iso = head + rest[digits:]
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        raise ValueError(
            f"not a time: {text!r} (use ISO-8601 like 2024-05-01T12:00:00Z, or epoch seconds)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    delta = moment - EPOCH
    seconds = delta.days * 86_400 + delta.seconds
    return seconds * NS_PER_S + fraction_ns


def format_time(ns: int) -> str | None:
    """ISO-8601 UTC with nanoseconds (``2024-05-01T12:00:00.123456789Z``); None for 0."""
    if not ns:
        return None
    seconds, fraction = divmod(ns, NS_PER_S)
    moment = EPOCH + dt.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction:09d}Z"


DAY_NS = 86_400 * NS_PER_S


def day_name(ns: int) -> str:
    """The UTC day ``ns`` falls in, as ``YYYY-MM-DD``."""
    return (EPOCH + dt.timedelta(days=ns // DAY_NS)).strftime("%Y-%m-%d")


def day_start_ns(day: str) -> int:
    """Nanoseconds since the epoch at the start of the UTC day ``YYYY-MM-DD``."""
    moment = dt.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=dt.UTC)
    return int(moment.timestamp()) * NS_PER_S


def iso_micros(ns: int) -> str:
    """``datetime.isoformat()`` of ``ns`` in UTC (microseconds, ``+00:00``), as
    ``capsync inspect`` prints times."""
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).isoformat()
