"""The data API on the MongoDB store beyond what test_data_api_mongo covers: payloads in
GridFS (served, deleted, expired), MQL run by MongoDB's own ``aggregate``, and retention's
``tabular_limit_gb`` measured by the store.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from data_api_helpers import call, invalid
from mongo_fixtures import client_for
from mongo_helpers import T0, S, blob_record, tabular_record
from page_fixtures import start_page_server
from server_fixtures import AUTH, binary_request, tabular_request, write_keys
from viam.utils import create_filter

from capsync.query import ORGANIZATION_ID, DataFilter
from capsync.query.filters import NotFound, QueryError
from capsync.query.retention import RetentionRules, apply_retention
from capsync.retention import Retention
from capsync.server.data_sources import query_for_store
from capsync.server.gridfs_blobs import GridFsBlobs
from capsync.server.stores.mongo import MongoStore

pytestmark = pytest.mark.wire_independent

DAY = 86_400 * S
SOURCE = ("part-1", "rdk:component:sensor", "thermo", "Readings")


def _payload_names(uri: str, database: str) -> list[str]:
    client = client_for(uri)
    try:
        return sorted(f["filename"] for f in client[database]["payloads.files"].find({}))
    finally:
        client.close()


@pytest.mark.slow  # a capsync serve --http process: ~5-9 s on a loaded machine
def test_gridfs_payloads_served_and_deleted_and_mql_run_by_mongodb(
    tmp_path: Path, mongo_uri: str, mongo_db: str
) -> None:
    keys = write_keys(tmp_path / "keys.json")
    mongo_args = ("--mongo-uri", mongo_uri, "--mongo-database", mongo_db, "--blobs", "gridfs")
    page = start_page_server(tmp_path / "data", tmp_path, keys, *mongo_args)
    server = page.server
    payloads = [b"\xff\xd8\xff" + bytes([i]) * (3000 + i) for i in range(4)]
    try:
        stub = server.stub()
        ids = [
            stub.DataCaptureUpload(
                binary_request(data, T0 + i * S, part_id="gp"), metadata=AUTH, timeout=30
            ).binary_data_id
            for i, data in enumerate(payloads)
        ]
        readings = [(T0 + i * S, {"readings": {"i": i}}) for i in range(6)]
        stub.DataCaptureUpload(tabular_request(readings, tags=["a", "b"]), metadata=AUTH)
        assert len(_payload_names(mongo_uri, mongo_db)) == 4
        assert not list((tmp_path / "data").rglob("*.jpeg")), "payloads are in GridFS only"

        # BinaryDataByIDs and BinaryDataByFilter return the bytes stored in GridFS.
        found = call(server, lambda c: c.binary_data_by_ids(ids[:2]))
        assert [b.binary for b in found] == payloads[:2]
        page_of, _, _ = call(
            server,
            lambda c: c.binary_data_by_filter(
                create_filter(part_id="gp"), include_binary_data=True
            ),
        )
        assert [b.binary for b in page_of] == payloads
        # The data page's blob route serves them too.
        http = page.login()
        response = http.get(f"/api/binaries/{ids[1]}/content")
        assert response.status_code == 200 and response.content == payloads[1]

        # MQL is MongoDB's aggregate: $unwind and $addFields are not in the SQL translation.
        rows = call(
            server,
            lambda c: c.tabular_data_by_mql(
                ORGANIZATION_ID,
                [
                    {"$match": {"data.readings.i": {"$lt": 3}}},
                    {"$unwind": "$tags"},
                    {"$addFields": {"twice": {"$multiply": ["$data.readings.i", 2]}}},
                    {"$group": {"_id": "$tags", "n": {"$sum": 1}, "top": {"$max": "$twice"}}},
                    {"$sort": {"_id": 1}},
                ],
            ),
        )
        assert rows == [{"_id": "a", "n": 3, "top": 4}, {"_id": "b", "n": 3, "top": 4}]
        for stage in ({"$merge": {"into": "x"}}, {"$lookup": {"from": "blobs", "as": "b",
                      "localField": "part_id", "foreignField": "part_id"}}):  # fmt: skip
            name = next(iter(stage))
            message = invalid(
                server, lambda c, s=stage: c.tabular_data_by_mql(ORGANIZATION_ID, [s])
            )
            assert name in message
        message = invalid(
            server, lambda c: c.tabular_data_by_mql(ORGANIZATION_ID, [{"$nosuchstage": {}}])
        )
        assert "$nosuchstage" in message

        # Deletes remove the GridFS payloads with the records.
        assert call(server, lambda c: c.delete_binary_data_by_ids([ids[0]])) == 1
        assert len(_payload_names(mongo_uri, mongo_db)) == 3
        assert http.get(f"/api/binaries/{ids[0]}/content").status_code == 404
        http.close()
        assert (
            call(server, lambda c: c.delete_binary_data_by_filter(create_filter(part_id="gp"))) == 3
        )
        assert _payload_names(mongo_uri, mongo_db) == []
    finally:
        server.stop()


@pytest.fixture(name="mongo_query")
def mongo_query_fixture(tmp_path: Path, mongo_uri: str, mongo_db: str) -> Iterator[Any]:
    """The query layer over a MongoStore with GridFS payloads, in this process."""
    store = MongoStore(mongo_uri, mongo_db)
    gridfs = GridFsBlobs(mongo_uri, mongo_db)
    query = query_for_store(store, tmp_path, gridfs)
    try:
        yield store, gridfs, query
    finally:
        query.close()
        gridfs.close()
        store.close()


def test_retention_removes_gridfs_payloads_and_applies_tabular_limit(
    mongo_query: Any, mongo_uri: str, mongo_db: str
) -> None:
    store, gridfs, query = mongo_query
    now = T0 + 10 * DAY
    # Three binaries: two captured 5 days ago, one now; each payload in GridFS.
    for i, age_days in enumerate((5, 5, 0)):
        stored = gridfs.put(("part-1", "cam"), ".jpeg", f"image {i}".encode())
        at = now - age_days * DAY
        store.record_blob(
            blob_record(i, path=stored.path, sha256=stored.sha256, size_bytes=stored.size_bytes,
                        time_requested_ns=at, time_received_ns=at)
        )  # fmt: skip
    assert len(_payload_names(mongo_uri, mongo_db)) == 3
    report = apply_retention(query, None, RetentionRules(default=Retention(days=2)), now_ns=now)
    assert report.binaries == 2
    assert [b.id for b in query.all_blobs(DataFilter())] == [f"{2:064x}"]
    assert len(_payload_names(mongo_uri, mongo_db)) == 1
    (left,) = query.all_blobs(DataFilter())
    assert query.payload(left) == b"image 2"

    # Readings on three days, 10 per day; the limit keeps the newest two days.
    records = [
        tabular_record(day * 100 + i, time_requested_ns=T0 + day * DAY + i * S, tags=())
        for day in range(3)
        for i in range(10)
    ]
    store.record_tabular(records)
    days = store.tabular_day_sizes(SOURCE)
    assert [name for name, _ in days] == ["2024-05-01", "2024-05-02", "2024-05-03"]
    assert all(size > 10 * 100 for _, size in days)  # ten documents of > 100 bytes each
    limit_bytes = days[1][1] + days[2][1] + days[0][1] // 2  # room for two days and a half
    rules = RetentionRules(default=Retention(tabular_limit_gb=limit_bytes / 1e9))
    report = apply_retention(query, None, rules, now_ns=T0 + 3 * DAY)
    assert report.readings == 10
    kept = sorted(r.time_requested_ns for r in query.iter_tabular(DataFilter()))
    assert kept == sorted(r.time_requested_ns for r in records[10:])
    assert [name for name, _ in store.tabular_day_sizes(SOURCE)] == ["2024-05-02", "2024-05-03"]
    # Within the limit now: nothing more goes.
    assert apply_retention(query, None, rules, now_ns=T0 + 3 * DAY).readings == 0


def test_mql_on_mongo_store_shows_viam_fields_and_refuses_writes(
    mongo_query: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store, _, query = mongo_query
    store.record_tabular([tabular_record(i, tags=("lab",) if i % 2 else ()) for i in range(6)])
    (row,) = query.mql([{"$sort": {"time_requested": -1}}, {"$limit": 1}])
    assert set(row) == {
        "organization_id", "location_id", "robot_id", "part_id", "component_type",
        "component_name", "method_name", "time_requested", "time_received", "tags",
        "mime_type", "data",
    }  # fmt: skip
    assert row["organization_id"] == ORGANIZATION_ID and row["robot_id"] == "part-1"
    assert row["data"] == {"readings": {"temp": 25, "ok": True, "f": 0.25}}
    counted = query.mql([{"$match": {"tags": "lab"}}, {"$count": "n"}])
    assert counted == [{"n": 3}]
    for pipeline in (
        [{"$out": "copy"}],
        [{"$facet": {"a": [{"$merge": {"into": "copy"}}]}}],
        [{"$unionWith": "blobs"}],
        [{"$match": {}, "$limit": 1}],
    ):
        with pytest.raises(QueryError):
            query.mql(pipeline)
    with pytest.raises(QueryError, match=r"\$nosuchstage"):
        query.mql([{"$nosuchstage": 1}])
    assert store.aggregate([{"$count": "n"}]) == [{"n": 6}]  # nothing was written
    with pytest.raises(NotFound):
        query.payload(blob_record(9, path="gridfs:missing/file.jpeg"))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
