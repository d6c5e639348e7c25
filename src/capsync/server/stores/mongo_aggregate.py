"""Aggregation pipelines on the MongoDB store: the data API's MQL, and sizes for retention.

``TabularDataByMQL`` on a ``capsync serve --mongo-uri`` runs the user's pipeline
through MongoDB's own ``aggregate`` on the ``tabular`` collection, behind one
stage capsync puts first (:data:`VIAM_PROJECTION`): it shows each reading with
the fields of Viam's ``readings`` (``organization_id``, ``location_id``,
``robot_id``, ``part_id``, ``component_type``, ``component_name``,
``method_name``, ``time_requested``, ``time_received``, ``tags``,
``mime_type``, ``data``), the same rows the embedded store's SQL engine gives.
So every stage MongoDB knows works; what MongoDB refuses (an unknown stage, a
bad operator) is a :class:`~capsync.query.filters.QueryError` with MongoDB's
message. Refused before running (queries are read-only and read only the
readings): ``$out`` and ``$merge`` (writes), and stages that read other
collections or the server's state (``$lookup``, ``$graphLookup``,
``$unionWith``, ``$collStats``, ``$indexStats``, ``$currentOp``, ...), at any
depth (inside ``$facet`` too).

A reading whose ``data`` MongoDB could not take as a document is stored as JSON
text (``data_json``, read back exactly, see :mod:`~capsync.server.stores.mongo_docs`)
beside a view of it MongoDB takes (``mongo_docs.mql_view``: integers beyond 64 bits
as doubles; a leading ``$``, dots and NUL in keys replaced), which is what a
pipeline sees as ``data``; only if MongoDB refuses the view too is ``data`` missing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from capsync._time import DAY_NS
from capsync.query.filters import LOCATION_ID, ORGANIZATION_ID, QueryError

__all__ = ["VIAM_PROJECTION", "check_pipeline", "day_sizes_pipeline", "readings_pipeline"]

VIAM_PROJECTION: dict[str, Any] = {
    "_id": 0,
    "organization_id": {"$literal": ORGANIZATION_ID},
    "location_id": {"$literal": LOCATION_ID},
    "robot_id": "$part_id",
    "part_id": 1,
    "component_type": 1,
    "component_name": 1,
    "method_name": 1,
    "time_requested": 1,
    "time_received": 1,
    "tags": 1,
    "mime_type": 1,
    "data": 1,
}
WRITING = ("$out", "$merge")
# Stages that read something other than the readings (other collections, server state).
OUTSIDE = (
    "$lookup", "$graphLookup", "$unionWith", "$collStats", "$indexStats", "$currentOp",
    "$listSessions", "$listLocalSessions", "$planCacheStats", "$changeStream",
    "$listSearchIndexes", "$documents", "$querySettings", "$listSampledQueries",
)  # fmt: skip


def _keys(node: Any) -> Iterator[str]:
    """Every key of every document in ``node``, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _keys(value)
    elif isinstance(node, list | tuple):
        for value in node:
            yield from _keys(value)


def check_pipeline(pipeline: Sequence[Any]) -> None:
    """Refuse what is not a list of one-key stage documents, writes, and reads elsewhere."""
    if not isinstance(pipeline, list | tuple):
        raise QueryError("MQL: the pipeline must be a list of stages")
    for index, stage in enumerate(pipeline):
        if not isinstance(stage, dict) or len(stage) != 1:
            raise QueryError(f"MQL: stage {index} must be a document with one $stage key")
    for key in _keys(list(pipeline)):
        if key in WRITING:
            raise QueryError(f"MQL: {key} is not allowed: queries are read-only")
        if key in OUTSIDE:
            raise QueryError(f"MQL: {key} is not allowed: a query reads only the readings")


def readings_pipeline(pipeline: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The user's (checked) pipeline behind the stage that shows Viam's fields."""
    check_pipeline(pipeline)
    return [{"$project": VIAM_PROJECTION}, *pipeline]


def day_sizes_pipeline(source: dict[str, str]) -> list[dict[str, Any]]:
    """Per UTC day of ``time_requested_ns`` (as the day's start in ns), the BSON bytes of the
    readings of one source (``source``: part_id, component_type, component_name, method_name)."""
    day = {"$subtract": ["$time_requested_ns", {"$mod": ["$time_requested_ns", DAY_NS]}]}
    return [
        {"$match": {name: {"$eq": value} for name, value in source.items()}},
        {"$group": {"_id": day, "size_bytes": {"$sum": {"$bsonSize": "$$ROOT"}}}},
        {"$sort": {"_id": 1}},
    ]
