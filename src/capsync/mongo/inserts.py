"""The MongoDB capture writer's database calls: insert a batch exactly once, create its index.

Each capture document carries its ``_id`` before its first attempt, so a batch
re-sent after a connection loss that hid a success comes back as duplicate-key
errors (11000), which count as inserted. A document BSON cannot encode spoils
``insert_many`` for the whole batch: the batch is then inserted one by one, and
only that document is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pymongo
from bson.errors import BSONError
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from capsync.mongo.client import is_transient, short_error

__all__ = ["CAPTURE_INDEX", "DUPLICATE_KEY", "create_capture_index", "insert_documents"]

_log = logging.getLogger("capsync.mongo.capture")

DUPLICATE_KEY = 11000
CAPTURE_INDEX: list[tuple[str, int]] = [
    ("component_name", pymongo.ASCENDING),
    ("method_name", pymongo.ASCENDING),
    ("time_received", pymongo.ASCENDING),
]

Collection_ = Collection[dict[str, Any]]
# Reports an error at a bounded rate: (level, message).
ErrorLog = Callable[[int, str], object]


def insert_documents(collection: Collection_, docs: list[dict[str, Any]], report: ErrorLog) -> int:
    """Insert ``docs``; returns how many MongoDB holds now (the rest it refused).

    Connection errors propagate (the caller retries the batch)."""
    try:
        collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        refused = [e for e in errors if e.get("code") != DUPLICATE_KEY]
        if refused:
            report(
                logging.ERROR,
                f"MongoDB capture: documents refused: {refused[0].get('errmsg', refused[0])}",
            )
        return len(docs) - len(refused)
    except BSONError:
        # One document BSON cannot encode spoils the batch: insert one by one.
        return sum(_insert_one(collection, doc, report) for doc in docs)
    return len(docs)


def _insert_one(collection: Collection_, doc: dict[str, Any], report: ErrorLog) -> int:
    try:
        collection.insert_one(doc)
    except BSONError as exc:
        report(logging.WARNING, f"MongoDB capture: reading not stored: {exc}")
        return 0
    except DuplicateKeyError:
        return 1
    return 1


def create_capture_index(collection: Collection_) -> None:
    """The capture collection's query index; a clash with an existing index is only logged
    (capture works without ours), a connection error propagates."""
    try:
        collection.create_index(CAPTURE_INDEX)
    except PyMongoError as exc:
        if is_transient(exc):
            raise
        _log.warning(
            "MongoDB capture: cannot create the index on %s.%s: %s",
            collection.database.name, collection.name, short_error(exc),
        )  # fmt: skip
