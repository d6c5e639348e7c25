"""The embedded :class:`~capsync.server.store.Store`: one SQLite database (WAL) in the data dir.

Tables ``tabular`` (one row per tabular reading) and ``blobs`` (one row per
binary reading or file). Each has a ``UNIQUE`` ``id`` (the dedupe key), and
rows go in with ``INSERT OR IGNORE``: a re-sent upload adds nothing, even when
several server processes share the database. Each thread uses its own
connection; a busy database is waited for (``busy_timeout``), not failed.
"""

from __future__ import annotations

import heapq
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from capsync.server.store import BlobRecord, ItemFilter, Record, Store, TabularRecord

DB_FILE_NAME = "capsync.db"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tabular (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    upload_id TEXT NOT NULL,
    part_id TEXT NOT NULL,
    component_type TEXT NOT NULL,
    component_name TEXT NOT NULL,
    method_name TEXT NOT NULL,
    method_parameters TEXT NOT NULL,
    tags TEXT NOT NULL,
    time_requested_ns INTEGER NOT NULL,
    time_received_ns INTEGER NOT NULL,
    mime_type TEXT NOT NULL,
    data_json TEXT NOT NULL,
    uploaded_at_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tabular_by_time ON tabular (time_requested_ns);
CREATE INDEX IF NOT EXISTS tabular_by_source
    ON tabular (part_id, component_name, method_name, time_requested_ns);
CREATE TABLE IF NOT EXISTS blobs (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    upload_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('binary', 'file')),
    part_id TEXT NOT NULL,
    component_type TEXT NOT NULL,
    component_name TEXT NOT NULL,
    method_name TEXT NOT NULL,
    method_parameters TEXT NOT NULL,
    tags TEXT NOT NULL,
    time_requested_ns INTEGER NOT NULL,
    time_received_ns INTEGER NOT NULL,
    mime_type TEXT NOT NULL,
    file_extension TEXT NOT NULL,
    path TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    file_name TEXT NOT NULL,
    dataset_ids TEXT NOT NULL,
    annotations TEXT NOT NULL,
    uploaded_at_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS blobs_by_time ON blobs (time_requested_ns);
CREATE INDEX IF NOT EXISTS blobs_by_source
    ON blobs (part_id, component_name, method_name, time_requested_ns);
"""

_TABULAR_COLUMNS = (
    "id, upload_id, part_id, component_type, component_name, method_name, method_parameters, "
    "tags, time_requested_ns, time_received_ns, mime_type, data_json, uploaded_at_ns"
)
_BLOB_COLUMNS = (
    "id, upload_id, kind, part_id, component_type, component_name, method_name, "
    "method_parameters, tags, time_requested_ns, time_received_ns, mime_type, file_extension, "
    "path, size_bytes, sha256, file_name, dataset_ids, annotations, uploaded_at_ns"
)


# NaN/Infinity are kept (as Python's json writes them): sensors do report them.
# One encoder for all: json.dumps with arguments builds a new one per call.
_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=True).encode
_UNSET = object()


def _dumps(value: Any) -> str:
    return _encode(value)


class SqliteStore(Store):
    """The store in ``<data_dir>/capsync.db``; created (mode 0600) when missing unless
    ``create=False``, in which case a missing database raises :class:`FileNotFoundError`."""

    def __init__(self, data_dir: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(data_dir) / DB_FILE_NAME
        if not self.path.exists():
            if not create:
                raise FileNotFoundError(2, "no capsync database", str(self.path))
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
            os.close(fd)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        conn = self._connection()
        conn.execute("PRAGMA journal_mode=WAL")
        if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            # Idempotent, so two processes creating the database at once both succeed.
            try:
                conn.executescript(
                    "BEGIN IMMEDIATE;" + _SCHEMA + f"PRAGMA user_version={SCHEMA_VERSION}; COMMIT;"
                )
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        with self._lock:
            if self._closed:
                raise RuntimeError("the store is closed")
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None
            )
            # FULL: an upload the client was told succeeded must survive a power cut,
            # since the client deletes its copy.
            conn.execute("PRAGMA synchronous=FULL")
            self._connections.append(conn)
        self._local.conn = conn
        return conn

    def record_tabular(self, records: Sequence[TabularRecord]) -> int:
        # The records of one upload share their parameters and tags objects:
        # encode those once, not once per record.
        parameters: Any = _UNSET
        tags: Any = _UNSET
        parameters_json = tags_json = ""
        rows = []
        for r in records:
            if r.method_parameters is not parameters:
                parameters, parameters_json = r.method_parameters, _dumps(r.method_parameters)
            if r.tags is not tags:
                tags, tags_json = r.tags, _dumps(list(r.tags))
            rows.append(
                (
                    r.id,
                    r.upload_id,
                    r.part_id,
                    r.component_type,
                    r.component_name,
                    r.method_name,
                    parameters_json,
                    tags_json,
                    r.time_requested_ns,
                    r.time_received_ns,
                    r.mime_type,
                    _dumps(r.data),
                    r.uploaded_at_ns,
                )
            )
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            before = conn.total_changes
            conn.executemany(
                f"INSERT OR IGNORE INTO tabular ({_TABULAR_COLUMNS}) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            inserted = conn.total_changes - before
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return inserted

    def record_blob(self, record: BlobRecord) -> bool:
        r = record
        row = (
            r.id,
            r.upload_id,
            r.kind,
            r.part_id,
            r.component_type,
            r.component_name,
            r.method_name,
            _dumps(r.method_parameters),
            _dumps(list(r.tags)),
            r.time_requested_ns,
            r.time_received_ns,
            r.mime_type,
            r.file_extension,
            r.path,
            r.size_bytes,
            r.sha256,
            r.file_name,
            _dumps(list(r.dataset_ids)),
            _dumps(r.annotations),
            r.uploaded_at_ns,
        )
        cursor = self._connection().execute(
            f"INSERT OR IGNORE INTO blobs ({_BLOB_COLUMNS}) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            row,
        )
        return cursor.rowcount == 1

    def query(self, item_filter: ItemFilter | None = None) -> Iterator[Record]:
        f = item_filter or ItemFilter()
        streams: list[Iterator[Record]] = []
        if f.kind in (None, "tabular"):
            streams.append(self._query_tabular(f))
        if f.kind != "tabular":
            streams.append(self._query_blobs(f))
        return heapq.merge(*streams, key=lambda r: (r.time_requested_ns, r.kind, r.id))

    def _where(self, f: ItemFilter, *, blobs: bool) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("part_id", f.part_id),
            ("component_name", f.component),
            ("component_type", f.component_type),
            ("method_name", f.method),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if blobs and f.kind is not None:
            clauses.append("kind = ?")
            params.append(f.kind)
        for tag in f.tags:
            clauses.append("EXISTS (SELECT 1 FROM json_each(tags) WHERE json_each.value = ?)")
            params.append(tag)
        if f.since_ns is not None:
            clauses.append("time_requested_ns >= ?")
            params.append(f.since_ns)
        if f.until_ns is not None:
            clauses.append("time_requested_ns < ?")
            params.append(f.until_ns)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def _query_tabular(self, f: ItemFilter) -> Iterator[Record]:
        where, params = self._where(f, blobs=False)
        cursor = self._connection().execute(
            f"SELECT {_TABULAR_COLUMNS} FROM tabular{where} ORDER BY time_requested_ns, id",
            params,
        )
        for row in cursor:
            yield TabularRecord(
                id=row[0],
                upload_id=row[1],
                part_id=row[2],
                component_type=row[3],
                component_name=row[4],
                method_name=row[5],
                method_parameters=json.loads(row[6]),
                tags=tuple(json.loads(row[7])),
                time_requested_ns=row[8],
                time_received_ns=row[9],
                mime_type=row[10],
                data=json.loads(row[11]),
                uploaded_at_ns=row[12],
            )

    def _query_blobs(self, f: ItemFilter) -> Iterator[Record]:
        where, params = self._where(f, blobs=True)
        cursor = self._connection().execute(
            f"SELECT {_BLOB_COLUMNS} FROM blobs{where} ORDER BY time_requested_ns, kind, id",
            params,
        )
        for row in cursor:
            yield BlobRecord(
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

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
