"""The MongoDB store (``capsync serve --mongo-uri``) used directly: the same answers as the
embedded store, de-duplication across processes.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from mongo_fixtures import client_for
from mongo_helpers import (
    SCHEMA,
    T0,
    Key,
    S,
    blob_record,
    sample_records,
    store_all,
    tabular_record,
)

from capsync.mongo.documents import reading_document, tabular_document
from capsync.server import ItemFilter, SqliteStore, list_items
from capsync.server.data_sources import query_for_store
from capsync.server.query import export
from capsync.server.stores import mongo_feed
from capsync.server.stores.base import TabularRecord
from capsync.server.stores.mongo import MongoStore

pytestmark = pytest.mark.wire_independent


def test_mongo_store_queries_equal_sqlite_store(
    tmp_path: Path, mongo_uri: str, mongo_db: str
) -> None:
    records = sample_records()
    with SqliteStore(tmp_path) as sqlite_store, MongoStore(mongo_uri, mongo_db) as mongo_store:
        store_all(sqlite_store, records)
        store_all(mongo_store, records)
        store_all(mongo_store, records)  # again: nothing new
        for item_filter in (
            None,
            ItemFilter(kind="tabular"),
            ItemFilter(kind="binary"),
            ItemFilter(kind="file"),
            ItemFilter(part_id="part-2"),
            ItemFilter(component="thermo", method="Readings"),
            ItemFilter(component_type="rdk:component:camera"),
            ItemFilter(tags=("lab",)),
            ItemFilter(tags=("lab", "field")),
            ItemFilter(since_ns=T0 + 5 * S, until_ns=T0 + 9 * S),
            ItemFilter(until_ns=T0 + 6 * S, kind="binary"),
            ItemFilter(component="nobody"),
        ):
            expected = list(sqlite_store.query(item_filter))
            assert list(mongo_store.query(item_filter)) == expected, item_filter
    assert len(expected) == 0
    everything = list(list_items(tmp_path, mongo_uri=mongo_uri, mongo_database=mongo_db))
    assert everything == list(list_items(tmp_path))
    assert len(everything) == len(records)
    result = export(tmp_path, None, tmp_path / "out", mongo_uri=mongo_uri, mongo_database=mongo_db)
    assert result.items == len(records)


def test_mongo_store_dedupes_concurrent_inserts(
    mongo_uri: str, mongo_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = records_in = [tabular_record(i) for i in range(200)]
    blob = blob_record(1)
    new_counts: list[int] = []
    blob_new: list[bool] = []
    barrier = threading.Barrier(8)

    def insert(store: MongoStore) -> None:
        barrier.wait(10)
        new_counts.append(store.record_tabular(records))
        blob_new.append(store.record_blob(blob))

    stores = [MongoStore(mongo_uri, mongo_db) for _ in range(2)]  # two "processes"
    try:
        threads = [threading.Thread(target=insert, args=(stores[i % 2],)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        for store in stores:
            store.close()
    assert sum(new_counts) == 200 and len(new_counts) == 8
    assert blob_new.count(True) == 1 and len(blob_new) == 8
    client = client_for(mongo_uri)
    try:
        assert client[mongo_db]["tabular"].count_documents({}) == 200
    finally:
        client.close()
    # The change feed lists them once (numbers the racing calls took and never used are gaps).
    monkeypatch.setattr(mongo_feed, "GAP_WAIT_S", 0.0)
    with MongoStore(mongo_uri, mongo_db) as store:
        records, _ = store.changes_since(0, 10_000)
    assert sorted(r.time_requested_ns for r in records) == [r.time_requested_ns for r in records_in]


def _batch(n: int, count: int) -> list[TabularRecord]:
    """``count`` readings uploaded together (one batch), at minute ``n``."""
    return [
        tabular_record(n * 1000 + i, upload_id=f"{n:064x}", time_requested_ns=T0 + n * 60 * S + i)
        for i in range(count)
    ]


def test_mongo_change_feed_lists_each_batch_once_in_store_order(
    tmp_path: Path, mongo_uri: str, mongo_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with MongoStore(mongo_uri, mongo_db) as store:
        assert store.supports_changes
        store.record_tabular(_batch(2, 3))
        store.record_tabular(_batch(1, 4))  # stored second although earlier in time
        records, mark = store.changes_since(0, 1000)
        assert [r.time_requested_ns for r in records] == [
            *(T0 + 120 * S + i for i in range(3)),
            *(T0 + 60 * S + i for i in range(4)),
        ]
        assert store.changes_since(mark, 1000) == ([], mark)
        store.record_tabular(_batch(1, 4))  # the same again: nothing new
        assert store.changes_since(mark, 1000) == ([], mark)
        # A number taken but never used (a server stopped in between) holds the feed up
        # only until the batch after it has settled.
        store._feed.next_seq()
        store.record_tabular(_batch(3, 2))
        assert store.changes_since(mark, 1000) == ([], mark)
        monkeypatch.setattr(mongo_feed, "GAP_WAIT_S", 0.0)
        records, later = store.changes_since(mark, 1000)
        assert len(records) == 2 and later == mark + 2
        # Deleted readings are left out; a limit stops after whole batches.
        store.delete(item_filter=ItemFilter(until_ns=T0 + 61 * S))
        records, first = store.changes_since(0, 1)
        assert len(records) == 3 and first == 1
        assert len(store.changes_since(0, 1000)[0]) == 3 + 2
        # SQL on this store reads the Parquet the compactor wrote from the feed, plus the tail.
        query = query_for_store(store, tmp_path)
        try:
            assert query.columnar is not None
            query.columnar.compact()
            assert list((tmp_path / "capsync-query").rglob("*.parquet"))
            store.record_tabular(_batch(4, 6))  # the tail
            assert query.sql("SELECT count(*) AS n FROM readings") == [{"n": 3 + 2 + 6}]
            # A racing upload has taken its number but not stored its batch yet: a batch
            # acknowledged after it is in the query's tail at once (not GAP_WAIT_S later),
            # while the compactor's mark still stops before the gap.
            monkeypatch.setattr(mongo_feed, "GAP_WAIT_S", 10.0)
            store._feed.next_seq()
            store.record_tabular(_batch(5, 7))
            assert query.sql("SELECT count(*) AS n FROM readings") == [{"n": 3 + 2 + 6 + 7}]
            query.columnar.compact()
            assert query.sql("SELECT count(*) AS n FROM readings") == [{"n": 3 + 2 + 6 + 7}]
            assert store.changes_since(query.columnar.mark(), 1000)[0] == []  # held at the gap
        finally:
            query.close()


def test_batches_of_a_previous_release_are_numbered_by_a_server(
    mongo_uri: str, mongo_db: str
) -> None:
    with MongoStore(mongo_uri, mongo_db) as store:
        store.record_tabular(_batch(1, 2))
        store.record_tabular(_batch(2, 3))
    client = client_for(mongo_uri)
    try:  # as the previous release stored them: no seq
        client[mongo_db]["batches"].update_many({}, {"$unset": {"seq": "", "seq_at_ns": ""}})
        client[mongo_db].drop_collection("counters")
    finally:
        client.close()
    with MongoStore(mongo_uri, mongo_db, create=False) as reader:
        assert not reader.supports_changes
    with MongoStore(mongo_uri, mongo_db) as server_store:
        records, _ = server_store.changes_since(0, 1000)
        assert len(records) == 5
    with MongoStore(mongo_uri, mongo_db, create=False) as reader:
        assert reader.supports_changes
        assert len(reader.changes_since(0, 1000)[0]) == 5


def test_server_and_robot_documents_share_viam_fields() -> None:
    """The store's document and the robot's capture document of one reading agree on every
    field Viam's shape has (one documents module writes both)."""
    record = tabular_record(3, data={"readings": {"temp": 23.0}})
    stored = tabular_document(record)
    captured = reading_document(
        Key(resource_name="thermo"), {"temp": 23}, record.time_requested_ns,
        record.time_received_ns,
    )  # fmt: skip
    shared = set(SCHEMA) - {"_id"}
    assert {k: stored[k] for k in shared} == {k: captured[k] for k in shared}
    assert stored["_id"] == record.id and stored["time_requested_ns"] == record.time_requested_ns
    unset = tabular_document(tabular_record(4, time_received_ns=0))
    assert unset["time_received"] is None  # the store keeps an unset time as null


def test_mongo_store_lists_its_sources_without_reading_a_document(
    mongo_uri: str, mongo_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retention lists the sources at every run: grouped by MongoDB, not every reading
    decoded in Python."""
    from capsync.server.store_source import StoreSource
    from capsync.server.stores import mongo

    with MongoStore(mongo_uri, mongo_db) as store:
        store_all(store, sample_records())
        expected = sorted({(r.part_id, r.component_type, r.component_name, r.method_name)
                           for r in store.query()})  # fmt: skip

        def refuse(*args: object, **kwargs: object) -> None:
            raise AssertionError("a document was read")

        monkeypatch.setattr(mongo, "tabular_record", refuse)
        monkeypatch.setattr(mongo, "blob_record", refuse)
        assert StoreSource(store).sources() == expected
        assert len(expected) > 2


def test_a_reading_stored_as_json_text_still_shows_its_data_to_mql(
    mongo_uri: str, mongo_db: str
) -> None:
    """A reading MongoDB cannot take as it is (here a NUL in a key) keeps its exact data as
    JSON text, read back as it was, and a view of it that pipelines see (the NUL replaced)."""
    data = {"readings": {"a\x00b": 1.5, "c": 2.0}}
    with MongoStore(mongo_uri, mongo_db) as store:
        store.record_tabular([tabular_record(1, data=data), tabular_record(2)])
        assert [r.data for r in store.query()] == [data, tabular_record(2).data]
        rows = store.aggregate([{"$sort": {"time_requested": 1}}, {"$project": {"data": 1}}])
        assert rows[0] == {"data": {"readings": {"a\ufffdb": 1.5, "c": 2.0}}}
        assert rows[1]["data"]["readings"]["f"] == 0.25


def test_a_reading_whose_view_is_refused_too_is_stored_as_json_text_alone() -> None:
    """Refused as it is, then with the view: stored with its data as JSON text only; the
    count of new documents stays exact."""
    from pymongo.errors import BulkWriteError

    from capsync.server.stores.mongo_docs import as_json

    class Refusing:  # a collection refusing any document whose data holds the key "bad"
        def __init__(self) -> None:
            self.stored: list[dict[str, object]] = []

        def insert_many(self, docs: list[dict[str, object]], ordered: bool) -> None:
            refused = [n for n, d in enumerate(docs) if "bad" in str(d.get("data"))]
            self.stored += [d for n, d in enumerate(docs) if n not in refused]
            if refused:
                errors = [{"index": n, "code": 52} for n in refused]
                raise BulkWriteError({"nInserted": len(docs) - len(refused),
                                      "writeErrors": errors})  # fmt: skip

    good, bad = tabular_record(1), tabular_record(2, data={"readings": {"bad": 1.0}})
    docs = [tabular_document(good), tabular_document(bad)]
    collection = Refusing()
    store = MongoStore.__new__(MongoStore)
    assert store._insert_many(collection, docs, fallback=True) == 2  # type: ignore[arg-type]
    assert collection.stored == [docs[0], as_json(docs[1], view=False)]
    assert "data" not in collection.stored[1] and "data_json" in collection.stored[1]
