"""TabularDataByFilter pages spliced from the stored bytes say exactly what the decoded
path says: the same readings, values, times, metadata and page tokens, page after page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from google.protobuf import json_format

from capsync import wire
from capsync.proto import data_sync_pb2
from capsync.proto.viam.app.data.v1 import data_pb2
from capsync.query import DataFilter, DataQuery, Page
from capsync.query.filters import Cursor
from capsync.server import data_wire
from capsync.server.data_service import records_response, tabular_response
from capsync.server.records import tabular_batch
from capsync.server.store_source import StoreSource
from capsync.server.stores.base import TabularRecord
from capsync.server.stores.local import LocalStore

T0_NS = 1_764_460_800_000_000_000
S_NS = 1_000_000_000


def reading(i: int, upload: str, name: str = "thermo", tags: tuple[str, ...] = (),
            data: dict[str, Any] | None = None) -> TabularRecord:  # fmt: skip
    return TabularRecord(
        id=f"{upload}:{i}", upload_id=upload, part_id="p", component_type="rdk:component:sensor",
        component_name=name, method_name="Readings", tags=tags,
        time_requested_ns=T0_NS + (i // 3) * S_NS + 7, time_received_ns=T0_NS + i,
        mime_type="", data=data if data is not None else {"readings": {"i": i, "x": i / 3}},
    )  # fmt: skip


def _with_mime(store: LocalStore) -> None:
    """One upload whose readings name a MIME type in their own metadata (decoded instead)."""
    metadata = data_sync_pb2.UploadMetadata(
        part_id="p", component_type="rdk:component:sensor", component_name="thermo",
        method_name="Readings", type=data_sync_pb2.DataType.DATA_TYPE_TABULAR_SENSOR,
    )  # fmt: skip
    request = data_sync_pb2.DataCaptureUploadRequest(metadata=metadata)
    for i in range(4):
        one = request.sensor_contents.add()
        one.metadata.time_requested.FromNanoseconds(T0_NS + i * S_NS + 5)
        one.metadata.time_received.FromNanoseconds(T0_NS + i * S_NS + 6)
        one.metadata.mime_type = 1
        one.struct.update({"mime": i})
    body = request.SerializeToString()
    store.record_batch(tabular_batch(body, wire.wire().scan_upload(body), metadata, 1))


@pytest.fixture(name="query", scope="module")
def query_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataQuery]:
    data_dir: Path = tmp_path_factory.mktemp("splice")
    store = LocalStore(data_dir)
    store.record_tabular([reading(i, "a", tags=("lab",)) for i in range(30)])
    store.record_tabular([reading(i, "b") for i in range(1, 40, 2)])  # same times as "a"
    store.record_tabular([reading(i, "c", name="baro") for i in range(10)])
    long = {"text": "x" * 300, "nested": {"list": [1, "two", None, True], "empty": {}}}
    store.record_tabular([reading(i, "d", data=long) for i in range(3)])
    store.record_tabular([reading(0, "e", data={"huge": "y" * 20_000})])  # entry > 16 KiB
    _with_mime(store)
    doomed = [
        r.id for r in store.query()
        if isinstance(r, TabularRecord) and r.data.get("readings", {}).get("i") in range(4, 10)
    ][:6]  # fmt: skip
    store.delete(ids=doomed)
    query = DataQuery(StoreSource(store, owns_store=True), data_dir, owns_source=True)
    yield query
    query.close()


def _entries(response: bytes) -> tuple[list[tuple[Any, ...]], int, str]:
    parsed = data_pb2.TabularDataByFilterResponse.FromString(response)
    entries = [
        (
            json_format.MessageToDict(e.data),
            parsed.metadata[e.metadata_index],
            e.time_requested.ToNanoseconds(),
            e.time_received.ToNanoseconds(),
        )
        for e in parsed.data
    ]
    sizes = sum(e.ByteSize() for e in parsed.data)  # metadata_index 0 may be written out
    assert sizes <= parsed.total_size_bytes <= sizes + 2 * len(parsed.data)
    return entries, parsed.count, parsed.last


def _both(query: DataQuery, f: DataFilter, page: Page) -> tuple[Any, Any]:
    runs = query.tabular_runs(f, page)
    assert runs is not None
    decoded = records_response(*query.tabular_page(f, page))
    return _entries(tabular_response(runs)), _entries(decoded)


FILTERS = [
    DataFilter(),
    DataFilter(component_name="thermo"),
    DataFilter(component_name="thermo", tags=("lab",)),
    DataFilter(tag_match="untagged"),
    DataFilter(tag_match="tagged"),
    DataFilter(start_ns=T0_NS + 3 * S_NS, end_ns=T0_NS + 9 * S_NS),
    DataFilter(component_name="nobody"),
]


@pytest.mark.parametrize("f", FILTERS)
@pytest.mark.parametrize("limit", [4, 1000])
def test_spliced_pages_equal_decoded_pages(query: DataQuery, f: DataFilter, limit: int) -> None:
    after = None
    seen = 0
    while True:
        spliced, decoded = _both(query, f, Page(limit=limit, after=after))
        assert spliced == decoded
        entries, count, last = spliced
        assert count == len(entries) <= limit
        seen += count
        if count < limit:
            break
        after = Cursor.parse(last)
    assert seen == query.count_tabular(f)  # counted from the index, not decoded
    decoded = sum(1 for _ in query.source.tabular(f))
    assert seen == decoded


def test_pages_hold_spliced_and_decoded_batches(query: DataQuery) -> None:
    runs = query.tabular_runs(DataFilter(), Page(limit=1000))
    assert runs is not None
    plain = [data_wire.spliced_entries(b.body, b.offsets[p], b.lengths[p], 0) for b, p in runs]
    # only the batch whose readings name a MIME type is decoded: Structs of any length
    # (a length varint of 1, 2 or 3 bytes) are spliced
    decoded = {b.id for (b, _), s in zip(runs, plain, strict=True) if s is None}
    assert len(decoded) == 1 and len(plain) > 2
    entries, count, _ = _entries(tabular_response(runs))
    assert count == 30 + 20 + 10 + 3 + 1 + 4 - 6
    assert {"huge": "y" * 20_000} in [e[0] for e in entries]


def test_no_splicing_for_what_only_decoding_can_check(query: DataQuery) -> None:
    assert query.tabular_runs(DataFilter(), Page(limit=5, descending=True)) is None
    assert query.tabular_runs(DataFilter(mime_types=("image/jpeg",)), Page(limit=5)) is None
    assert query.tabular_runs(DataFilter(dataset_id="d"), Page(limit=5)) == []


def test_compiled_splicing_matches_its_twin(query: DataQuery) -> None:
    """The same bytes (or None) from both, on stored bodies, damaged bodies, odd offsets."""
    from conftest import require_compiled

    from capsync.server import _splice_py

    compiled = data_wire._COMPILED
    require_compiled(compiled, "capsync.server._splice")
    runs = query.tabular_runs(DataFilter(), Page(limit=1000))
    assert runs is not None
    rng = np.random.default_rng(7)
    cases = 0
    for batch, _ in runs:
        body, offsets, lengths = batch.body, batch.offsets, batch.lengths
        for trial in range(60):
            pick = np.sort(rng.choice(len(offsets), rng.integers(0, len(offsets) + 1),
                                      replace=False))  # fmt: skip
            o, n = offsets[pick], lengths[pick]
            data = body
            if trial % 3 == 1:  # one byte changed inside the picked readings
                if not len(pick):
                    continue
                at = int(rng.integers(int(o.min()) - 2, int((o + n).max())))
                data = body[:at] + bytes([int(rng.integers(256))]) + body[at + 1 :]
            elif trial % 3 == 2:  # an offset or length off by a little
                if not len(pick):
                    continue
                o, n = o.copy(), n.copy()
                k = int(rng.integers(len(o)))
                o[k] += int(rng.integers(-3, 4))
                n[k] += int(rng.integers(-3, 40))
            index = int(rng.choice([0, 5, 127, 128, -1]))
            expected = _splice_py.spliced_entries(data, o, n, index)
            assert compiled.spliced_entries(data, o, n, index) == expected
            cases += expected is not None
        assert compiled.spliced_entries(body[:10], offsets, lengths, 0) is None  # cut short
    assert cases > 100
