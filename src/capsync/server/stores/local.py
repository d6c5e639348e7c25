"""The embedded :class:`~capsync.server.stores.base.Store`: a batch log on local disk.

Layout under the data dir:

* ``tabular/seg-NNNNNN.log``: tabular batches, appended as they arrive
  (:mod:`~capsync.server.stores.segments`); a batch is durable (``fdatasync``,
  shared by concurrent calls) before :meth:`LocalStore.record_batch` returns;
* ``tabular/index.db``: one row per batch (:mod:`~capsync.server.stores.batch_index`),
  derived from the segments and reconciled with them at every start;
* ``capsync.db``: blob records and deletions (:mod:`~capsync.server.stores.sqlite_blobs`).

Readings are decoded only when read. A store written by the previous release
(one SQLite row per reading in ``capsync.db``) is migrated into segments at the
first start: its readings keep their values and times, and get new ids.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from capsync import wire
from capsync.server.group_commit import GroupCommit
from capsync.server.records import (
    batch_from_body,
    batches_from_records,
    decode_batch,
    split_reading_id,
    subset_batch,
)
from capsync.server.stores.base import (
    BlobRecord,
    ItemFilter,
    Record,
    Store,
    TabularBatch,
    TabularRecord,
    blob_changes,
    matches,
)
from capsync.server.stores.batch_index import BatchIndex, BatchRow
from capsync.server.stores.segments import SEGMENT_MAX_BYTES, Entry, SegmentLog, list_segments
from capsync.server.stores.sqlite_blobs import DB_FILE_NAME, WHOLE_BATCH, BlobTable

log = logging.getLogger(__name__)

TABULAR_FOLDER = "tabular"
_FEED_ROWS = 256  # index rows read at a time by the change feed


class LocalStore(Store):
    """The store in ``data_dir``; created when missing unless ``create=False``.

    ``create=False`` opens it to read beside a running server: nothing is repaired
    or migrated, a previous release's table is read as it is, and a folder with
    no store raises :class:`FileNotFoundError`."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        create: bool = True,
        segment_max_bytes: int = SEGMENT_MAX_BYTES,
    ) -> None:
        self.data_dir = Path(data_dir)
        folder = self.data_dir / TABULAR_FOLDER
        if not create and not (self.data_dir / DB_FILE_NAME).exists() and not folder.is_dir():
            raise FileNotFoundError(2, "no capsync store", str(self.data_dir))
        self._writable = create
        if create:
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._blobs = BlobTable(self.data_dir)
        self._segments = SegmentLog(folder, segment_max_bytes=segment_max_bytes)
        self._segments.open(writable=create)
        folder.mkdir(mode=0o700, exist_ok=True)
        self._index = BatchIndex(folder, upgrade=create)
        self._inflight: dict[str, threading.Event] = {}
        self._inflight_lock = threading.Lock()
        # Blob rows of concurrent uploads share one transaction (one fsync: FULL sync).
        self._blob_rows: GroupCommit[Sequence[BlobRecord], list[bool]] = GroupCommit(
            self._add_blob_rows
        )
        # Index rows of concurrent uploads share one transaction (the segments are durable).
        self._batch_rows: GroupCommit[tuple[TabularBatch, Entry], None] = GroupCommit(
            self._add_rows
        )
        if create:  # the server's start: repair, then migrate
            self.reconcile()
            self._migrate_legacy()

    # --- start-up --------------------------------------------------------------------------

    def reconcile(self) -> int:
        """Make the index agree with the segments; return how many rows were added.

        Only segments no other live server writes to are reconciled (see
        :meth:`SegmentLog.reconcilable`), so a server starting beside a running
        one on the same folder leaves that one's segments and rows alone."""
        # Rows first, then tombstones, then segments: a row or tombstone written
        # meanwhile points at an entry that is already there to be found.
        all_places = self._index.places()
        deleted = self._blobs.deleted_batches()
        with self._segments.reconcilable() as numbers:
            mine, existing = set(numbers), set(list_segments(self._segments.folder))
            places = {
                place: batch_id
                for place, batch_id in all_places.items()
                if place[0] in mine or place[0] not in existing
            }
            valid: set[tuple[int, int]] = set()
            missing: list[tuple[TabularBatch, Entry]] = []
            for entry in self._segments.iter_entries(numbers):
                valid.add((entry.segment, entry.offset))
                if (entry.segment, entry.offset) in places or entry.batch_id in deleted:
                    continue
                body = self._segments.read(entry.segment, entry.offset, entry.length)
                batch = batch_from_body(body, entry.batch_id, entry.uploaded_at_ns)
                missing.append((batch, entry))
            stale = [batch_id for place, batch_id in places.items() if place not in valid]
            if stale:
                log.warning("index: dropping %d rows with no segment entry behind them", len(stale))
                self._index.remove(stale)
            added = self._index.add(missing) if missing else 0
        if added:
            log.info("index: added %d batches found in the segments", added)
        return added

    def _migrate_legacy(self) -> None:
        count = 0
        for records in self._blobs.legacy_uploads():
            count += self.record_tabular(records)
        if self._blobs.has_legacy():
            self._blobs.drop_legacy()
            log.warning("migrated %d readings of the previous release into segments", count)

    # --- ingest ----------------------------------------------------------------------------

    def record_batch(self, batch: TabularBatch) -> int:
        while True:
            if self._index.contains(batch.id):
                return 0
            with self._inflight_lock:
                waiting = self._inflight.get(batch.id)
                if waiting is None:
                    self._inflight[batch.id] = threading.Event()
                    break
            waiting.wait()  # the same batch is being stored by another call: then it is known
        try:
            if self._index.contains(batch.id):  # stored between the check and the claim
                return 0
            overlapping = self._index.overlapping(batch) if batch.count else []
            digest = None  # the body's sha256 is the batch id
            if overlapping:
                new = self._new_readings(batch, overlapping)
                if new is not batch:
                    batch, digest = new, hashlib.sha256(new.body).digest()
            entry, sequence = self._segments.append(
                batch.id, batch.body, batch.uploaded_at_ns, digest
            )
            self._segments.sync(sequence)
            self._batch_rows.submit((batch, entry))
            return batch.count
        finally:
            with self._inflight_lock:
                self._inflight.pop(batch.id).set()

    def _add_rows(self, rows: Sequence[tuple[TabularBatch, Entry]]) -> list[None]:
        self._index.add(rows)
        return [None] * len(rows)

    def _new_readings(self, batch: TabularBatch, overlapping: list[BatchRow]) -> TabularBatch:
        """``batch`` without the readings the overlapping batches already hold, byte for byte."""
        scan_upload = wire.wire().scan_upload
        known: set[bytes] = set()
        for row in overlapping:
            body = self._segments.read(row.segment, row.offset, row.length)
            _, _, _, _, _, offsets, lengths, _, _, _ = scan_upload(body)
            view = memoryview(body)
            known.update(
                bytes(view[o : o + n])
                for o, n in zip(offsets.tolist(), lengths.tolist(), strict=True)
            )
        keep = [i for i in range(batch.count) if batch.reading_bytes(i) not in known]
        log.info("batch %s overlaps %d stored batches of its file: %d of %d readings are new",
                 batch.id, len(overlapping), len(keep), batch.count)  # fmt: skip
        return batch if len(keep) == batch.count else subset_batch(batch, keep)

    def record_tabular(self, records: Sequence[TabularRecord]) -> int:
        return sum(self.record_batch(batch) for batch in batches_from_records(records))

    def record_blob(self, record: BlobRecord) -> bool:
        """One blob row, committed together with concurrent callers' rows (one fsync)."""
        return self._blob_rows.submit((record,))[0]

    def record_blobs(self, records: Sequence[BlobRecord]) -> list[bool]:
        """The rows of one upload, committed together with concurrent callers' rows."""
        return self._blob_rows.submit(records) if records else []

    def _add_blob_rows(self, uploads: Sequence[Sequence[BlobRecord]]) -> list[list[bool]]:
        added = iter(self._blobs.add([record for records in uploads for record in records]))
        return [[next(added) for _ in records] for records in uploads]

    # --- reading ---------------------------------------------------------------------------

    def _decoded(self, row: BatchRow, f: ItemFilter) -> list[TabularRecord]:
        body = self._segments.read(row.segment, row.offset, row.length)
        skip = self._blobs.tombstones(row.id)
        if WHOLE_BATCH in skip:
            return []
        records = decode_batch(body, row.id, row.uploaded_at_ns, skip)
        if f.since_ns is not None or f.until_ns is not None:
            records = [r for r in records if matches(r, f)]
        records.sort(key=lambda r: (r.time_requested_ns, r.id))
        return records

    def iter_tabular_batches(
        self, item_filter: ItemFilter | None = None
    ) -> Iterator[list[TabularRecord]]:
        f = item_filter or ItemFilter()
        if f.kind not in (None, "tabular"):
            return
        for row in self._index.select(f):
            records = self._decoded(row, f)
            if records:
                yield records

    def tabular_bodies(
        self, item_filter: ItemFilter | None = None
    ) -> Iterator[tuple[BatchRow, frozenset[int], Callable[[], bytes]]]:
        """Undecoded: the batches that may hold readings matching the filter's source and
        time (tags are not checked), by earliest reading, each with the indices of its
        deleted readings and a function reading its canonical body (batches deleted whole
        are left out)."""
        f = item_filter or ItemFilter()
        if f.kind not in (None, "tabular"):
            return
        for row in self._index.select_iter(f):
            skip = self._blobs.tombstones(row.id)
            if WHOLE_BATCH not in skip:
                load = functools.partial(self._segments.read, row.segment, row.offset, row.length)
                yield row, frozenset(skip), load

    def sources(self) -> list[tuple[str, str, str, str]]:
        """Every (part, component type, component name, method) holding readings or blobs,
        from the index and the blob table (no reading is decoded)."""
        found = self._blobs.sources()
        for key, batches in self._index.sources():
            if key not in found and any(
                _live(self._blobs.tombstones(batch_id), count) for batch_id, count in batches
            ):
                found.add(key)
        return sorted(found)

    def _tabular(self, f: ItemFilter) -> Iterator[TabularRecord]:
        """Readings in (time, id) order: batches are merged as their time ranges overlap."""
        rows = self._index.select_iter(f)
        heap: list[tuple[int, str, TabularRecord]] = []
        pending = next(rows, None)
        while heap or pending is not None:
            while pending is not None and (not heap or pending.time_min_ns <= heap[0][0]):
                for r in self._decoded(pending, f):
                    heapq.heappush(heap, (r.time_requested_ns, r.id, r))
                pending = next(rows, None)
            if heap:
                yield heapq.heappop(heap)[2]

    @property
    def supports_changes(self) -> bool:
        """Whether :meth:`changes_since` lists every reading (not so when reading a
        previous release's store that is not migrated yet)."""
        legacy = not self._writable and self._blobs.has_legacy()
        return self._index.has_sequence and not legacy

    def changes_since(
        self, mark: int, limit: int, *, settled: bool = True
    ) -> tuple[list[TabularRecord], int]:
        """The readings of batches indexed after ``mark`` (0: from the first), whole batches
        in the order they were indexed, until at least ``limit`` readings; and the new mark
        (an index row is written once its batch is stored: there are no gaps to settle).

        Deleted readings are left out; a batch deleted whole has no index row any more."""
        records: list[TabularRecord] = []
        everything = ItemFilter()
        while len(records) < limit:
            rows = self._index.after(mark, _FEED_ROWS)
            if not rows:
                break
            for seq, row in rows:
                records.extend(self._decoded(row, everything))
                mark = seq
                if len(records) >= limit:
                    break
        return records, mark

    def changes_summary(self, mark: int) -> tuple[int, int | None]:
        """How many readings :meth:`changes_since` has after ``mark`` (deleted ones
        included), and when the earliest of their batches was stored (None: none)."""
        return self._index.summary_after(mark)

    def query(self, item_filter: ItemFilter | None = None) -> Iterator[Record]:
        f = item_filter or ItemFilter()
        streams: list[Iterator[Record]] = []
        if f.kind in (None, "tabular"):
            streams.append(self._tabular(f))
            if not self._writable and self._blobs.has_legacy():
                streams.append(self._blobs.legacy_query(f))
        if f.kind != "tabular":
            streams.append(self._blobs.query(f))
        return heapq.merge(*streams, key=lambda r: (r.time_requested_ns, r.kind, r.id))

    def get_blob(self, blob_id: str) -> BlobRecord | None:
        return self._blobs.get(blob_id)

    # --- changing what is kept -------------------------------------------------------------

    def delete(
        self, ids: Sequence[str] | None = None, item_filter: ItemFilter | None = None
    ) -> int:
        if ids is None and item_filter is None:
            return 0
        f = item_filter or ItemFilter()
        if ids is not None:
            return self._delete_ids(ids, f)
        removed = 0
        tombstones: list[tuple[str, int]] = []
        whole: list[str] = []
        if f.kind in (None, "tabular"):
            for row in self._index.select(f):
                records = self._decoded(row, f)
                removed += len(records)
                if f.since_ns is None and f.until_ns is None:
                    whole.append(row.id)
                    tombstones.append((row.id, WHOLE_BATCH))
                else:
                    tombstones.extend((row.id, int(r.id.rpartition(":")[2])) for r in records)
        if tombstones:
            self._blobs.add_tombstones(tombstones)
        if whole:
            self._index.remove(whole)
        if f.kind != "tabular":
            removed += self._blobs.delete([r.id for r in self._blobs.query(f)])
        return removed

    def _delete_ids(self, ids: Sequence[str], f: ItemFilter) -> int:
        tombstones: list[tuple[str, int]] = []
        blob_ids: list[str] = []
        for record_id in ids:
            place = split_reading_id(record_id)
            if place is None:
                blob = self._blobs.get(record_id)
                if blob is not None and matches(blob, f):
                    blob_ids.append(record_id)
                continue
            row = self._index.get(place[0])
            if row is None:
                continue
            for r in self._decoded(row, ItemFilter()):
                if r.id == record_id and matches(r, f):
                    tombstones.append(place)
        if tombstones:
            self._blobs.add_tombstones(tombstones)
        return len(set(tombstones)) + (self._blobs.delete(blob_ids) if blob_ids else 0)

    def update_blob(
        self,
        blob_id: str,
        *,
        tags: Sequence[str] | None = None,
        annotations: dict[str, Any] | None = None,
        dataset_ids: Sequence[str] | None = None,
    ) -> bool:
        changes = blob_changes(tags, annotations, dataset_ids)
        return self._blobs.update(blob_id, changes)

    def close(self) -> None:
        self._segments.close()
        self._index.close()
        self._blobs.close()


__all__ = ["TABULAR_FOLDER", "LocalStore"]


def _live(tombstones: set[int], count: int) -> bool:
    """Whether a batch of ``count`` readings still holds one after these deletions."""
    return WHOLE_BATCH not in tombstones and len(tombstones) < count
