"""The :class:`~capsync.query.source.DataSource` of the embedded store (``capsync.db``).

It reads and changes the ``tabular`` and ``blobs`` tables of
:mod:`capsync.server.sqlite_store` with its own connections (one per thread,
WAL, waiting on a busy database). Every filter field becomes SQL; tags,
dataset ids and bounding boxes are JSON columns searched with ``json_each``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from capsync.query.filters import DataFilter, Page
from capsync.query.source import DataSource
from capsync.server.sqlite_store import (
    _BLOB_COLUMNS,
    _TABULAR_COLUMNS,
    BUSY_TIMEOUT_S,
    DB_FILE_NAME,
)
from capsync.server.store import BlobRecord, TabularRecord

_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=True).encode


class _Shared:
    """Parses the JSON texts that every reading of an upload shares (tags, parameters)
    once per page instead of once per reading. The parsed values are shared: never
    mutate a record's ``method_parameters``."""

    def __init__(self) -> None:
        self._parameters: dict[str, dict[str, Any]] = {}
        self._tags: dict[str, tuple[str, ...]] = {}

    def parameters(self, text: str) -> dict[str, Any]:
        found = self._parameters.get(text)
        if found is None:
            found = self._parameters[text] = json.loads(text)
        return found

    def tags(self, text: str) -> tuple[str, ...]:
        found = self._tags.get(text)
        if found is None:
            found = self._tags[text] = tuple(json.loads(text))
        return found


def _tabular_record(row: Sequence[Any], shared: _Shared | None = None) -> TabularRecord:
    shared = shared or _Shared()
    return TabularRecord(
        id=row[0],
        upload_id=row[1],
        part_id=row[2],
        component_type=row[3],
        component_name=row[4],
        method_name=row[5],
        method_parameters=shared.parameters(row[6]),
        tags=shared.tags(row[7]),
        time_requested_ns=row[8],
        time_received_ns=row[9],
        mime_type=row[10],
        data=json.loads(row[11]),
        uploaded_at_ns=row[12],
    )


def _blob_record(row: Sequence[Any]) -> BlobRecord:
    return BlobRecord(
        id=row[0],
        upload_id=row[1],
        kind=row[2],
        part_id=row[3],
        component_type=row[4],
        component_name=row[5],
        method_name=row[6],
        method_parameters=json.loads(row[7]),
        tags=tuple(json.loads(row[8])),
        time_requested_ns=row[9],
        time_received_ns=row[10],
        mime_type=row[11],
        file_extension=row[12],
        path=row[13],
        size_bytes=row[14],
        sha256=row[15],
        file_name=row[16],
        dataset_ids=tuple(json.loads(row[17])),
        annotations=json.loads(row[18]),
        uploaded_at_ns=row[19],
    )


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))


def where_clause(f: DataFilter, page: Page, *, blobs: bool) -> tuple[str, list[Any]]:
    """The WHERE clause (with its leading keyword, or "") and parameters for a filter and page."""
    if f.matches_nothing:
        return " WHERE 0", []
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("part_id", f.part_id),
        ("component_name", f.component_name),
        ("component_type", f.component_type),
        ("method_name", f.method_name),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if f.tag_match == "tagged":
        clauses.append("json_array_length(tags) > 0")
    elif f.tag_match == "untagged":
        clauses.append("json_array_length(tags) = 0")
    elif f.tags:
        clauses.append(f"EXISTS (SELECT 1 FROM json_each(tags) WHERE value IN ({_marks(f.tags)}))")
        params.extend(f.tags)
    if f.start_ns is not None:
        clauses.append("time_requested_ns >= ?")
        params.append(f.start_ns)
    if f.end_ns is not None:
        clauses.append("time_requested_ns < ?")
        params.append(f.end_ns)
    if f.mime_types:
        clauses.append(f"mime_type IN ({_marks(f.mime_types)})")
        params.extend(f.mime_types)
    if blobs and f.bbox_labels:
        clauses.append(
            "EXISTS (SELECT 1 FROM json_each(annotations, '$.bboxes') "
            f"WHERE json_extract(value, '$.label') IN ({_marks(f.bbox_labels)}))"
        )
        params.extend(f.bbox_labels)
    if f.dataset_id is not None:
        if not blobs:
            return " WHERE 0", []
        clauses.append("EXISTS (SELECT 1 FROM json_each(dataset_ids) WHERE value = ?)")
        params.append(f.dataset_id)
    if page.after is not None:
        clauses.append(f"(time_requested_ns, id) {'<' if page.descending else '>'} (?, ?)")
        params.extend((page.after.time_ns, page.after.id))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _order(page: Page) -> str:
    direction = "DESC" if page.descending else "ASC"
    limit = f" LIMIT {int(page.limit)}" if page.limit is not None else ""
    return f" ORDER BY time_requested_ns {direction}, id {direction}{limit}"


class SqliteSource(DataSource):
    """Reads and changes ``<data_dir>/capsync.db``; FileNotFoundError when it is missing."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.path = Path(data_dir) / DB_FILE_NAME
        if not self.path.exists():
            raise FileNotFoundError(2, "no capsync database", str(self.path))
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        with self._lock:
            if self._closed:
                raise RuntimeError("the data source is closed")
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None
            )
            conn.execute("PRAGMA synchronous=FULL")
            self._connections.append(conn)
        self._local.conn = conn
        return conn

    def tabular(self, data_filter: DataFilter, page: Page | None = None) -> Iterator[TabularRecord]:
        page = page or Page()
        where, params = where_clause(data_filter, page, blobs=False)
        rows = self._conn().execute(
            f"SELECT {_TABULAR_COLUMNS} FROM tabular{where}{_order(page)}", params
        )
        shared = _Shared()
        return (_tabular_record(row, shared) for row in rows.fetchall())

    def count_tabular(self, data_filter: DataFilter) -> int:
        where, params = where_clause(data_filter, Page(), blobs=False)
        return int(
            self._conn().execute(f"SELECT count(*) FROM tabular{where}", params).fetchone()[0]
        )

    def blobs(self, data_filter: DataFilter, page: Page | None = None) -> Iterator[BlobRecord]:
        page = page or Page()
        where, params = where_clause(data_filter, page, blobs=True)
        rows = self._conn().execute(
            f"SELECT {_BLOB_COLUMNS} FROM blobs{where}{_order(page)}", params
        )
        return (_blob_record(row) for row in rows.fetchall())

    def count_blobs(self, data_filter: DataFilter) -> tuple[int, int]:
        where, params = where_clause(data_filter, Page(), blobs=True)
        count, size = (
            self._conn()
            .execute(f"SELECT count(*), coalesce(sum(size_bytes), 0) FROM blobs{where}", params)
            .fetchone()
        )
        return int(count), int(size)

    def blobs_by_ids(self, ids: Sequence[str]) -> list[BlobRecord]:
        found: dict[str, BlobRecord] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            rows = self._conn().execute(
                f"SELECT {_BLOB_COLUMNS} FROM blobs WHERE id IN ({_marks(chunk)})", chunk
            )
            for row in rows:
                found[row[0]] = _blob_record(row)
        return [found[i] for i in unique if i in found]

    supports_changes = True

    def delete_tabular(self, before_ns: int | None, data_filter: DataFilter | None = None) -> int:
        where, params = where_clause(data_filter or DataFilter(), Page(), blobs=False)
        if before_ns is not None:
            where = (where + " AND" if where else " WHERE") + " time_requested_ns < ?"
            params.append(before_ns)
        return int(self._conn().execute(f"DELETE FROM tabular{where}", params).rowcount)

    def delete_blobs(self, ids: Sequence[str]) -> list[BlobRecord]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            records = self.blobs_by_ids(ids)
            for start in range(0, len(records), 500):
                chunk = [r.id for r in records[start : start + 500]]
                conn.execute(f"DELETE FROM blobs WHERE id IN ({_marks(chunk)})", chunk)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return records

    def payload_in_use(self, path: str) -> bool:
        row = self._conn().execute("SELECT 1 FROM blobs WHERE path = ? LIMIT 1", (path,))
        return row.fetchone() is not None

    def update_blob(
        self,
        blob_id: str,
        *,
        tags: Sequence[str] | None = None,
        annotations: dict[str, Any] | None = None,
        dataset_ids: Sequence[str] | None = None,
    ) -> bool:
        sets: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("tags", None if tags is None else list(tags)),
            ("annotations", annotations),
            ("dataset_ids", None if dataset_ids is None else list(dataset_ids)),
        ):
            if value is not None:
                sets.append(f"{column} = ?")
                params.append(_encode(value))
        if not sets:
            return bool(self.blobs_by_ids([blob_id]))
        cursor = self._conn().execute(
            f"UPDATE blobs SET {', '.join(sets)} WHERE id = ?", [*params, blob_id]
        )
        return cursor.rowcount == 1

    def changes_since(self, mark: int, limit: int) -> tuple[list[TabularRecord], int]:
        rows = (
            self._conn()
            .execute(
                f"SELECT seq, {_TABULAR_COLUMNS} FROM tabular WHERE seq > ? ORDER BY seq LIMIT ?",
                (mark, limit),
            )
            .fetchall()
        )
        if not rows:
            return [], mark
        shared = _Shared()
        return [_tabular_record(row[1:], shared) for row in rows], int(rows[-1][0])

    def sources(self) -> list[tuple[str, str, str, str]]:
        rows = self._conn().execute(
            "SELECT part_id, component_type, component_name, method_name FROM tabular "
            "UNION SELECT part_id, component_type, component_name, method_name FROM blobs"
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
