"""The index of the tabular segments: one row per stored batch, in ``tabular/index.db``.

It is derived data: every row can be rebuilt from the segments
(:meth:`BatchIndex.reconcile`), so it runs with ``synchronous=NORMAL`` (a commit
survives a crash of the process, and a power cut at worst drops rows the next
start adds back). A row is written only after its entry is durable in a segment.

Each row's ``seq`` (``AUTOINCREMENT``: never reused, even after a delete) is its
place in insertion order: the change feed of the query layer's compactor
(:meth:`BatchIndex.after`). An index of schema 1 (no ``seq``) is dropped and
rebuilt from the segments at the server's next start (a reader leaves it alone).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from capsync.server.stores.base import ItemFilter, TabularBatch
from capsync.server.stores.segments import Entry
from capsync.server.stores.sqlite_db import Connections, where

INDEX_FILE_NAME = "index.db"
SCHEMA_VERSION = 2
_SCHEMA = """
DROP TABLE IF EXISTS batches;
CREATE TABLE batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    segment INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    length INTEGER NOT NULL,
    part_id TEXT NOT NULL,
    component_type TEXT NOT NULL,
    component_name TEXT NOT NULL,
    method_name TEXT NOT NULL,
    file_name TEXT NOT NULL,
    tags TEXT NOT NULL,
    mime_type TEXT NOT NULL,
    count INTEGER NOT NULL,
    time_min_ns INTEGER NOT NULL,
    time_max_ns INTEGER NOT NULL,
    uploaded_at_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS batches_by_time ON batches (time_min_ns);
CREATE INDEX IF NOT EXISTS batches_by_source
    ON batches (part_id, component_name, method_name, time_min_ns);
CREATE INDEX IF NOT EXISTS batches_by_file
    ON batches (part_id, component_type, component_name, method_name, file_name, time_min_ns);
CREATE UNIQUE INDEX IF NOT EXISTS batches_by_place ON batches (segment, offset);
"""
_COLUMNS = (
    "id, segment, offset, length, part_id, component_type, component_name, method_name, "
    "file_name, tags, mime_type, count, time_min_ns, time_max_ns, uploaded_at_ns"
)
_encode = json.JSONEncoder(separators=(",", ":")).encode


@dataclass(frozen=True)
class BatchRow:
    """One index row: where a batch is and what it covers."""

    id: str
    segment: int
    offset: int
    length: int
    part_id: str
    component_type: str
    component_name: str
    method_name: str
    file_name: str
    tags: tuple[str, ...]
    mime_type: str
    count: int
    time_min_ns: int
    time_max_ns: int
    uploaded_at_ns: int


_FIRST_CHUNK = 8  # rows fetched by select_iter's first query; then 4x more each, up to
_LAST_CHUNK = 512


def _select_where(f: ItemFilter) -> tuple[str, list[Any]]:
    """The WHERE clause of :meth:`BatchIndex.select`: source and tags, the time bounds on
    the batches' ranges, and no empty batches."""
    clause, params = where(f, time_column=None)
    bounds = []
    if f.since_ns is not None:
        bounds.append("time_max_ns >= ?")
        params.append(f.since_ns)
    if f.until_ns is not None:
        bounds.append("time_min_ns < ?")
        params.append(f.until_ns)
    bounds.append("count > 0")
    return (clause + " AND " if clause else " WHERE ") + " AND ".join(bounds), params


def _row(values: Sequence[Any]) -> BatchRow:
    fields = list(values)
    fields[9] = tuple(json.loads(fields[9]))
    return BatchRow(*fields)


class BatchIndex:
    def __init__(self, folder: Path, *, upgrade: bool = True) -> None:
        """``upgrade=False``: an index of schema 1 stays as it is, without :meth:`after`."""
        self._db = Connections(
            folder / INDEX_FILE_NAME, synchronous="NORMAL", schema=_SCHEMA,
            version=SCHEMA_VERSION, upgrade=upgrade,
        )  # fmt: skip
        #: Whether rows carry ``seq`` (so :meth:`after` works).
        self.has_sequence = self._db.version >= SCHEMA_VERSION

    @staticmethod
    def _values(batch: TabularBatch, entry: Entry) -> tuple[Any, ...]:
        return (
            batch.id, entry.segment, entry.offset, entry.length, batch.part_id,
            batch.component_type, batch.component_name, batch.method_name, batch.file_name,
            _encode(list(batch.tags)), batch.mime_type, batch.count, batch.time_min_ns,
            batch.time_max_ns, batch.uploaded_at_ns,
        )  # fmt: skip

    def add(self, rows: Iterable[tuple[TabularBatch, Entry]]) -> int:
        """Insert rows (a known id is ignored) in one transaction; return how many were new."""
        with self._db.transaction() as conn:
            before = conn.total_changes
            values = [self._values(batch, entry) for batch, entry in rows]
            placeholders = ",".join("?" * len(values[0])) if values else ""
            conn.executemany(
                f"INSERT OR IGNORE INTO batches ({_COLUMNS}) VALUES ({placeholders})", values
            )
            return int(conn.total_changes - before)

    def contains(self, batch_id: str) -> bool:
        cursor = self._db.get().execute("SELECT 1 FROM batches WHERE id = ?", (batch_id,))
        return cursor.fetchone() is not None

    def overlapping(self, batch: TabularBatch) -> list[BatchRow]:
        """Rows of other batches from the same source file whose time range meets ``batch``'s."""
        cursor = self._db.get().execute(
            f"SELECT {_COLUMNS} FROM batches WHERE part_id = ? AND component_type = ? "
            "AND component_name = ? AND method_name = ? AND file_name = ? "
            "AND time_min_ns <= ? AND time_max_ns >= ? AND count > 0",
            (batch.part_id, batch.component_type, batch.component_name, batch.method_name,
             batch.file_name, batch.time_max_ns, batch.time_min_ns),
        )  # fmt: skip
        return [_row(values) for values in cursor.fetchall()]

    def select(self, f: ItemFilter) -> list[BatchRow]:
        """Rows whose batches may hold readings matching ``f``, by earliest reading."""
        clause, params = _select_where(f)
        cursor = self._db.get().execute(
            f"SELECT {_COLUMNS} FROM batches{clause} ORDER BY time_min_ns, id", params
        )
        return [_row(values) for values in cursor.fetchall()]

    def select_iter(self, f: ItemFilter) -> Iterator[BatchRow]:
        """:meth:`select`'s rows, fetched a few at a time (a reader that stops early, such
        as a page, reads only the rows it uses rather than every later batch's); no
        statement stays open between rows."""
        clause, params = _select_where(f)
        chunk = _FIRST_CHUNK
        after: tuple[int, str] | None = None
        while True:
            keyset = "" if after is None else " AND (time_min_ns, id) > (?, ?)"
            query = f"SELECT {_COLUMNS} FROM batches{clause}{keyset} ORDER BY time_min_ns, id"
            cursor = self._db.get().execute(query + " LIMIT ?", [*params, *(after or ()), chunk])
            values = cursor.fetchall()
            rows = [_row(v) for v in values]
            yield from rows
            if len(rows) < chunk:
                return
            after = (rows[-1].time_min_ns, rows[-1].id)
            chunk = min(chunk * 4, _LAST_CHUNK)

    def sources(self) -> list[tuple[tuple[str, str, str, str], list[tuple[str, int]]]]:
        """Each (part, component type, component name, method) with batches, and those
        batches' ids and reading counts (tombstones are the caller's to apply)."""
        cursor = self._db.get().execute(
            "SELECT part_id, component_type, component_name, method_name, id, count "
            "FROM batches WHERE count > 0"
        )
        found: dict[tuple[str, str, str, str], list[tuple[str, int]]] = {}
        for part, ctype, name, method, batch_id, count in cursor.fetchall():
            found.setdefault((part, ctype, name, method), []).append((batch_id, count))
        return list(found.items())

    def after(self, seq: int, limit: int) -> list[tuple[int, BatchRow]]:
        """Up to ``limit`` rows inserted after ``seq`` (0: from the first), in insertion
        order, each with its ``seq``."""
        cursor = self._db.get().execute(
            f"SELECT seq, {_COLUMNS} FROM batches WHERE seq > ? AND count > 0 ORDER BY seq LIMIT ?",
            (seq, limit),
        )
        return [(values[0], _row(values[1:])) for values in cursor.fetchall()]

    def summary_after(self, seq: int) -> tuple[int, int | None]:
        """How many readings the rows inserted after ``seq`` hold, and the earliest time
        (``uploaded_at_ns``) one of them was stored (None when there are none)."""
        cursor = self._db.get().execute(
            "SELECT COALESCE(SUM(count), 0), MIN(uploaded_at_ns) FROM batches "
            "WHERE seq > ? AND count > 0",
            (seq,),
        )
        readings, oldest = cursor.fetchone()
        return int(readings), None if oldest is None else int(oldest)

    def get(self, batch_id: str) -> BatchRow | None:
        cursor = self._db.get().execute(f"SELECT {_COLUMNS} FROM batches WHERE id = ?", (batch_id,))
        values = cursor.fetchone()
        return None if values is None else _row(values)

    def remove(self, batch_ids: Sequence[str]) -> None:
        with self._db.transaction() as conn:
            conn.executemany("DELETE FROM batches WHERE id = ?", [(i,) for i in batch_ids])

    def places(self) -> dict[tuple[int, int], str]:
        """(segment, offset) -> id of every row."""
        cursor = self._db.get().execute("SELECT segment, offset, id FROM batches")
        return {(s, o): i for s, o, i in cursor.fetchall()}

    def close(self) -> None:
        self._db.close()
