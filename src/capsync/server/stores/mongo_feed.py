"""The MongoDB store's change feed: readings in the order their batches were stored.

The query layer's compactor (:mod:`capsync.query.columnar`) follows a store's
feed to copy readings into Parquet, and SQL reads those files plus the tail;
the data page's live polling reads the same feed. The embedded store's feed is
its batch index's insertion sequence; this is the MongoDB equivalent.

Every batch document carries ``seq``, a number taken from the counter document
``{_id: "batch_seq"}`` in collection ``counters`` with an atomic ``$inc``
(so several servers sharing the database never take the same number), before
the batch document is inserted, i.e. after its readings. A mark is the last
``seq`` handed out. Numbers can be taken out of order of insertion, or never
used (a server that stopped between the two steps, a batch another server stored
first): the feed stops at the first missing number until the batch after it has
been there for :data:`GAP_WAIT_S`, so a batch still being written is never
skipped, and a number never used holds the feed up only that long.

Batch documents written before ``seq`` existed are numbered when a server starts
(:meth:`BatchFeed.number_unnumbered`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import pymongo
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from capsync.server.stores.base import TabularRecord

__all__ = ["COUNTER_COLLECTION", "GAP_WAIT_S", "BatchFeed"]

COUNTER_COLLECTION = "counters"
COUNTER_ID = "batch_seq"
GAP_WAIT_S = 10.0
_BATCHES_READ = 256  # batch documents read at a time

Document = dict[str, Any]


class BatchFeed:
    """Numbers batches and lists the readings of batches stored after a mark."""

    def __init__(
        self,
        batches: Collection[Document],
        counters: Collection[Document],
        readings_of: Callable[[str], list[TabularRecord]],
    ) -> None:
        """``readings_of(batch_id)``: the stored readings of one batch, in (time, id) order."""
        self._batches = batches
        self._counters = counters
        self._readings_of = readings_of

    def next_seq(self) -> int:
        """A new batch number (never handed out before, by any server).

        The counter document is created apart (insert, a duplicate meaning another server
        created it) rather than by an upserting increment, which concurrent first calls
        can make fail."""
        for _ in range(3):
            doc = self._counters.find_one_and_update(
                {"_id": COUNTER_ID}, {"$inc": {"n": 1}},
                return_document=pymongo.ReturnDocument.AFTER,
            )  # fmt: skip
            if doc is not None:
                return int(doc["n"])
            with contextlib.suppress(DuplicateKeyError):
                self._counters.insert_one({"_id": COUNTER_ID, "n": 0})
        raise RuntimeError(f"the counter {COUNTER_ID!r} cannot be created")

    def number_unnumbered(self) -> int:
        """Give every batch document without ``seq`` one (oldest upload first); return how many."""
        numbered = 0
        query = {"seq": {"$exists": False}}
        for doc in self._batches.find(query, {"_id": 1}).sort("uploaded_at_ns", 1):
            stamp = {"seq": self.next_seq(), "seq_at_ns": time.time_ns()}
            result = self._batches.update_one({"_id": doc["_id"], **query}, {"$set": stamp})
            numbered += result.modified_count
        return numbered

    def changes_since(
        self, mark: int, limit: int, *, settled: bool = True
    ) -> tuple[list[TabularRecord], int]:
        """The readings of batches numbered after ``mark``, whole batches in number order,
        until at least ``limit`` readings; and the new mark.

        ``settled`` (the compactor, which keeps the mark): stop at a missing number until
        the batch after it has settled (:data:`GAP_WAIT_S`). ``settled=False`` (a query's
        tail): go past it. A batch document is written after its readings and before the
        upload is answered, so every acknowledged batch is listed: a missing number is a
        batch not acknowledged yet."""
        records: list[TabularRecord] = []
        settled_ns = time.time_ns() - int(GAP_WAIT_S * 1e9)
        while len(records) < limit:
            docs = list(
                self._batches.find(
                    {"seq": {"$gt": mark}}, {"seq": 1, "seq_at_ns": 1, "count": 1}
                ).sort("seq", 1).limit(_BATCHES_READ)
            )  # fmt: skip
            if not docs:
                break
            for doc in docs:
                seq = int(doc["seq"])
                if settled and seq != mark + 1 and int(doc.get("seq_at_ns", 0)) > settled_ns:
                    return records, mark  # a number before it may still be being stored
                if doc.get("count", 0) > 0:
                    records.extend(self._readings_of(doc["_id"]))
                mark = seq
                if len(records) >= limit:
                    break
        return records, mark
