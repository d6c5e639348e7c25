"""The query layer over what ``capsync serve`` stored: filters and pages, SQL (DuckDB),
MQL, tags, bounding boxes and datasets. ``capsync data``, the Python API and the
gRPC data services (:mod:`capsync.server.data_service`) all use it.

Start with :meth:`DataQuery.open`::

    from capsync.query import DataFilter, DataQuery, Page

    with DataQuery.open("/srv/capsync") as q:
        rows = q.sql("SELECT component_name, count(*) AS n FROM readings GROUP BY 1")
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from capsync.query.api import DataQuery
from capsync.query.filters import (
    LOCATION_ID,
    ORGANIZATION_ID,
    Cursor,
    DataFilter,
    NotFound,
    Page,
    QueryError,
)
from capsync.query.source import DataSource

if TYPE_CHECKING:
    from capsync.server.store import Store

__all__ = [
    "LOCATION_ID",
    "ORGANIZATION_ID",
    "Cursor",
    "DataFilter",
    "DataQuery",
    "DataSource",
    "NotFound",
    "Page",
    "QueryError",
    "source_for_store",
]


def source_for_store(store: Store, data_dir: str | os.PathLike[str]) -> DataSource:
    """The :class:`DataSource` adapter for an open ingest store."""
    from capsync.server.sqlite_store import SqliteStore

    if isinstance(store, SqliteStore):
        from capsync.query.sqlite_source import SqliteSource

        return SqliteSource(store.path.parent)
    from capsync.server.mongo_store import MongoStore

    if isinstance(store, MongoStore):
        from capsync.query.mongo_source import MongoSource

        return MongoSource.for_store(store)
    raise TypeError(f"no query adapter for {type(store).__name__}")
