"""The query layer without a server: compaction into Parquet, SQL over files plus
tail, deletes and retention applied to both, and the retention header; on an
in-memory store with a test change feed and on the embedded store's own feed."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from query_fixtures import ChangingSource, MemoryStore

from capsync.query import DataFilter, DataQuery, Page, QueryError
from capsync.query.columnar import ID_COLUMN
from capsync.query.retention import RetentionBook, RetentionRules, apply_retention
from capsync.retention import Retention, decode_header, encode_header
from capsync.server.store_source import StoreSource
from capsync.server.stores.base import BlobRecord, TabularRecord
from capsync.server.stores.local import LocalStore

pytestmark = pytest.mark.wire_independent

DAY_NS = 86_400 * 1_000_000_000
T0_NS = 1_764_460_800_000_000_000  # 2025-11-30T00:00:00Z
HOUR_NS = 3600 * 1_000_000_000


def reading(i: int, name: str = "thermo", at_ns: int | None = None, **data: Any) -> TabularRecord:
    ns = T0_NS + i * HOUR_NS if at_ns is None else at_ns
    return TabularRecord(
        id=f"{name}-{i}-{ns}", upload_id="u", part_id="p", component_type="rdk:component:sensor",
        component_name=name, method_name="Readings", tags=(), time_requested_ns=ns,
        time_received_ns=ns + 5, mime_type="", data={"readings": {"i": i, **data}},
        uploaded_at_ns=ns,
    )  # fmt: skip


def blob(i: int, data_dir: Path, size: int, at_ns: int) -> BlobRecord:
    path = f"p/blob-{i}.jpeg"
    (data_dir / "p").mkdir(exist_ok=True)
    (data_dir / path).write_bytes(b"x" * size)
    return BlobRecord(
        id=f"blob-{i}", upload_id="u", kind="binary", part_id="p",
        component_type="rdk:component:camera", component_name="cam", method_name="ReadImage",
        tags=(), time_requested_ns=at_ns, time_received_ns=at_ns, mime_type="image/jpeg",
        file_extension=".jpeg", path=path, size_bytes=size, sha256=str(i),
    )  # fmt: skip


AnyStore = MemoryStore | LocalStore


@pytest.fixture(name="store", params=["memory", "local"])
def store_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AnyStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    store = LocalStore(tmp_path)  # the embedded store: its batch index is the change feed
    yield store
    store.close()


@pytest.fixture(name="query")
def query_fixture(tmp_path: Path, store: AnyStore) -> Iterator[DataQuery]:
    source = ChangingSource(store) if isinstance(store, MemoryStore) else StoreSource(store)
    with DataQuery(source, tmp_path) as query:
        yield query


def count_sql(query: DataQuery, where: str = "TRUE") -> int:
    return int(query.sql(f"SELECT count(*) AS n FROM readings WHERE {where}")[0]["n"])


def test_sql_sees_files_plus_tail_exactly_once(store: AnyStore, query: DataQuery) -> None:
    assert query.columnar is not None
    store.record_tabular([reading(i) for i in range(30)])  # 30 hours: two UTC days
    assert count_sql(query) == 30  # all in the tail
    assert query.columnar.compact() == 30
    files, mark = query.columnar.snapshot()
    assert len(files) == 2 and mark > 0
    assert {f.parent.name for f in files} == {"2025-11-30", "2025-12-01"}
    store.record_tabular([reading(i) for i in range(30, 35)])
    assert count_sql(query) == 35  # 30 from files + 5 from the tail, none twice
    rows = query.sql("SELECT data.readings.i AS i FROM readings ORDER BY time_requested")
    assert [r["i"] for r in rows] == [float(i) for i in range(35)]
    assert ID_COLUMN not in query.sql("SELECT * FROM readings LIMIT 1")[0]
    assert query.columnar.compact() == 5
    assert query.columnar.compact() == 0
    assert count_sql(query) == 35


def test_fields_differ_between_files_and_tail(store: AnyStore, query: DataQuery) -> None:
    store.record_tabular([reading(0, temp=1.5)])
    assert query.columnar is not None
    query.columnar.compact()
    store.record_tabular([reading(1, name="baro", hpa=990.0)])
    rows = query.sql(
        "SELECT component_name, data.readings.temp AS t, data.readings.hpa AS h FROM readings "
        "ORDER BY time_requested"
    )
    assert rows == [
        {"component_name": "thermo", "t": 1.5, "h": None},
        {"component_name": "baro", "t": None, "h": 990.0},
    ]
    assert query.sql("SELECT data FROM readings ORDER BY time_requested") == [
        {"data": {"readings": {"i": 0.0, "temp": 1.5}}},
        {"data": {"readings": {"i": 1.0, "hpa": 990.0}}},
    ]


def test_delete_tabular_applies_to_files_and_store(store: AnyStore, query: DataQuery) -> None:
    store.record_tabular([reading(i) for i in range(48)])  # 2025-11-30 and 2025-12-01
    assert query.columnar is not None
    query.columnar.compact()
    now = T0_NS + 3 * DAY_NS + HOUR_NS  # 2025-12-03T01:00Z
    # older than 3 days, counted in whole UTC days: captured before 2025-12-01T00:00Z
    assert query.delete_tabular_older_than(3, now_ns=now) == 24  # before 2025-12-01
    assert count_sql(query) == 24
    assert query.count_tabular(DataFilter()) == 24
    assert [f.parent.name for f in query.columnar.snapshot()[0]] == ["2025-12-01"]
    # a cut inside a day rewrites that day's file
    cut = T0_NS + DAY_NS + 12 * HOUR_NS
    assert query.delete_tabular(cut) == 12
    assert count_sql(query) == 12
    assert query.delete_tabular_older_than(0) == 12
    assert count_sql(query) == 0 and query.columnar.snapshot()[0] == []
    with pytest.raises(QueryError):
        query.delete_tabular_older_than(-1)


def test_retention_days_and_limits(
    tmp_path: Path, store: AnyStore, query: DataQuery, caplog: pytest.LogCaptureFixture
) -> None:
    now = T0_NS + 10 * DAY_NS
    store.record_tabular([reading(i, at_ns=T0_NS + i * DAY_NS) for i in range(10)])
    store.record_tabular([reading(i, name="baro", at_ns=T0_NS + i * DAY_NS) for i in range(10)])
    for i in range(4):
        store.record_blob(blob(i, tmp_path, 1000, T0_NS + (6 + i) * DAY_NS))
    book = RetentionBook(tmp_path)
    book.record(("p", "rdk:component:sensor", "thermo", "Readings"), Retention(days=3))
    rules = RetentionRules.from_document(
        {"rules": [{"component_name": "cam", "binary_limit_gb": 2.5e-6}],
         "default": {"days": 100}}
    )  # fmt: skip
    with caplog.at_level(logging.INFO, logger="capsync.query.retention"):
        report = apply_retention(query, book, rules, now_ns=now)
    # thermo: the announced policy (3 days) wins; baro: the default (100 days) removes nothing
    assert query.count_tabular(DataFilter(component_name="thermo")) == 3
    assert query.count_tabular(DataFilter(component_name="baro")) == 10
    assert count_sql(query, "component_name = 'thermo'") == 3
    # cam: 4000 bytes over a 2500-byte limit: the two oldest go, files included
    assert [b.id for b in query.all_blobs(DataFilter())] == ["blob-2", "blob-3"]
    assert not (tmp_path / "p/blob-0.jpeg").exists() and (tmp_path / "p/blob-3.jpeg").exists()
    assert (report.readings, report.binaries) == (7, 2)
    assert (
        "retention removed 7 readings and 0 binaries of p/rdk:component:sensor/thermo"
        in caplog.text
    )
    book.close()


def test_retention_tabular_limit_drops_oldest_days(
    tmp_path: Path, store: AnyStore, query: DataQuery
) -> None:
    store.record_tabular([reading(i, at_ns=T0_NS + i * DAY_NS, pad="x" * 2000) for i in range(5)])
    assert query.columnar is not None
    query.columnar.compact()
    sizes = query.columnar.source_sizes()[("p", "rdk:component:sensor", "thermo", "Readings")]
    limit_bytes = sum(size for _, size in sizes[-2:])  # room for the newest two days
    rules = RetentionRules(default=Retention(tabular_limit_gb=limit_bytes / 1e9))
    apply_retention(query, None, rules, now_ns=T0_NS + 5 * DAY_NS)
    rows = query.sql("SELECT data.readings.i AS i FROM readings ORDER BY i")
    assert rows == [{"i": 3.0}, {"i": 4.0}]


def test_retention_rules_are_checked() -> None:
    with pytest.raises(ValueError, match="rules\\[0\\]: unknown key 'dayz'"):
        RetentionRules.from_document({"rules": [{"component_name": "x", "dayz": 3}]})
    with pytest.raises(ValueError, match="days must be a number >= 0"):
        RetentionRules.from_document({"default": {"days": -1}})
    with pytest.raises(ValueError, match="unknown key 'defaults'"):
        RetentionRules.from_document({"defaults": {}})


def test_retention_header_round_trip() -> None:
    key = ("part", "rdk:component:camera", "cam/é", "ReadImage")
    policy = Retention(days=7, binary_limit_gb=1.5)
    assert decode_header(encode_header(key, policy)) == (key, policy)
    with pytest.raises(ValueError):
        decode_header(b"not json")


def test_pages_and_cursor(store: AnyStore, query: DataQuery) -> None:
    store.record_tabular([reading(i) for i in range(7)])
    seen: list[int] = []
    cursor = None
    while True:
        page, cursor_next = query.tabular_page(DataFilter(), Page(limit=3, after=cursor))
        if not page:
            break
        seen.extend(r.data["readings"]["i"] for r in page)
        cursor = cursor_next
    assert seen == list(range(7))


def test_mql_group_then_project_keeps_id_and_sums_to_zero(
    store: AnyStore, query: DataQuery
) -> None:
    store.record_tabular([reading(i) for i in range(4)])
    rows = query.mql(
        [
            {"$group": {"_id": "$component_name", "n": {"$sum": 1}, "none": {"$sum": "$nope"}}},
            {"$project": {"n": 1, "none": 1}},
        ]
    )
    assert rows == [{"_id": "thermo", "n": 4, "none": 0}]
    rows = query.mql(
        [{"$group": {"_id": None, "n": {"$sum": 1}}}, {"$project": {"_id": 0, "n": 1}}]
    )
    assert rows == [{"n": 4}]
    rows = query.mql(
        [{"$match": {"data.readings.i": {"$in": [1, 3]}}}, {"$project": {"i": "$data.readings.i"}}]
    )
    assert rows == [{"i": 1.0}, {"i": 3.0}]


class _Aborted(Exception):
    pass


class _Context:
    """Stands in for grpc.ServicerContext: abort raises with the code and message."""

    def abort(self, code: Any, message: str) -> None:
        raise _Aborted(code, message)


def test_sql_without_pymongo_is_failed_precondition_naming_the_extra(
    store: AnyStore, query: DataQuery, monkeypatch: pytest.MonkeyPatch
) -> None:
    import grpc

    from capsync.proto.viam.app.data.v1 import data_pb2
    from capsync.server.data_service import DataService

    monkeypatch.setitem(sys.modules, "bson", None)  # as if pymongo were not installed
    request = data_pb2.TabularDataBySQLRequest(sql_query="SELECT 1 AS one")
    with pytest.raises(_Aborted) as aborted:
        DataService(query).TabularDataBySQL(request, _Context())
    code, message = aborted.value.args
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "pip install 'capsync[mongo]'" in message
    # the query layer itself needs no BSON (capsync data sql prints JSON)
    assert query.sql("SELECT 1 AS one") == [{"one": 1}]
