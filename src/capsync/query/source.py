"""The small interface through which the query layer reads and changes the store.

The query layer (filters, pages, SQL, MQL, tags, boxes, datasets) never talks to
a database directly: it goes through a :class:`DataSource`, which an adapter
implements (:mod:`capsync.server.store_source` for capsync's stores). An adapter must:

* list tabular readings and binaries (binary readings and files) matching a
  :class:`~capsync.query.filters.DataFilter`, one :class:`~capsync.query.filters.Page`
  at a time, ordered by ``(time_requested_ns, id)``, and count them;
* delete tabular readings captured before a time, and binaries by id (returning
  what it deleted so their payload files can go);
* replace a binary's mutable metadata: ``tags``, ``annotations`` (the
  ``{"bboxes": [...], "classifications": [...]}`` document) and ``dataset_ids``;
* optionally (``supports_changes``), list tabular readings stored after a
  mark (``changes_since``) so the columnar compactor (:mod:`capsync.query.columnar`)
  can follow the ingest path; without it SQL reads the readings from the store.

Records are the store's own :class:`~capsync.server.stores.base.TabularRecord` and
:class:`~capsync.server.stores.base.BlobRecord`.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from capsync.query.filters import DataFilter, Page

if TYPE_CHECKING:
    from capsync.server.stores.base import BlobRecord, TabularRecord


class DataSource(abc.ABC):
    """Read and change what a store holds. Implementations must be thread-safe."""

    @abc.abstractmethod
    def tabular(self, data_filter: DataFilter, page: Page | None = None) -> Iterator[TabularRecord]:
        """Matching tabular readings, one page, ordered by ``(time_requested_ns, id)``."""

    @abc.abstractmethod
    def count_tabular(self, data_filter: DataFilter) -> int:
        """How many tabular readings match."""

    @abc.abstractmethod
    def blobs(self, data_filter: DataFilter, page: Page | None = None) -> Iterator[BlobRecord]:
        """Matching binary readings and files, one page, ordered by ``(time_requested_ns, id)``."""

    @abc.abstractmethod
    def count_blobs(self, data_filter: DataFilter) -> tuple[int, int]:
        """How many binaries match, and their total payload size in bytes."""

    @abc.abstractmethod
    def blobs_by_ids(self, ids: Sequence[str]) -> list[BlobRecord]:
        """The binaries with these ids, in the order asked (unknown ids are left out)."""

    @abc.abstractmethod
    def delete_tabular(self, before_ns: int | None, data_filter: DataFilter | None = None) -> int:
        """Delete readings requested before ``before_ns`` (None: all), of those matching
        ``data_filter`` (None: every reading); return how many."""

    @abc.abstractmethod
    def delete_blobs(self, ids: Sequence[str]) -> list[BlobRecord]:
        """Delete these binaries' records; return the records deleted."""

    @abc.abstractmethod
    def payload_in_use(self, path: str) -> bool:
        """Whether some binary record still points at this payload file."""

    @abc.abstractmethod
    def update_blob(
        self,
        blob_id: str,
        *,
        tags: Sequence[str] | None = None,
        annotations: dict[str, Any] | None = None,
        dataset_ids: Sequence[str] | None = None,
    ) -> bool:
        """Replace the given fields of one binary; False when it does not exist."""

    def tabular_runs(self, data_filter: DataFilter, page: Page) -> list[Any] | None:
        """One page of tabular readings left as stored bytes, or None when this source
        cannot (then callers use :meth:`tabular`).

        The page is a list of runs ``(batch, indices)``: a stored
        :class:`~capsync.server.stores.base.TabularBatch` and the positions (an int64 array)
        of its readings on the page, runs in page order; the same readings, in the
        same order, that :meth:`tabular` gives for the same request."""
        return None

    #: Whether :meth:`changes_since` works (then readings are compacted into Parquet).
    supports_changes = False

    def changes_since(
        self, mark: int, limit: int, *, settled: bool = True
    ) -> tuple[list[TabularRecord], int]:
        """Up to ``limit`` readings stored after ``mark`` (0: from the start), in the order
        they were stored, and the new mark. A mark is only ever compared with marks.

        ``settled`` (the compactor, which keeps the mark): stop where a batch may still be
        being stored before others (a store whose batches are numbered before they are
        written: MongoDB), so none is ever skipped. ``settled=False`` (a query's tail,
        whose mark is thrown away): every batch stored so far, past such gaps, so a query
        sees everything acknowledged."""
        raise NotImplementedError(f"{type(self).__name__} cannot list changes")

    def changes_summary(self, mark: int) -> tuple[int, int | None] | None:
        """How many readings are stored after ``mark`` and when the earliest of them was
        stored (ns; None when there are none); None when this source cannot tell."""
        return None

    def tabular_day_sizes(self, key: tuple[str, str, str, str]) -> list[tuple[str, int]] | None:
        """The readings of one source (part, component type, component name, method) per
        UTC day (``YYYY-MM-DD``, oldest first) with their stored size in bytes, or None when
        the store cannot say (then retention measures the columnar files)."""
        return None

    @abc.abstractmethod
    def sources(self) -> list[tuple[str, str, str, str]]:
        """Every (part, component type, component name, method) holding readings or binaries."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""
