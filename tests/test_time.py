"""capsync._time, the one home of nanosecond conversions."""

from __future__ import annotations

import datetime as dt

import pytest
from google.protobuf import timestamp_pb2

from capsync import _time

pytestmark = pytest.mark.wire_independent

INSTANTS_NS = [0, 1, 999_999_999, 1_714_564_800_123_456_789, -1, -1_000_000_001, 2**63 - 1]


@pytest.mark.parametrize("ns", INSTANTS_NS)
def test_timestamp_round_trips_like_protobuf(ns: int) -> None:
    ours = _time.timestamp(ns)
    theirs = timestamp_pb2.Timestamp()
    theirs.FromNanoseconds(ns)
    assert ours == theirs  # floor division: nanos always in [0, 1e9)
    assert 0 <= ours.nanos < _time.NS_PER_S
    assert _time.timestamp_ns(ours) == ns == theirs.ToNanoseconds()


def test_bson_date_truncates_to_the_millisecond() -> None:
    assert _time.bson_date(1_714_564_800_123_999_999) == dt.datetime(
        2024, 5, 1, 12, 0, 0, 123_000, tzinfo=dt.UTC
    )
    assert _time.bson_date(-1) == dt.datetime(1969, 12, 31, 23, 59, 59, 999_000, tzinfo=dt.UTC)


@pytest.mark.parametrize("ns", [1, 1_714_564_800_123_456_789, -1_000_000_001])
def test_iso_text_round_trips_to_the_nanosecond(ns: int) -> None:
    text = _time.format_time(ns)
    assert text is not None and text.endswith("Z")
    assert _time.parse_time(text) == ns
    assert _time.format_time(0) is None
