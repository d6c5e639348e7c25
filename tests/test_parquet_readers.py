"""``capsync data export --format parquet`` reads the compactor's columnar files plus the
not-yet-compacted tail, and what it writes reads back identically with DuckDB, pandas and
polars: the stored readings, to the nanosecond, with their tags and typed leaf columns."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import polars as pl
import pytest

from capsync.cli import main
from capsync.export.parquet_export import export_query_parquet
from capsync.server.data_sources import open_data_query
from capsync.server.stores.base import ItemFilter, TabularRecord
from capsync.server.stores.local import LocalStore

pytestmark = pytest.mark.wire_independent

T0_NS = 1_764_460_800_000_000_000
S_NS = 1_000_000_000
DAY_NS = 86_400 * S_NS
THERMO = "p1/rdk_component_sensor/thermo/Readings.parquet"
IMU = "p1/rdk_component_movement_sensor/imu/LinearAcceleration.parquet"


def thermo(i: int, upload: str) -> TabularRecord:
    return TabularRecord(
        id=f"{upload}:{i}", upload_id=upload, part_id="p1", component_type="rdk:component:sensor",
        component_name="thermo", method_name="Readings", tags=("lab",) if i % 2 else (),
        # a day boundary inside, nanoseconds SQL's microsecond columns would lose
        time_requested_ns=T0_NS - 3 * S_NS + i * S_NS + 123, time_received_ns=T0_NS + i * 7 + 1,
        mime_type="",
        data={"readings": {"temp": 20 + i / 4, "unit": "C", "probe": {"ok": i % 3 == 0, "n": i}}},
    )  # fmt: skip


def imu(i: int) -> TabularRecord:
    return TabularRecord(
        id=f"imu:{i}", upload_id="imu", part_id="p1",
        component_type="rdk:component:movement_sensor", component_name="imu",
        method_name="LinearAcceleration", tags=(), time_requested_ns=T0_NS + i * S_NS + 9,
        time_received_ns=T0_NS + i * S_NS + 10, mime_type="", data={"x": i * 0.5, "y": -1.0},
    )  # fmt: skip


@pytest.fixture(name="data_dir", scope="module")
def data_dir_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Readings of which part are compacted into Parquet and part are still the tail."""
    data_dir: Path = tmp_path_factory.mktemp("pq-readers")
    with LocalStore(data_dir) as store:
        store.record_tabular([thermo(i, "a") for i in range(6)])
        store.record_tabular([imu(i) for i in range(10)])
    with open_data_query(data_dir) as query:
        assert query.columnar is not None and query.columnar.compact() == 16
    with LocalStore(data_dir) as store:
        store.record_tabular([thermo(i, "b") for i in range(6, 12)])  # the tail
    return data_dir


def expected(records: list[TabularRecord]) -> list[dict[str, Any]]:
    rows = []
    for r in sorted(records, key=lambda r: r.time_requested_ns):
        row = {
            "time_requested": r.time_requested_ns, "time_received": r.time_received_ns,
            "part_id": r.part_id, "component_type": r.component_type,
            "component_name": r.component_name, "method_name": r.method_name,
            "tags": list(r.tags),
        }  # fmt: skip
        row.update(_leaves(r.data))
        rows.append(row)
    return rows


def _leaves(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_leaves(value, name + "."))
        else:
            out[name] = float(value) if type(value) is int else value
    return out


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and value.is_integer() and not math.isinf(value):
        return float(value)
    return value


def by_duckdb(path: Path) -> list[dict[str, Any]]:
    relation = duckdb.sql(f"SELECT * FROM read_parquet('{path}')")
    times = duckdb.sql(
        f"SELECT epoch_ns(time_requested), epoch_ns(time_received) FROM read_parquet('{path}')"
    ).fetchall()
    rows = []
    for row, (requested, received) in zip(relation.fetchall(), times, strict=True):
        values = dict(zip(relation.columns, row, strict=True))
        values.update(time_requested=requested, time_received=received)
        rows.append({k: _plain(v) for k, v in values.items()})
    return sorted(rows, key=lambda r: r["time_requested"])


def by_pandas(path: Path) -> list[dict[str, Any]]:
    frame = pd.read_parquet(path)
    for name in ("time_requested", "time_received"):
        frame[name] = frame[name].astype("int64")
    rows = [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]
    for row in rows:
        for name in ("part_id", "component_type", "component_name", "method_name"):
            row[name] = str(row[name])
    return sorted(rows, key=lambda r: r["time_requested"])


def by_polars(path: Path) -> list[dict[str, Any]]:
    frame = pl.read_parquet(path)
    frame = frame.with_columns(
        pl.col("time_requested").dt.epoch("ns"), pl.col("time_received").dt.epoch("ns")
    )
    rows = [{k: _plain(v) for k, v in row.items()} for row in frame.to_dicts()]
    return sorted(rows, key=lambda r: r["time_requested"])


@pytest.mark.parametrize("reader", [by_duckdb, by_pandas, by_polars])
def test_export_reads_back_identically(data_dir: Path, tmp_path: Path, reader: Any) -> None:
    out = tmp_path / "out"
    argv = ["data", "export", "--data", str(data_dir), "--format", "parquet", "--out", str(out)]
    assert main(argv) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.parquet")) == [IMU, THERMO]
    thermo_rows = [thermo(i, "a") for i in range(6)] + [thermo(i, "b") for i in range(6, 12)]
    assert reader(out / THERMO) == expected(thermo_rows)
    assert reader(out / IMU) == expected([imu(i) for i in range(10)])


def test_filters_apply_to_files_and_tail(data_dir: Path, tmp_path: Path) -> None:
    since, until = T0_NS - S_NS, T0_NS + 8 * S_NS  # cuts the compacted day and the tail
    f = ItemFilter(component="thermo", tags=("lab",), since_ns=since, until_ns=until)
    with open_data_query(data_dir) as query:
        result = export_query_parquet(query, f, tmp_path / "out")
    wanted = [thermo(i, "a") for i in range(6)] + [thermo(i, "b") for i in range(6, 12)]
    wanted = [r for r in wanted if "lab" in r.tags and since <= r.time_requested_ns < until]
    assert result.rows == len(wanted) == 4
    assert by_duckdb(tmp_path / "out" / THERMO) == expected(wanted)
    assert not (tmp_path / "out" / IMU).exists()


def test_export_equals_the_decoded_export(data_dir: Path, tmp_path: Path) -> None:
    """The same rows and columns as decoding every reading (the path MongoDB takes)."""
    from capsync.export.parquet_export import export_parquet
    from capsync.server.query import iter_records

    with open_data_query(data_dir) as query:
        export_query_parquet(query, None, tmp_path / "columnar")
    export_parquet(iter_records(data_dir), tmp_path / "decoded")
    for name in (THERMO, IMU):
        assert by_duckdb(tmp_path / "columnar" / name) == by_duckdb(tmp_path / "decoded" / name)


def test_files_compacted_before_the_ns_columns(tmp_path: Path) -> None:
    """A file an earlier compactor wrote (microsecond times only) still serves SQL and
    exports, its times to the microsecond."""
    import pyarrow.parquet as pq

    with LocalStore(tmp_path) as store:
        store.record_tabular([imu(i) for i in range(4)])
    with open_data_query(tmp_path) as query:
        assert query.columnar is not None and query.columnar.compact() == 4
        (path,) = query.columnar.snapshot()[0]
        table = pq.read_table(path)
        old = table.drop_columns([c for c in table.column_names if c.endswith("_ns")])
        pq.write_table(old, path)
        assert query.sql("SELECT count(*) AS n FROM readings") == [{"n": 4}]
        export_query_parquet(query, None, tmp_path / "out")
    rows = by_duckdb(tmp_path / "out" / IMU)
    assert [r["time_requested"] for r in rows] == [
        imu(i).time_requested_ns // 1000 * 1000 for i in range(4)
    ]
