"""The :class:`~capsync.query.source.DataSource` over any store that offers the small
:class:`QueryableStore` interface: ``query`` (records matching an
:class:`~capsync.server.stores.base.ItemFilter`, in time order), ``get_blob``,
``delete`` (by ids and/or filter) and ``update_blob``.

It is the adapter of both ingest stores (the batch log and MongoDB). What the
interface cannot filter (tags
any-of, MIME types, boxes, datasets) is checked here, and a page starts at its
cursor's time (``since_ns``), so paging forward never rescans earlier pages.
A store with a change feed (``supports_changes`` and ``changes_since``, as both
stores have) passes it through, so the Parquet compactor
(:mod:`capsync.query.columnar`) follows it and SQL reads the files plus the
tail; without one SQL reads the readings through ``query`` on every call. A
store that runs MQL itself (``aggregate``: MongoDB) and one that measures its
readings per day (``tabular_day_sizes``, for retention) pass those through too.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np

from capsync.query.filters import DataFilter, Page
from capsync.query.source import DataSource
from capsync.server.records import batch_from_body, reading_id
from capsync.server.stores.base import BlobRecord, ItemFilter, Record, TabularBatch, TabularRecord

_CACHED_BATCHES = 8


class QueryableStore(Protocol):
    """What :class:`StoreSource` needs of a store."""

    def query(self, item_filter: ItemFilter | None = None) -> Iterator[Record]:
        """Matching records, ordered by ``time_requested_ns``, then kind, then id."""

    def get_blob(self, blob_id: str) -> BlobRecord | None:
        """The blob record with ``blob_id``, or None."""

    def delete(
        self, ids: Sequence[str] | None = None, item_filter: ItemFilter | None = None
    ) -> int:
        """Remove records with these ids and/or matching the filter; return how many."""

    def update_blob(
        self,
        blob_id: str,
        *,
        tags: Sequence[str] | None = None,
        annotations: dict[str, Any] | None = None,
        dataset_ids: Sequence[str] | None = None,
    ) -> bool:
        """Replace the given fields of one blob record; False when there is none."""


def _item_filter(f: DataFilter, page: Page, kind: Any) -> ItemFilter:
    since, until = f.start_ns, f.end_ns
    if page.after is not None:
        if page.descending:
            bound = page.after.time_ns + 1
            until = bound if until is None else min(until, bound)
        else:
            since = page.after.time_ns if since is None else max(since, page.after.time_ns)
    return ItemFilter(
        part_id=f.part_id, component=f.component_name, component_type=f.component_type,
        method=f.method_name, kind=kind, since_ns=since, until_ns=until,
    )  # fmt: skip


def _matches(record: Record, f: DataFilter, page: Page) -> bool:
    if f.tag_match == "tagged" and not record.tags:
        return False
    if f.tag_match == "untagged" and record.tags:
        return False
    if f.tag_match == "any" and f.tags and not set(f.tags) & set(record.tags):
        return False
    if f.mime_types and record.mime_type not in f.mime_types:
        return False
    if f.bbox_labels or f.dataset_id is not None:
        if not isinstance(record, BlobRecord):
            return False
        labels = {b.get("label") for b in record.annotations.get("bboxes", [])}
        if f.bbox_labels and not labels & set(f.bbox_labels):
            return False
        if f.dataset_id is not None and f.dataset_id not in record.dataset_ids:
            return False
    if page.after is not None:
        key = (record.time_requested_ns, record.id)
        after = (page.after.time_ns, page.after.id)
        if (key <= after) if not page.descending else (key >= after):
            return False
    return True


class StoreSource(DataSource):
    """Reads and changes an open store (which stays the caller's to close)."""

    def __init__(self, store: QueryableStore, *, owns_store: bool = False) -> None:
        """``owns_store``: :meth:`close` closes the store too."""
        self.store = store
        self._owns_store = owns_store
        self._cache: OrderedDict[str, TabularBatch] = OrderedDict()
        self._cache_lock = threading.Lock()
        if getattr(store, "supports_changes", False):
            self.supports_changes = True
        # A store that runs MQL itself (MongoDB) and measures its readings by day.
        aggregate = getattr(store, "aggregate", None)
        if aggregate is not None:
            self.aggregate = aggregate
        self._day_sizes = getattr(store, "tabular_day_sizes", None)

    def _select(self, f: DataFilter, page: Page, kinds: tuple[str, ...]) -> Iterator[Record]:
        if f.matches_nothing:
            return
        kind = kinds[0] if len(kinds) == 1 else None
        found = (
            r for r in self.store.query(_item_filter(f, page, kind))
            if r.kind in kinds and _matches(r, f, page)
        )  # fmt: skip
        if not page.descending:
            # the store orders by (time, kind, id); pages go by (time, id)
            yield from _limited(_time_id_order(found), page.limit)
            return
        ordered = sorted(found, key=lambda r: (r.time_requested_ns, r.id), reverse=True)
        yield from ordered[: page.limit] if page.limit is not None else ordered

    def tabular(self, data_filter: DataFilter, page: Page | None = None) -> Iterator[TabularRecord]:
        return (r for r in self._select(data_filter, page or Page(), ("tabular",))
                if isinstance(r, TabularRecord))  # fmt: skip

    def tabular_runs(self, data_filter: DataFilter, page: Page) -> list[Any] | None:
        bodies = getattr(self.store, "tabular_bodies", None)
        f = data_filter
        if bodies is None or page.descending or f.mime_types:
            return None  # readings are decoded to check these
        if f.matches_nothing or f.bbox_labels or f.dataset_id is not None:
            return []  # boxes and datasets belong to binaries
        limit = page.limit
        item_filter = _item_filter(f, page, "tabular")
        picked: list[tuple[TabularBatch, Any, Any]] = []  # batch, positions, their times
        total = 0
        bound: int | None = None  # time of the limit-th earliest reading picked so far
        for row, skip, load in bodies(item_filter):
            if bound is not None and row.time_min_ns > bound:
                break  # batches come by earliest reading: none further can be on the page
            if not _tags_match(row.tags, f):
                continue
            batch = self._batch(row.id, row.uploaded_at_ns, load)
            positions = _positions(batch, item_filter, skip, page)
            if len(positions):
                picked.append((batch, positions, batch.time_requested_ns[positions]))
                total += len(positions)
                if limit is not None and total >= limit:
                    times = np.concatenate([t for _, _, t in picked])
                    bound = int(np.partition(times, limit - 1)[limit - 1])
        return _page_runs(picked, limit)

    def _batch(self, batch_id: str, uploaded_at_ns: int, load: Any) -> TabularBatch:
        """A stored batch, scanned (a few recent ones are kept: pages go through a batch
        one after another)."""
        with self._cache_lock:
            batch = self._cache.get(batch_id)
            if batch is not None:
                self._cache.move_to_end(batch_id)
                return batch
        batch = batch_from_body(load(), batch_id, uploaded_at_ns)
        with self._cache_lock:
            self._cache[batch_id] = batch
            while len(self._cache) > _CACHED_BATCHES:
                self._cache.popitem(last=False)
        return batch

    def count_tabular(self, data_filter: DataFilter) -> int:
        counted = self._count_undecoded(data_filter)
        if counted is not None:
            return counted
        return sum(1 for _ in self.tabular(data_filter))

    def _count_undecoded(self, f: DataFilter) -> int | None:
        """The count from the batch index (and the scanned times of batches the filter's
        interval cuts), or None when readings must be decoded to check the filter."""
        bodies = getattr(self.store, "tabular_bodies", None)
        if bodies is None or f.mime_types:
            return None
        if f.matches_nothing or f.bbox_labels or f.dataset_id is not None:
            return 0
        item_filter = _item_filter(f, Page(), "tabular")
        since, until = item_filter.since_ns, item_filter.until_ns
        total = 0
        for row, skip, load in bodies(item_filter):
            if not _tags_match(row.tags, f):
                continue
            inside = (since is None or row.time_min_ns >= since) and (
                until is None or row.time_max_ns < until
            )
            if inside:
                total += row.count - sum(1 for i in skip if 0 <= i < row.count)
            else:
                batch = self._batch(row.id, row.uploaded_at_ns, load)
                total += len(_positions(batch, item_filter, skip, Page()))
        return total

    def blobs(self, data_filter: DataFilter, page: Page | None = None) -> Iterator[BlobRecord]:
        return (r for r in self._select(data_filter, page or Page(), ("binary", "file"))
                if isinstance(r, BlobRecord))  # fmt: skip

    def count_blobs(self, data_filter: DataFilter) -> tuple[int, int]:
        count = size = 0
        for blob in self.blobs(data_filter):
            count += 1
            size += blob.size_bytes
        return count, size

    def blobs_by_ids(self, ids: Sequence[str]) -> list[BlobRecord]:
        found = (self.store.get_blob(i) for i in dict.fromkeys(ids))
        return [b for b in found if b is not None]

    def delete_tabular(self, before_ns: int | None, data_filter: DataFilter | None = None) -> int:
        f = data_filter or DataFilter()
        if f.matches_nothing:
            return 0
        bounded = dataclasses.replace(f, start_ns=None, end_ns=before_ns)
        return self.store.delete(item_filter=_item_filter(bounded, Page(), "tabular"))

    def delete_blobs(self, ids: Sequence[str]) -> list[BlobRecord]:
        records = self.blobs_by_ids(ids)
        if records:
            self.store.delete(ids=[r.id for r in records])
        return records

    def payload_in_use(self, path: str) -> bool:
        return any(b.path == path for b in self.blobs(DataFilter()))

    def update_blob(self, blob_id: str, *, tags: Sequence[str] | None = None,
                    annotations: dict[str, Any] | None = None,
                    dataset_ids: Sequence[str] | None = None) -> bool:  # fmt: skip
        return self.store.update_blob(blob_id, tags=tags, annotations=annotations,
                                      dataset_ids=dataset_ids)  # fmt: skip

    def changes_since(
        self, mark: int, limit: int, *, settled: bool = True
    ) -> tuple[list[TabularRecord], int]:
        feed = getattr(self.store, "changes_since", None)
        if not getattr(self.store, "supports_changes", False) or feed is None:
            return super().changes_since(mark, limit, settled=settled)
        changes: tuple[list[TabularRecord], int] = feed(mark, limit, settled=settled)
        return changes

    def changes_summary(self, mark: int) -> tuple[int, int | None] | None:
        summary = getattr(self.store, "changes_summary", None)
        if not self.supports_changes or summary is None:
            return None
        result: tuple[int, int | None] = summary(mark)
        return result

    def tabular_day_sizes(self, key: tuple[str, str, str, str]) -> list[tuple[str, int]] | None:
        if self._day_sizes is None:
            return super().tabular_day_sizes(key)
        sizes: list[tuple[str, int]] = self._day_sizes(key)
        return sizes

    def sources(self) -> list[tuple[str, str, str, str]]:
        listed = getattr(self.store, "sources", None)
        if listed is not None:  # from the store's own indexes, nothing decoded
            return list(listed())
        found = {(r.part_id, r.component_type, r.component_name, r.method_name)
                 for r in self.store.query()}  # fmt: skip
        return sorted(found)

    def close(self) -> None:
        close = getattr(self.store, "close", None)
        if self._owns_store and close is not None:
            close()


def _time_id_order(records: Iterator[Record]) -> Iterator[Record]:
    """Re-sort runs of equal time by id (the store breaks ties by kind first)."""
    run: list[Record] = []
    for record in records:
        if run and record.time_requested_ns != run[0].time_requested_ns:
            yield from sorted(run, key=lambda r: r.id)
            run = []
        run.append(record)
    yield from sorted(run, key=lambda r: r.id)


def _limited(records: Iterator[Record], limit: int | None) -> Iterator[Record]:
    for count, record in enumerate(records):
        if limit is not None and count >= limit:
            return
        yield record


def _tags_match(tags: tuple[str, ...], f: DataFilter) -> bool:
    if f.tag_match == "tagged":
        return bool(tags)
    if f.tag_match == "untagged":
        return not tags
    return not f.tags or bool(set(f.tags) & set(tags))


def _positions(batch: TabularBatch, f: ItemFilter, skip: frozenset[int], page: Page) -> Any:
    """Positions of the batch's readings within the filter's times, not deleted, after the
    page's cursor."""
    times = batch.time_requested_ns
    keep = np.ones(len(times), dtype=bool)
    if f.since_ns is not None:
        keep &= times >= f.since_ns
    if f.until_ns is not None:
        keep &= times < f.until_ns
    if skip:
        keep[[i for i in skip if 0 <= i < len(keep)]] = False
    if page.after is not None:
        after = page.after
        for i in np.nonzero(keep & (times == after.time_ns))[0].tolist():
            keep[i] = reading_id(batch.id, i) > after.id
    return np.nonzero(keep)[0]


def _page_runs(
    picked: list[tuple[TabularBatch, Any, Any]], limit: int | None
) -> list[tuple[TabularBatch, Any]]:
    """The first ``limit`` picked readings in (time, id) order, as runs of one batch."""
    if not picked:
        return []
    times = np.concatenate([t for _, _, t in picked])
    positions = np.concatenate([p for _, p, _ in picked])
    owners = np.concatenate(
        [np.full(len(p), n, dtype=np.int64) for n, (_, p, _) in enumerate(picked)]
    )
    order = np.argsort(times, kind="stable")
    sorted_times = times[order]
    ties = np.nonzero(sorted_times[1:] == sorted_times[:-1])[0]
    if len(ties):  # equal times go by reading id, as the decoded path orders them
        starts = ties[np.r_[True, np.diff(ties) > 1]]
        for start in starts.tolist():
            stop = start + 1
            while stop < len(order) and sorted_times[stop] == sorted_times[start]:
                stop += 1
            group = order[start:stop].tolist()
            group.sort(key=lambda k: reading_id(picked[owners[k]][0].id, int(positions[k])))
            order[start:stop] = group
    if limit is not None:
        order = order[:limit]
    owners, positions = owners[order], positions[order]
    cuts = np.nonzero(owners[1:] != owners[:-1])[0] + 1
    bounds = [0, *cuts.tolist(), len(order)]
    return [(picked[int(owners[a])][0], positions[a:b]) for a, b in itertools.pairwise(bounds)]
