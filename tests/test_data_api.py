"""viam-sdk's DataClient against a real ``capsync serve``: Viam's data query API (SPEC §7).

One server per module holds a fixed set of readings (part ``p-read``) that the
read-only tests check exactly; tests that change data upload their own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bson
import pytest
import sync_helpers
from data_api_helpers import SECOND_NS, T0_NS, call, invalid, refused, utc
from grpclib.const import Status
from server_fixtures import AUTH, ServerProcess, start_server, tabular_request, write_keys
from viam.proto.app.data import DeleteTabularFilter, Filter, Order, TagsFilter, TagsFilterType
from viam.utils import create_filter

from capsync.query import LOCATION_ID, ORGANIZATION_ID
from capsync.query.catalog import META_DIR
from capsync.query.columnar import PARQUET_DIR

pytestmark = pytest.mark.wire_independent

PART = "p-read"
SENSOR = "rdk:component:sensor"
THERMO_N = 120
BARO_N = 10


def thermo(i: int) -> dict[str, Any]:
    return {"readings": {"temp": 20 + i * 0.5, "i": i}}


def baro(i: int) -> dict[str, Any]:
    return {"readings": {"hpa": 1000.0 + i}}


@pytest.fixture(scope="module", name="server")
def server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("data-api")
    server = start_server(tmp / "data", tmp, keys_file=write_keys(tmp / "keys.json"))
    try:
        stub = server.stub()
        half = THERMO_N // 2
        for tag, indexes in (("lab", range(half)), ("field", range(half, THERMO_N))):
            readings = [(T0_NS + i * SECOND_NS, thermo(i)) for i in indexes]
            stub.DataCaptureUpload(
                tabular_request(readings, part_id=PART, component_name="thermo", tags=[tag]),
                metadata=AUTH,
            )
        readings = [(T0_NS + i * SECOND_NS + 500, baro(i)) for i in range(BARO_N)]
        stub.DataCaptureUpload(
            tabular_request(readings, part_id=PART, component_name="baro"), metadata=AUTH
        )
        yield server
    finally:
        server.stop()


def thermo_filter(**fields: Any) -> Filter:
    return create_filter(part_id=PART, component_name="thermo", **fields)


# --- TabularDataByFilter -------------------------------------------------------------------


def test_pages_cover_every_reading_once_in_order(server: ServerProcess) -> None:
    seen: list[Any] = []
    last = ""
    sizes = []
    while True:
        data, count, last = call(
            server, lambda c, last=last: c.tabular_data_by_filter(thermo_filter(), 25, last=last)
        )
        if not data:
            assert count == 0 and last == ""
            break
        assert last != "" and count == len(data)
        sizes.append(len(data))
        seen.extend(data)
    assert sizes == [25, 25, 25, 25, 20]
    assert [d.data for d in seen] == [thermo(i) for i in range(THERMO_N)]
    assert [d.time_requested for d in seen] == [utc(T0_NS + i * SECOND_NS) for i in range(THERMO_N)]
    # time_received is the robot's (requested + 1 us in these uploads), not the server's
    assert [d.time_received for d in seen] == [
        utc(T0_NS + i * SECOND_NS + 1000) for i in range(THERMO_N)
    ]


def test_descending_pages_and_default_limit(server: ServerProcess) -> None:
    data, count, last = call(
        server,
        lambda c: c.tabular_data_by_filter(thermo_filter(), sort_order=Order.ORDER_DESCENDING),
    )
    assert count == 50  # Viam's default page size
    assert [d.data["readings"]["i"] for d in data] == list(range(119, 69, -1))
    data, _, _ = call(
        server,
        lambda c: c.tabular_data_by_filter(
            thermo_filter(), 100, sort_order=Order.ORDER_DESCENDING, last=last
        ),
    )
    assert [d.data["readings"]["i"] for d in data] == list(range(69, -1, -1))


def test_count_only(server: ServerProcess) -> None:
    def count(f: Filter) -> int:
        data, n, last = call(server, lambda c: c.tabular_data_by_filter(f, count_only=True))
        assert data == [] and last == ""
        return int(n)

    assert count(thermo_filter()) == THERMO_N
    assert count(create_filter(part_id=PART)) == THERMO_N + BARO_N
    assert count(create_filter(part_id=PART, component_type="sensor")) == THERMO_N + BARO_N
    assert count(create_filter(part_id=PART, method="Readings")) == THERMO_N + BARO_N
    assert count(create_filter(part_id=PART, method="GetPosition")) == 0
    assert count(create_filter(part_id="no-such-part")) == 0
    assert count(create_filter(part_id=PART, component_name="nope")) == 0


def test_tag_filters(server: ServerProcess) -> None:
    def count(f: Filter) -> int:
        return int(call(server, lambda c: c.tabular_data_by_filter(f, count_only=True))[1])

    assert count(create_filter(part_id=PART, tags=["lab"])) == 60
    assert count(create_filter(part_id=PART, tags=["lab", "field"])) == 120  # any of them
    assert count(create_filter(part_id=PART, tags=["nope"])) == 0
    assert count(create_filter(part_id=PART, tags=[])) == THERMO_N + BARO_N
    tagged = Filter(
        part_id=PART, tags_filter=TagsFilter(type=TagsFilterType.TAGS_FILTER_TYPE_TAGGED)
    )
    untagged = Filter(
        part_id=PART, tags_filter=TagsFilter(type=TagsFilterType.TAGS_FILTER_TYPE_UNTAGGED)
    )
    assert count(tagged) == THERMO_N
    assert count(untagged) == BARO_N
    data, _, _ = call(
        server, lambda c: c.tabular_data_by_filter(create_filter(part_id=PART, tags=["field"]), 1)
    )
    assert data[0].data == thermo(60)
    assert list(data[0].metadata.tags) == ["field"]


def test_interval_filter(server: ServerProcess) -> None:
    start, end = utc(T0_NS + 10 * SECOND_NS), utc(T0_NS + 20 * SECOND_NS)
    start = start.replace(tzinfo=dt.UTC)
    end = end.replace(tzinfo=dt.UTC)
    data, _, _ = call(
        server,
        lambda c: c.tabular_data_by_filter(thermo_filter(start_time=start, end_time=end), 100),
    )
    assert [d.data for d in data] == [thermo(i) for i in range(10, 20)]  # start in, end out
    data, _, _ = call(
        server, lambda c: c.tabular_data_by_filter(thermo_filter(start_time=start), 1000)
    )
    assert len(data) == THERMO_N - 10


def test_capture_metadata(server: ServerProcess) -> None:
    data, _, _ = call(server, lambda c: c.tabular_data_by_filter(create_filter(part_id=PART), 1))
    meta = data[0].metadata
    assert meta.organization_id == ORGANIZATION_ID
    assert meta.location_id == LOCATION_ID
    assert meta.part_id == PART and meta.robot_id == PART
    assert meta.component_type == SENSOR
    assert meta.component_name == "thermo"
    assert meta.method_name == "Readings"


def test_bad_page_token_is_invalid_argument(server: ServerProcess) -> None:
    message = invalid(server, lambda c: c.tabular_data_by_filter(thermo_filter(), last="garbage"))
    assert "last" in message


# --- latest and export --------------------------------------------------------------------


def test_get_latest_tabular_data(server: ServerProcess) -> None:
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    latest = call(server, lambda c: c.get_latest_tabular_data(PART, "thermo", SENSOR, "Readings"))
    assert latest is not None
    captured, synced, payload = latest
    assert captured == utc(T0_NS + (THERMO_N - 1) * SECOND_NS)
    assert payload == thermo(THERMO_N - 1)
    assert dt.timedelta(0) < before - synced < dt.timedelta(minutes=5)  # when the upload arrived
    assert (
        call(server, lambda c: c.get_latest_tabular_data(PART, "nope", SENSOR, "Readings")) is None
    )


def test_export_tabular_data(server: ServerProcess) -> None:
    rows = call(
        server,
        lambda c: c.export_tabular_data(
            PART, "baro", SENSOR, "Readings",
            utc(T0_NS + 2 * SECOND_NS).replace(tzinfo=dt.UTC), None,
        ),
    )  # fmt: skip
    assert [r.payload for r in rows] == [baro(i) for i in range(2, BARO_N)]
    assert [r.time_captured for r in rows] == [
        utc(T0_NS + i * SECOND_NS + 500) for i in range(2, BARO_N)
    ]
    assert {(r.part_id, r.resource_name, r.resource_api, r.method_name) for r in rows} == {
        (PART, "baro", SENSOR, "Readings")
    }
    assert {r.organization_id for r in rows} == {ORGANIZATION_ID}


# --- SQL -----------------------------------------------------------------------------------


def sql(server: ServerProcess, query: str) -> list[dict[str, Any]]:
    return call(server, lambda c: c.tabular_data_by_sql(ORGANIZATION_ID, query))


def test_sql_forms_from_viams_docs(server: ServerProcess) -> None:
    rows = sql(
        server,
        "SELECT data.readings.temp AS temp, time_requested FROM readings "
        "WHERE component_name = 'thermo' "
        "AND time_requested >= CAST('2025-11-30T00:01:00Z' AS TIMESTAMP) "
        "ORDER BY time_requested LIMIT 3",
    )
    assert rows == [
        {"temp": 20 + i * 0.5, "time_requested": utc(T0_NS + i * SECOND_NS)} for i in (60, 61, 62)
    ]
    assert sql(
        server, "SELECT count(*) AS n FROM sensorData.readings WHERE part_id = 'p-read'"
    ) == [{"n": THERMO_N + BARO_N}]
    rows = sql(
        server,
        "SELECT component_name, avg(data.readings.temp) AS t, count(*) AS n FROM readings "
        "WHERE part_id = 'p-read' GROUP BY component_name ORDER BY component_name",
    )
    mean = sum(20 + i * 0.5 for i in range(THERMO_N)) / THERMO_N
    assert rows == [
        {"component_name": "baro", "t": None, "n": BARO_N},
        {"component_name": "thermo", "t": mean, "n": THERMO_N},
    ]


def test_sql_select_star_shapes(server: ServerProcess) -> None:
    (row,) = sql(
        server,
        "SELECT * FROM readings WHERE component_name = 'thermo' ORDER BY time_requested LIMIT 1",
    )
    assert row["tags"] == ["lab"]
    assert row["data"] == {"readings": {"temp": 20.0, "i": 0.0}}
    assert row["time_requested"] == utc(T0_NS)
    assert row["organization_id"] == ORGANIZATION_ID and row["location_id"] == LOCATION_ID
    assert row["robot_id"] == PART and row["part_id"] == PART
    assert {"component_type", "component_name", "method_name", "time_received"} <= set(row)
    (row,) = sql(server, "SELECT component_name FROM readings LIMIT 1")
    assert list(row) == ["component_name"]  # only the selected columns


@pytest.mark.parametrize(
    "query",
    [
        "DELETE FROM readings",
        "INSERT INTO readings (part_id) VALUES ('x')",
        "UPDATE readings SET part_id = 'x'",
        "DROP VIEW readings",
        "CREATE TABLE t AS SELECT 1",
        "ATTACH '/tmp/x.db' AS x",
        "COPY readings TO '/tmp/out.csv'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM read_text('/etc/hostname')",
        "SET threads = 1",
        "PRAGMA version",
        "SELECT 1; SELECT 2",
        "SELECT * FROM other_table",
        "SELECT * FROM main.readings",
        "SELECT * FROM temp.main.readings",
        "SELEC nonsense",
        "",
    ],
)
def test_sql_that_is_not_a_plain_read_is_refused(server: ServerProcess, query: str) -> None:
    invalid(server, lambda c: c.tabular_data_by_sql(ORGANIZATION_ID, query))


def test_sql_ctes_and_subqueries_over_readings_work(server: ServerProcess) -> None:
    rows = sql(
        server,
        "WITH t AS (SELECT data.readings.i AS i FROM readings WHERE component_name = 'thermo') "
        "SELECT max(i) AS top FROM (SELECT i FROM t WHERE i < 10)",
    )
    assert rows == [{"top": 9.0}]


# --- MQL -----------------------------------------------------------------------------------


def mql(server: ServerProcess, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return call(server, lambda c: c.tabular_data_by_mql(ORGANIZATION_ID, pipeline))


def test_mql_stages(server: ServerProcess) -> None:
    match = {"$match": {"part_id": PART, "component_name": "thermo"}}
    assert mql(server, [match, {"$count": "n"}]) == [{"n": THERMO_N}]
    rows = mql(
        server,
        [
            match,
            {"$match": {"data.readings.i": {"$gte": 10, "$lt": 14}}},
            {"$sort": {"time_requested": -1}},
            {"$skip": 1},
            {"$limit": 2},
            {"$project": {"_id": 0, "t": "$data.readings.temp", "data.readings.i": 1}},
        ],
    )
    assert rows == [
        {"t": 26.0, "data": {"readings": {"i": 12.0}}},
        {"t": 25.5, "data": {"readings": {"i": 11.0}}},
    ]
    rows = mql(
        server,
        [
            {"$match": {"part_id": PART}},
            {"$group": {
                "_id": "$component_name", "n": {"$sum": 1}, "total": {"$sum": "$data.readings.i"},
                "lo": {"$min": "$data.readings.i"}, "hi": {"$max": "$data.readings.i"},
                "mean": {"$avg": "$data.readings.temp"}, "count": {"$count": {}},
            }},
            {"$sort": {"_id": 1}},
        ],
    )  # fmt: skip
    assert rows[1] == {
        "_id": "thermo", "n": THERMO_N, "total": float(sum(range(THERMO_N))), "lo": 0.0,
        "hi": float(THERMO_N - 1), "mean": sum(20 + i * 0.5 for i in range(THERMO_N)) / THERMO_N,
        "count": THERMO_N,
    }  # fmt: skip
    assert rows[0]["_id"] == "baro" and rows[0]["n"] == BARO_N
    assert mql(server, [{"$match": {"tags": "lab"}}, {"$count": "n"}]) == [{"n": 60}]
    assert mql(server, [{"$match": {"tags": {"$in": ["lab", "field"]}}}, {"$count": "n"}]) == [
        {"n": 120}
    ]
    when = dt.datetime(2025, 11, 30, 0, 1, tzinfo=dt.UTC)
    assert mql(
        server, [{"$match": {"component_name": "thermo", "time_requested": {"$gte": when}}},
                 {"$count": "n"}],
    ) == [{"n": 60}]  # fmt: skip
    assert mql(server, [{"$match": {"component_name": "nope"}}, {"$count": "n"}]) == []


@pytest.mark.parametrize(
    ("stage", "named"),
    [
        ({"$out": "copy"}, "$out"),
        ({"$merge": {"into": "copy"}}, "$merge"),
        ({"$lookup": {"from": "x"}}, "$lookup"),
        ({"$unwind": "$tags"}, "$unwind"),
    ],
)
def test_mql_refusals_name_the_stage(
    server: ServerProcess, stage: dict[str, Any], named: str
) -> None:
    message = invalid(server, lambda c: c.tabular_data_by_mql(ORGANIZATION_ID, [stage]))
    assert named in message


# --- auth and unimplemented ------------------------------------------------------------------


def test_a_wrong_key_is_refused(server: ServerProcess) -> None:
    error = refused(server, lambda c: c.tabular_data_by_sql(ORGANIZATION_ID, "SELECT 1"),
                    key="wrong")  # fmt: skip
    assert error.status == Status.UNAUTHENTICATED
    error = refused(server, lambda c: c.list_datasets_by_organization_id(ORGANIZATION_ID),
                    key_id="who")  # fmt: skip
    assert error.status == Status.UNAUTHENTICATED


def test_other_methods_are_unimplemented_with_a_reason(server: ServerProcess) -> None:
    error = refused(server, lambda c: c.get_database_connection(ORGANIZATION_ID))
    assert error.status == Status.UNIMPLEMENTED
    assert "GetDatabaseConnection" in str(error.message)
    error = refused(server, lambda c: c.list_indexes(ORGANIZATION_ID, 0))
    assert error.status == Status.UNIMPLEMENTED


def test_rows_are_bson_documents(server: ServerProcess) -> None:
    # The raw wire answer: one BSON document per row.
    import grpc

    from capsync.proto.viam.app.data.v1 import data_pb2

    channel = grpc.insecure_channel(server.address)
    try:
        method = channel.unary_unary(
            "/viam.app.data.v1.DataService/TabularDataBySQL",
            request_serializer=data_pb2.TabularDataBySQLRequest.SerializeToString,
            response_deserializer=data_pb2.TabularDataBySQLResponse.FromString,
        )
        response = method(
            data_pb2.TabularDataBySQLRequest(
                organization_id=ORGANIZATION_ID,
                sql_query="SELECT time_requested FROM readings WHERE component_name = 'baro' "
                "ORDER BY time_requested LIMIT 2",
            ),
            metadata=AUTH,
        )
    finally:
        channel.close()
    decoded = [
        bson.decode(raw, codec_options=bson.CodecOptions(tz_aware=True))
        for raw in response.raw_data
    ]
    assert decoded == [
        {"time_requested": utc(T0_NS + i * SECOND_NS).replace(tzinfo=dt.UTC)} for i in (0, 1)
    ]


def test_delete_tabular_data(tmp_path: Path) -> None:
    """Its own server: by filter and age in whole UTC days, then everything."""
    server = start_server(tmp_path / "data", tmp_path, keys_file=write_keys(tmp_path / "k.json"))
    try:
        now = dt.datetime.now(dt.UTC)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        day_ns = 86_400 * SECOND_NS
        today_ns = int(midnight.timestamp()) * SECOND_NS
        stub = server.stub()
        for name in ("a", "b"):
            readings = [(today_ns - d * day_ns + SECOND_NS, {"d": d}) for d in range(5)]
            stub.DataCaptureUpload(tabular_request(readings, component_name=name), metadata=AUTH)

        def days(name: str) -> list[int]:
            f = create_filter(component_name=name)
            data, _, _ = call(server, lambda c: c.tabular_data_by_filter(f, 100))
            return [int(d.data["d"]) for d in data]

        only_b = DeleteTabularFilter(component_name="b")
        # older than 2 days: captured before yesterday's midnight (days 2, 3, 4 ago)
        assert call(server, lambda c: c.delete_tabular_data(ORGANIZATION_ID, 2, only_b)) == 3
        assert days("b") == [1, 0] and days("a") == [4, 3, 2, 1, 0]
        assert sql(server, "SELECT count(*) AS n FROM readings") == [{"n": 7}]
        tags = DeleteTabularFilter(tags_filter=TagsFilter(tags=["x"]))
        invalid(server, lambda c: c.delete_tabular_data(ORGANIZATION_ID, 1, tags))
        assert call(server, lambda c: c.delete_tabular_data(ORGANIZATION_ID, 0)) == 7
        assert days("a") == [] and sql(server, "SELECT count(*) AS n FROM readings") == [{"n": 0}]
    finally:
        server.stop()


@pytest.mark.slow  # two server starts
def test_sql_reads_compacted_parquet_plus_the_tail(tmp_path: Path) -> None:
    """The embedded store's change feed: the server compacts what it holds when it starts
    (then every --compact-interval), and SQL sees those files plus the newer readings
    (the tail) once each; a delete reaches both."""
    data_dir = tmp_path / "data"
    keys = write_keys(tmp_path / "k.json")
    today_ns = (
        int(dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp())
        * SECOND_NS
    )
    day_ns = 86_400 * SECOND_NS
    server = start_server(data_dir, tmp_path, keys_file=keys)
    try:
        for d in (4, 3, 2):  # older days, one upload each
            readings = [(today_ns - d * day_ns + i * SECOND_NS, {"d": d, "i": i}) for i in range(3)]
            server.stub().DataCaptureUpload(tabular_request(readings), metadata=AUTH)
    finally:
        server.stop()
    parquet = data_dir / META_DIR / PARQUET_DIR
    # its first pass compacts what is stored; the next one is an hour away, so what is
    # uploaded from here on stays the tail
    server = start_server(data_dir, tmp_path, "--compact-interval", "3600", keys_file=keys)
    try:
        assert sync_helpers.wait_for(lambda: len(list(parquet.rglob("*.parquet"))) == 3, 30.0)
        readings = [(today_ns + i * SECOND_NS, {"d": 0, "i": i}) for i in range(2)]
        server.stub().DataCaptureUpload(tabular_request(readings), metadata=AUTH)  # the tail
        rows = sql(server, "SELECT data.d AS d, data.i AS i FROM readings ORDER BY time_requested")
        expected = [(d, i) for d in (4, 3, 2) for i in range(3)] + [(0, 0), (0, 1)]
        assert [(int(r["d"]), int(r["i"])) for r in rows] == expected
        # retention-style delete: older than 3 days removes days 4 and 3 from the files
        assert call(server, lambda c: c.delete_tabular_data(ORGANIZATION_ID, 3)) == 6
        rows = sql(server, "SELECT data.d AS d, count(*) AS n FROM readings GROUP BY 1 ORDER BY 1")
        assert [(int(r["d"]), r["n"]) for r in rows] == [(0, 2), (2, 3)]
        day_2 = dt.datetime.fromtimestamp((today_ns - 2 * day_ns) / 1e9, dt.UTC)
        days_in_files = [f.parent.name for f in parquet.rglob("*.parquet")]
        assert days_in_files == [day_2.strftime("%Y-%m-%d")]
    finally:
        server.stop()
