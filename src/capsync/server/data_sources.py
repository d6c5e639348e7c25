"""The query layer (:mod:`capsync.query`) over capsync's own stores: the
:class:`~capsync.query.source.DataSource` adapter for each store, and opening one.

>>> with open_data_query("/srv/capsync") as q:  # doctest: +SKIP
...     rows = q.sql("SELECT count(*) AS n FROM readings")
"""

from __future__ import annotations

import os

from capsync.query.api import DataQuery
from capsync.query.source import DataSource
from capsync.server.store import DEFAULT_MONGO_DATABASE, Store


def source_for_store(store: Store, data_dir: str | os.PathLike[str]) -> DataSource:
    """The :class:`DataSource` adapter for an open ingest store (which stays open)."""
    from capsync.server.sqlite_store import SqliteStore

    if isinstance(store, SqliteStore):
        from capsync.server.sqlite_source import SqliteSource

        return SqliteSource(store.path.parent)
    from capsync.server.mongo_store import MongoStore

    if isinstance(store, MongoStore):
        from capsync.server.mongo_source import MongoSource

        return MongoSource.for_store(store)
    raise TypeError(f"no query adapter for {type(store).__name__}")


def query_for_store(store: Store, data_dir: str | os.PathLike[str]) -> DataQuery:
    """The query layer over an open ingest store (the server's own)."""
    return DataQuery(source_for_store(store, data_dir), data_dir, owns_source=True)


def open_data_query(
    data_dir: str | os.PathLike[str],
    mongo_uri: str | None = None,
    *,
    mongo_database: str = DEFAULT_MONGO_DATABASE,
) -> DataQuery:
    """The query layer over what ``capsync serve --data DIR [--mongo-uri URI]`` stored.

    Raises :class:`FileNotFoundError` when there is no capsync data there.
    """
    source: DataSource
    if mongo_uri is not None:
        from capsync.server.mongo_source import MongoSource

        source = MongoSource(mongo_uri, mongo_database)
    else:
        from capsync.server.sqlite_source import SqliteSource

        try:
            source = SqliteSource(data_dir)
        except FileNotFoundError:
            raise FileNotFoundError(
                2, "no capsync data here (no capsync.db): is this the serve --data folder?",
                str(data_dir),
            ) from None  # fmt: skip
    return DataQuery(source, data_dir, owns_source=True)
