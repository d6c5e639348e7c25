"""The query layer (:mod:`capsync.query`) over capsync's stores, and opening it.

Every store (the local batch log and MongoDB) is read and changed through
:class:`~capsync.server.store_source.StoreSource`, i.e. only through the
store's own interface (``query``, ``get_blob``, ``delete``, ``update_blob``).

>>> with open_data_query("/srv/capsync") as q:  # doctest: +SKIP
...     rows = q.sql("SELECT count(*) AS n FROM readings")
"""

from __future__ import annotations

import os
from typing import Any

from capsync.query.api import DataQuery
from capsync.server.store_source import StoreSource
from capsync.server.stores.base import DEFAULT_MONGO_DATABASE, Store


def query_for_store(store: Store, data_dir: str | os.PathLike[str], blobs: Any = None) -> DataQuery:
    """The query layer over an open ingest store (the server's own; it stays open).

    ``blobs``: the server's payload store when it is not the data dir's files
    (:class:`~capsync.server.gridfs_blobs.GridFsBlobs`; it stays open too)."""
    payloads = None
    if blobs is not None and hasattr(blobs, "read"):
        from capsync.server.gridfs_blobs import ServerPayloads

        payloads = ServerPayloads(data_dir, blobs)
    return DataQuery(StoreSource(store), data_dir, owns_source=True, payloads=payloads)


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
    payloads = None
    if mongo_uri is not None:  # payloads may be in GridFS (serve --blobs gridfs)
        from capsync.server.gridfs_blobs import GridFsBlobs, ServerPayloads

        payloads = ServerPayloads(
            data_dir, GridFsBlobs(mongo_uri, mongo_database), owns_gridfs=True
        )
    return DataQuery(
        StoreSource(store, owns_store=True), data_dir, owns_source=True, payloads=payloads
    )
