"""Listing and exporting what the ingest server stored: ``capsync data`` and its Python API."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from server_fixtures import (
    AUTH,
    TABULAR,
    binary_request,
    file_packets,
    run_capsync,
    start_server,
    streaming_packets,
    tabular_request,
    timestamp,
    write_keys,
)

from capsync.proto import data_sync_pb2
from capsync.server import ItemFilter, export, list_items
from capsync.server.query import CSV_COLUMNS, format_time, parse_time

pytestmark = pytest.mark.wire_independent

S = 1_000_000_000
T0 = 1_714_564_800 * S  # 2024-05-01T12:00:00Z
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10
PCD = os.urandom(1_200_000)
LOG = b"line 1\nline 2\n"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir filled through a real server (stopped before the tests read it)."""
    tmp_path = tmp_path_factory.mktemp("query")
    keys = write_keys(tmp_path / "keys.json")
    server = start_server(tmp_path / "data", tmp_path, keys_file=keys)
    try:
        stub = server.stub()
        for request in (
            tabular_request(
                [(T0 + i * S, {"readings": {"temp": 20 + i}}) for i in range(3)], tags=["lab"]
            ),
            tabular_request([(T0 + 10 * S, {"readings": {"temp": 5}})], part_id="part-2",
                            tags=["field"]),
            tabular_request(
                [(T0 + 5 * S, {"x": 0.5}), (T0 + 5 * S + 1, {"x": -0.5})],
                component_type="rdk:component:movement_sensor",
                component_name="imu",
                method_name="LinearAcceleration",
                tags=["lab", "fast"],
            ),
            binary_request(JPEG, T0 + 3 * S, tags=["lab"]),
        ):  # fmt: skip
            stub.DataCaptureUpload(request, metadata=AUTH, timeout=10)
        png = binary_request(PNG, T0 + 4 * S, file_extension="")
        png.sensor_contents[0].metadata.mime_type = data_sync_pb2.MIME_TYPE_IMAGE_PNG
        stub.DataCaptureUpload(png, metadata=AUTH, timeout=10)
        stub.StreamingDataCaptureUpload(
            iter(streaming_packets(PCD, T0 + 6 * S, part_id="part-2")), metadata=AUTH, timeout=30
        )
        stub.FileUpload(
            iter(
                file_packets(
                    LOG,
                    file_name="notes/run.log",
                    tags=["lab"],
                    dataset_ids=["ds-1"],
                    file_modify_time=timestamp(T0 + 7 * S),
                )
            ),
            metadata=AUTH,
            timeout=10,
        )
    finally:
        assert server.stop() == 0
    return server.data_dir


def _names(items: list[dict[str, Any]]) -> list[str]:
    """A short label per item: component name plus (tabular) the time offset in seconds."""
    return [f"{i['part_id']}/{i['component_name'] or i['file_name']}@{_offset(i)}" for i in items]


def _offset(item: dict[str, Any]) -> str:
    seconds, rest = divmod(item["time_requested_ns"] - T0, S)
    return f"{seconds}" + (f"+{rest}ns" if rest else "")


ALL = [
    "part-1/thermo@0",
    "part-1/thermo@1",
    "part-1/thermo@2",
    "part-1/cam@3",
    "part-1/cam@4",
    "part-1/imu@5",
    "part-1/imu@5+1ns",
    "part-2/lidar@6",
    "part-1/notes/run.log@7",
    "part-2/thermo@10",
]


def test_list_everything_oldest_first(data_dir: Path) -> None:
    items = list(list_items(data_dir))
    assert _names(items) == ALL
    kinds = {i["component_name"] or i["file_name"]: i["kind"] for i in items}
    assert kinds == {
        "thermo": "tabular",
        "imu": "tabular",
        "cam": "binary",
        "lidar": "binary",
        "notes/run.log": "file",
    }
    assert items[0]["data"] == {"readings": {"temp": 20}}
    assert items[0]["time_requested"] == "2024-05-01T12:00:00.000000000Z"


FILTERS = [
    pytest.param(ItemFilter(part_id="part-2"), ["part-2/lidar@6", "part-2/thermo@10"], id="part"),
    pytest.param(
        ItemFilter(component="thermo"),
        ["part-1/thermo@0", "part-1/thermo@1", "part-1/thermo@2", "part-2/thermo@10"],
        id="component",
    ),
    pytest.param(
        ItemFilter(component_type="rdk:component:movement_sensor"),
        ["part-1/imu@5", "part-1/imu@5+1ns"],
        id="component-type",
    ),
    pytest.param(ItemFilter(method="ReadImage"), ["part-1/cam@3", "part-1/cam@4"], id="method"),
    pytest.param(
        ItemFilter(kind="binary"), ["part-1/cam@3", "part-1/cam@4", "part-2/lidar@6"], id="binary"
    ),
    pytest.param(ItemFilter(kind="file"), ["part-1/notes/run.log@7"], id="file"),
    pytest.param(
        ItemFilter(kind="tabular", part_id="part-1", component="imu"),
        ["part-1/imu@5", "part-1/imu@5+1ns"],
        id="tabular-and-more",
    ),
    pytest.param(
        ItemFilter(tags=("lab",)),
        [
            "part-1/thermo@0",
            "part-1/thermo@1",
            "part-1/thermo@2",
            "part-1/cam@3",
            "part-1/imu@5",
            "part-1/imu@5+1ns",
            "part-1/notes/run.log@7",
        ],
        id="tag",
    ),
    pytest.param(
        ItemFilter(tags=("lab", "fast")), ["part-1/imu@5", "part-1/imu@5+1ns"], id="all-tags"
    ),
    pytest.param(ItemFilter(tags=("nope",)), [], id="unknown-tag"),
    pytest.param(
        ItemFilter(since_ns=T0 + 5 * S, until_ns=T0 + 7 * S),
        ["part-1/imu@5", "part-1/imu@5+1ns", "part-2/lidar@6"],
        id="time-window",
    ),
    pytest.param(ItemFilter(since_ns=T0 + 5 * S + 1), ALL[6:], id="since-is-inclusive-to-the-ns"),
]


@pytest.mark.parametrize(("item_filter", "expected"), FILTERS)
def test_filters(data_dir: Path, item_filter: ItemFilter, expected: list[str]) -> None:
    assert _names(list(list_items(data_dir, item_filter))) == expected


def test_bad_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        ItemFilter(kind="video")  # type: ignore[arg-type]


# --- the CLI -----------------------------------------------------------------------------


def _data(*args: str) -> str:
    result = run_capsync("data", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_cli_list_jsonl_matches_the_python_api(data_dir: Path) -> None:
    lines = _data("list", "--data", str(data_dir)).splitlines()
    assert [json.loads(line) for line in lines] == list(list_items(data_dir))


CLI_FILTERS = [
    (["--part", "part-2"], ["part-2/lidar@6", "part-2/thermo@10"]),
    (["--component", "cam"], ["part-1/cam@3", "part-1/cam@4"]),
    (["--method", "NextPointCloud"], ["part-2/lidar@6"]),
    (["--type", "file"], ["part-1/notes/run.log@7"]),
    (["--tag", "lab", "--tag", "fast"], ["part-1/imu@5", "part-1/imu@5+1ns"]),
    (["--type", "tabular", "--since", "2024-05-01T12:00:05Z"], ALL[5:7] + ALL[9:]),
    (["--since", "2024-05-01T14:00:01+02:00", "--until", str((T0 + 3 * S) // S)], ALL[1:3]),
    (["--since", "2024-05-01T12:00:05.000000001", "--until", "1714564807.5"], ALL[6:9]),
]


@pytest.mark.parametrize(("flags", "expected"), CLI_FILTERS, ids=lambda v: " ".join(v)[:40])
def test_cli_list_filters(data_dir: Path, flags: list[str], expected: list[str]) -> None:
    lines = _data("list", "--data", str(data_dir), *flags).splitlines()
    assert _names([json.loads(line) for line in lines]) == expected


def test_cli_list_csv(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "items.csv"
    assert _data("list", "--data", str(data_dir), "--format", "csv", "--out", str(out)) == ""
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert tuple(rows[0]) == CSV_COLUMNS
    expected = list(list_items(data_dir))
    assert len(rows) == len(expected)
    for row, item in zip(rows, expected, strict=True):
        assert row["id"] == item["id"] and row["kind"] == item["kind"]
        assert int(row["time_requested_ns"]) == item["time_requested_ns"]
        assert json.loads(row["tags"]) == item["tags"]
        if item["kind"] == "tabular":
            assert json.loads(row["data"]) == item["data"]
            assert row["path"] == ""
        else:
            assert row["data"] == ""
            assert row["path"] == item["path"] and int(row["size_bytes"]) == item["size_bytes"]


def test_cli_export_writes_payloads_with_their_extensions(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    result = run_capsync("data", "export", "--data", str(data_dir), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "exported 10 items (4 payload files)" in result.stderr
    items = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert _names(items) == ALL
    payloads = [i for i in items if i["kind"] != "tabular"]
    expected = {"run.log": LOG, "lidar": PCD, "cam": None}
    for item in payloads:
        path = out / item["path"]
        content = path.read_bytes()
        assert hashlib.sha256(content).hexdigest() == item["sha256"]
        assert path.suffix == item["file_extension"]
        wanted = expected[item["component_name"] or Path(item["file_name"]).name]
        assert wanted is None or content == wanted
    assert [Path(i["path"]).suffix for i in payloads] == [".jpeg", ".png", ".pcd", ".log"]
    assert {out / i["path"] for i in payloads} == {
        p for p in out.rglob("*") if p.is_file() and p.name != "items.jsonl"
    }
    log = payloads[-1]
    assert log["path"].startswith("part-1/files/run_") and log["path"].endswith(".log")
    assert log["tags"] == ["lab"] and log["dataset_ids"] == ["ds-1"]
    tabular = [i for i in items if i["kind"] == "tabular"]
    assert tabular[0]["data"] == {"readings": {"temp": 20}}


def test_export_binary_only_as_csv(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "images"
    result = export(data_dir, ItemFilter(kind="binary", part_id="part-1"), out, "csv")
    assert (result.items, result.payloads, result.missing) == (2, 2, [])
    rows = list(csv.DictReader(io.StringIO(result.manifest.read_text())))
    assert result.manifest == out / "items.csv"
    assert [Path(r["path"]).suffix for r in rows] == [".jpeg", ".png"]
    assert (out / rows[0]["path"]).read_bytes() == JPEG
    assert (out / rows[1]["path"]).read_bytes() == PNG
    assert rows[0]["path"].startswith("part-1/rdk_component_camera/cam/ReadImage/2024-05-01T12_")


def test_export_of_nothing_writes_an_empty_manifest(data_dir: Path, tmp_path: Path) -> None:
    result = export(data_dir, ItemFilter(tags=("nope",)), tmp_path / "none")
    assert result.items == 0 and result.manifest.read_text() == ""


def test_cli_errors_are_one_line(tmp_path: Path, data_dir: Path) -> None:
    missing = run_capsync("data", "list", "--data", str(tmp_path / "nothing"))
    assert missing.returncode == 1
    assert missing.stderr.startswith("capsync: error:") and missing.stderr.count("\n") == 1
    bad_time = run_capsync("data", "list", "--data", str(data_dir), "--since", "yesterday")
    assert bad_time.returncode == 1 and "--since" in bad_time.stderr
    assert "Traceback" not in bad_time.stderr
    no_out = run_capsync("data", "export", "--data", str(data_dir))
    assert no_out.returncode == 2  # argparse: --out is required


# --- times -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2024-05-01T12:00:00Z", T0),
        ("2024-05-01T12:00:00", T0),
        ("2024-05-01T14:00:00+02:00", T0),
        ("2024-05-01T12:00:00.123456789Z", T0 + 123_456_789),
        ("2024-05-01T12:00:00.5+00:00", T0 + 500_000_000),
        ("2024-05-01", T0 - 12 * 3600 * S),
        ("1714564800", T0),
        ("1714564800.000000001", T0 + 1),
        (" 1714564800.25 ", T0 + 250_000_000),
    ],
)
def test_parse_time(text: str, ns: int) -> None:
    assert parse_time(text) == ns


@pytest.mark.parametrize("text", ["", "yesterday", "nan", "inf", "2024-13-01"])
def test_parse_time_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)


def test_format_time_round_trips() -> None:
    assert format_time(0) is None
    for ns in (T0, T0 + 1, T0 + 999_999_999, 1):
        text = format_time(ns)
        assert text is not None and parse_time(text) == ns


def test_tabular_type_constant_matches() -> None:
    assert TABULAR == data_sync_pb2.DATA_TYPE_TABULAR_SENSOR
