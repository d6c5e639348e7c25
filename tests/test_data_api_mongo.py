"""The data API on a ``capsync serve --mongo-uri`` (SecantusDB via mongo_fixtures):
filters, pages, tags, boxes, datasets, deletes, and MQL run by MongoDB itself."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from data_api_helpers import SECOND_NS, T0_NS, call, invalid, utc
from mongo_fixtures import mongo_db_fixture, mongo_uri_fixture  # noqa: F401
from server_fixtures import (
    AUTH,
    ServerProcess,
    binary_request,
    start_server,
    tabular_request,
    write_keys,
)
from viam.utils import create_filter

from capsync.query import ORGANIZATION_ID

pytestmark = pytest.mark.wire_independent

N = 30


@pytest.fixture(name="server")
def server_fixture(
    tmp_path_factory: pytest.TempPathFactory, mongo_uri: str, mongo_db: str
) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("data-api-mongo")
    server = start_server(
        tmp / "data",
        tmp,
        "--mongo-uri",
        mongo_uri,
        "--mongo-database",
        mongo_db,
        keys_file=write_keys(tmp / "keys.json"),
    )
    try:
        stub = server.stub()
        for tag, indexes in (("lab", range(0, N // 2)), ("field", range(N // 2, N))):
            readings = [(T0_NS + i * SECOND_NS, {"readings": {"i": i}}) for i in indexes]
            stub.DataCaptureUpload(tabular_request(readings, tags=[tag]), metadata=AUTH)
        yield server
    finally:
        server.stop()


def test_filters_pages_and_mql_on_mongodb(server: ServerProcess) -> None:
    seen: list[int] = []
    last = ""
    while True:
        page, count, last = call(
            server, lambda c, last=last: c.tabular_data_by_filter(create_filter(), 7, last=last)
        )
        if not page:
            break
        assert count == len(page) <= 7 and last
        seen.extend(int(d.data["readings"]["i"]) for d in page)
    assert seen == list(range(N))
    first, _, _ = call(server, lambda c: c.tabular_data_by_filter(create_filter(), 1))
    assert first[0].time_requested == utc(T0_NS)
    _, count, _ = call(
        server, lambda c: c.tabular_data_by_filter(create_filter(tags=["field"]), count_only=True)
    )
    assert count == N // 2
    rows = call(
        server,
        lambda c: c.tabular_data_by_mql(
            ORGANIZATION_ID,
            [
                {"$match": {"tags": "lab", "data.readings.i": {"$gte": 10}}},
                {
                    "$group": {
                        "_id": "$component_name",
                        "n": {"$sum": 1},
                        "top": {"$max": "$data.readings.i"},
                    }
                },
            ],
        ),
    )
    assert rows == [{"_id": "thermo", "n": 5, "top": 14}]
    (row,) = call(
        server,
        lambda c: c.tabular_data_by_mql(
            ORGANIZATION_ID, [{"$sort": {"time_requested": 1}}, {"$limit": 1}]
        ),
    )
    assert row["organization_id"] == ORGANIZATION_ID and row["robot_id"] == "part-1"
    assert row["data"] == {"readings": {"i": 0}} and "time_requested_ns" not in row
    assert "$out" in invalid(
        server, lambda c: c.tabular_data_by_mql(ORGANIZATION_ID, [{"$out": "x"}])
    )
    rows = call(
        server,
        lambda c: c.tabular_data_by_sql(ORGANIZATION_ID, "SELECT count(*) AS n FROM readings"),
    )
    assert rows == [{"n": N}]


def test_tags_boxes_datasets_and_deletes_on_mongodb(server: ServerProcess) -> None:
    stub = server.stub()
    ids = [
        stub.DataCaptureUpload(
            binary_request(f"img {i}".encode(), T0_NS + i, part_id="mp"), metadata=AUTH
        ).binary_data_id
        for i in range(3)
    ]
    call(server, lambda c: c.add_tags_to_binary_data_by_ids(["red"], ids[:2]))
    assert call(server, lambda c: c.tags_by_filter(create_filter(part_id="mp"))) == ["red"]
    found, _, _ = call(
        server, lambda c: c.binary_data_by_filter(create_filter(part_id="mp", tags=["red"]))
    )
    assert [b.metadata.binary_data_id for b in found] == ids[:2]
    assert call(server, lambda c: c.remove_tags_from_binary_data_by_ids(["red"], ids)) == 2
    box = call(server, lambda c: c.add_bounding_box_to_image_by_id(ids[0], "cat", 0, 0, 0.5, 0.5))
    assert call(server, lambda c: c.bounding_box_labels_by_filter(create_filter(part_id="mp"))) == [
        "cat"
    ]
    (image,) = call(server, lambda c: c.binary_data_by_ids([ids[0]]))
    assert [(b.id, b.label, b.x_max_normalized) for b in image.metadata.annotations.bboxes] == [
        (box, "cat", 0.5)
    ]
    dataset = call(server, lambda c: c.create_dataset("mongo-set", ORGANIZATION_ID))
    call(server, lambda c: c.add_binary_data_to_dataset_by_ids(ids[1:], dataset))
    found, _, _ = call(server, lambda c: c.binary_data_by_filter(create_filter(dataset_id=dataset)))
    assert [b.metadata.binary_data_id for b in found] == ids[1:]
    call(server, lambda c: c.delete_dataset(dataset))
    assert call(server, lambda c: c.delete_binary_data_by_ids([ids[2]])) == 1
    left, _, _ = call(server, lambda c: c.binary_data_by_filter(create_filter(part_id="mp")))
    assert [b.metadata.binary_data_id for b in left] == ids[:2]
    assert [list(b.metadata.dataset_ids) for b in left] == [[], []]
    assert call(server, lambda c: c.delete_tabular_data(ORGANIZATION_ID, 0)) == N
    _, count, _ = call(server, lambda c: c.tabular_data_by_filter(count_only=True))
    assert count == 0
