"""The query layer over any store with the small QueryableStore interface (the adapter
for the rebuilt ingest stores), driven through an in-memory store; and the embedded
store's change feed, which the Parquet compactor follows."""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from query_fixtures import MemoryStore

from capsync.query import DataFilter, DataQuery, Page
from capsync.server.store_source import StoreSource
from capsync.server.stores.base import BlobRecord, ItemFilter, TabularRecord
from capsync.server.stores.batch_index import INDEX_FILE_NAME
from capsync.server.stores.local import TABULAR_FOLDER, LocalStore

pytestmark = pytest.mark.wire_independent

T0_NS = 1_764_460_800_000_000_000
S_NS = 1_000_000_000


def reading(i: int, name: str = "thermo", tags: tuple[str, ...] = ()) -> TabularRecord:
    return TabularRecord(
        id=f"batch:{i:03d}", upload_id="u", part_id="p", component_type="rdk:component:sensor",
        component_name=name, method_name="Readings", tags=tags,
        time_requested_ns=T0_NS + (i // 2) * S_NS, time_received_ns=T0_NS, mime_type="",
        data={"readings": {"i": i}},
    )  # fmt: skip


def image(i: int, data_dir: Path) -> BlobRecord:
    path = f"p/img-{i}.jpeg"
    (data_dir / "p").mkdir(exist_ok=True)
    (data_dir / path).write_bytes(b"img" * (i + 1))
    return BlobRecord(
        id=f"blob-{i}", upload_id="u", kind="binary" if i % 2 else "file", part_id="p",
        component_type="rdk:component:camera", component_name="cam", method_name="ReadImage",
        tags=(), time_requested_ns=T0_NS + (i // 2) * S_NS, time_received_ns=T0_NS,
        mime_type="image/jpeg", file_extension=".jpeg", path=path, size_bytes=3 * (i + 1),
        sha256=str(i),
    )  # fmt: skip


@pytest.fixture(name="query")
def query_fixture(tmp_path: Path) -> Iterator[DataQuery]:
    readings = [reading(i, tags=("lab",) if i < 5 else ()) for i in range(11)]
    store = MemoryStore(
        [*readings, reading(99, name="baro"), *(image(i, tmp_path) for i in range(5))]
    )
    query = DataQuery(StoreSource(store), tmp_path)
    yield query
    query.close()


def test_pages_both_ways_cover_every_reading_once(query: DataQuery) -> None:
    f = DataFilter(component_name="thermo")
    for descending in (False, True):
        seen: list[int] = []
        cursor = None
        while True:
            page, cursor_next = query.tabular_page(
                f, Page(limit=3, after=cursor, descending=descending)
            )
            if not page:
                break
            seen.extend(r.data["readings"]["i"] for r in page)
            cursor = cursor_next
        assert seen == (list(range(10, -1, -1)) if descending else list(range(11)))
    assert query.count_tabular(f) == 11
    assert query.count_tabular(DataFilter(tags=("lab", "x"))) == 5
    assert query.count_tabular(DataFilter(tag_match="untagged", component_name="thermo")) == 6


def test_blobs_tags_boxes_datasets_deletes(query: DataQuery) -> None:
    ids = [b.id for b in query.all_blobs(DataFilter())]
    assert ids == [f"blob-{i}" for i in range(5)]  # (time, id) order across kinds
    assert query.add_tags(ids[:2], ["red"]) == 2
    assert [b.id for b in query.all_blobs(DataFilter(tags=("red",)))] == ids[:2]
    box = query.add_box(ids[0], "cat", 0.1, 0.1, 0.2, 0.2)
    assert query.box_labels(DataFilter()) == ["cat"]
    assert [b.id for b in query.all_blobs(DataFilter(bbox_labels=("cat",)))] == [ids[0]]
    query.remove_box(ids[0], box)
    dataset = query.datasets.create("set").id
    query.add_to_dataset(ids[3:], dataset)
    assert [b.id for b in query.all_blobs(DataFilter(dataset_id=dataset))] == ids[3:]
    assert query.count_blobs(DataFilter()) == (5, 3 + 6 + 9 + 12 + 15)
    assert query.delete_blobs([ids[4]]) == 1
    assert not (query.data_dir / "p/img-4.jpeg").exists()
    assert query.delete_tabular(T0_NS + 2 * S_NS, DataFilter(component_name="thermo")) == 4
    assert query.count_tabular(DataFilter()) == 8
    rows = query.sql("SELECT count(*) AS n, min(data.readings.i) AS lo FROM readings")
    assert rows == [{"n": 8, "lo": 4.0}]
    assert query.source.sources() == [
        ("p", "rdk:component:camera", "cam", "ReadImage"),
        ("p", "rdk:component:sensor", "baro", "Readings"),
        ("p", "rdk:component:sensor", "thermo", "Readings"),
    ]


# --- the embedded store's change feed ------------------------------------------------------


def local_reading(i: int, name: str = "thermo") -> TabularRecord:
    return TabularRecord(
        id="", upload_id="u", part_id="p", component_type="rdk:component:sensor",
        component_name=name, method_name="Readings", tags=(),
        time_requested_ns=T0_NS + i * S_NS, time_received_ns=T0_NS + i * S_NS,
        mime_type="", data={"readings": {"i": i}},
    )  # fmt: skip


def feed_values(records: list[TabularRecord]) -> list[int]:
    return [int(r.data["readings"]["i"]) for r in records]


def test_local_store_feed_lists_whole_batches_in_insertion_order(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    try:
        source = StoreSource(store)
        assert source.supports_changes
        assert store.record_tabular([local_reading(i) for i in range(5, 8)]) == 3
        assert store.record_tabular([local_reading(i, "baro") for i in range(2)]) == 2
        assert store.record_tabular([local_reading(i) for i in range(3)]) == 3  # older times
        first, mark = source.changes_since(0, 1)  # a whole batch even past the limit
        assert feed_values(first) == [5, 6, 7] and mark > 0
        rest, mark_2 = source.changes_since(mark, 100)
        assert feed_values(rest) == [0, 1, 0, 1, 2]  # insertion order, not time order
        assert source.changes_since(mark_2, 100) == ([], mark_2)
        # a batch deleted whole leaves the feed; a partly deleted one loses those readings
        assert source.delete_tabular(None, DataFilter(component_name="baro")) == 2
        assert source.delete_tabular(T0_NS + 6 * S_NS, DataFilter(component_name="thermo")) == 4
        everything, _ = source.changes_since(0, 100)
        assert feed_values(everything) == [6, 7]
        # marks are never reused, even when the newest batch was deleted
        store.record_tabular([local_reading(i, "wind") for i in range(2)])
        assert source.delete_tabular(None, DataFilter(component_name="wind")) == 2
        store.record_tabular([local_reading(9)])
        new, mark_3 = source.changes_since(mark_2, 100)
        assert feed_values(new) == [9] and mark_3 > mark_2 + 1
    finally:
        store.close()
    reopened = LocalStore(tmp_path)
    try:  # the feed survives a restart
        assert feed_values(StoreSource(reopened).changes_since(mark_2, 100)[0]) == [9]
    finally:
        reopened.close()


def test_local_store_sql_reads_parquet_plus_tail_exactly_once(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    with DataQuery(StoreSource(store), tmp_path) as query:
        assert query.columnar is not None
        for start in range(0, 20, 5):
            store.record_tabular([local_reading(i) for i in range(start, start + 5)])
        assert query.columnar.compact() == 20
        files, mark = query.columnar.snapshot()
        assert files and all(f.exists() and f.stat().st_size > 0 for f in files)
        assert mark > 0 and query.columnar.compact() == 0
        store.record_tabular([local_reading(i) for i in range(20, 23)])  # the tail
        rows = query.sql("SELECT data.readings.i AS i FROM readings ORDER BY time_requested")
        assert [r["i"] for r in rows] == [float(i) for i in range(23)]
        # a delete reaches the files and the tail
        assert query.delete_tabular(T0_NS + 10 * S_NS) == 10
        rows = query.sql("SELECT data.readings.i AS i FROM readings ORDER BY time_requested")
        assert [r["i"] for r in rows] == [float(i) for i in range(10, 23)]
        assert query.columnar.compact() == 3
        assert query.sql("SELECT count(*) AS n FROM readings") == [{"n": 13}]
    store.close()


def test_local_store_index_of_schema_1_is_rebuilt_with_its_sequence(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.record_tabular([local_reading(i) for i in range(4)])
    store.close()
    index = tmp_path / TABULAR_FOLDER / INDEX_FILE_NAME
    with contextlib.closing(sqlite3.connect(index)) as conn:  # the previous release's table
        conn.executescript(
            "DROP TABLE batches; CREATE TABLE batches (id TEXT PRIMARY KEY, segment INTEGER, "
            "offset INTEGER, length INTEGER) WITHOUT ROWID; PRAGMA user_version=1;"
        )
    reader = LocalStore(tmp_path, create=False)  # beside a running server: left alone
    try:
        assert not StoreSource(reader).supports_changes
    finally:
        reader.close()
    with contextlib.closing(sqlite3.connect(index)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (1,)
    store = LocalStore(tmp_path)
    try:
        records, mark = StoreSource(store).changes_since(0, 100)
        assert feed_values(records) == [0, 1, 2, 3] and mark == 1
    finally:
        store.close()


def test_local_store_page_reads_only_the_index_rows_it_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page near the start of many stored batches reads a few index rows, not every later
    batch's (paging through N batches would otherwise cost N rows a page); and the rows
    read a few at a time are exactly :meth:`BatchIndex.select`'s, in order, across ties."""
    from capsync.server.stores import batch_index

    store = LocalStore(tmp_path)
    try:
        for n in range(120):  # batches of 2 readings; every 3 batches share a first time
            first = (n // 3) * 10 + n % 3
            store.record_tabular([
                dataclasses.replace(local_reading(first + k), upload_id=f"u{n}") for k in (0, 5)
            ])  # fmt: skip
        index = store._index
        for f in (ItemFilter(), ItemFilter(component="thermo", since_ns=T0_NS + 95 * S_NS)):
            assert list(index.select_iter(f)) == index.select(f)
        query = DataQuery(StoreSource(store), tmp_path)
        converted = []
        real_row = batch_index._row
        monkeypatch.setattr(batch_index, "_row", lambda v: converted.append(v) or real_row(v))
        records, _ = query.tabular_page(DataFilter(component_name="thermo"), Page(limit=4))
        assert [r.time_requested_ns for r in records] == [T0_NS + i * S_NS for i in (0, 1, 2, 5)]
        assert len(converted) <= 8  # decoded (and merged in time order)
        converted.clear()
        runs = query.tabular_runs(DataFilter(component_name="thermo"), Page(limit=4))
        assert runs is not None and sum(len(p) for _, p in runs) == 4
        assert len(converted) <= 8  # spliced
    finally:
        store.close()


def test_local_store_lists_its_sources_without_decoding_a_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retention and the web page list the sources at every run: from the index and the
    blob table (decoding every stored reading to list them took minutes at 10M readings);
    a source all of whose readings were deleted is not listed."""
    from capsync.server.stores import local

    store = LocalStore(tmp_path)
    try:
        store.record_tabular([local_reading(i) for i in range(3)])
        store.record_tabular([local_reading(i, "baro") for i in range(2)])
        store.record_tabular([local_reading(i, "wind") for i in range(2)])
        store.record_blobs([image(0, tmp_path)])
        source = StoreSource(store)
        wind = [r.id for r in store.query() if r.component_name == "wind"]
        assert source.delete_tabular(None, DataFilter(component_name="baro")) == 2
        assert store.delete(ids=wind) == 2  # each reading: tombstones, the batch stays
        expected = [("p", "rdk:component:camera", "cam", "ReadImage"),
                    ("p", "rdk:component:sensor", "thermo", "Readings")]  # fmt: skip

        def refuse(*args: object, **kwargs: object) -> None:
            raise AssertionError("a reading was decoded")

        monkeypatch.setattr(local, "decode_batch", refuse)
        assert source.sources() == expected
    finally:
        store.close()
