"""Tabular readings as Parquet: typed columns, one file per part/component/method.

Layout: ``<out>/<part>/<component type>/<component>/<method>.parquet`` with
the columns ``time_requested``, ``time_received`` (UTC timestamps, ns),
``part_id``, ``component_type``, ``component_name``, ``method_name``,
``tags`` (list of strings) and one column per leaf of the reading, its path
joined with dots: ``{"readings": {"x": 1.5}}`` gives a double column
``readings.x``. Lists stay lists; a value whose type changes between rows
(a number, later a string) is kept as JSON text. Should the columns change
part way (a field appears), the rows from there on go to ``<method>.1.parquet``
(then ``.2``...); DuckDB reads them together with
``read_parquet('<out>/**/*.parquet', union_by_name=true)``.

Rows are written in batches of :data:`BATCH_ROWS` per file, so memory does not
grow with the export.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from capsync._time import DAY_NS, day_start_ns
from capsync.query.api import DataQuery
from capsync.query.columnar import (
    RECEIVED_NS_COLUMN,
    REQUESTED_NS_COLUMN,
    SourceKey,
)
from capsync.query.filters import DataFilter
from capsync.server.blobs import UnsafePathError, payload_folder
from capsync.server.stores.base import ItemFilter, Record, TabularRecord, matches

BATCH_ROWS = 65_536
BASE_COLUMNS = (
    "time_requested",
    "time_received",
    "part_id",
    "component_type",
    "component_name",
    "method_name",
    "tags",
)
_TIME = pa.timestamp("ns", tz="UTC")
_EMPTY_DATA = pa.struct([("_", pa.string())])  # the compactor's readings with no fields


def flatten(data: dict[str, Any], prefix: str = "", out: dict[str, Any] | None = None) -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; an empty object becomes null."""
    if out is None:
        out = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value:
            flatten(value, name, out)
        else:
            out[name] = None if isinstance(value, dict) else value
    return out


def _reading_columns(readings: list[dict[str, Any]]) -> dict[str, pa.Array]:
    """One typed column per leaf of the readings (numbers as double)."""
    try:
        whole = pa.array(readings)  # Arrow infers a struct type in C++: the fast way
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        whole = None  # a field changes type between rows: go leaf by leaf
    if whole is not None and pa.types.is_struct(whole.type):
        columns: dict[str, pa.Array] = {}
        _flatten_struct(whole, "", columns)
        return columns
    flat = [flatten(r) for r in readings]
    names: dict[str, None] = {}
    for row in flat:
        names.update(dict.fromkeys(row))
    return {name: _doubles(_column([row.get(name) for row in flat])) for name in names}


def _flatten_struct(array: pa.StructArray, prefix: str, out: dict[str, pa.Array]) -> None:
    for field_, child in zip(array.type, array.flatten(), strict=True):
        name = f"{prefix}.{field_.name}" if prefix else field_.name
        if pa.types.is_struct(child.type) and child.type.num_fields:
            _flatten_struct(child, name, out)
        elif pa.types.is_struct(child.type):  # always an empty object
            out[name] = pa.nulls(len(child))
        else:
            out[name] = _doubles(child)


def _tags_column(rows: list[TabularRecord]) -> pa.Array:
    """The tags of each row; the few distinct tag tuples are converted once each."""
    distinct: dict[tuple[str, ...], int] = {}
    indices = np.fromiter(
        (distinct.setdefault(r.tags, len(distinct)) for r in rows), dtype=np.int32, count=len(rows)
    )
    values = pa.array([list(tags) for tags in distinct], pa.list_(pa.string()))
    return values.take(pa.array(indices))


def _doubles(array: pa.Array) -> pa.Array:
    """Struct numbers are doubles, even when a store hands back whole numbers as ints."""
    if pa.types.is_integer(array.type):
        return array.cast(pa.float64())
    return array


def _column(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values, from_pandas=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else json.dumps(v) for v in values], pa.string())


@dataclass
class _Group:
    """The pending rows and the open file of one part/component/method."""

    folder: Path
    stem: str
    rows: list[TabularRecord] = field(default_factory=list)
    writer: pq.ParquetWriter | None = None
    schema: pa.Schema | None = None
    files: list[Path] = field(default_factory=list)

    def table(self) -> pa.Table:
        columns: dict[str, pa.Array] = {
            "time_requested": pa.array([r.time_requested_ns for r in self.rows], _TIME),
            "time_received": pa.array([r.time_received_ns for r in self.rows], _TIME),
        }
        first = self.rows[0]
        zeros = pa.array(np.zeros(len(self.rows), dtype=np.int32))
        for name in ("part_id", "component_type", "component_name", "method_name"):
            # The same in every row of the file: stored once, as a dictionary.
            value = pa.array([getattr(first, name)], pa.string())
            columns[name] = pa.DictionaryArray.from_arrays(zeros, value)
        columns["tags"] = _tags_column(self.rows)
        for name, column in _reading_columns([r.data for r in self.rows]).items():
            if name not in columns:  # a reading field named like a base column is left out
                columns[name] = column
        return pa.table(columns)

    def flush(self) -> None:
        if not self.rows:
            return
        table = self.table()
        self.rows = []
        self.write(table)

    def write(self, table: pa.Table) -> None:
        """Append ``table`` to the open file, or start the next file when it does not fit."""
        if self.schema is not None and self.writer is not None:
            fitted = _fit(table, self.schema)
            if fitted is not None:
                self.writer.write_table(fitted)
                return
            self.writer.close()
        self.folder.mkdir(parents=True, exist_ok=True)
        suffix = f".{len(self.files)}" if self.files else ""
        path = self.folder / f"{self.stem}{suffix}.parquet"
        self.files.append(path)
        self.schema = table.schema
        # Dictionaries for the repeated text columns only: trying them on every reading
        # column costs time and saves nothing on measurements.
        repeated = [n for n in BASE_COLUMNS[2:] if n in table.column_names]
        self.writer = pq.ParquetWriter(
            path, table.schema, compression="zstd", use_dictionary=repeated
        )
        self.writer.write_table(table)

    def close(self) -> None:
        self.flush()
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _fit(table: pa.Table, schema: pa.Schema) -> pa.Table | None:
    """``table`` with ``schema``'s columns (missing ones null), or None when it has
    columns the schema lacks or types that do not cast."""
    if not set(table.column_names) <= set(schema.names):
        return None
    columns = []
    for schema_field in schema:
        if schema_field.name in table.column_names:
            column = table[schema_field.name]
            if column.type != schema_field.type:
                if not pa.types.is_null(column.type):
                    return None
                column = pa.nulls(len(table), schema_field.type)
            columns.append(column)
        else:
            columns.append(pa.nulls(len(table), schema_field.type))
    return pa.Table.from_arrays(columns, schema=schema)


@dataclass
class ParquetResult:
    rows: int = 0
    files: list[Path] = field(default_factory=list)


class _Groups(dict[SourceKey, _Group]):
    """The output file groups under ``root``, one per source."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def of(self, key: SourceKey) -> _Group:
        group = self.get(key)
        if group is None:
            try:
                segments = payload_folder(*key)
            except UnsafePathError:
                segments = tuple(s.replace("/", "_").replace(":", "_") or "_" for s in key)
            group = self[key] = _Group(self.root.joinpath(*segments[:3]), segments[3])
        return group

    def close(self, result: ParquetResult) -> None:
        for group in self.values():
            group.close()
            result.files.extend(group.files)


def _add_records(
    records: Iterable[Record], groups: _Groups, result: ParquetResult, batch_rows: int
) -> None:
    for record in records:
        if not isinstance(record, TabularRecord):
            continue
        key = (record.part_id, record.component_type, record.component_name, record.method_name)
        group = groups.of(key)
        group.rows.append(record)
        result.rows += 1
        if len(group.rows) >= batch_rows:
            group.flush()


def export_parquet(
    records: Iterable[Record], out: str | os.PathLike[str], *, batch_rows: int = BATCH_ROWS
) -> ParquetResult:
    """Write the tabular ``records`` (others are left out) as Parquet files under ``out``."""
    groups = _Groups(Path(out))
    result = ParquetResult()
    try:
        _add_records(records, groups, result, batch_rows)
    finally:
        groups.close(result)
    return result


def export_query_parquet(
    query: DataQuery,
    item_filter: ItemFilter | None,
    out: str | os.PathLike[str],
    *,
    batch_rows: int = BATCH_ROWS,
) -> ParquetResult:
    """Write the tabular readings ``item_filter`` matches as Parquet files under ``out``.

    With the compactor's columnar files (the embedded store), those are read as Arrow
    tables and written back out column by column; only the readings not compacted yet
    are decoded. Without them (MongoDB), every reading is decoded. Rows come file by
    file: by UTC day, then in the order they were stored.
    """
    f = item_filter or ItemFilter()
    groups = _Groups(Path(out))
    result = ParquetResult()
    try:
        if f.kind not in (None, "tabular"):
            return result
        columnar = query.columnar
        if columnar is None:
            _add_records(_decoded(query, f), groups, result, batch_rows)
            return result
        with columnar.exclusive():  # no compaction or delete rewrites a file being read
            files, mark = columnar.snapshot()
            for path in files:
                key, day = columnar.source_of(path)
                if not _source_matches(key, day, f):
                    continue
                for part in _read_compacted(path):
                    table = _filtered(part, f)
                    if table.num_rows:
                        groups.of(key).write(_export_table(table))
                        result.rows += table.num_rows
            tail = (r for r in columnar.tail(mark) if matches(r, f))
            _add_records(tail, groups, result, batch_rows)
    finally:
        groups.close(result)
    return result


def _decoded(query: DataQuery, f: ItemFilter) -> Iterator[TabularRecord]:
    data_filter = DataFilter(
        part_id=f.part_id, component_name=f.component, component_type=f.component_type,
        method_name=f.method, start_ns=f.since_ns, end_ns=f.until_ns,
    )  # fmt: skip
    return (r for r in query.iter_tabular(data_filter) if matches(r, f))


_COMPACTED_COLUMNS = (
    "time_requested", "time_received", "part_id", "component_type", "component_name",
    "method_name", "tags", "data", REQUESTED_NS_COLUMN, RECEIVED_NS_COLUMN,
)  # fmt: skip


def _read_compacted(path: Path) -> Iterator[pa.Table]:
    """The columns of a compacted file an export uses (not the ids, the organization...),
    the source's names as dictionaries, as they are written; a row group at a time (a
    merged file holds millions of readings)."""
    with pq.ParquetFile(
        path, read_dictionary=["part_id", "component_type", "component_name", "method_name"]
    ) as f:
        present = set(f.schema_arrow.names)
        columns = [c for c in _COMPACTED_COLUMNS if c in present]
        for index in range(f.num_row_groups):
            yield f.read_row_group(index, columns=columns)


def _source_matches(key: SourceKey, day: str, f: ItemFilter) -> bool:
    wanted = (f.part_id, f.component_type, f.component, f.method)
    if any(w is not None and w != k for w, k in zip(wanted, key, strict=True)):
        return False
    start = day_start_ns(day)
    if f.until_ns is not None and start >= f.until_ns:
        return False
    return f.since_ns is None or start + DAY_NS > f.since_ns


def _times_ns(table: pa.Table, exact: str, micros: str) -> pa.Array:
    """A compacted file's times in ns: exact when the file has them, else from microseconds."""
    if exact in table.column_names:
        return table[exact].combine_chunks()
    coarse = pc.fill_null(table[micros].combine_chunks().cast(pa.int64()), 0)
    return pc.multiply(coarse, 1000)


def _filtered(table: pa.Table, f: ItemFilter) -> pa.Table:
    """The rows of a compacted file the filter's times and tags keep."""
    requested = _times_ns(table, REQUESTED_NS_COLUMN, "time_requested")
    keep = None
    if f.since_ns is not None:
        keep = pc.greater_equal(requested, f.since_ns)
    if f.until_ns is not None:
        below = pc.less(requested, f.until_ns)
        keep = below if keep is None else pc.and_(keep, below)
    for tag in f.tags:
        flat = pc.list_flatten(table["tags"])
        parents = pc.list_parent_indices(table["tags"])
        tagged = np.zeros(table.num_rows, dtype=bool)
        tagged[parents.to_numpy()[pc.equal(flat, tag).to_numpy(zero_copy_only=False)]] = True
        keep = pa.array(tagged) if keep is None else pc.and_(keep, pa.array(tagged))
    return table if keep is None else table.filter(keep)


def _export_table(table: pa.Table) -> pa.Table:
    """A compacted file's rows in the export's columns (see the module docstring)."""
    requested = _times_ns(table, REQUESTED_NS_COLUMN, "time_requested")
    received = _times_ns(table, RECEIVED_NS_COLUMN, "time_received")
    columns: dict[str, pa.Array] = {
        "time_requested": requested.cast(pa.timestamp("ns")).cast(_TIME),
        "time_received": received.cast(pa.timestamp("ns")).cast(_TIME),
    }
    for name in ("part_id", "component_type", "component_name", "method_name"):
        column = table[name].combine_chunks()
        columns[name] = (
            column if pa.types.is_dictionary(column.type) else column.dictionary_encode()
        )
    columns["tags"] = table["tags"].combine_chunks()
    data = table["data"].combine_chunks()
    leaves: dict[str, pa.Array] = {}
    if pa.types.is_struct(data.type):
        if data.type != _EMPTY_DATA or data.field(0).null_count < len(data):
            _flatten_struct(data, "", leaves)
    else:  # readings whose fields change type are kept as JSON text
        leaves = _reading_columns([json.loads(text) for text in data.to_pylist()])
    for name, column in leaves.items():
        if name not in columns:
            columns[name] = column
    return pa.table(columns)
