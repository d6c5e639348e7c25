"""The authoritative part of the embedded store: ``<data_dir>/capsync.db`` (WAL, ``FULL`` sync).

* ``blobs``: one row per binary reading or file, ``UNIQUE`` ``id``, inserted
  with ``INSERT OR IGNORE`` (a re-sent upload adds nothing);
* ``deleted_readings``: tombstones of deleted tabular readings (``idx = -1``:
  the whole batch), which the segments cannot forget themselves;
* ``tabular``: the previous release's one-row-per-reading table, only in a
  store that release wrote; :class:`~capsync.server.stores.local.LocalStore`
  migrates it into segments at its first start and drops it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from capsync.server.stores.base import BlobRecord, ItemFilter, TabularRecord
from capsync.server.stores.sqlite_db import Connections, where

DB_FILE_NAME = "capsync.db"
SCHEMA_VERSION = 2
WHOLE_BATCH = -1

_SCHEMA = """
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
CREATE TABLE IF NOT EXISTS deleted_readings (
    batch_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    PRIMARY KEY (batch_id, idx)
) WITHOUT ROWID;
"""

_BLOB_COLUMNS = (
    "id, upload_id, kind, part_id, component_type, component_name, method_name, "
    "method_parameters, tags, time_requested_ns, time_received_ns, mime_type, file_extension, "
    "path, size_bytes, sha256, file_name, dataset_ids, annotations, uploaded_at_ns"
)
_LEGACY_COLUMNS = (
    "id, upload_id, part_id, component_type, component_name, method_name, method_parameters, "
    "tags, time_requested_ns, time_received_ns, mime_type, data_json, uploaded_at_ns"
)
# NaN/Infinity are kept (as Python's json writes them): sensors do report them.
_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=True).encode


def _blob_row(r: BlobRecord) -> tuple[Any, ...]:
    return (
        r.id, r.upload_id, r.kind, r.part_id, r.component_type, r.component_name,
        r.method_name, _encode(r.method_parameters), _encode(list(r.tags)),
        r.time_requested_ns, r.time_received_ns, r.mime_type, r.file_extension, r.path,
        r.size_bytes, r.sha256, r.file_name, _encode(list(r.dataset_ids)),
        _encode(r.annotations), r.uploaded_at_ns,
    )  # fmt: skip


def _blob_record(row: Sequence[Any]) -> BlobRecord:
    return BlobRecord(
        id=row[0], upload_id=row[1], kind=row[2], part_id=row[3], component_type=row[4],
        component_name=row[5], method_name=row[6], method_parameters=json.loads(row[7]),
        tags=tuple(json.loads(row[8])), time_requested_ns=row[9], time_received_ns=row[10],
        mime_type=row[11], file_extension=row[12], path=row[13], size_bytes=row[14],
        sha256=row[15], file_name=row[16], dataset_ids=tuple(json.loads(row[17])),
        annotations=json.loads(row[18]), uploaded_at_ns=row[19],
    )  # fmt: skip


def _legacy_record(row: Sequence[Any]) -> TabularRecord:
    return TabularRecord(
        id=row[0], upload_id=row[1], part_id=row[2], component_type=row[3],
        component_name=row[4], method_name=row[5], method_parameters=json.loads(row[6]),
        tags=tuple(json.loads(row[7])), time_requested_ns=row[8], time_received_ns=row[9],
        mime_type=row[10], data=json.loads(row[11]), uploaded_at_ns=row[12],
    )  # fmt: skip


class BlobTable:
    """``capsync.db`` in ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / DB_FILE_NAME
        # FULL: a record the client was told is stored must survive a power cut,
        # since the client deletes its copy.
        self._db = Connections(
            self.path, synchronous="FULL", schema=_SCHEMA, version=SCHEMA_VERSION
        )

    # blobs ----------------------------------------------------------------------------

    def add(self, records: Sequence[BlobRecord]) -> list[bool]:
        added = []
        with self._db.transaction() as conn:
            for record in records:
                cursor = conn.execute(
                    f"INSERT OR IGNORE INTO blobs ({_BLOB_COLUMNS}) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    _blob_row(record),
                )
                added.append(cursor.rowcount == 1)
        return added

    def query(self, f: ItemFilter) -> Iterator[BlobRecord]:
        clause, params = where(f, kind_column="kind")
        cursor = self._db.get().execute(
            f"SELECT {_BLOB_COLUMNS} FROM blobs{clause} ORDER BY time_requested_ns, kind, id",
            params,
        )
        for row in cursor:
            yield _blob_record(row)

    def get(self, blob_id: str) -> BlobRecord | None:
        row = (
            self._db.get()
            .execute(f"SELECT {_BLOB_COLUMNS} FROM blobs WHERE id = ?", (blob_id,))
            .fetchone()
        )
        return None if row is None else _blob_record(row)

    def delete(self, blob_ids: Sequence[str]) -> int:
        with self._db.transaction() as conn:
            before = conn.total_changes
            conn.executemany("DELETE FROM blobs WHERE id = ?", [(i,) for i in blob_ids])
            return int(conn.total_changes - before)

    def update(self, blob_id: str, changes: dict[str, Any]) -> bool:
        if not changes:
            return self.get(blob_id) is not None
        columns = ", ".join(f"{name} = ?" for name in changes)
        values = [_encode(v) for v in changes.values()]
        with self._db.transaction() as conn:
            cursor = conn.execute(f"UPDATE blobs SET {columns} WHERE id = ?", (*values, blob_id))
            return cursor.rowcount == 1

    # tombstones -----------------------------------------------------------------------

    def add_tombstones(self, pairs: Sequence[tuple[str, int]]) -> None:
        with self._db.transaction() as conn:
            conn.executemany("INSERT OR IGNORE INTO deleted_readings VALUES (?, ?)", pairs)

    def sources(self) -> set[tuple[str, str, str, str]]:
        """Each (part, component type, component name, method) holding a blob."""
        cursor = self._db.get().execute(
            "SELECT DISTINCT part_id, component_type, component_name, method_name FROM blobs"
        )
        return {tuple(row) for row in cursor.fetchall()}

    def tombstones(self, batch_id: str) -> set[int]:
        cursor = self._db.get().execute(
            "SELECT idx FROM deleted_readings WHERE batch_id = ?", (batch_id,)
        )
        return {row[0] for row in cursor.fetchall()}

    def deleted_batches(self) -> set[str]:
        cursor = self._db.get().execute(
            "SELECT batch_id FROM deleted_readings WHERE idx = ?", (WHOLE_BATCH,)
        )
        return {row[0] for row in cursor.fetchall()}

    # the previous release's table -----------------------------------------------------

    def has_legacy(self) -> bool:
        cursor = self._db.get().execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tabular'"
        )
        return cursor.fetchone() is not None

    def legacy_uploads(self) -> Iterator[list[TabularRecord]]:
        """The old per-reading rows, one list per upload; nothing when there are none."""
        if not self.has_legacy():
            return
        conn = self._db.get()
        uploads = [row[0] for row in conn.execute("SELECT DISTINCT upload_id FROM tabular")]
        for upload_id in uploads:
            rows = conn.execute(
                f"SELECT {_LEGACY_COLUMNS} FROM tabular WHERE upload_id = ? ORDER BY seq",
                (upload_id,),
            ).fetchall()
            yield [_legacy_record(row) for row in rows]

    def legacy_query(self, f: ItemFilter) -> Iterator[TabularRecord]:
        """The old per-reading rows matching ``f``, in (time, id) order (a store read as is)."""
        clause, params = where(f)
        cursor = self._db.get().execute(
            f"SELECT {_LEGACY_COLUMNS} FROM tabular{clause} ORDER BY time_requested_ns, id", params
        )
        for row in cursor:
            yield _legacy_record(row)

    def drop_legacy(self) -> None:
        with self._db.transaction() as conn:
            conn.execute("DROP TABLE IF EXISTS tabular")

    def close(self) -> None:
        self._db.close()


def is_store(data_dir: Path) -> bool:
    return (data_dir / DB_FILE_NAME).exists()


__all__ = ["DB_FILE_NAME", "BlobTable", "is_store"]
