"""The hand-written TabularData encoding parses to what the protobuf runtime builds."""

from __future__ import annotations

import math
from typing import Any

import pytest
from google.protobuf import struct_pb2

from capsync.proto.viam.app.data.v1 import data_pb2
from capsync.server import data_wire
from capsync.server.stores.base import TabularRecord

pytestmark = pytest.mark.wire_independent

READINGS: list[dict[str, Any]] = [
    {},
    {"a": 1.5, "b": -2, "c": 0, "big": 2**53 + 1},
    {"s": "héllo", "empty": "", "t": True, "f": False, "n": None},
    {"nested": {"deeper": {"x": [1.0, "two", None, [3], {"k": False}]}}, "list": []},
    {"nan": math.nan, "inf": -math.inf, "key with ünïcode": 1e-300},
]


@pytest.mark.parametrize("data", READINGS)
@pytest.mark.parametrize(
    ("requested_ns", "received_ns", "index"),
    [(0, 0, 0), (1_764_460_800_123_456_789, 5, 3), (-1_500_000_000, 1, 1)],
)
def test_entries_match_the_runtime(
    data: dict[str, Any], requested_ns: int, received_ns: int, index: int
) -> None:
    record = TabularRecord(
        id="x",
        upload_id="u",
        part_id="p",
        component_type="t",
        component_name="n",
        method_name="m",
        tags=(),
        time_requested_ns=requested_ns,
        time_received_ns=received_ns,
        mime_type="",
        data=data,
    )
    head = data_pb2.TabularDataByFilterResponse(count=1, last="tok")
    wire = head.SerializeToString() + data_wire.tabular_data_field(
        [data_wire.tabular_entry(record, index)]
    )
    parsed = data_pb2.TabularDataByFilterResponse.FromString(wire)
    expected = data_pb2.TabularData(metadata_index=index)
    expected.data.SetInParent()  # the server always sends data, even an empty one
    expected.data.update(data)
    if requested_ns:
        expected.time_requested.FromNanoseconds(requested_ns)
    if received_ns:
        expected.time_received.FromNanoseconds(received_ns)
    (entry,) = parsed.data
    assert (parsed.count, parsed.last) == (1, "tok")
    # NaN != NaN: compare serialized forms of each side's own parse
    assert entry.SerializeToString(deterministic=True) == expected.SerializeToString(
        deterministic=True
    )
    assert isinstance(entry.data, struct_pb2.Struct)
