"""The query layer over what ``capsync serve`` stored: filters and pages, SQL (DuckDB),
MQL, tags, bounding boxes and datasets. ``capsync data``, the Python API and the
gRPC data services (:mod:`capsync.server.data_service`) all use it.

It reads and changes the store only through a :class:`DataSource`; the
adapters for capsync's stores, and :func:`~capsync.server.data_sources.open_data_query`,
live with the stores in :mod:`capsync.server`::

    from capsync.server.data_sources import open_data_query

    with open_data_query("/srv/capsync") as q:
        rows = q.sql("SELECT component_name, count(*) AS n FROM readings GROUP BY 1")
"""

from __future__ import annotations

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
]
