"""Read-only SQL over the ``readings`` table, run by DuckDB.

The table has Viam's columns (SPEC §7): ``organization_id``, ``location_id``,
``robot_id``, ``part_id``, ``component_type``, ``component_name``,
``method_name``, ``time_requested``, ``time_received`` (UTC timestamps),
``tags`` (a list of strings), ``mime_type`` and ``data`` (the reading as a
struct, so ``data.readings.temp`` reaches a nested field). It is also
``sensorData.readings``, as on Viam.

A query is refused (:class:`~capsync.query.filters.QueryError`) unless it is a
single SELECT that reads only ``readings`` (and its own CTEs): no table
functions (``read_csv``, ``read_parquet``, ...), no other tables, no writes,
``ATTACH``, ``COPY``, ``SET`` or ``PRAGMA``. Queries run in an in-memory
DuckDB (:class:`SqlEngine`) with external access off (but for the Parquet
folder) and the configuration locked, so even a check missed here cannot reach
another file or change a setting.

Rows come back as dicts with the selected columns in order; DuckDB values
become BSON-friendly ones (datetimes in UTC, decimals as floats). Numbers in
``data`` are doubles, as a ``Struct`` carries them. Inside a struct value, a
null field is left out: ``data`` is the union of every reading's fields, and a
field one reading lacks reads as null.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import json
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from capsync.query.columnar import HIDDEN_COLUMNS, ID_COLUMN
from capsync.query.filters import DataFilter, QueryError
from capsync.query.table import readings_table

if TYPE_CHECKING:
    from capsync.query.api import DataQuery

TABLE = "readings"
SCHEMA_ALIAS = "sensorData"
_INT64_MAX = 2**63 - 1


# --- the read-only check ---------------------------------------------------------------


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def check_read_only(con: duckdb.DuckDBPyConnection, query: str) -> None:
    """Refuse anything but one SELECT reading ``readings`` (QueryError naming what is wrong)."""
    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise QueryError(f"SQL: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise QueryError(f"SQL: expected one statement, got {len(statements)}")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        name = str(kind).rsplit(".", 1)[-1]
        raise QueryError(f"SQL: only SELECT queries are allowed (this is {name}): read-only")
    try:
        tree_json = con.execute("SELECT json_serialize_sql(?::VARCHAR)", [query]).fetchone()
    except duckdb.Error as exc:
        raise QueryError(f"SQL: {_first_line(exc)}") from None
    tree = json.loads(tree_json[0] if tree_json else "{}")
    if tree.get("error"):
        raise QueryError(f"SQL: {tree.get('error_message', 'cannot parse the query')}")
    ctes = {
        str(name).lower()
        for node in _walk(tree)
        for entry in node.get("cte_map", {}).get("map", [])
        if isinstance(entry, dict)
        for name in [entry.get("key")]
        if name
    }
    for node in _walk(tree):
        node_type = node.get("type")
        if node_type == "TABLE_FUNCTION":
            raise QueryError("SQL: table functions are not allowed; read from readings")
        if node_type == "BASE_TABLE":
            table = str(node.get("table_name", "")).lower()
            schema = str(node.get("schema_name", "")).lower()
            catalog = str(node.get("catalog_name", "")).lower()
            if table in ctes and not schema:
                continue
            if table != TABLE or catalog or schema not in ("", SCHEMA_ALIAS.lower()):
                shown = ".".join(p for p in (catalog, schema, table) if p)
                raise QueryError(f"SQL: unknown table {shown!r}; the table is readings")


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# --- running ---------------------------------------------------------------------------


class SqlEngine:
    """One locked-down in-memory DuckDB for a :class:`DataQuery`'s queries.

    Set up once: the ``sensorData`` schema, external access off except to the
    Parquet folder, extensions neither installed nor loaded, configuration
    locked. Each query gets a cursor of its own (a connection to the same
    database) whose temporary view ``readings`` is that query's snapshot: the
    Parquet files plus the tail. It shadows the empty ``main.readings``, which
    ``sensorData.readings`` reads through.
    """

    def __init__(self, parquet_root: Path | None) -> None:
        db = duckdb.connect(":memory:", config={"threads": 2})
        db.execute(f"CREATE VIEW {TABLE} AS SELECT NULL AS placeholder WHERE false")
        db.execute(f'CREATE SCHEMA "{SCHEMA_ALIAS}"')
        db.execute(f'CREATE VIEW "{SCHEMA_ALIAS}".{TABLE} AS SELECT * FROM {TABLE}')
        if parquet_root is not None:
            db.execute("SET allowed_directories = [?]", [str(parquet_root) + "/"])
        db.execute("SET enable_external_access = false")
        db.execute("SET autoinstall_known_extensions = false")
        db.execute("SET autoload_known_extensions = false")
        db.execute("SET lock_configuration = true")
        self._db = db
        self._lock = threading.Lock()

    def cursor(self, tail: pa.Table, files: Sequence[Path] = ()) -> duckdb.DuckDBPyConnection:
        """A connection whose ``readings`` are ``files`` plus ``tail``; close it after use."""
        with self._lock:
            cur = self._db.cursor()
        try:
            cur.register("_capsync_tail", tail)
            if files:
                listed = ", ".join("'" + str(p).replace("'", "''") + "'" for p in files)
                with_tail = tail.num_rows > 0
                try:
                    self._files_view(cur, listed, HIDDEN_COLUMNS, with_tail)
                except duckdb.BinderException:  # files compacted before the ns columns
                    self._files_view(cur, listed, (ID_COLUMN,), with_tail)
            else:
                cur.execute(f"CREATE TEMP VIEW {TABLE} AS SELECT * FROM _capsync_tail")
        except BaseException:
            cur.close()
            raise
        return cur

    @staticmethod
    def _files_view(
        cur: duckdb.DuckDBPyConnection, listed: str, hidden: Sequence[str], with_tail: bool
    ) -> None:
        """The view of the files plus the tail; of the files alone when the tail is empty
        (the union by name keeps DuckDB from reading only the columns a query uses: it
        made an aggregate over the files alone about twice as slow)."""
        tail = " UNION ALL BY NAME SELECT * FROM _capsync_tail" if with_tail else ""
        cur.execute(
            f"CREATE OR REPLACE TEMP VIEW {TABLE} AS SELECT * EXCLUDE ({', '.join(hidden)}) "
            f"FROM read_parquet([{listed}], union_by_name = true){tail}"
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()


@contextlib.contextmanager
def _readings_connection(query: DataQuery) -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor over the columnar files plus the tail, or over the store's readings; the
    files stay on disk while it is open (a merge may replace them meanwhile)."""
    if query.columnar is None:
        con = query.sql_engine.cursor(readings_table(query.iter_tabular(DataFilter())))
        with contextlib.closing(con):
            yield con
        return
    with query.columnar.reading() as (files, mark):
        con = query.sql_engine.cursor(readings_table(query.columnar.tail(mark)), files)
        with contextlib.closing(con):
            yield con


def run_mql(query: DataQuery, pipeline: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run an aggregation pipeline over every stored reading (translated to SQL)."""
    from capsync.query.mql import pipeline_to_sql

    with _readings_connection(query) as con:
        empty = con.sql(f"SELECT * FROM {TABLE} LIMIT 0")
        # to_arrow_table() since DuckDB 1.4 (arrow() before it, deprecated after)
        schema = getattr(empty, "to_arrow_table", empty.arrow)().schema
        sql, params = pipeline_to_sql(pipeline, lambda path: _has_path(schema, path))
        return _rows(con, sql, params, "MQL")


def _rows(con: Any, sql: str, params: Any, language: str) -> list[dict[str, Any]]:
    """The rows ``sql`` gives, as plain dicts; a DuckDB error as a QueryError."""
    try:
        result = con.execute(sql, params)
        names = [d[0] for d in result.description or ()]
        rows = result.fetchall()
    except duckdb.Error as exc:
        raise QueryError(f"{language}: {_first_line(exc)}") from None
    return [{name: plain(value) for name, value in zip(names, row, strict=True)} for row in rows]


def _has_path(schema: pa.Schema, path: str) -> bool:
    head, *rest = path.split(".")
    if head not in schema.names:
        return False
    kind = schema.field(head).type
    for part in rest:
        if not pa.types.is_struct(kind) or kind.get_field_index(part) < 0:
            return False
        kind = kind.field(part).type
    return True


def run_sql(
    query: DataQuery, sql: str, params: list[Any] | None = None, *, checked: bool = False
) -> list[dict[str, Any]]:
    """Run ``sql`` over every stored reading; ``checked``: skip the read-only check (for SQL
    built by capsync itself, e.g. from MQL)."""
    if not sql.strip():
        raise QueryError("SQL: the query is empty")
    with _readings_connection(query) as con:
        if not checked:
            check_read_only(con, sql)
        return _rows(con, sql, params or [], "SQL")


def plain(value: Any) -> Any:
    """A DuckDB result value as one BSON can hold."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _INT64_MAX:
        return float(value)
    if isinstance(value, dict):
        # ``data`` is the union of every reading's fields: a field this reading
        # lacks comes back null, and is left out, as MongoDB would.
        return {str(k): plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, uuid.UUID | dt.time | dt.timedelta):
        return str(value)
    return value
