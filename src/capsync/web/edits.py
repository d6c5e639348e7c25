"""TEMPORARY side table for what today's store cannot change: tags, boxes and datasets.

The ingest store (:mod:`capsync.server.store`) keeps each binary's tags,
annotations and dataset ids exactly as uploaded and has no way to change them.
Until the data API's query layer (Viam's DataService: tags, bounding boxes,
datasets) lands, the page keeps its changes here, in ``<data_dir>/.page-edits.db``:

* ``binary_edits``: for an edited binary, its whole current tag list, boxes and
  dataset ids (JSON), overriding what was uploaded;
* ``datasets``: the datasets created on the page (id, name, creation time).

Only :mod:`capsync.web.data_access` uses this module. It is the piece to
swap for the data API's query layer: then this file goes away.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EDITS_DB_NAME = ".page-edits.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS binary_edits (
    binary_id TEXT PRIMARY KEY,
    tags TEXT NOT NULL,
    bboxes TEXT NOT NULL,
    dataset_ids TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS datasets (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_ns INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class Edited:
    """The current tags, boxes and dataset ids of one binary."""

    tags: tuple[str, ...]
    bboxes: tuple[dict[str, Any], ...]
    dataset_ids: tuple[str, ...]


class EditsTable:
    """The side table; thread-safe (one connection behind a lock)."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        path = Path(data_dir) / EDITS_DB_NAME
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)

    def all_edits(self) -> dict[str, Edited]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT binary_id, tags, bboxes, dataset_ids FROM binary_edits"
            ).fetchall()
        return {row[0]: _edited(row[1:]) for row in rows}

    def get(self, binary_id: str) -> Edited | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT tags, bboxes, dataset_ids FROM binary_edits WHERE binary_id = ?",
                (binary_id,),
            ).fetchone()
        return _edited(row) if row is not None else None

    def put(self, edits: dict[str, Edited]) -> None:
        """Store the new state of each binary, all in one transaction."""
        rows = [
            (
                binary_id,
                json.dumps(list(e.tags)),
                json.dumps(list(e.bboxes)),
                json.dumps(list(e.dataset_ids)),
            )
            for binary_id, e in edits.items()
        ]
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany("INSERT OR REPLACE INTO binary_edits VALUES (?,?,?,?)", rows)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def create_dataset(self, dataset_id: str, name: str) -> None:
        """Raises :class:`ValueError` when the name is taken."""
        with self._lock:
            try:
                self._conn.execute(
                    "INSERT INTO datasets VALUES (?,?,?)", (dataset_id, name, time.time_ns())
                )
            except sqlite3.IntegrityError:
                raise ValueError(f"a dataset named {name!r} exists already") from None

    def datasets(self) -> dict[str, str]:
        """Dataset id -> name, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, name FROM datasets ORDER BY created_ns"
            ).fetchall()
        return dict(rows)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _edited(row: Any) -> Edited:
    return Edited(
        tags=tuple(json.loads(row[0])),
        bboxes=tuple(json.loads(row[1])),
        dataset_ids=tuple(json.loads(row[2])),
    )
