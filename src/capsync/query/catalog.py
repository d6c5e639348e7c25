"""Datasets: named sets of binaries (Viam's DatasetService).

The catalog (id, name, creation time) lives in ``<data_dir>/capsync-query/meta.db``
(SQLite), the same for either store; membership is each binary's
``dataset_ids``, kept by the store, so an upload naming ``dataset_ids`` lands in
those datasets. Ids are 24 random hex digits, shaped like Viam's; names are unique.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from capsync.query.filters import NotFound, QueryError

META_DIR = "capsync-query"
META_FILE = "meta.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_ns INTEGER NOT NULL
);
"""


class AlreadyExists(QueryError):
    """A name that is taken (gRPC ALREADY_EXISTS)."""


@dataclass(frozen=True)
class Dataset:
    id: str
    name: str
    created_ns: int


def _check_name(name: str) -> str:
    if not name or not name.strip():
        raise QueryError("dataset name must not be empty")
    return name


def open_meta_db(data_dir: str | os.PathLike[str], schema: str) -> sqlite3.Connection:
    """The data dir's query metadata database (``META_DIR/META_FILE``, autocommit, any
    thread), with ``schema`` applied."""
    folder = Path(data_dir) / META_DIR
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    conn = sqlite3.connect(
        folder / META_FILE, timeout=30.0, check_same_thread=False, isolation_level=None
    )
    conn.executescript(schema)
    return conn


class DatasetCatalog:
    """The datasets of one data dir; thread-safe."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self._conn = open_meta_db(data_dir, _SCHEMA)
        self._lock = threading.Lock()

    def create(self, name: str) -> Dataset:
        dataset = Dataset(secrets.token_hex(12), _check_name(name), time.time_ns())
        with self._lock:
            try:
                self._conn.execute(
                    "INSERT INTO datasets (id, name, created_ns) VALUES (?, ?, ?)",
                    (dataset.id, dataset.name, dataset.created_ns),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"a dataset named {name!r} already exists") from None
        return dataset

    def list(self, ids: list[str] | None = None) -> list[Dataset]:
        """All datasets by creation time, or those with these ids (unknown ones left out)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, name, created_ns FROM datasets ORDER BY created_ns, id"
            ).fetchall()
        found = [Dataset(*row) for row in rows]
        if ids is None:
            return found
        by_id = {d.id: d for d in found}
        return [by_id[i] for i in dict.fromkeys(ids) if i in by_id]

    def get(self, dataset_id: str) -> Dataset:
        found = self.list([dataset_id])
        if not found:
            raise NotFound(f"no dataset with id {dataset_id!r}")
        return found[0]

    def rename(self, dataset_id: str, name: str) -> None:
        with self._lock:
            try:
                cursor = self._conn.execute(
                    "UPDATE datasets SET name = ? WHERE id = ?", (_check_name(name), dataset_id)
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"a dataset named {name!r} already exists") from None
        if cursor.rowcount != 1:
            raise NotFound(f"no dataset with id {dataset_id!r}")

    def delete(self, dataset_id: str) -> None:
        with self._lock:
            cursor = self._conn.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,))
        if cursor.rowcount != 1:
            raise NotFound(f"no dataset with id {dataset_id!r}")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
