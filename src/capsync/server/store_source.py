"""The :class:`~capsync.query.source.DataSource` over any store that offers the small
:class:`QueryableStore` interface: ``query`` (records matching an
:class:`~capsync.server.store.ItemFilter`, in time order), ``get_blob``,
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
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from capsync.query.filters import DataFilter, Page
from capsync.query.source import DataSource
from capsync.server.store import BlobRecord, ItemFilter, Record, TabularRecord


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

    def count_tabular(self, data_filter: DataFilter) -> int:
        return sum(1 for _ in self.tabular(data_filter))

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

    def changes_since(self, mark: int, limit: int) -> tuple[list[TabularRecord], int]:
        feed = getattr(self.store, "changes_since", None)
        if not getattr(self.store, "supports_changes", False) or feed is None:
            return super().changes_since(mark, limit)
        changes: tuple[list[TabularRecord], int] = feed(mark, limit)
        return changes

    def tabular_day_sizes(self, key: tuple[str, str, str, str]) -> list[tuple[str, int]] | None:
        if self._day_sizes is None:
            return super().tabular_day_sizes(key)
        sizes: list[tuple[str, int]] = self._day_sizes(key)
        return sizes

    def sources(self) -> list[tuple[str, str, str, str]]:
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
