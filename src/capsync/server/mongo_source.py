"""The :class:`~capsync.query.source.DataSource` of the MongoDB store (``serve --mongo-uri``).

It reads and changes the ``tabular`` and ``blobs`` collections of
:mod:`capsync.server.mongo_store` with MongoDB queries, and runs MQL pipelines
with MongoDB's own ``aggregate`` over the readings, after a first stage that
gives each document Viam's shape (organization, location and robot ids; no
capsync bookkeeping fields).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pymongo
from pymongo.collection import Collection

from capsync.query.filters import LOCATION_ID, ORGANIZATION_ID, DataFilter, Page
from capsync.query.source import DataSource
from capsync.server.mongo_store import (
    BLOB_COLLECTION,
    TABULAR_COLLECTION,
    MongoStore,
    _blob_record,
    _tabular_record,
    _unavailable_on_connection_errors,
)
from capsync.server.store import BlobRecord, TabularRecord

Document = dict[str, Any]

# Viam's shape of a reading, first in every pipeline run on MongoDB.
VIAM_SHAPE: list[Document] = [
    {"$addFields": {"organization_id": ORGANIZATION_ID, "location_id": LOCATION_ID,
                    "robot_id": "$part_id"}},
    {"$project": {"_id": 0, "upload_id": 0, "time_requested_ns": 0, "time_received_ns": 0,
                  "uploaded_at_ns": 0, "method_parameters": 0}},
]  # fmt: skip


def mongo_filter(f: DataFilter, page: Page, *, blobs: bool) -> Document | None:
    """The MongoDB query for a filter and page; None when it matches nothing."""
    if f.matches_nothing or (f.dataset_id is not None and not blobs):
        return None
    query: Document = {}
    for name, value in (
        ("part_id", f.part_id),
        ("component_name", f.component_name),
        ("component_type", f.component_type),
        ("method_name", f.method_name),
    ):
        if value is not None:
            query[name] = {"$eq": value}
    if f.tag_match == "tagged":
        query["tags.0"] = {"$exists": True}
    elif f.tag_match == "untagged":
        query["tags"] = {"$size": 0}
    elif f.tags:
        query["tags"] = {"$in": list(f.tags)}
    bounds: Document = {}
    if f.start_ns is not None:
        bounds["$gte"] = f.start_ns
    if f.end_ns is not None:
        bounds["$lt"] = f.end_ns
    if bounds:
        query["time_requested_ns"] = bounds
    if f.mime_types:
        query["mime_type"] = {"$in": list(f.mime_types)}
    if blobs and f.bbox_labels:
        query["annotations.bboxes.label"] = {"$in": list(f.bbox_labels)}
    if f.dataset_id is not None:
        query["dataset_ids"] = {"$eq": f.dataset_id}
    if page.after is not None:
        op = "$lt" if page.descending else "$gt"
        after = page.after
        query = {"$and": [query, {"$or": [
            {"time_requested_ns": {op: after.time_ns}},
            {"time_requested_ns": after.time_ns, "_id": {op: after.id}},
        ]}]}  # fmt: skip
    return query


def _sort(page: Page) -> list[tuple[str, int]]:
    direction = pymongo.DESCENDING if page.descending else pymongo.ASCENDING
    return [("time_requested_ns", direction), ("_id", direction)]


class MongoSource(DataSource):
    """Reads and changes the collections of a :class:`MongoStore`'s database."""

    def __init__(self, uri: str, database: str) -> None:
        self._store = MongoStore(uri, database, create=False)
        self._owns = True
        self._bind(self._store)

    @classmethod
    def for_store(cls, store: MongoStore) -> MongoSource:
        """A source sharing an open store's client (the store stays the owner)."""
        source = cls.__new__(cls)
        source._store = store
        source._owns = False
        source._bind(store)
        return source

    def _bind(self, store: MongoStore) -> None:
        database = store._client[store.database_name]
        self._tabular: Collection[Document] = database[TABULAR_COLLECTION]
        self._blobs: Collection[Document] = database[BLOB_COLLECTION]

    def _find(
        self, collection: Collection[Document], query: Document | None, page: Page
    ) -> list[Document]:
        if query is None:
            return []
        with _unavailable_on_connection_errors("reading"):
            cursor = collection.find(query, sort=_sort(page), limit=page.limit or 0)
            return list(cursor)

    def tabular(self, data_filter: DataFilter, page: Page | None = None) -> Iterator[TabularRecord]:
        page = page or Page()
        docs = self._find(self._tabular, mongo_filter(data_filter, page, blobs=False), page)
        return (_tabular_record(d) for d in docs)

    def count_tabular(self, data_filter: DataFilter) -> int:
        query = mongo_filter(data_filter, Page(), blobs=False)
        if query is None:
            return 0
        with _unavailable_on_connection_errors("counting"):
            return int(self._tabular.count_documents(query))

    def blobs(self, data_filter: DataFilter, page: Page | None = None) -> Iterator[BlobRecord]:
        page = page or Page()
        docs = self._find(self._blobs, mongo_filter(data_filter, page, blobs=True), page)
        return (_blob_record(d) for d in docs)

    def count_blobs(self, data_filter: DataFilter) -> tuple[int, int]:
        query = mongo_filter(data_filter, Page(), blobs=True)
        if query is None:
            return 0, 0
        total = {"_id": None, "n": {"$sum": 1}, "size": {"$sum": "$size_bytes"}}
        pipeline = [{"$match": query}, {"$group": total}]
        with _unavailable_on_connection_errors("counting"):
            found = list(self._blobs.aggregate(pipeline))
        return (int(found[0]["n"]), int(found[0]["size"])) if found else (0, 0)

    def blobs_by_ids(self, ids: Sequence[str]) -> list[BlobRecord]:
        unique = list(dict.fromkeys(ids))
        with _unavailable_on_connection_errors("reading"):
            found = {d["_id"]: _blob_record(d) for d in self._blobs.find({"_id": {"$in": unique}})}
        return [found[i] for i in unique if i in found]

    def delete_tabular(self, before_ns: int | None, data_filter: DataFilter | None = None) -> int:
        query = mongo_filter(data_filter or DataFilter(), Page(), blobs=False)
        if query is None:
            return 0
        if before_ns is not None:
            query = {"$and": [query, {"time_requested_ns": {"$lt": before_ns}}]}
        with _unavailable_on_connection_errors("deleting"):
            return int(self._tabular.delete_many(query).deleted_count)

    def delete_blobs(self, ids: Sequence[str]) -> list[BlobRecord]:
        records = self.blobs_by_ids(ids)
        with _unavailable_on_connection_errors("deleting"):
            self._blobs.delete_many({"_id": {"$in": [r.id for r in records]}})
        return records

    def payload_in_use(self, path: str) -> bool:
        with _unavailable_on_connection_errors("reading"):
            return self._blobs.find_one({"path": path}, projection={"_id": 1}) is not None

    def update_blob(
        self,
        blob_id: str,
        *,
        tags: Sequence[str] | None = None,
        annotations: dict[str, Any] | None = None,
        dataset_ids: Sequence[str] | None = None,
    ) -> bool:
        changes: Document = {}
        if tags is not None:
            changes["tags"] = list(tags)
        if annotations is not None:
            changes["annotations"] = annotations
        if dataset_ids is not None:
            changes["dataset_ids"] = list(dataset_ids)
        with _unavailable_on_connection_errors("updating"):
            if not changes:
                return self._blobs.find_one({"_id": blob_id}, projection={"_id": 1}) is not None
            result = self._blobs.update_one(
                {"_id": blob_id}, {"$set": changes, "$unset": {"annotations_json": ""}}
            )
        return bool(result.matched_count)

    def sources(self) -> list[tuple[str, str, str, str]]:
        group = {"$group": {"_id": {"p": "$part_id", "t": "$component_type",
                                    "n": "$component_name", "m": "$method_name"}}}  # fmt: skip
        found: set[tuple[str, str, str, str]] = set()
        with _unavailable_on_connection_errors("reading"):
            for collection in (self._tabular, self._blobs):
                for doc in collection.aggregate([group]):
                    key = doc["_id"]
                    found.add((key["p"], key["t"], key["n"], key["m"]))
        return sorted(found)

    def aggregate(self, pipeline: Sequence[Document]) -> Iterator[Document]:
        """Run an (already checked) MQL pipeline on MongoDB over Viam-shaped readings."""
        with _unavailable_on_connection_errors("aggregating"):
            yield from self._tabular.aggregate([*VIAM_SHAPE, *pipeline])

    def close(self) -> None:
        if self._owns:
            self._store.close()
