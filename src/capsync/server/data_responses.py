"""The bytes of a ``TabularDataByFilterResponse``: a page of stored runs spliced from
their stored bytes, or decoded readings encoded by hand (:mod:`capsync.server.data_wire`
says why the ``data`` entries are not built with the protobuf runtime)."""

from __future__ import annotations

from typing import Any

from capsync.proto.viam.app.data.v1 import data_pb2 as pb
from capsync.query.filters import Cursor
from capsync.server import data_convert as convert
from capsync.server import data_wire
from capsync.server.records import decode_batch, reading_id
from capsync.server.stores.base import TabularBatch, TabularRecord


def records_response(records: list[TabularRecord], cursor: Cursor | None) -> bytes:
    """A serialized TabularDataByFilterResponse of decoded readings (a store without
    stored bytes to splice: MongoDB)."""
    metadata, indexes = convert.tabular_metadata(records)
    entries = [data_wire.tabular_entry(r, i) for r, i in zip(records, indexes, strict=True)]
    head = pb.TabularDataByFilterResponse(
        metadata=metadata,
        count=len(records),
        last=cursor.token() if cursor else "",
        total_size_bytes=sum(len(entry) for entry in entries),
    )
    # Serialized here: the data entries are appended as bytes (see data_wire).
    return head.SerializeToString() + data_wire.tabular_data_field(entries)


def tabular_response(runs: list[tuple[TabularBatch, Any]]) -> bytes:
    """A serialized TabularDataByFilterResponse of a page of stored runs (see
    :meth:`DataQuery.tabular_runs`): each reading's Struct and times are copied from the
    stored bytes (:func:`data_wire.spliced_entries`); a batch laid out otherwise is
    decoded."""
    index: dict[tuple[Any, ...], int] = {}
    metadata: list[pb.CaptureMetadata] = []
    blocks: list[bytes] = []
    total_size = count = 0
    for batch, positions in runs:
        key = (batch.part_id, batch.component_type, batch.component_name, batch.method_name,
               batch.tags, batch.mime_type)  # fmt: skip
        at = index.get(key)
        if at is None:
            at = index[key] = len(metadata)
            metadata.append(convert.capture_metadata(batch))
        spliced = data_wire.spliced_entries(
            batch.body, batch.offsets[positions], batch.lengths[positions], at
        )
        if spliced is None:
            records = decode_batch(batch.body, batch.id, batch.uploaded_at_ns)
            chosen = [records[i] for i in positions.tolist()]
            extra, places = convert.tabular_metadata(chosen)
            entries = []
            for record, place in zip(chosen, places, strict=True):
                known = (record.part_id, record.component_type, record.component_name,
                         record.method_name, record.tags, record.mime_type)  # fmt: skip
                if known not in index:
                    index[known] = len(metadata)
                    metadata.append(extra[place])
                entries.append(data_wire.tabular_entry(record, index[known]))
            spliced = data_wire.tabular_data_field(entries), sum(len(e) for e in entries)
        blocks.append(spliced[0])
        total_size += spliced[1]
        count += len(positions)
    cursor = None
    if runs:
        batch, positions = runs[-1]
        last = int(positions[-1])
        cursor = Cursor(int(batch.time_requested_ns[last]), reading_id(batch.id, last))
    head = pb.TabularDataByFilterResponse(
        metadata=metadata,
        count=count,
        last=cursor.token() if cursor else "",
        total_size_bytes=total_size,
    )
    return b"".join([head.SerializeToString(), *blocks])  # one copy of the page
