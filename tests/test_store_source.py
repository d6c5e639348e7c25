"""The query layer over any store with the small QueryableStore interface (the adapter
for the rebuilt ingest stores), driven through an in-memory store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from query_fixtures import MemoryStore

from capsync.query import DataFilter, DataQuery, Page
from capsync.server.store import BlobRecord, TabularRecord
from capsync.server.store_source import StoreSource

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
