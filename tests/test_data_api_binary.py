"""viam-sdk's DataClient against a real ``capsync serve``: binary data, tags, bounding
boxes, datasets and deletes (SPEC §7). Each test uploads to a part of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from data_api_helpers import SECOND_NS, T0_NS, call, invalid, refused, utc
from grpclib.const import Status
from server_fixtures import (
    AUTH,
    ServerProcess,
    binary_request,
    file_packets,
    start_server,
    write_keys,
)
from viam.utils import create_filter

from capsync.query import ORGANIZATION_ID

pytestmark = pytest.mark.wire_independent

CAMERA = "rdk:component:camera"


@pytest.fixture(scope="module", name="server")
def server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("data-api-binary")
    server = start_server(tmp / "data", tmp, keys_file=write_keys(tmp / "keys.json"))
    try:
        yield server
    finally:
        server.stop()


def upload_images(server: ServerProcess, part: str, count: int, **metadata: Any) -> list[str]:
    """``count`` JPEG readings one second apart; their binary data ids, oldest first."""
    stub = server.stub()
    ids = []
    for i in range(count):
        payload = f"jpeg {part} {i}".encode() * (i + 1)
        response = stub.DataCaptureUpload(
            binary_request(payload, T0_NS + i * SECOND_NS, part_id=part, **metadata),
            metadata=AUTH,
        )
        ids.append(response.binary_data_id)
    return ids


def payload(part: str, i: int) -> bytes:
    return f"jpeg {part} {i}".encode() * (i + 1)


def new_part() -> str:
    return f"part-{uuid.uuid4().hex[:8]}"


def test_binary_by_filter_pages_with_and_without_bytes(server: ServerProcess) -> None:
    part = new_part()
    ids = upload_images(server, part, 5)
    got: list[Any] = []
    last = ""
    while True:
        page, count, last = call(
            server,
            lambda c, last=last: c.binary_data_by_filter(create_filter(part_id=part), 2, last=last),
        )
        if not page:
            assert count == 0 and last == ""
            break
        assert count == len(page) and last
        got.extend(page)
    assert [b.metadata.binary_data_id for b in got] == ids
    assert [b.binary for b in got] == [payload(part, i) for i in range(5)]
    meta = got[1].metadata
    assert meta.file_ext == ".jpeg"
    assert meta.file_size_bytes == len(payload(part, 1))
    assert meta.capture_metadata.component_type == CAMERA
    assert meta.capture_metadata.component_name == "cam"
    assert meta.capture_metadata.method_name == "ReadImage"
    assert meta.capture_metadata.mime_type == "image/jpeg"
    assert meta.capture_metadata.organization_id == ORGANIZATION_ID
    assert meta.time_requested.ToDatetime() == utc(T0_NS + SECOND_NS)
    assert meta.time_received.ToDatetime() == utc(T0_NS + SECOND_NS + 1000)
    page, _, _ = call(
        server,
        lambda c: c.binary_data_by_filter(create_filter(part_id=part), include_binary_data=False),
    )
    assert [b.binary for b in page] == [b""] * 5
    assert [b.metadata.binary_data_id for b in page] == ids
    _, count, _ = call(
        server, lambda c: c.binary_data_by_filter(create_filter(part_id=part), count_only=True)
    )
    assert count == 5
    _, count, _ = call(
        server,
        lambda c: c.binary_data_by_filter(
            create_filter(part_id=part, mime_type=["image/png"]), count_only=True
        ),
    )
    assert count == 0


def test_binary_by_ids_in_the_order_asked(server: ServerProcess) -> None:
    part = new_part()
    ids = upload_images(server, part, 3)
    found = call(server, lambda c: c.binary_data_by_ids([ids[2], ids[0]]))
    assert [b.metadata.binary_data_id for b in found] == [ids[2], ids[0]]
    assert [b.binary for b in found] == [payload(part, 2), payload(part, 0)]
    assert call(server, lambda c: c.binary_data_by_ids(["no-such-id"])) == []


def test_a_file_upload_is_binary_data(server: ServerProcess) -> None:
    part = new_part()
    packets = file_packets(b"log line\n" * 3, part_id=part, file_name="logs/run.txt",
                           file_extension=".txt")  # fmt: skip
    response = server.stub().FileUpload(iter(packets), metadata=AUTH)
    (found,) = call(server, lambda c: c.binary_data_by_ids([response.binary_data_id]))
    assert found.binary == b"log line\n" * 3
    assert found.metadata.file_name == "logs/run.txt"
    assert found.metadata.file_ext == ".txt"
    assert found.metadata.file_size_bytes == 27


def test_tags_by_ids_and_filter(server: ServerProcess) -> None:
    part = new_part()
    ids = upload_images(server, part, 4, tags=["upload"])
    call(server, lambda c: c.add_tags_to_binary_data_by_ids(["red", "blue"], ids[:2]))
    call(
        server,
        lambda c: c.add_tags_to_binary_data_by_filter(["green"], create_filter(part_id=part)),
    )
    assert call(server, lambda c: c.tags_by_filter(create_filter(part_id=part))) == [
        "blue", "green", "red", "upload"
    ]  # fmt: skip
    by_tag, _, _ = call(
        server, lambda c: c.binary_data_by_filter(create_filter(part_id=part, tags=["red"]))
    )
    assert [b.metadata.binary_data_id for b in by_tag] == ids[:2]
    assert list(by_tag[0].metadata.capture_metadata.tags) == ["upload", "red", "blue", "green"]
    # the count is of files that lost at least one tag
    assert call(server, lambda c: c.remove_tags_from_binary_data_by_ids(["red", "nope"], ids)) == 2
    assert call(server, lambda c: c.remove_tags_from_binary_data_by_ids(["red"], ids)) == 0
    removed = call(
        server,
        lambda c: c.remove_tags_from_binary_data_by_filter(["green"], create_filter(part_id=part)),
    )
    assert removed == 4
    assert call(server, lambda c: c.tags_by_filter(create_filter(part_id=part))) == [
        "blue",
        "upload",
    ]
    error = refused(server, lambda c: c.add_tags_to_binary_data_by_ids(["x"], ["no-such-id"]))
    assert error.status == Status.NOT_FOUND


def test_bounding_boxes(server: ServerProcess) -> None:
    part = new_part()
    (image,) = upload_images(server, part, 1)
    first = call(
        server, lambda c: c.add_bounding_box_to_image_by_id(image, "cat", 0.1, 0.2, 0.3, 0.4)
    )
    second = call(
        server,
        lambda c: c.add_bounding_box_to_image_by_id(image, "dog", 0.0, 0.0, 1.0, 1.0, 0.75),
    )
    assert first and second and first != second
    (found,) = call(server, lambda c: c.binary_data_by_ids([image]))
    boxes = {b.id: b for b in found.metadata.annotations.bboxes}
    assert set(boxes) == {first, second}
    cat = boxes[first]
    assert (cat.label, cat.x_min_normalized, cat.y_min_normalized, cat.x_max_normalized,
            cat.y_max_normalized) == ("cat", 0.1, 0.2, 0.3, 0.4)  # fmt: skip
    assert not cat.HasField("confidence")  # absent unless given
    assert boxes[second].confidence == 0.75
    assert call(server, lambda c: c.bounding_box_labels_by_filter(create_filter(part_id=part))) == [
        "cat", "dog"
    ]  # fmt: skip
    by_label, _, _ = call(
        server,
        lambda c: c.binary_data_by_filter(create_filter(part_id=part, bbox_labels=["dog"])),
    )
    assert [b.metadata.binary_data_id for b in by_label] == [image]
    call(server, lambda c: c.update_bounding_box(image, first, "lion", 0.5, 0.5, 0.6, 0.7, 0.5))
    (found,) = call(server, lambda c: c.binary_data_by_ids([image]))
    lion = next(b for b in found.metadata.annotations.bboxes if b.id == first)
    assert (lion.label, lion.x_min_normalized, lion.y_max_normalized, lion.confidence) == (
        "lion", 0.5, 0.7, 0.5
    )  # fmt: skip
    call(server, lambda c: c.remove_bounding_box_from_image_by_id(second, image))
    (found,) = call(server, lambda c: c.binary_data_by_ids([image]))
    assert [b.id for b in found.metadata.annotations.bboxes] == [first]
    invalid(server, lambda c: c.add_bounding_box_to_image_by_id(image, "x", -0.1, 0, 0.5, 0.5))
    invalid(server, lambda c: c.add_bounding_box_to_image_by_id(image, "x", 0, 0, 1.5, 0.5))
    invalid(server, lambda c: c.update_bounding_box(image, first, "x", 0.9, 0, 0.1, 0.5))
    error = refused(server, lambda c: c.remove_bounding_box_from_image_by_id("nope", image))
    assert error.status == Status.NOT_FOUND


def test_datasets(server: ServerProcess) -> None:
    part = new_part()
    ids = upload_images(server, part, 3)
    one = call(server, lambda c: c.create_dataset("one-" + part, ORGANIZATION_ID))
    two = call(server, lambda c: c.create_dataset("two-" + part, ORGANIZATION_ID))
    assert len(one) == 24 and one != two
    error = refused(server, lambda c: c.create_dataset("one-" + part, ORGANIZATION_ID))
    assert error.status == Status.ALREADY_EXISTS
    listed = call(server, lambda c: c.list_dataset_by_ids([two, one]))
    assert {(d.id, d.name, d.organization_id) for d in listed} == {
        (one, "one-" + part, ORGANIZATION_ID), (two, "two-" + part, ORGANIZATION_ID)
    }  # fmt: skip
    call(server, lambda c: c.rename_dataset(one, "renamed-" + part))
    everything = call(server, lambda c: c.list_datasets_by_organization_id(ORGANIZATION_ID))
    assert {d.id: d.name for d in everything}[one] == "renamed-" + part
    call(server, lambda c: c.add_binary_data_to_dataset_by_ids(ids[:2], one))
    call(server, lambda c: c.add_binary_data_to_dataset_by_ids(ids[1:], two))

    def members(dataset: str) -> list[str]:
        found, _, _ = call(
            server, lambda c: c.binary_data_by_filter(create_filter(dataset_id=dataset), 100)
        )
        return [b.metadata.binary_data_id for b in found]

    assert members(one) == ids[:2]
    assert members(two) == ids[1:]
    (middle,) = call(server, lambda c: c.binary_data_by_ids([ids[1]]))
    assert sorted(middle.metadata.dataset_ids) == sorted([one, two])
    merged = call(server, lambda c: c.merge_datasets("merged-" + part, ORGANIZATION_ID, [one, two]))
    assert members(merged) == ids
    call(server, lambda c: c.remove_binary_data_from_dataset_by_ids([ids[0]], one))
    assert members(one) == [ids[1]]
    call(server, lambda c: c.delete_dataset(two))
    assert call(server, lambda c: c.list_dataset_by_ids([two])) == []
    assert members(two) == []
    # deleting a dataset never deletes the binaries
    assert len(call(server, lambda c: c.binary_data_by_ids(ids))) == 3
    error = refused(server, lambda c: c.add_binary_data_to_dataset_by_ids(ids, two))
    assert error.status == Status.NOT_FOUND


def test_an_upload_naming_dataset_ids_lands_in_them(server: ServerProcess) -> None:
    part = new_part()
    dataset = call(server, lambda c: c.create_dataset("uploads-" + part, ORGANIZATION_ID))
    ids = upload_images(server, part, 2, dataset_ids=[dataset])
    found, _, _ = call(server, lambda c: c.binary_data_by_filter(create_filter(dataset_id=dataset)))
    assert [b.metadata.binary_data_id for b in found] == ids


def test_delete_binary_by_ids_and_filter(server: ServerProcess) -> None:
    part = new_part()
    ids = upload_images(server, part, 5)
    assert call(server, lambda c: c.delete_binary_data_by_ids([ids[0], ids[3], "no-such"])) == 2
    remaining = call(server, lambda c: c.binary_data_by_ids(ids))
    assert [b.metadata.binary_data_id for b in remaining] == [ids[1], ids[2], ids[4]]
    start = utc(T0_NS + 2 * SECOND_NS)
    import datetime as dt

    deleted = call(
        server,
        lambda c: c.delete_binary_data_by_filter(
            create_filter(part_id=part, start_time=start.replace(tzinfo=dt.UTC))
        ),
    )
    assert deleted == 2  # ids[2] and ids[4]
    remaining = call(server, lambda c: c.binary_data_by_ids(ids))
    assert [b.metadata.binary_data_id for b in remaining] == [ids[1]]
    stored = [p for p in server.data_dir.rglob("*.jpeg") if part in str(p)]
    assert len(stored) == 1  # the deleted payload files are gone too
    assert stored[0].read_bytes() == payload(part, 1)


def test_payload_shared_by_two_records_stays_until_both_are_gone(
    server: ServerProcess, tmp_path: Path
) -> None:
    part = new_part()
    stub = server.stub()
    same = b"same bytes"
    ids = [
        stub.DataCaptureUpload(
            binary_request(same, T0_NS + i, part_id=part), metadata=AUTH
        ).binary_data_id
        for i in range(2)
    ]
    assert ids[0] != ids[1]
    assert call(server, lambda c: c.delete_binary_data_by_ids([ids[0]])) == 1
    (left,) = call(server, lambda c: c.binary_data_by_ids(ids))
    assert left.binary == same
