"""The MongoDB store's documents: to and from records, filters, indexes.

Documents are :mod:`capsync.mongo.documents`' (Viam's shape plus exact ``*_ns``
times); here is what only the server needs: reading them back as records,
the JSON-text fallback for nested values MongoDB cannot take as documents
(``<field>_json``), the query for an :class:`ItemFilter`, the batch documents
(de-duplication) and the collections' indexes.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

import bson
import pymongo
from bson.errors import BSONError
from pymongo.errors import PyMongoError

from capsync.mongo.client import is_transient, short_error
from capsync.server.stores.base import (
    BlobRecord,
    ItemFilter,
    StoreUnavailable,
    TabularBatch,
    TabularRecord,
)

TABULAR_COLLECTION = "tabular"
BATCH_COLLECTION = "batches"
BLOB_COLLECTION = "blobs"
SERVER_SELECTION_TIMEOUT_MS = 5_000
CONNECT_TIMEOUT_MS = 5_000
DUPLICATE_KEY = 11000
# Nested values, stored as documents when MongoDB takes them, else as JSON text.
_NESTED_FIELDS = ("data", "method_parameters", "annotations")
_INT64 = -(1 << 63)  # BSON's int64 holds [_INT64, -_INT64)
INDEXES: dict[str, list[tuple[str, list[tuple[str, int]]]]] = {
    TABULAR_COLLECTION: [
        ("by_time", [("time_requested_ns", 1), ("_id", 1)]),
        ("by_batch", [("upload_id", 1), ("time_requested_ns", 1), ("_id", 1)]),
        ("by_source", [("part_id", 1), ("component_name", 1), ("method_name", 1),
                       ("time_requested_ns", 1)]),
    ],
    BATCH_COLLECTION: [
        ("by_seq", [("seq", 1)]),
        ("by_file", [("part_id", 1), ("component_type", 1), ("component_name", 1),
                     ("method_name", 1), ("file_name", 1), ("time_min_ns", 1)]),
    ],
    BLOB_COLLECTION: [
        ("by_time", [("time_requested_ns", 1), ("kind", 1), ("_id", 1)]),
        ("by_source", [("part_id", 1), ("component_name", 1), ("method_name", 1),
                       ("time_requested_ns", 1)]),
    ],
}  # fmt: skip
TABULAR_SORT = [("time_requested_ns", pymongo.ASCENDING), ("_id", pymongo.ASCENDING)]
BLOB_SORT = [
    ("time_requested_ns", pymongo.ASCENDING),
    ("kind", pymongo.ASCENDING),
    ("_id", pymongo.ASCENDING),
]
Document = dict[str, Any]


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=True)


def as_json(doc: Document, *, view: bool = True) -> Document:
    """``doc`` with its nested values as JSON text (``<field>_json``: read back exactly);
    ``view``: a reading's ``data`` also as :func:`mql_view` gives it, so pipelines see it."""
    out: Document = {}
    for key, value in doc.items():
        if key in _NESTED_FIELDS:
            out[key + "_json"] = _dumps(value)
            if view and key == "data":
                out[key] = mql_view(value)
        else:
            out[key] = value
    return out


def mql_view(value: Any) -> Any:
    """``value`` as MongoDB takes it: integers beyond 64 bits as doubles, and in keys a
    leading ``$``, a ``.`` and NUL replaced by ＄, ． and U+FFFD."""
    if isinstance(value, Mapping):
        return {_view_key(str(k)): mql_view(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mql_view(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not _INT64 <= value < -_INT64:
        return float(value)
    return value


def _view_key(key: str) -> str:
    if key.startswith("$"):
        key = "\uff04" + key[1:]
    return key.replace(".", "\uff0e").replace("\x00", "\ufffd")


def nested(doc: Mapping[str, Any], field: str) -> Any:
    text = doc.get(field + "_json")  # exact, where the document holds only a view
    if text is not None:
        return json.loads(text)
    return doc.get(field, {})


def encodable(doc: Document) -> Document:
    """``doc``, or :func:`as_json`'s form of it when BSON cannot hold it (without the
    view when BSON cannot hold that either)."""
    for candidate in (doc, as_json(doc)):
        try:
            bson.encode(candidate)
        except BSONError:
            continue
        return candidate
    return as_json(doc, view=False)


@contextlib.contextmanager
def unavailable_on_connection_errors(what: str) -> Iterator[None]:
    try:
        yield
    except PyMongoError as exc:
        if is_transient(exc):
            raise StoreUnavailable(
                f"MongoDB unavailable ({what}): {short_error(exc, 300)}"
            ) from exc
        raise


def _record_fields(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The fields a tabular and a blob record's documents share."""
    return {
        "id": doc["_id"],
        "upload_id": doc["upload_id"],
        "part_id": doc["part_id"],
        "component_type": doc["component_type"],
        "component_name": doc["component_name"],
        "method_name": doc["method_name"],
        "method_parameters": nested(doc, "method_parameters"),
        "tags": tuple(doc["tags"]),
        "time_requested_ns": int(doc["time_requested_ns"]),
        "time_received_ns": int(doc["time_received_ns"]),
        "mime_type": doc["mime_type"],
        "uploaded_at_ns": int(doc["uploaded_at_ns"]),
    }


def tabular_record(doc: Mapping[str, Any]) -> TabularRecord:
    return TabularRecord(**_record_fields(doc), data=nested(doc, "data"))


def blob_record(doc: Mapping[str, Any]) -> BlobRecord:
    return BlobRecord(
        **_record_fields(doc),
        kind=doc["kind"],
        file_extension=doc["file_extension"],
        path=doc["path"],
        size_bytes=int(doc["size_bytes"]),
        sha256=doc["sha256"],
        file_name=doc["file_name"],
        dataset_ids=tuple(doc["dataset_ids"]),
        annotations=nested(doc, "annotations"),
    )


def item_query(f: ItemFilter, *, blobs: bool) -> Document:
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


def batch_document(batch: TabularBatch, stored: int) -> Document:
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


def reading_key(r: TabularRecord) -> tuple[int, int, str]:
    return r.time_requested_ns, r.time_received_ns, _dumps_sorted(r.data)


def _dumps_sorted(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=True, sort_keys=True)
