"""The data page's own logic without a server: min/max downsampling, the data-access layer
over a real SQLite store, sessions and thumbnails."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from capsync.query import QueryError
from capsync.server.auth import ApiKey, ApiKeys
from capsync.server.blobs import RESERVED_NAMES
from capsync.server.data_sources import query_for_store
from capsync.server.stores.base import BlobRecord, TabularRecord
from capsync.server.stores.local import LocalStore as SqliteStore
from capsync.web.data_access import BinaryFilter, DataAccess, NotFound
from capsync.web.series import downsample
from capsync.web.series_sql import sql_series
from capsync.web.sessions import Sessions
from capsync.web.thumbnails import THUMBNAILS_DIR_NAME, ThumbnailCache

pytestmark = pytest.mark.wire_independent

T0 = 1_700_000_000_000_000_000
US = 1_000  # readings a microsecond apart: SQL keeps time to the microsecond


# --- downsampling ------------------------------------------------------------------------


def test_a_short_series_is_returned_whole() -> None:
    series = downsample([3, 1, 2], [30.0, 10.0, 20.0], buckets=10)
    assert series.times_ns.tolist() == [1, 2, 3]  # sorted by time
    assert series.values.tolist() == [10.0, 20.0, 30.0]
    assert series.total == 3 and not series.downsampled


def test_each_bucket_keeps_its_min_and_max_in_time_order() -> None:
    rng = np.random.default_rng(7)
    times = np.sort(rng.integers(0, 1_000_000, 20_000))
    values = rng.normal(size=times.size)
    buckets = 50
    series = downsample(times, values, buckets, since_ns=0, until_ns=1_000_000)
    assert series.downsampled and series.total == 20_000
    assert series.times_ns.size <= 2 * buckets
    assert np.all(np.diff(series.times_ns) >= 0)
    for b in range(buckets):
        inside = (times >= b * 20_000) & (times < (b + 1) * 20_000)
        kept = (series.times_ns >= b * 20_000) & (series.times_ns < (b + 1) * 20_000)
        assert set(series.values[kept]) == {values[inside].min(), values[inside].max()}


def test_a_million_readings_become_at_most_two_per_pixel() -> None:
    n = 1_000_000
    values = np.sin(np.arange(n) / 1000.0)
    values[123_456] = 50.0
    values[654_321] = -50.0
    series = downsample(np.arange(n, dtype=np.int64) * 1_000_000 + T0, values, buckets=1500)
    assert series.total == n and series.times_ns.size <= 3000
    assert series.values.max() == 50.0 and series.values.min() == -50.0


def test_bad_bucket_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="buckets"):
        downsample([1], [1.0], buckets=0)


# --- data access -------------------------------------------------------------------------


def blob(
    index: int, tags: tuple[str, ...] = (), component: str = "cam", **extra: object
) -> BlobRecord:
    fields: dict[str, object] = {
        "id": f"{index:064x}",
        "upload_id": "u",
        "kind": "binary",
        "part_id": "p",
        "component_type": "rdk:component:camera",
        "component_name": component,
        "method_name": "ReadImage",
        "tags": tags,
        "time_requested_ns": T0 + index,
        "time_received_ns": T0 + index,
        "mime_type": "image/jpeg",
        "file_extension": ".jpeg",
        "path": f"p/img{index}.jpeg",
        "size_bytes": 1,
        "sha256": "0" * 64,
    }
    fields.update(extra)
    return BlobRecord(**fields)  # type: ignore[arg-type]


@pytest.fixture()
def data(tmp_path: Path) -> DataAccess:
    store = SqliteStore(tmp_path)
    store.record_blob(blob(1, ("a",)))
    store.record_blob(blob(2, ("b",), component="other"))
    store.record_blob(blob(3, ("a", "b"), annotations={"bboxes": [
        {"id": "dog1", "label": "dog", "x_min_normalized": 0.1, "y_min_normalized": 0.1,
         "x_max_normalized": 0.2, "y_max_normalized": 0.2, "confidence": 0.9},
        {"id": "zero", "label": "corner", "x_max_normalized": 0.5, "y_max_normalized": 0.5},
    ]}))  # fmt: skip
    store.record_blob(blob(4, dataset_ids=("uploaded-set",)))
    store.record_tabular(
        [
            TabularRecord(
                id=f"t{i}", upload_id="u", part_id="p", component_type="rdk:component:sensor",
                component_name="s", method_name="Readings", tags=(), time_requested_ns=T0 + i * US,
                time_received_ns=T0 + i * US, mime_type="", data={"readings": {"x": i, "ok": True}},
            )
            for i in range(30)
        ]
    )  # fmt: skip
    query = query_for_store(store, tmp_path)
    yield DataAccess(query, tmp_path)  # type: ignore[misc]
    query.close()
    store.close()


def ids(binaries: list[object]) -> list[int]:
    return [int(b.id, 16) for b in binaries]  # type: ignore[attr-defined]


def test_binaries_newest_first_with_paging(data: DataAccess) -> None:
    total, page, last = data.list_binaries(BinaryFilter(), limit=3)
    assert total == 4 and ids(page) == [4, 3, 2] and last
    total, page, last = data.list_binaries(BinaryFilter(), last=last, limit=3)
    assert total == 4 and ids(page) == [1] and last == ""
    with pytest.raises(ValueError, match="last"):
        data.list_binaries(BinaryFilter(), last="garbage")


def test_a_tags_filter_means_any_of_them(data: DataAccess) -> None:
    assert ids(data.list_binaries(BinaryFilter(tags=("a",)))[1]) == [3, 1]
    assert ids(data.list_binaries(BinaryFilter(tags=("a", "b")))[1]) == [3, 2, 1]
    assert ids(data.list_binaries(BinaryFilter(tags=("a",), component="cam"))[1]) == [3, 1]
    since = BinaryFilter(since_ns=T0 + 2, until_ns=T0 + 4)
    assert ids(data.list_binaries(since)[1]) == [3, 2]


def test_tag_changes_count_binaries_that_changed(data: DataAccess) -> None:
    one, two, three = (f"{i:064x}" for i in (1, 2, 3))
    assert data.add_tags([one, two], ["a"]) == 1  # one had it already
    assert data.remove_tags([one, two, three], ["b"]) == 2
    assert data.get_binary(two).tags == ("a",)
    assert data.tag_counts() == {"a": 3}
    with pytest.raises(NotFound):
        data.add_tags(["f" * 64], ["a"])


def test_uploaded_boxes_keep_their_confidence_and_get_ids(data: DataAccess) -> None:
    three = f"{3:064x}"
    uploaded, corner = data.get_binary(three).bboxes
    assert uploaded["confidence"] == 0.9 and uploaded["id"]
    # protobuf JSON leaves zero coordinates out: they come back as 0.0
    assert (corner["x_min_normalized"], corner["y_min_normalized"]) == (0.0, 0.0)
    added = data.add_box(three, "cat", 0.5, 0.5, 0.9, 0.8)
    assert [b["label"] for b in data.get_binary(three).bboxes] == ["dog", "corner", "cat"]
    assert "confidence" not in data.get_binary(three).bboxes[2]
    assert data.remove_box(three, uploaded["id"])
    assert data.remove_box(three, "zero")
    assert [b["id"] for b in data.get_binary(three).bboxes] == [added]
    assert not data.remove_box(three, "no-such-box")
    for bad in ((-0.1, 0, 1, 1), (0.5, 0, 0.4, 1), (0, 0, 1.5, 1)):
        with pytest.raises(ValueError):
            data.add_box(three, "x", *bad)


def test_datasets(data: DataAccess) -> None:
    one, four = f"{1:064x}", f"{4:064x}"
    created = data.create_dataset("picked")
    assert data.add_to_dataset(created, [one, four]) == 2
    listed = {d.name: d.count for d in data.list_datasets()}
    assert listed == {"picked": 2}
    assert ids(data.list_binaries(BinaryFilter(dataset_id=created))[1]) == [4, 1]
    assert data.remove_from_dataset(created, [one]) == 1
    with pytest.raises(ValueError, match="exists"):
        data.create_dataset("picked")
    with pytest.raises(NotFound):
        data.add_to_dataset("nope", [one])


def test_readings_latest_and_series(data: DataAccess) -> None:
    latest = data.latest_readings("p", "s", "Readings", limit=3)
    assert [r.data["readings"]["x"] for r in latest] == [29, 28, 27]
    series = data.series("p", "s", "Readings", "readings.x", buckets=10)
    assert series.total == 30 and series.downsampled and series.values.size <= 20
    flags = data.series(None, "s", "Readings", "readings.ok", since_ns=T0 + 25 * US)
    assert flags.values.tolist() == [1.0] * 5


def test_a_payload_outside_the_data_folder_is_not_found(data: DataAccess, tmp_path: Path) -> None:
    binary = data.get_binary(f"{1:064x}")
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "img1.jpeg").write_bytes(b"x")
    assert data.payload_path(binary) == (tmp_path / "p" / "img1.jpeg").resolve()
    (tmp_path.parent / "x").write_bytes(b"outside")
    for path in ("../x", "p/../../x", "/etc/passwd", "", ".", "p", "p/missing.jpeg"):
        with pytest.raises(NotFound):
            data.payload_path(type(binary)(**{**binary.__dict__, "path": path}))


def test_page_files_are_names_no_part_can_take() -> None:
    assert THUMBNAILS_DIR_NAME in RESERVED_NAMES


# --- sessions and thumbnails -------------------------------------------------------------


def test_sessions_need_a_real_key_and_end(monkeypatch: pytest.MonkeyPatch) -> None:
    sessions = Sessions(ApiKeys([ApiKey("id", "secret")]), lifetime_s=60)
    assert sessions.login("id", "wrong") is None
    assert sessions.login("", "") is None
    token = sessions.login("id", "secret")
    assert token and sessions.key_id(token) == "id"
    assert sessions.key_id("forged") is None
    sessions.logout(token)
    assert sessions.key_id(token) is None
    later = sessions.login("id", "secret")
    clock = __import__("time").monotonic() + 61
    monkeypatch.setattr("capsync.web.sessions.time.monotonic", lambda: clock)
    assert sessions.key_id(later) is None
    assert "Secure" in sessions.cookie("t", secure=True)
    assert "Secure" not in sessions.cookie("t", secure=False)


def test_thumbnails_fit_and_non_images_have_none(tmp_path: Path) -> None:
    picture = tmp_path / "big.png"
    Image.new("RGB", (1000, 500), (10, 200, 30)).save(picture)
    cache = ThumbnailCache(tmp_path)
    made = cache.get("a" * 64, picture)
    assert made is not None and made.parent.parent.name == THUMBNAILS_DIR_NAME
    with Image.open(io.BytesIO(made.read_bytes())) as thumb:
        assert thumb.size == (256, 128)
    not_image = tmp_path / "cloud.pcd"
    not_image.write_text("VERSION .7\n")
    assert cache.get("b" * 64, not_image) is None
    with pytest.raises(ValueError):
        cache.path_for("../../etc")


def test_the_sql_series_matches_the_python_downsampling(data: DataAccess) -> None:
    sql = data.series("p", "s", "Readings", "readings.x", buckets=4)
    times = [T0 + i * US for i in range(30)]
    python = downsample(times, [float(i) for i in range(30)], 4)
    assert sql.downsampled and sql.total == 30
    assert sql.times_ns.tolist() == python.times_ns.tolist()
    assert sql.values.tolist() == python.values.tolist()


def test_a_field_of_mixed_types_is_read_reading_by_reading(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    store.record_tabular(
        [
            TabularRecord(
                id=f"m{i}", upload_id="u", part_id="p", component_type="rdk:component:sensor",
                component_name="mixed", method_name="Readings", tags=(),
                time_requested_ns=T0 + i * US, time_received_ns=T0 + i * US, mime_type="",
                data={"readings": {"v": "broken" if i == 3 else i}},
            )
            for i in range(6)
        ]
    )  # fmt: skip
    query = query_for_store(store, tmp_path)
    try:
        with pytest.raises(QueryError):  # the data column is JSON text: SQL cannot reach v
            sql_series(query, "p", "mixed", "Readings", ["readings", "v"],
                       since_ns=None, until_ns=None, buckets=10)  # fmt: skip
        series = DataAccess(query, tmp_path).series("p", "mixed", "Readings", "readings.v")
        assert series.values.tolist() == [0.0, 1.0, 2.0, 4.0, 5.0]
    finally:
        query.close()
        store.close()
