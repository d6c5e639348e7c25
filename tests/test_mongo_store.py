"""The MongoDB store (``capsync serve --mongo-uri``) used directly: the same answers as the
embedded store, de-duplication across processes.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from mongo_fixtures import client_for
from mongo_helpers import (
    T0,
    S,
    blob_record,
    sample_records,
    store_all,
    tabular_record,
)

from capsync.server import ItemFilter, SqliteStore, list_items
from capsync.server.query import export
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


def test_mongo_store_dedupes_concurrent_inserts(mongo_uri: str, mongo_db: str) -> None:
    records = [tabular_record(i) for i in range(200)]
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
