"""The MongoDB :class:`~capsync.server.stores.base.Store` (``capsync serve --mongo-uri``).

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

Each batch document carries a number from an atomic counter (``counters``): the
change feed (:mod:`~capsync.server.stores.mongo_feed`) the Parquet compactor
follows. The data API's MQL runs through ``aggregate`` and retention measures
readings per day with it (:mod:`~capsync.server.stores.mongo_aggregate`).
Documents and their indexes are :mod:`~capsync.server.stores.mongo_docs`.

Only standard operations are used (``insert_many``, ``insert_one``, ``find``
with ``sort``, ``create_index``, ``find_one_and_update``, ``aggregate``), so any
MongoDB server works (``$bsonSize`` needs 4.4; before it sizes are measured
here). An unreachable server raises :class:`~capsync.server.stores.base.StoreUnavailable`.

Over 400 lines but one concern: the Store protocol's methods over MongoDB (the
documents, pipelines and change feed are the modules named above).
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import bson
import pymongo
from bson.errors import BSONError
from pymongo.collection import Collection
from pymongo.errors import (
    BulkWriteError,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
    WriteError,
)

from capsync._time import DAY_NS, day_name
from capsync.mongo.client import check_uri, client_options, is_transient, redact_uri, short_error
from capsync.mongo.documents import blob_document, tabular_document
from capsync.query.filters import QueryError
from capsync.server.records import batches_from_records, decode_batch, subset_batch
from capsync.server.stores.base import (
    DEFAULT_MONGO_DATABASE,
    BlobRecord,
    ItemFilter,
    Record,
    Store,
    TabularBatch,
    TabularRecord,
    blob_changes,
)
from capsync.server.stores.mongo_aggregate import day_sizes_pipeline, readings_pipeline
from capsync.server.stores.mongo_docs import (
    BATCH_COLLECTION,
    BLOB_COLLECTION,
    BLOB_SORT,
    CONNECT_TIMEOUT_MS,
    INDEXES,
    SERVER_SELECTION_TIMEOUT_MS,
    TABULAR_COLLECTION,
    TABULAR_SORT,
    Document,
    as_json,
    batch_document,
    blob_record,
    encodable,
    item_query,
    reading_key,
    tabular_record,
    unavailable_on_connection_errors,
)
from capsync.server.stores.mongo_feed import COUNTER_COLLECTION, BatchFeed

SOURCE_FIELDS = ("part_id", "component_type", "component_name", "method_name")

__all__ = ["DEFAULT_DATABASE", "MongoStore", "blob_document", "tabular_document"]

log = logging.getLogger(__name__)

DEFAULT_DATABASE = DEFAULT_MONGO_DATABASE


class MongoStore(Store):
    """The store in MongoDB ``database`` at ``uri`` (see the module docstring).

    Writes wait for the journal (``journal=true``) unless the URI says otherwise.
    A malformed ``uri`` raises :class:`ValueError`. Connecting happens in the
    background; a server that is down makes calls raise
    :class:`~capsync.server.stores.base.StoreUnavailable` (after at most ~5 s, unless
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
        counters = database_handle[COUNTER_COLLECTION]
        self._feed = BatchFeed(self._batches, counters, self._batch_readings)
        self._writable = create
        #: Whether :meth:`changes_since` lists every reading: a reader beside a server of the
        #: previous release (batches without ``seq``) says no until that server is upgraded.
        self.supports_changes = True
        self._indexes_ready = False
        self._indexes_lock = threading.Lock()
        if not create:
            try:
                with unavailable_on_connection_errors("opening"):
                    names = set(database_handle.list_collection_names())
                if not names & {TABULAR_COLLECTION, BATCH_COLLECTION, BLOB_COLLECTION}:
                    raise FileNotFoundError(
                        2,
                        f"no capsync data in MongoDB database {database!r}: is this the "
                        "serve --mongo-database?",
                        self.uri_for_logs,
                    )
                with unavailable_on_connection_errors("opening"):
                    unnumbered = self._batches.find_one({"seq": {"$exists": False}}, {"_id": 1})
                self.supports_changes = unnumbered is None
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
            with unavailable_on_connection_errors("creating indexes"):
                for name, collection in (
                    (TABULAR_COLLECTION, self._tabular),
                    (BATCH_COLLECTION, self._batches),
                    (BLOB_COLLECTION, self._blobs),
                ):
                    for index_name, keys in INDEXES[name]:
                        try:
                            collection.create_index(keys, name=index_name)
                        except PyMongoError as exc:
                            if is_transient(exc):
                                raise
                            log.warning(
                                "cannot create index %s on %s.%s: %s",
                                index_name, self.database_name, name, short_error(exc, 300),
                            )  # fmt: skip
                if self._writable:
                    numbered = self._feed.number_unnumbered()
                    if numbered:
                        log.info("numbered %d batches for the change feed", numbered)
            self._indexes_ready = True

    # --- writes ------------------------------------------------------------------------

    def record_batch(self, batch: TabularBatch) -> int:
        self.ensure_indexes()
        with unavailable_on_connection_errors("storing tabular data"):
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
            doc = batch_document(batch, len(records))
            doc["seq"] = self._feed.next_seq()  # after the readings: the change feed's order
            doc["seq_at_ns"] = time.time_ns()
            with contextlib.suppress(DuplicateKeyError):
                self._batches.insert_one(doc)
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
            reading_key(tabular_record(doc))
            for doc in self._tabular.find({"upload_id": {"$in": overlapping}})
        }
        keep = [i for i, r in enumerate(records) if reading_key(r) not in known]
        log.info("batch %s overlaps %d stored batches of its file: %d of %d readings are new",
                 batch.id, len(overlapping), len(keep), len(records))  # fmt: skip
        if len(keep) == len(records):
            return records
        subset = subset_batch(batch, keep)
        return decode_batch(subset.body, batch.id, batch.uploaded_at_ns)

    def record_blob(self, record: BlobRecord) -> bool:
        self.ensure_indexes()
        doc = blob_document(record)
        with unavailable_on_connection_errors("storing a binary record"):
            try:
                self._blobs.insert_one(doc)
            except DuplicateKeyError:
                return False
            except (BSONError, WriteError):
                json_doc = as_json(doc)
                try:
                    self._blobs.insert_one(json_doc)
                except DuplicateKeyError:
                    return False
        return True

    def _insert_many(self, collection: Collection[Document], docs: list[Document], *,
                     fallback: bool, originals: list[Document] | None = None) -> int:  # fmt: skip
        """Insert ``docs``; returns how many were new. Refused ones are retried as JSON text
        with a view of ``data`` for MQL (``fallback``), refused again without the view."""
        try:
            collection.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            inserted = int(exc.details.get("nInserted", 0))
            errors = exc.details.get("writeErrors", [])
            refused = [(originals or docs)[e["index"]] for e in errors if e.get("code") != 11000]
            if not refused:
                return inserted
            if not fallback:
                raise
            if originals is None:  # originals: what the retried documents were made of
                return inserted + self._insert_many(
                    collection, [as_json(d) for d in refused], fallback=True, originals=refused
                )
            retry = [as_json(d, view=False) for d in refused]
            return inserted + self._insert_many(collection, retry, fallback=False)
        except BSONError:
            if not fallback:
                raise
            return self._insert_many(collection, [encodable(d) for d in docs], fallback=False)
        return len(docs)

    # --- reads -------------------------------------------------------------------------

    def query(self, item_filter: ItemFilter | None = None) -> Iterator[Record]:
        f = item_filter or ItemFilter()
        streams: list[Iterator[Record]] = []
        if f.kind in (None, "tabular"):
            streams.append(self._find(self._tabular, item_query(f, blobs=False), TABULAR_SORT,
                                      tabular_record))  # fmt: skip
        if f.kind != "tabular":
            streams.append(
                self._find(self._blobs, item_query(f, blobs=True), BLOB_SORT, blob_record)
            )
        return heapq.merge(*streams, key=lambda r: (r.time_requested_ns, r.kind, r.id))

    def _find(
        self,
        collection: Collection[Document],
        query: Document,
        sort: list[tuple[str, int]],
        convert: Callable[[Mapping[str, Any]], Record],
    ) -> Iterator[Record]:
        with unavailable_on_connection_errors("reading"):
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
        for record in self._find(self._tabular, item_query(f, blobs=False), sort, tabular_record):
            assert isinstance(record, TabularRecord)
            if current and current[0].upload_id != record.upload_id:
                yield current
                current = []
            current.append(record)
        if current:
            yield current

    def get_blob(self, blob_id: str) -> BlobRecord | None:
        with unavailable_on_connection_errors("reading"):
            doc = self._blobs.find_one({"_id": blob_id})
        return None if doc is None else blob_record(doc)

    def delete(
        self, ids: Sequence[str] | None = None, item_filter: ItemFilter | None = None
    ) -> int:
        if ids is None and item_filter is None:
            return 0
        f = item_filter or ItemFilter()
        removed = 0
        with unavailable_on_connection_errors("deleting"):
            for collection, blobs in ((self._tabular, False), (self._blobs, True)):
                if (blobs and f.kind == "tabular") or (
                    not blobs and f.kind not in (None, "tabular")
                ):
                    continue
                query = item_query(f, blobs=blobs)
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
        changes = blob_changes(tags, annotations, dataset_ids)
        with unavailable_on_connection_errors("updating"):
            if not changes:
                return self._blobs.find_one({"_id": blob_id}, {"_id": 1}) is not None
            return self._blobs.update_one({"_id": blob_id}, {"$set": changes}).matched_count == 1

    def sources(self) -> list[tuple[str, str, str, str]]:
        """Every (part, component type, name, method) with readings or blobs, by $group."""
        key = {name: f"${name}" for name in SOURCE_FIELDS}
        with unavailable_on_connection_errors("listing sources"):
            found = {tuple(doc["_id"][name] for name in SOURCE_FIELDS)
                     for collection in (self._tabular, self._blobs)
                     for doc in collection.aggregate([{"$group": {"_id": key}}])}  # fmt: skip
        return sorted(found)

    # --- the change feed (see mongo_feed) -------------------------------------------------------

    def changes_since(
        self, mark: int, limit: int, *, settled: bool = True
    ) -> tuple[list[TabularRecord], int]:
        """The readings of batches stored after ``mark`` (0: from the first), whole batches in
        the order they were stored, until at least ``limit`` readings; and the new mark.
        Deleted readings are left out; ``settled``: see :meth:`BatchFeed.changes_since`."""
        self.ensure_indexes()  # a server numbers older batches first
        with unavailable_on_connection_errors("reading changes"):
            return self._feed.changes_since(mark, limit, settled=settled)

    def _batch_readings(self, batch_id: str) -> list[TabularRecord]:
        cursor = self._tabular.find({"upload_id": batch_id}, sort=TABULAR_SORT)
        return [tabular_record(doc) for doc in cursor]

    # --- aggregation (the data API's MQL, retention's sizes) -----------------------------------

    def aggregate(self, pipeline: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run a user's read-only pipeline over the readings, each shown with Viam's fields
        (see :mod:`~capsync.server.stores.mongo_aggregate`); QueryError when it is refused."""
        stages = readings_pipeline(pipeline)
        with unavailable_on_connection_errors("aggregating"):
            try:
                return list(self._tabular.aggregate(stages))
            except OperationFailure as exc:
                if is_transient(exc):
                    raise
                raise QueryError(f"MQL: {short_error(exc, 300)}") from None

    def tabular_day_sizes(self, key: tuple[str, str, str, str]) -> list[tuple[str, int]]:
        """The readings of one source (part, component type, component name, method) per
        UTC day (``YYYY-MM-DD``, oldest first) with their size: the BSON bytes of their
        documents. Retention's ``tabular_limit_gb`` measures this store by it."""
        source = dict(zip(SOURCE_FIELDS, key, strict=True))
        with unavailable_on_connection_errors("measuring"):
            try:
                rows = [(int(r["_id"]), int(r["size_bytes"]))
                        for r in self._tabular.aggregate(day_sizes_pipeline(source))]  # fmt: skip
            except OperationFailure as exc:  # no $bsonSize before MongoDB 4.4: measure here
                if is_transient(exc):
                    raise
                sizes: dict[int, int] = {}
                for doc in self._tabular.find(day_sizes_pipeline(source)[0]["$match"]):
                    day = int(doc["time_requested_ns"]) // DAY_NS * DAY_NS
                    sizes[day] = sizes.get(day, 0) + len(bson.encode(doc))
                rows = sorted(sizes.items())
        return [(day_name(day_ns), size) for day_ns, size in rows]

    def close(self) -> None:
        self._client.close()
