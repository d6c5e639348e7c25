"""The one query layer: what ``capsync data``, the Python API and the gRPC data
services (:mod:`capsync.server.data_service`) all call.

>>> from capsync.server.data_sources import open_data_query
>>> with open_data_query("/srv/capsync") as q:  # doctest: +SKIP
...     page, last = q.tabular_page(DataFilter(component_name="thermo"), Page(limit=100))
...     rows = q.sql("SELECT avg(data.readings.temp) AS t FROM readings")

Tags, bounding boxes and dataset membership belong to binaries (Viam keeps
them on binary data only); a tabular reading's tags are those it was uploaded
with.

Over 400 lines but one concern: :class:`DataQuery` is the one face every caller
uses, and each method only checks its arguments and hands off to the store, the
catalog, the columnar copy or the payloads (which are their own modules).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from capsync._time import DAY_NS
from capsync.query.catalog import DatasetCatalog
from capsync.query.columnar import ColumnarStore
from capsync.query.filters import Cursor, DataFilter, NotFound, Page, QueryError
from capsync.query.payloads import LocalPayloads, Payloads
from capsync.query.source import DataSource

if TYPE_CHECKING:
    from capsync.query.sql import SqlEngine
    from capsync.server.stores.base import BlobRecord, TabularRecord

log = logging.getLogger(__name__)

DEFAULT_PAGE_LIMIT = 50
_BOX_FIELDS = ("x_min_normalized", "y_min_normalized", "x_max_normalized", "y_max_normalized")


R = TypeVar("R")  # a record type a page holds


def _cursor_of(records: Sequence[TabularRecord | BlobRecord]) -> Cursor | None:
    if not records:
        return None
    last = records[-1]
    return Cursor(last.time_requested_ns, last.id)


def box(annotation: dict[str, Any]) -> dict[str, Any]:
    """A stored bounding box with every coordinate present (zeros are left out when stored)."""
    out = {"id": annotation.get("id", ""), "label": annotation.get("label", "")}
    for name in _BOX_FIELDS:
        out[name] = float(annotation.get(name, 0.0))
    if "confidence" in annotation:
        out["confidence"] = float(annotation["confidence"])
    return out


def check_box(x_min: float, y_min: float, x_max: float, y_max: float) -> None:
    """Refuse a box outside [0, 1] or with min > max (QueryError)."""
    for name, value in zip(_BOX_FIELDS, (x_min, y_min, x_max, y_max), strict=True):
        if not 0.0 <= value <= 1.0:
            raise QueryError(f"{name} must be within [0, 1], got {value}")
    if x_min > x_max or y_min > y_max:
        raise QueryError("a bounding box's min must not exceed its max")


def utc_day_start_ns(now_ns: int, days_back: int) -> int:
    """The start (UTC midnight) of the day ``days_back`` days before ``now_ns``'s day."""
    return (now_ns // DAY_NS - days_back) * DAY_NS


class DataQuery:
    """Queries and changes over one store (a :class:`DataSource`) and its data dir."""

    def __init__(
        self,
        source: DataSource,
        data_dir: str | os.PathLike[str],
        *,
        owns_source: bool = False,
        payloads: Payloads | None = None,
    ) -> None:
        """``owns_source``: :meth:`close` closes the source (and ``payloads``) too.
        ``payloads``: where binary payloads are (default: files in ``data_dir``)."""
        self.source = source
        self.data_dir = Path(data_dir)
        self.payloads: Payloads = payloads if payloads is not None else LocalPayloads(data_dir)
        self._datasets: DatasetCatalog | None = None
        self.columnar = ColumnarStore(self.data_dir, source) if source.supports_changes else None
        self._lock = threading.Lock()  # read-modify-write of a binary's metadata
        self._owns_source = owns_source
        self._engine: SqlEngine | None = None

    @property
    def datasets(self) -> DatasetCatalog:
        """The dataset catalog (created in the data dir on first use)."""
        with self._lock:
            if self._datasets is None:
                self._datasets = DatasetCatalog(self.data_dir)
            return self._datasets

    @property
    def sql_engine(self) -> SqlEngine:
        """The DuckDB that runs this layer's SQL and MQL (created on first use)."""
        from capsync.query.sql import SqlEngine

        with self._lock:
            if self._engine is None:
                self._engine = SqlEngine(self.columnar.root if self.columnar else None)
            return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
        if self._datasets is not None:
            self._datasets.close()
        if self._owns_source:
            self.source.close()
            self.payloads.close()

    def __enter__(self) -> DataQuery:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- tabular ---------------------------------------------------------------------------

    def tabular_page(
        self, data_filter: DataFilter, page: Page
    ) -> tuple[list[TabularRecord], Cursor | None]:
        """One page of readings and the cursor of its last one (None when the page is empty)."""
        records = list(self.source.tabular(data_filter, page))
        return records, _cursor_of(records)

    def tabular_runs(self, data_filter: DataFilter, page: Page) -> list[Any] | None:
        """One page of readings left as stored bytes (see :meth:`DataSource.tabular_runs`),
        or None when the source cannot."""
        return self.source.tabular_runs(data_filter, page)

    def count_tabular(self, data_filter: DataFilter) -> int:
        return self.source.count_tabular(data_filter)

    def iter_tabular(self, data_filter: DataFilter, batch: int = 10_000) -> Iterator[TabularRecord]:
        """Every matching reading, oldest first, read a batch at a time."""
        return _every(self.tabular_page, data_filter, batch)

    def latest_tabular(
        self, part_id: str, component_name: str, method_name: str, component_type: str = ""
    ) -> TabularRecord | None:
        """The newest reading of one source, or None."""
        data_filter = DataFilter(
            part_id=part_id,
            component_name=component_name,
            method_name=method_name,
            component_type=component_type or None,
        )
        found = list(self.source.tabular(data_filter, Page(limit=1, descending=True)))
        return found[0] if found else None

    def delete_tabular_older_than(
        self, days: int, now_ns: int | None = None, data_filter: DataFilter | None = None
    ) -> int:
        """Delete readings captured before UTC midnight ``days`` days ago (0: all of them),
        of those ``data_filter`` matches (None: all; tags are not a delete criterion)."""
        if data_filter is not None and (data_filter.tags or data_filter.tag_match != "any"):
            raise QueryError("filter: deleting tabular data by tags is not supported")
        if days < 0:
            raise QueryError(f"delete_older_than_days must be >= 0, got {days}")
        if days == 0:
            before_ns = None
        else:
            now = time.time_ns() if now_ns is None else now_ns
            before_ns = utc_day_start_ns(now, days - 1)
        deleted = self.delete_tabular(before_ns, data_filter)
        log.info("deleted %d tabular readings (older than %d days)", deleted, days)
        return deleted

    def delete_tabular(self, before_ns: int | None, data_filter: DataFilter | None = None) -> int:
        """Delete readings requested before ``before_ns`` (None: all) matching ``data_filter``,
        from the store and the columnar files; return how many (the store's count)."""
        if self.columnar is None:
            return self.source.delete_tabular(before_ns, data_filter)
        with self.columnar.exclusive():
            self.columnar.delete_before(before_ns, data_filter)
            return self.source.delete_tabular(before_ns, data_filter)

    # --- binary ----------------------------------------------------------------------------

    def blob_page(
        self, data_filter: DataFilter, page: Page
    ) -> tuple[list[BlobRecord], Cursor | None]:
        records = list(self.source.blobs(data_filter, page))
        return records, _cursor_of(records)

    def count_blobs(self, data_filter: DataFilter) -> tuple[int, int]:
        return self.source.count_blobs(data_filter)

    def blobs_by_ids(self, ids: Sequence[str]) -> list[BlobRecord]:
        return self.source.blobs_by_ids(ids)

    def iter_blobs(self, data_filter: DataFilter, batch: int = 1000) -> Iterator[BlobRecord]:
        """Every matching binary, oldest first, read a batch at a time."""
        return _every(self.blob_page, data_filter, batch)

    def all_blobs(self, data_filter: DataFilter) -> list[BlobRecord]:
        return list(self.source.blobs(data_filter, Page()))

    def payload(self, record: BlobRecord) -> bytes:
        """The stored bytes of a binary; NotFound when its payload is gone."""
        try:
            return self.payloads.read(record.path)
        except NotFound:
            raise NotFound(f"the payload of {record.id} is missing") from None

    def delete_blobs(self, ids: Sequence[str]) -> int:
        """Delete these binaries and their payload files (when no other record shares one)."""
        with self._lock:
            deleted = self.source.delete_blobs(ids)
            for record in deleted:
                if not self.source.payload_in_use(record.path):
                    self.payloads.remove(record.path)
        if deleted:
            log.info("deleted %d binaries", len(deleted))
        return len(deleted)

    def delete_blobs_by_filter(self, data_filter: DataFilter) -> int:
        return self.delete_blobs([r.id for r in self.all_blobs(data_filter)])

    # --- tags ------------------------------------------------------------------------------

    def _require(self, ids: Sequence[str]) -> list[BlobRecord]:
        records = self.source.blobs_by_ids(ids)
        missing = set(ids) - {r.id for r in records}
        if missing:
            raise NotFound(f"no binary data with id {sorted(missing)[0]!r}")
        return records

    def add_tags(self, ids: Sequence[str], tags: Sequence[str]) -> int:
        """Add the tags to each binary; return how many gained at least one."""
        _check_tags(tags)
        changed = 0
        with self._lock:
            for record in self._require(ids):
                new = tuple(dict.fromkeys((*record.tags, *tags)))
                if new != record.tags:
                    self.source.update_blob(record.id, tags=new)
                    changed += 1
        return changed

    def remove_tags(self, ids: Sequence[str], tags: Sequence[str]) -> int:
        """Remove the tags from each binary; return how many lost at least one."""
        changed = 0
        drop = set(tags)
        with self._lock:
            for record in self._require(ids):
                new = tuple(t for t in record.tags if t not in drop)
                if new != record.tags:
                    self.source.update_blob(record.id, tags=new)
                    changed += 1
        return changed

    def ids(self, data_filter: DataFilter) -> list[str]:
        return [r.id for r in self.all_blobs(data_filter)]

    def tags(self, data_filter: DataFilter) -> list[str]:
        """The distinct tags of matching binaries and readings, sorted."""
        found: set[str] = set()
        for blob in self.all_blobs(data_filter):
            found.update(blob.tags)
        for reading in self.iter_tabular(data_filter):
            found.update(reading.tags)
        return sorted(found)

    # --- bounding boxes --------------------------------------------------------------------

    def add_box(
        self,
        blob_id: str,
        label: str,
        x_min: float,
        y_min: float,
        x_max: float,
        y_max: float,
        confidence: float | None = None,
    ) -> str:
        """Add a bounding box to an image; return its new id."""
        check_box(x_min, y_min, x_max, y_max)
        if not label:
            raise QueryError("a bounding box needs a label")
        if confidence is not None and not 0.0 <= confidence <= 1.0:
            raise QueryError(f"confidence must be within [0, 1], got {confidence}")
        new: dict[str, Any] = {"id": str(uuid.uuid4()), "label": label}
        new.update(zip(_BOX_FIELDS, (x_min, y_min, x_max, y_max), strict=True))
        if confidence is not None:
            new["confidence"] = confidence
        with self._lock:
            (record,) = self._require([blob_id])
            annotations = dict(record.annotations)
            annotations["bboxes"] = [*annotations.get("bboxes", []), new]
            self.source.update_blob(blob_id, annotations=annotations)
        return str(new["id"])

    def update_box(self, blob_id: str, box_id: str, **changes: Any) -> None:
        """Change a box's ``label``, coordinates or ``confidence`` (None leaves one as is)."""
        with self._lock:
            (record,) = self._require([blob_id])
            annotations = dict(record.annotations)
            boxes = [box(b) for b in annotations.get("bboxes", [])]
            index = next((i for i, b in enumerate(boxes) if b["id"] == box_id), None)
            if index is None:
                raise NotFound(f"binary {blob_id!r} has no bounding box {box_id!r}")
            updated = dict(boxes[index])
            updated.update({k: v for k, v in changes.items() if v is not None})
            check_box(*(updated[name] for name in _BOX_FIELDS))
            if not updated["label"]:
                raise QueryError("a bounding box needs a label")
            confidence = updated.get("confidence")
            if confidence is not None and not 0.0 <= confidence <= 1.0:
                raise QueryError(f"confidence must be within [0, 1], got {confidence}")
            boxes[index] = updated
            annotations["bboxes"] = boxes
            self.source.update_blob(blob_id, annotations=annotations)

    def remove_box(self, blob_id: str, box_id: str) -> None:
        with self._lock:
            (record,) = self._require([blob_id])
            annotations = dict(record.annotations)
            boxes = annotations.get("bboxes", [])
            kept = [b for b in boxes if b.get("id") != box_id]
            if len(kept) == len(boxes):
                raise NotFound(f"binary {blob_id!r} has no bounding box {box_id!r}")
            annotations["bboxes"] = kept
            self.source.update_blob(blob_id, annotations=annotations)

    def box_labels(self, data_filter: DataFilter) -> list[str]:
        """The distinct labels of the boxes on matching binaries, sorted."""
        found: set[str] = set()
        for blob in self.all_blobs(data_filter):
            found.update(b.get("label", "") for b in blob.annotations.get("bboxes", []))
        return sorted(found)

    # --- datasets --------------------------------------------------------------------------

    def add_to_dataset(self, ids: Sequence[str], dataset_id: str) -> None:
        self.datasets.get(dataset_id)
        with self._lock:
            for record in self._require(ids):
                if dataset_id not in record.dataset_ids:
                    self.source.update_blob(
                        record.id, dataset_ids=(*record.dataset_ids, dataset_id)
                    )

    def remove_from_dataset(self, ids: Sequence[str], dataset_id: str) -> None:
        self.datasets.get(dataset_id)
        with self._lock:
            for record in self._require(ids):
                if dataset_id in record.dataset_ids:
                    kept = tuple(d for d in record.dataset_ids if d != dataset_id)
                    self.source.update_blob(record.id, dataset_ids=kept)

    def delete_dataset(self, dataset_id: str) -> None:
        """Delete a dataset and its memberships; the binaries stay."""
        self.datasets.delete(dataset_id)
        with self._lock:
            for record in self.all_blobs(DataFilter(dataset_id=dataset_id)):
                kept = tuple(d for d in record.dataset_ids if d != dataset_id)
                self.source.update_blob(record.id, dataset_ids=kept)

    def merge_datasets(self, dataset_ids: Sequence[str], name: str) -> str:
        """A new dataset holding every binary of the given ones; return its id."""
        for dataset_id in dataset_ids:
            self.datasets.get(dataset_id)
        members: dict[str, None] = {}
        for dataset_id in dataset_ids:
            members.update(dict.fromkeys(self.ids(DataFilter(dataset_id=dataset_id))))
        merged = self.datasets.create(name)
        self.add_to_dataset(list(members), merged.id)
        return merged.id

    # --- SQL and MQL -----------------------------------------------------------------------

    def sql(self, query: str) -> list[dict[str, Any]]:
        """Run a read-only SQL SELECT over the ``readings`` table (see :mod:`capsync.query.sql`)."""
        from capsync.query.sql import run_sql

        return run_sql(self, query)

    def mql(self, pipeline: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run a MongoDB aggregation pipeline over the readings (see :mod:`capsync.query.mql`)."""
        native = getattr(self.source, "aggregate", None)
        if native is not None:  # the store runs (and checks) the pipeline itself: MongoDB
            return list(native(pipeline))
        from capsync.query.mql import check_pipeline

        check_pipeline(pipeline)
        from capsync.query.sql import run_mql

        rows = run_mql(self, pipeline)
        if pipeline and "$count" in pipeline[-1] and rows and not next(iter(rows[0].values())):
            return []  # MongoDB's $count emits nothing for no input
        return rows


def _every(
    fetch: Callable[[DataFilter, Page], tuple[list[R], Cursor | None]],
    data_filter: DataFilter,
    batch: int,
) -> Iterator[R]:
    """Every record ``fetch`` pages through, a page of ``batch`` at a time."""
    cursor: Cursor | None = None
    while True:
        records, cursor_next = fetch(data_filter, Page(limit=batch, after=cursor))
        yield from records
        if len(records) < batch or cursor_next is None:
            return
        cursor = cursor_next


def _check_tags(tags: Sequence[str]) -> None:
    for tag in tags:
        if not tag:
            raise QueryError("a tag must not be empty")
