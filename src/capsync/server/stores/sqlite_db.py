"""SQLite plumbing shared by the embedded store's databases: one connection per thread,
created lazily, all closed together; ``where`` clauses from an :class:`ItemFilter`."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from capsync.server.stores.base import ItemFilter

BUSY_TIMEOUT_S = 30.0


class Connections:
    """Per-thread connections to the database at ``path`` with ``synchronous`` as given."""

    def __init__(
        self, path: Path, *, synchronous: str, schema: str, version: int, upgrade: bool = True
    ) -> None:
        """``upgrade=False``: a database of an older schema version is left as it is (a
        reader beside a running server of the previous release); :attr:`version` tells."""
        self.path = path
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
        self._synchronous = synchronous
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[sqlite3.Connection] = []
        self._closed = False
        conn = self.get()
        conn.execute("PRAGMA journal_mode=WAL")
        self.version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        if self.version < version and (upgrade or self.version == 0):
            # Checked again under the write lock, so two processes opening the database
            # at once run the schema (which may drop an older table) only once.
            try:
                conn.execute("BEGIN IMMEDIATE")
                if conn.execute("PRAGMA user_version").fetchone()[0] < version:
                    for statement in (*schema.split(";"), f"PRAGMA user_version={version}"):
                        if statement.strip():  # executescript would commit the transaction
                            conn.execute(statement)
                if conn.in_transaction:
                    conn.execute("COMMIT")
                self.version = version
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def get(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        with self._lock:
            if self._closed:
                raise RuntimeError("the store is closed")
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None
            )
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            self._all.append(conn)
        self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self.get()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()


def where(
    f: ItemFilter,
    *,
    time_column: str | None = "time_requested_ns",
    kind_column: str | None = None,
) -> tuple[str, list[Any]]:
    """`` WHERE ...`` (or "") and its parameters for the source, kind, tags and time of ``f``.

    ``time_column=None`` leaves time out (the caller bounds it its own way)."""
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
    if kind_column is not None and f.kind is not None:
        clauses.append(f"{kind_column} = ?")
        params.append(f.kind)
    for tag in f.tags:
        clauses.append("EXISTS (SELECT 1 FROM json_each(tags) WHERE json_each.value = ?)")
        params.append(tag)
    if time_column is not None:
        if f.since_ns is not None:
            clauses.append(f"{time_column} >= ?")
            params.append(f.since_ns)
        if f.until_ns is not None:
            clauses.append(f"{time_column} < ?")
            params.append(f.until_ns)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params
