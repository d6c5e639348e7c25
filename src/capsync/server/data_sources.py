"""The query layer (:mod:`capsync.query`) over capsync's stores, and opening it.

Every store (the local batch log and MongoDB) is read and changed through
:class:`~capsync.server.store_source.StoreSource`, i.e. only through the
store's own interface (``query``, ``get_blob``, ``delete``, ``update_blob``).

>>> with open_data_query("/srv/capsync") as q:  # doctest: +SKIP
...     rows = q.sql("SELECT count(*) AS n FROM readings")
"""

from __future__ import annotations

import os

from capsync.query.api import DataQuery
from capsync.server.store import DEFAULT_MONGO_DATABASE, Store
from capsync.server.store_source import StoreSource


def query_for_store(store: Store, data_dir: str | os.PathLike[str]) -> DataQuery:
    """The query layer over an open ingest store (the server's own; it stays open)."""
    return DataQuery(StoreSource(store), data_dir, owns_source=True)


def open_data_query(
    data_dir: str | os.PathLike[str],
    mongo_uri: str | None = None,
    *,
    mongo_database: str = DEFAULT_MONGO_DATABASE,
) -> DataQuery:
    """The query layer over what ``capsync serve --data DIR [--mongo-uri URI]`` stored;
    closing it closes the store. Raises :class:`FileNotFoundError` when there is no
    capsync data there."""
    from capsync.server.query import open_store

    store = open_store(data_dir, mongo_uri, mongo_database=mongo_database)
    return DataQuery(StoreSource(store, owns_store=True), data_dir, owns_source=True)
