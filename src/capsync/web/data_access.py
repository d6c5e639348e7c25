"""Every read and write the data page makes, in one place, through the data API's query layer.

The page's JSON API (:mod:`capsync.web.api`) calls only this module, and this
module calls only :class:`capsync.query.DataQuery`, the layer behind Viam's
DataService and DatasetService on the same server: a tag, box or dataset
changed on the page is what a ``DataClient`` sees, and the other way round.

Binaries are listed newest first, a page at a time after an opaque ``last``
token. A tags filter means "any of these tags", as in Viam's data API. Boxes
use Viam's ``BoundingBox`` fields (``id``, ``label``, ``x_min_normalized`` ...
``y_max_normalized``, optional ``confidence``).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from capsync.query import Cursor, DataFilter, DataQuery, NotFound, Page, QueryError
from capsync.query.api import box
from capsync.server.stores.base import BlobRecord
from capsync.web.series import Series, downsample
from capsync.web.series_sql import sql_series

_REMOTE_PREFIXES = ("gridfs:",)  # payloads not under the data dir (see capsync.query.payloads)

__all__ = [
    "Binary",
    "BinaryFilter",
    "DataAccess",
    "Dataset",
    "NotFound",
    "Reading",
    "Source",
    "check_tag",
    "numeric_fields",
]

SOURCES_CACHE_S = 5.0  # the source list is recomputed at most this often
MAX_LABEL_CHARS = 200
MAX_TAG_CHARS = 200
SERIES_BATCH = 50_000

log = logging.getLogger(__name__)  # readings read from the query layer at a time for a plot


@dataclass(frozen=True)
class BinaryFilter:
    """Which binaries to list; every given criterion must hold (AND)."""

    part_id: str | None = None
    component: str | None = None
    method: str | None = None
    tags: tuple[str, ...] = ()  # any of these
    dataset_id: str | None = None
    since_ns: int | None = None  # inclusive, on time_requested
    until_ns: int | None = None  # exclusive

    def data_filter(self) -> DataFilter:
        return DataFilter(
            part_id=self.part_id,
            component_name=self.component,
            method_name=self.method,
            tags=self.tags,
            dataset_id=self.dataset_id,
            start_ns=self.since_ns,
            end_ns=self.until_ns,
        )


@dataclass(frozen=True)
class Binary:
    """One binary reading or file with its tags, boxes and datasets."""

    id: str
    part_id: str
    component_type: str
    component_name: str
    method_name: str
    time_requested_ns: int
    time_received_ns: int
    mime_type: str
    file_extension: str
    file_name: str
    size_bytes: int
    tags: tuple[str, ...]
    bboxes: tuple[dict[str, Any], ...]
    dataset_ids: tuple[str, ...]
    classifications: tuple[dict[str, Any], ...] = ()
    path: str = field(default="", repr=False)  # stored payload, relative to the data dir


@dataclass(frozen=True)
class Source:
    """One (part, component, method, kind) that sent data, and how many items."""

    part_id: str
    component_type: str
    component_name: str
    method_name: str
    kind: str  # "tabular" or "binary"
    count: int


@dataclass(frozen=True)
class Dataset:
    id: str
    name: str
    count: int


@dataclass(frozen=True)
class Reading:
    time_requested_ns: int
    time_received_ns: int
    data: dict[str, Any]


class DataAccess:
    """The page's view of one server's data: its query layer and the payloads in ``data_dir``."""

    def __init__(self, query: DataQuery, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir).resolve()
        self._query = query
        self._sources: tuple[float, list[Source]] | None = None

    def close(self) -> None:
        """Nothing to release: the query layer belongs to the server."""

    # --- binaries ----------------------------------------------------------------------

    def list_binaries(
        self, binary_filter: BinaryFilter, last: str = "", limit: int = 50
    ) -> tuple[int, list[Binary], str]:
        """The number of matches, one page of them newest first, and the token of the
        next page ("" after the last one)."""
        data_filter = binary_filter.data_filter()
        total, _ = self._query.count_blobs(data_filter)
        page = Page(limit=limit, after=Cursor.parse(last), descending=True)
        records, cursor = self._query.blob_page(data_filter, page)
        more = cursor is not None and len(records) == limit
        return total, [_binary(r) for r in records], cursor.token() if more and cursor else ""

    def get_binary(self, binary_id: str) -> Binary:
        found = self._query.blobs_by_ids([binary_id])
        if not found:
            raise NotFound(f"no binary with id {binary_id!r}")
        return _binary(found[0])

    def payload_path(self, binary: Binary) -> Path:
        """Where the payload of ``binary`` is: an existing file, never outside the data dir.

        A payload kept elsewhere (``gridfs:...``) is copied once into
        ``capsync-query/payload-cache/`` (named by the binary's id) and served from there."""
        if binary.path.startswith(_REMOTE_PREFIXES):
            return self._cached_payload(binary)
        path = self.data_dir.joinpath(*binary.path.split("/")).resolve()
        if not path.is_relative_to(self.data_dir) or path == self.data_dir:
            raise NotFound(f"the payload of {binary.id} is not in the data folder")
        if not path.is_file():
            raise NotFound(f"the payload of {binary.id} is missing")
        return path

    def _cached_payload(self, binary: Binary) -> Path:
        cache = self.data_dir / "capsync-query" / "payload-cache"
        path = cache / f"{binary.id}{binary.file_extension}"
        if not path.is_file():
            data = self._query.payloads.read(binary.path)  # NotFound when it is gone
            cache.mkdir(mode=0o700, parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.part")
            partial.write_bytes(data)
            os.replace(partial, path)
        return path

    def add_tags(self, binary_ids: Sequence[str], tags: Sequence[str]) -> int:
        """Add ``tags`` to each binary; returns how many binaries gained a tag."""
        return self._query.add_tags(list(binary_ids), [check_tag(t) for t in tags])

    def remove_tags(self, binary_ids: Sequence[str], tags: Sequence[str]) -> int:
        """Remove ``tags``; returns how many binaries lost at least one tag."""
        return self._query.remove_tags(list(binary_ids), list(tags))

    def add_box(
        self,
        binary_id: str,
        label: str,
        x_min: float,
        y_min: float,
        x_max: float,
        y_max: float,
    ) -> str:
        """Add a labelled box (normalized coordinates); returns its id."""
        label = label.strip()
        if not label or len(label) > MAX_LABEL_CHARS:
            raise ValueError(f"label must be 1 to {MAX_LABEL_CHARS} characters")
        if not (x_min < x_max and y_min < y_max):
            raise ValueError("a box needs x_min < x_max and y_min < y_max")
        return self._query.add_box(binary_id, label, x_min, y_min, x_max, y_max)

    def remove_box(self, binary_id: str, box_id: str) -> bool:
        """Delete one box; False when the binary has no box with that id."""
        self.get_binary(binary_id)  # an unknown binary is NotFound, not False
        try:
            self._query.remove_box(binary_id, box_id)
        except NotFound:
            return False
        return True

    # --- datasets ----------------------------------------------------------------------

    def create_dataset(self, name: str) -> str:
        name = name.strip()
        if not name or len(name) > MAX_LABEL_CHARS:
            raise ValueError(f"a dataset name must be 1 to {MAX_LABEL_CHARS} characters")
        try:
            return self._query.datasets.create(name).id
        except QueryError as exc:
            raise ValueError(str(exc)) from None

    def list_datasets(self) -> list[Dataset]:
        """Every dataset, oldest first, with how many binaries it holds."""
        return [
            Dataset(d.id, d.name, self._query.count_blobs(DataFilter(dataset_id=d.id))[0])
            for d in self._query.datasets.list()
        ]

    def _members(self, dataset_id: str, binary_ids: Sequence[str]) -> tuple[int, int]:
        """How many of these binaries are in the dataset, and how many are not."""
        self._query.datasets.get(dataset_id)
        records = self._query.blobs_by_ids(list(binary_ids))
        if len(records) != len(set(binary_ids)):
            missing = set(binary_ids) - {r.id for r in records}
            raise NotFound(f"no binary with id {min(missing)!r}")
        inside = sum(dataset_id in r.dataset_ids for r in records)
        return inside, len(records) - inside

    def add_to_dataset(self, dataset_id: str, binary_ids: Sequence[str]) -> int:
        """Add the binaries; returns how many were not in it before."""
        _, outside = self._members(dataset_id, binary_ids)
        self._query.add_to_dataset(list(binary_ids), dataset_id)
        return outside

    def remove_from_dataset(self, dataset_id: str, binary_ids: Sequence[str]) -> int:
        """Remove the binaries; returns how many were in it."""
        inside, _ = self._members(dataset_id, binary_ids)
        self._query.remove_from_dataset(list(binary_ids), dataset_id)
        return inside

    # --- sources and tags ----------------------------------------------------------------

    def sources(self) -> list[Source]:
        """Every source with its item counts (recomputed at most every few seconds)."""
        cached = self._sources
        if cached is not None and time.monotonic() - cached[0] < SOURCES_CACHE_S:
            return cached[1]
        found: list[Source] = []
        for part, component_type, component, method in sorted(self._query.source.sources()):
            data_filter = DataFilter(
                part_id=part,
                component_type=component_type,
                component_name=component,
                method_name=method,
            )
            readings = self._query.count_tabular(data_filter)
            binaries, _ = self._query.count_blobs(data_filter)
            for kind, count in (("binary", binaries), ("tabular", readings)):
                if count:
                    found.append(Source(part, component_type, component, method, kind, count))
        self._sources = (time.monotonic(), found)
        return found

    def tag_counts(self) -> dict[str, int]:
        """Every tag on a binary, with how many binaries carry it."""
        counts: Counter[str] = Counter()
        for record in self._query.iter_blobs(DataFilter()):
            counts.update(record.tags)
        return dict(sorted(counts.items()))

    # --- readings ----------------------------------------------------------------------

    def latest_readings(
        self, part_id: str | None, component: str, method: str, limit: int = 20
    ) -> list[Reading]:
        """The newest ``limit`` readings of one source, newest first."""
        data_filter = DataFilter(part_id=part_id, component_name=component, method_name=method)
        records, _ = self._query.tabular_page(data_filter, Page(limit=limit, descending=True))
        return [Reading(r.time_requested_ns, r.time_received_ns, r.data) for r in records]

    def series(
        self,
        part_id: str | None,
        component: str,
        method: str,
        field_path: str,
        *,
        since_ns: int | None = None,
        until_ns: int | None = None,
        buckets: int = 1000,
    ) -> Series:
        """One numeric field over time, min/max-downsampled to about ``2 * buckets`` points.

        DuckDB computes it in the query layer (:mod:`capsync.web.series_sql`); a
        field SQL cannot reach (one of mixed types, kept as JSON text) is read
        reading by reading instead.
        """
        keys = field_path.split(".")
        try:
            return sql_series(
                self._query,
                part_id,
                component,
                method,
                keys,
                since_ns=since_ns,
                until_ns=until_ns,
                buckets=buckets,
            )
        except QueryError:
            log.debug("series of %s by SQL failed; reading it record by record", field_path)
        data_filter = DataFilter(
            part_id=part_id,
            component_name=component,
            method_name=method,
            start_ns=since_ns,
            end_ns=until_ns,
        )
        times: list[int] = []
        values: list[float] = []
        for record in self._query.iter_tabular(data_filter, batch=SERIES_BATCH):
            value = _field(record.data, keys)
            if value is not None:
                times.append(record.time_requested_ns)
                values.append(value)
        return downsample(
            np.asarray(times, dtype=np.int64),
            np.asarray(values, dtype=np.float64),
            buckets,
            since_ns=since_ns,
            until_ns=until_ns,
        )


def check_tag(tag: str) -> str:
    tag = tag.strip()
    if not tag or len(tag) > MAX_TAG_CHARS:
        raise ValueError(f"a tag must be 1 to {MAX_TAG_CHARS} characters")
    return tag


def numeric_fields(data: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of the numeric (or boolean) leaves of a reading."""
    paths: list[str] = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            paths.extend(numeric_fields(value, path + "."))
        elif isinstance(value, int | float):
            paths.append(path)
    return paths


def _field(data: Any, keys: Iterable[str]) -> float | None:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    if isinstance(data, bool):
        return float(data)
    if isinstance(data, int | float) and math.isfinite(data):
        return float(data)
    return None


def _binary(record: BlobRecord) -> Binary:
    annotations = record.annotations or {}
    # Stored as protobuf JSON, which leaves zero coordinates (and an empty id) out.
    boxes = tuple(box(b) for b in annotations.get("bboxes") or ())
    return Binary(
        id=record.id,
        part_id=record.part_id,
        component_type=record.component_type,
        component_name=record.component_name,
        method_name=record.method_name,
        time_requested_ns=record.time_requested_ns,
        time_received_ns=record.time_received_ns,
        mime_type=record.mime_type,
        file_extension=record.file_extension,
        file_name=record.file_name,
        size_bytes=record.size_bytes,
        tags=record.tags,
        bboxes=boxes,
        dataset_ids=record.dataset_ids,
        classifications=tuple(annotations.get("classifications") or ()),
        path=record.path,
    )
