"""The MongoDB :class:`~capsync.server.store.Store` (``capsync serve --mongo-uri``).

Three collections in ``database`` (default ``capsync``):

* ``tabular``: one document per tabular reading in Viam's shape (``part_id``,
  ``component_type``, ``component_name``, ``method_name``, ``time_requested``,
  ``time_received``, ``tags``, ``data`` a nested document, ...), so MongoDB's
  own tools and aggregation pipelines work on it;
* ``batches``: one document per stored tabular batch (its id, source file and
  time range), written after its readings: the de-duplication record;
* ``blobs``: one document per binary reading or file (the payloads stay files
  under the data dir, or go to GridFS with ``--blobs gridfs``).

A record's ``id`` is its document's ``_id``, so MongoDB's unique ``_id`` index
is what de-duplicates: a reading's id is ``<batch id>:<index>``, readings go in
with ``insert_many(ordered=False)`` and a duplicate-key error (11000) means
"already there". A batch seen before (a ``batches`` document) is not decoded at
all; a crash between the readings and the batch document is healed by the
re-send, whose readings have the same ids. A new batch overlapping a stored one
from the same source file keeps only readings not already there (compared by
times and data). Several server processes may share one database.

Besides the record fields (times as ``*_ns`` integers, exact), each document
holds ``time_requested``/``time_received`` as BSON Dates (millisecond
precision, null when unset) for people who query MongoDB directly. A nested
value MongoDB cannot take as a document (a key with a NUL character, or a
``$``-prefixed key on a server older than 5.0) is stored as JSON text in
``<field>_json`` instead; reading it back gives the same record.

Only standard operations are used (``insert_many``, ``insert_one``, ``find``
with ``sort``, ``create_index``, ``list_collection_names``), so any MongoDB
server works. An unreachable server raises
:class:`~capsync.server.store.StoreUnavailable`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import heapq
import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import bson
import pymongo
from bson.errors import BSONError
from pymongo.collection import Collection
from pymongo.errors import (
    BulkWriteError,
    DuplicateKeyError,
    PyMongoError,
    WriteError,
)

from capsync.mongo.client import check_uri, client_options, is_transient, redact_uri, short_error
from capsync.server.records import batches_from_records, decode_batch, subset_batch
from capsync.server.stores.base import (
    DEFAULT_MONGO_DATABASE,
    BlobRecord,
    ItemFilter,
    Record,
    Store,
    StoreUnavailable,
    TabularBatch,
    TabularRecord,
)

__all__ = ["DEFAULT_DATABASE", "MongoStore"]

log = logging.getLogger(__name__)

DEFAULT_DATABASE = DEFAULT_MONGO_DATABASE
TABULAR_COLLECTION = "tabular"
BATCH_COLLECTION = "batches"
BLOB_COLLECTION = "blobs"
SERVER_SELECTION_TIMEOUT_MS = 5_000
CONNECT_TIMEOUT_MS = 5_000
DUPLICATE_KEY = 11000
# Nested values, stored as documents when MongoDB takes them, else as JSON text.
_NESTED_FIELDS = ("data", "method_parameters", "annotations")
_INDEXES: dict[str, list[tuple[str, list[tuple[str, int]]]]] = {
    TABULAR_COLLECTION: [
        ("by_time", [("time_requested_ns", 1), ("_id", 1)]),
        ("by_source", [("part_id", 1), ("component_name", 1), ("method_name", 1),
                       ("time_requested_ns", 1)]),
    ],
    BATCH_COLLECTION: [
        ("by_file", [("part_id", 1), ("component_type", 1), ("component_name", 1),
                     ("method_name", 1), ("file_name", 1), ("time_min_ns", 1)]),
    ],
    BLOB_COLLECTION: [
        ("by_time", [("time_requested_ns", 1), ("kind", 1), ("_id", 1)]),
        ("by_source", [("part_id", 1), ("component_name", 1), ("method_name", 1),
                       ("time_requested_ns", 1)]),
    ],
}  # fmt: skip
_TABULAR_SORT = [("time_requested_ns", pymongo.ASCENDING), ("_id", pymongo.ASCENDING)]
_BLOB_SORT = [
    ("time_requested_ns", pymongo.ASCENDING),
    ("kind", pymongo.ASCENDING),
    ("_id", pymongo.ASCENDING),
]
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

Document = dict[str, Any]


def _date(ns: int) -> dt.datetime | None:
    return _EPOCH + dt.timedelta(milliseconds=ns // 1_000_000) if ns else None


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=True)


def _as_json(doc: Document) -> Document:
    """``doc`` with its nested values as JSON text (``<field>_json``)."""
    out: Document = {}
    for key, value in doc.items():
        if key in _NESTED_FIELDS:
            out[key + "_json"] = _dumps(value)
        else:
            out[key] = value
    return out


def _nested(doc: Mapping[str, Any], field: str) -> Any:
    if field in doc:
        return doc[field]
    text = doc.get(field + "_json")
    return {} if text is None else json.loads(text)


def _encodable(doc: Document) -> Document:
    try:
        bson.encode(doc)
    except BSONError:
        return _as_json(doc)
    return doc


@contextlib.contextmanager
def _unavailable_on_connection_errors(what: str) -> Iterator[None]:
    try:
        yield
    except PyMongoError as exc:
        if is_transient(exc):
            raise StoreUnavailable(
                f"MongoDB unavailable ({what}): {short_error(exc, 300)}"
            ) from exc
        raise


def tabular_document(r: TabularRecord) -> Document:
    return {
        "_id": r.id,
        "upload_id": r.upload_id,
        "part_id": r.part_id,
        "component_type": r.component_type,
        "component_name": r.component_name,
        "method_name": r.method_name,
        "method_parameters": r.method_parameters,
        "tags": list(r.tags),
        "time_requested_ns": r.time_requested_ns,
        "time_received_ns": r.time_received_ns,
        "time_requested": _date(r.time_requested_ns),
        "time_received": _date(r.time_received_ns),
        "mime_type": r.mime_type,
        "data": r.data,
        "uploaded_at_ns": r.uploaded_at_ns,
    }


def blob_document(r: BlobRecord) -> Document:
    return {
        "_id": r.id,
        "upload_id": r.upload_id,
        "kind": r.kind,
        "part_id": r.part_id,
        "component_type": r.component_type,
        "component_name": r.component_name,
        "method_name": r.method_name,
        "method_parameters": r.method_parameters,
        "tags": list(r.tags),
        "time_requested_ns": r.time_requested_ns,
        "time_received_ns": r.time_received_ns,
        "time_requested": _date(r.time_requested_ns),
        "time_received": _date(r.time_received_ns),
        "mime_type": r.mime_type,
        "file_extension": r.file_extension,
        "path": r.path,
        "size_bytes": r.size_bytes,
        "sha256": r.sha256,
        "file_name": r.file_name,
        "dataset_ids": list(r.dataset_ids),
        "annotations": r.annotations,
        "uploaded_at_ns": r.uploaded_at_ns,
    }


def _tabular_record(doc: Mapping[str, Any]) -> TabularRecord:
    return TabularRecord(
        id=doc["_id"],
        upload_id=doc["upload_id"],
        part_id=doc["part_id"],
        component_type=doc["component_type"],
        component_name=doc["component_name"],
        method_name=doc["method_name"],
        method_parameters=_nested(doc, "method_parameters"),
        tags=tuple(doc["tags"]),
        time_requested_ns=int(doc["time_requested_ns"]),
        time_received_ns=int(doc["time_received_ns"]),
        mime_type=doc["mime_type"],
        data=_nested(doc, "data"),
        uploaded_at_ns=int(doc["uploaded_at_ns"]),
    )


def _blob_record(doc: Mapping[str, Any]) -> BlobRecord:
    return BlobRecord(
        id=doc["_id"],
        upload_id=doc["upload_id"],
        kind=doc["kind"],
        part_id=doc["part_id"],
        component_type=doc["component_type"],
        component_name=doc["component_name"],
        method_name=doc["method_name"],
        method_parameters=_nested(doc, "method_parameters"),
        tags=tuple(doc["tags"]),
        time_requested_ns=int(doc["time_requested_ns"]),
        time_received_ns=int(doc["time_received_ns"]),
        mime_type=doc["mime_type"],
        file_extension=doc["file_extension"],
        path=doc["path"],
        size_bytes=int(doc["size_bytes"]),
        sha256=doc["sha256"],
        file_name=doc["file_name"],
        dataset_ids=tuple(doc["dataset_ids"]),
        annotations=_nested(doc, "annotations"),
        uploaded_at_ns=int(doc["uploaded_at_ns"]),
    )


def _filter(f: ItemFilter, *, blobs: bool) -> Document:
    query: Document = {}
    for name, value in (
        ("part_id", f.part_id),
        ("component_name", f.component),
        ("component_type", f.component_type),
        ("method_name", f.method),
    ):
        if value is not None:
            query[name] = {"$eq": value}
    if blobs and f.kind is not None:
        query["kind"] = {"$eq": f.kind}
    if f.tags:
        query["tags"] = {"$all": list(f.tags)}
    bounds: Document = {}
    if f.since_ns is not None:
        bounds["$gte"] = f.since_ns
    if f.until_ns is not None:
        bounds["$lt"] = f.until_ns
    if bounds:
        query["time_requested_ns"] = bounds
    return query


class MongoStore(Store):
    """The store in MongoDB ``database`` at ``uri`` (see the module docstring).

    Writes wait for the journal (``journal=true``) unless the URI says otherwise.
    A malformed ``uri`` raises :class:`ValueError`. Connecting happens in the
    background; a server that is down makes calls raise
    :class:`~capsync.server.store.StoreUnavailable` (after at most ~5 s, unless
    the URI sets ``serverSelectionTimeoutMS`` itself) until it is back.

    With ``create=False`` (reading what a server stored), a database holding
    neither collection raises :class:`FileNotFoundError`.
    """

    def __init__(
        self,
        uri: str,
        database: str = DEFAULT_DATABASE,
        *,
        create: bool = True,
        client_factory: Callable[..., pymongo.MongoClient[Document]] = pymongo.MongoClient,
    ) -> None:
        check_uri(uri)
        if not database:
            raise ValueError("the MongoDB database name is empty")
        self.uri_for_logs = redact_uri(uri)
        self.database_name = database
        options = client_options(
            uri,
            {
                "serverSelectionTimeoutMS": SERVER_SELECTION_TIMEOUT_MS,
                "connectTimeoutMS": CONNECT_TIMEOUT_MS,
                "appname": "capsync-serve",
                # An acknowledged upload must survive a crash of MongoDB: the client
                # deletes its copy (SqliteStore's synchronous=FULL, here).
                "journal": True,
            },
        )
        self._client: pymongo.MongoClient[Document] = client_factory(uri, **options)
        database_handle = self._client[database]
        self._tabular: Collection[Document] = database_handle[TABULAR_COLLECTION]
        self._batches: Collection[Document] = database_handle[BATCH_COLLECTION]
        self._blobs: Collection[Document] = database_handle[BLOB_COLLECTION]
        self._indexes_ready = False
        self._indexes_lock = threading.Lock()
        if not create:
            try:
                with _unavailable_on_connection_errors("opening"):
                    names = set(database_handle.list_collection_names())
                if not names & {TABULAR_COLLECTION, BATCH_COLLECTION, BLOB_COLLECTION}:
                    raise FileNotFoundError(
                        2,
                        f"no capsync data in MongoDB database {database!r}: is this the "
                        "serve --mongo-database?",
                        self.uri_for_logs,
                    )
            except BaseException:
                self._client.close()
                raise

    def __repr__(self) -> str:
        return f"MongoStore({self.uri_for_logs!r}, {self.database_name!r})"

    def ensure_indexes(self) -> None:
        """Create the query indexes (once; idempotent across processes). De-duplication
        needs none of them: it is the ``_id`` index, which always exists."""
        if self._indexes_ready:
            return
        with self._indexes_lock:
            if self._indexes_ready:
                return
            with _unavailable_on_connection_errors("creating indexes"):
                for name, collection in (
                    (TABULAR_COLLECTION, self._tabular),
                    (BATCH_COLLECTION, self._batches),
                    (BLOB_COLLECTION, self._blobs),
                ):
                    for index_name, keys in _INDEXES[name]:
                        try:
                            collection.create_index(keys, name=index_name)
                        except PyMongoError as exc:
                            if is_transient(exc):
                                raise
                            log.warning(
                                "cannot create index %s on %s.%s: %s",
                                index_name, self.database_name, name, short_error(exc, 300),
                            )  # fmt: skip
            self._indexes_ready = True

    # --- writes ------------------------------------------------------------------------

    def record_batch(self, batch: TabularBatch) -> int:
        self.ensure_indexes()
        with _unavailable_on_connection_errors("storing tabular data"):
            if self._batches.find_one({"_id": batch.id}, {"_id": 1}) is not None:
                return 0
            records = decode_batch(batch.body, batch.id, batch.uploaded_at_ns)
            overlapping = self._overlapping(batch) if batch.count else []
            if overlapping:
                records = self._new_records(batch, records, overlapping)
            added = 0
            if records:
                docs = [tabular_document(r) for r in records]
                added = self._insert_many(self._tabular, docs, fallback=True)
            with contextlib.suppress(DuplicateKeyError):
                self._batches.insert_one(_batch_document(batch, len(records)))
        return added

    def record_tabular(self, records: Sequence[TabularRecord]) -> int:
        return sum(self.record_batch(batch) for batch in batches_from_records(records))

    def _overlapping(self, batch: TabularBatch) -> list[str]:
        query = {
            "part_id": batch.part_id, "component_type": batch.component_type,
            "component_name": batch.component_name, "method_name": batch.method_name,
            "file_name": batch.file_name, "time_min_ns": {"$lte": batch.time_max_ns},
            "time_max_ns": {"$gte": batch.time_min_ns}, "count": {"$gt": 0},
        }  # fmt: skip
        return [doc["_id"] for doc in self._batches.find(query, {"_id": 1})]

    def _new_records(
        self, batch: TabularBatch, records: list[TabularRecord], overlapping: list[str]
    ) -> list[TabularRecord]:
        """The readings of ``batch`` not already stored by the overlapping batches."""
        known = {
            _reading_key(_tabular_record(doc))
            for doc in self._tabular.find({"upload_id": {"$in": overlapping}})
        }
        keep = [i for i, r in enumerate(records) if _reading_key(r) not in known]
        log.info("batch %s overlaps %d stored batches of its file: %d of %d readings are new",
                 batch.id, len(overlapping), len(keep), len(records))  # fmt: skip
        if len(keep) == len(records):
            return records
        subset = subset_batch(batch, keep)
        return decode_batch(subset.body, batch.id, batch.uploaded_at_ns)

    def record_blob(self, record: BlobRecord) -> bool:
        self.ensure_indexes()
        doc = blob_document(record)
        with _unavailable_on_connection_errors("storing a binary record"):
            try:
                self._blobs.insert_one(doc)
            except DuplicateKeyError:
                return False
            except (BSONError, WriteError):
                json_doc = _as_json(doc)
                try:
                    self._blobs.insert_one(json_doc)
                except DuplicateKeyError:
                    return False
        return True

    def _insert_many(self, collection: Collection[Document], docs: list[Document], *,
                     fallback: bool) -> int:  # fmt: skip
        """Insert ``docs``; returns how many were new. Refused documents are retried once
        with their nested values as JSON text (``fallback``)."""
        try:
            collection.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            inserted = int(exc.details.get("nInserted", 0))
            refused = [e for e in exc.details.get("writeErrors", []) if e.get("code") != 11000]
            if not refused:
                return inserted
            if not fallback:
                raise
            retry = [_as_json(docs[e["index"]]) for e in refused]
            return inserted + self._insert_many(collection, retry, fallback=False)
        except BSONError:
            if not fallback:
                raise
            return self._insert_many(collection, [_encodable(d) for d in docs], fallback=False)
        return len(docs)

    # --- reads -------------------------------------------------------------------------

    def query(self, item_filter: ItemFilter | None = None) -> Iterator[Record]:
        f = item_filter or ItemFilter()
        streams: list[Iterator[Record]] = []
        if f.kind in (None, "tabular"):
            streams.append(self._find(self._tabular, _filter(f, blobs=False), _TABULAR_SORT,
                                      _tabular_record))  # fmt: skip
        if f.kind != "tabular":
            streams.append(
                self._find(self._blobs, _filter(f, blobs=True), _BLOB_SORT, _blob_record)
            )
        return heapq.merge(*streams, key=lambda r: (r.time_requested_ns, r.kind, r.id))

    def _find(
        self,
        collection: Collection[Document],
        query: Document,
        sort: list[tuple[str, int]],
        convert: Callable[[Mapping[str, Any]], Record],
    ) -> Iterator[Record]:
        with _unavailable_on_connection_errors("reading"):
            cursor = collection.find(query, sort=sort)
            try:
                for doc in cursor:
                    yield convert(doc)
            finally:
                cursor.close()

    def iter_tabular_batches(
        self, item_filter: ItemFilter | None = None
    ) -> Iterator[list[TabularRecord]]:
        f = item_filter or ItemFilter()
        if f.kind not in (None, "tabular"):
            return
        sort = [("upload_id", 1), ("time_requested_ns", 1), ("_id", 1)]
        current: list[TabularRecord] = []
        for record in self._find(self._tabular, _filter(f, blobs=False), sort, _tabular_record):
            assert isinstance(record, TabularRecord)
            if current and current[0].upload_id != record.upload_id:
                yield current
                current = []
            current.append(record)
        if current:
            yield current

    def get_blob(self, blob_id: str) -> BlobRecord | None:
        with _unavailable_on_connection_errors("reading"):
            doc = self._blobs.find_one({"_id": blob_id})
        return None if doc is None else _blob_record(doc)

    def delete(
        self, ids: Sequence[str] | None = None, item_filter: ItemFilter | None = None
    ) -> int:
        if ids is None and item_filter is None:
            return 0
        f = item_filter or ItemFilter()
        removed = 0
        with _unavailable_on_connection_errors("deleting"):
            for collection, blobs in ((self._tabular, False), (self._blobs, True)):
                if (blobs and f.kind == "tabular") or (
                    not blobs and f.kind not in (None, "tabular")
                ):
                    continue
                query = _filter(f, blobs=blobs)
                if ids is not None:
                    query["_id"] = {"$in": list(ids)}
                removed += collection.delete_many(query).deleted_count
        return removed

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
                return self._blobs.find_one({"_id": blob_id}, {"_id": 1}) is not None
            return self._blobs.update_one({"_id": blob_id}, {"$set": changes}).matched_count == 1

    def close(self) -> None:
        self._client.close()


def _batch_document(batch: TabularBatch, stored: int) -> Document:
    return {
        "_id": batch.id,
        "part_id": batch.part_id,
        "component_type": batch.component_type,
        "component_name": batch.component_name,
        "method_name": batch.method_name,
        "file_name": batch.file_name,
        "time_min_ns": batch.time_min_ns,
        "time_max_ns": batch.time_max_ns,
        "count": stored,
        "uploaded_at_ns": batch.uploaded_at_ns,
    }


def _reading_key(r: TabularRecord) -> tuple[int, int, str]:
    return r.time_requested_ns, r.time_received_ns, _dumps_sorted(r.data)


def _dumps_sorted(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=True, sort_keys=True)
