"""The data API on data uploaded by capsync's own sync client, the retention policy
it announces, and ``capsync data sql|mql|tag|untag|dataset``."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from data_api_helpers import call
from server_fixtures import (
    AUTH,
    ServerProcess,
    binary_request,
    run_capsync,
    start_server,
    write_keys,
)
from sync_helpers import BASE_NS, PART_ID, machine_config, wait_for, write_config, write_tabular
from viam.utils import create_filter

from capsync.cli import main
from capsync.query import ORGANIZATION_ID

pytestmark = pytest.mark.wire_independent

THERMO_N = 50
OLD_N = 5


def ms_utc(ns: int) -> dt.datetime:
    """A BSON date as viam-sdk decodes it: naive UTC, millisecond precision."""
    return dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=ns // 1_000_000)


def component(name: str, retention: dict[str, Any]) -> dict[str, Any]:
    method = {"method": "Readings", "capture_frequency_hz": 0, "retention_policy": retention}
    return {
        "name": name,
        "type": "sensor",
        "model": "fake",
        "service_configs": [{"type": "data_manager", "attributes": {"capture_methods": [method]}}],
    }


@pytest.fixture(scope="module", name="synced")
def synced_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("data-api-sync")
    server = start_server(
        tmp / "data",
        tmp,
        "--retention-interval",
        "0.5",
        "--compact-interval",
        "0.5",
        keys_file=write_keys(tmp / "keys.json"),
    )
    try:
        capture = tmp / "capture"
        capture.mkdir()
        write_tabular(capture, "thermo", THERMO_N, tags=["bench"])
        write_tabular(capture, "old", OLD_N)
        components = [component("thermo", {"days": 36500}), component("old", {"days": 1})]
        config = write_config(
            tmp / "machine.json", machine_config(capture, server, components=components)
        )
        result = run_capsync("sync", str(config), "--quiet")
        assert result.returncode == 0, result.stderr
        yield server
    finally:
        server.stop()


def test_sql_on_synced_readings(synced: ServerProcess) -> None:
    rows = call(
        synced,
        lambda c: c.tabular_data_by_sql(
            ORGANIZATION_ID,
            "SELECT data.readings.x AS x, data.readings.name AS name, tags, part_id, "
            "time_requested "
            "FROM readings WHERE component_name = 'thermo' ORDER BY data.readings.i",
        ),
    )
    assert rows == [
        {
            "x": i * 0.25 + 0.1,
            "name": "thermo",
            "tags": ["bench"],
            "part_id": PART_ID,
            "time_requested": ms_utc(BASE_NS + i * 1000),
        }
        for i in range(THERMO_N)
    ]


def test_mql_on_synced_readings(synced: ServerProcess) -> None:
    rows = call(
        synced,
        lambda c: c.tabular_data_by_mql(
            ORGANIZATION_ID,
            [
                {"$match": {"component_name": "thermo", "data.readings.i": {"$lt": 10}}},
                {
                    "$group": {
                        "_id": "$data.readings.name",
                        "n": {"$sum": 1},
                        "mean": {"$avg": "$data.readings.x"},
                        "first": {"$min": "$data.readings.i"},
                    }
                },
            ],
        ),
    )
    assert rows == [
        {
            "_id": "thermo",
            "n": 10,
            "mean": sum(i * 0.25 + 0.1 for i in range(10)) / 10,
            "first": 0.0,
        }
    ]


def test_the_announced_retention_policy_is_applied(synced: ServerProcess) -> None:
    def count(name: str) -> int:
        f = create_filter(component_name=name)
        return int(call(synced, lambda c: c.tabular_data_by_filter(f, count_only=True))[1])

    assert wait_for(lambda: count("old") == 0, timeout_s=20.0)
    assert count("thermo") == THERMO_N  # its policy keeps 100 years
    assert wait_for(lambda: "retention removed 5 readings" in synced.stderr(), timeout_s=5.0)
    sql = "SELECT count(*) AS n FROM readings WHERE component_name = 'old'"
    assert call(synced, lambda c: c.tabular_data_by_sql(ORGANIZATION_ID, sql)) == [{"n": 0}]


def capsync_data(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``capsync data ARGS`` in this process: (exit code, stdout, stderr)."""
    code = main(["data", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_sql_and_mql(synced: ServerProcess, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(synced.data_dir)
    code, out, err = capsync_data(
        capsys,
        "sql",
        "--data",
        data,
        "SELECT count(*) AS n, min(time_requested) AS t FROM readings "
        "WHERE component_name = 'thermo'",
    )
    assert code == 0, err
    assert [json.loads(line) for line in out.splitlines()] == [
        {"n": THERMO_N, "t": "2023-11-14T22:13:20Z"}
    ]
    pipeline = json.dumps([{"$match": {"component_name": "thermo"}}, {"$count": "n"}])
    code, out, err = capsync_data(capsys, "mql", "--data", data, pipeline)
    assert code == 0, err
    assert json.loads(out) == {"n": THERMO_N}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["sql", "DROP VIEW readings"], "only SELECT"),
        (["sql", "SELECT * FROM read_csv('/etc/passwd')"], "table functions"),
        (["mql", '[{"$out": "x"}]'], "$out"),
        (["mql", "{nope"], "not JSON"),
        (["dataset", "rename", "only-one"], "usage"),
        (["tag", "good"], "--id"),
    ],
)
def test_cli_refusals_are_one_line_exit_2(
    synced: ServerProcess, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    code, _, err = capsync_data(capsys, args[0], "--data", str(synced.data_dir), *args[1:])
    assert code == 2
    assert says in err
    assert len(err.strip().splitlines()) == 1, err


def test_cli_tags_and_datasets(synced: ServerProcess, capsys: pytest.CaptureFixture[str]) -> None:
    response = synced.stub().DataCaptureUpload(
        binary_request(b"picture", BASE_NS, part_id="cli-part"), metadata=AUTH
    )
    image = response.binary_data_id
    data = str(synced.data_dir)
    code, _, err = capsync_data(capsys, "tag", "--data", data, "--id", image, "good", "cute")
    assert code == 0, err
    assert call(synced, lambda c: c.tags_by_filter(create_filter(part_id="cli-part"))) == [
        "cute",
        "good",
    ]
    code, _, err = capsync_data(capsys, "untag", "--data", data, "--part", "cli-part", "cute")
    assert code == 0 and "1 of 1 binaries lost a tag" in err
    code, out, err = capsync_data(capsys, "dataset", "--data", data, "create", "pets")
    assert code == 0, err
    dataset = out.strip()
    assert capsync_data(capsys, "dataset", "--data", data, "add", dataset, image)[0] == 0
    found, _, _ = call(synced, lambda c: c.binary_data_by_filter(create_filter(dataset_id=dataset)))
    assert [b.metadata.binary_data_id for b in found] == [image]
    assert list(found[0].metadata.capture_metadata.tags) == ["good"]
    code, out, _ = capsync_data(capsys, "dataset", "--data", data, "list")
    assert [json.loads(line)["name"] for line in out.splitlines()] == ["pets"]
    (seen,) = call(synced, lambda c: c.list_dataset_by_ids([dataset]))
    assert seen.name == "pets"
    assert capsync_data(capsys, "dataset", "--data", data, "delete", dataset)[0] == 0
    (still,) = call(synced, lambda c: c.binary_data_by_ids([image]))
    assert list(still.metadata.dataset_ids) == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--retention-days", "-1"], "--retention-days must be >= 0"),
        (["--retention-interval", "0"], "--retention-interval must be > 0"),
        (["--retention", "RULES"], "rules[0]: unknown key 'dayz'"),
    ],
)
def test_serve_retention_options_are_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [{"component_name": "x", "dayz": 1}]}))
    args = [str(rules) if a == "RULES" else a for a in args]
    assert main(["serve", "--data", str(tmp_path / "data"), *args]) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1, err
