"""Every read and write the data page makes, in one place.

The page's JSON API (:mod:`capsync.web.api`) calls only this module, never a
database. Today it reads through the ingest store's query interface
(:meth:`capsync.server.store.Store.query`) and keeps what that store cannot
change (tags, boxes, datasets) in the TEMPORARY side table of
:mod:`capsync.web.edits`. When the data API's query layer (Viam's DataService)
lands, this module switches to it, so that what the page changes is what a
``DataClient`` sees; the operations below are the whole contract the page needs.

Binaries are listed newest first, a page at a time after an opaque ``last``
token. A tags filter means "any of these tags", as
in Viam's data API. Boxes use Viam's ``BoundingBox`` fields (``id``,
``label``, ``x_min_normalized`` ... ``y_max_normalized``, optional
``confidence``).
"""

from __future__ import annotations

import math
import os
import threading
import time
import uuid
from array import array
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from capsync.server.store import BlobRecord, ItemFilter, Store, TabularRecord
from capsync.web.edits import Edited, EditsTable
from capsync.web.series import Series, downsample

SOURCES_CACHE_S = 5.0  # the source list is recomputed at most this often
MAX_LABEL_CHARS = 200
MAX_TAG_CHARS = 200
BOX_CORNERS = ("x_min_normalized", "y_min_normalized", "x_max_normalized", "y_max_normalized")
RECORD_CACHE_SIZE = 20_000  # binary records kept by id (a thumbnail or viewer looks one up)


class NotFound(LookupError):
    """No binary or dataset with that id."""


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


@dataclass(frozen=True)
class Binary:
    """One binary reading with its current tags, boxes and datasets."""

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
    kind: str
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
    """The page's view of one server's data (``store`` plus the payloads in ``data_dir``)."""

    def __init__(self, store: Store, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir).resolve()
        self._store = store
        self._edits = EditsTable(self.data_dir)
        self._write_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._records: OrderedDict[str, BlobRecord] = OrderedDict()
        self._sources: tuple[float, list[Source]] | None = None

    def close(self) -> None:
        self._edits.close()

    # --- binaries ----------------------------------------------------------------------

    def _binaries(self, item_filter: ItemFilter) -> Iterator[Binary]:
        edits = self._edits.all_edits()
        for record in self._store.query(replace(item_filter, kind="binary")):
            if isinstance(record, BlobRecord):
                self._remember(record)
                yield _binary(record, edits.get(record.id))

    def _remember(self, record: BlobRecord) -> None:
        # Stored records never change (edits are kept apart), so they can be cached by id.
        with self._cache_lock:
            self._records[record.id] = record
            self._records.move_to_end(record.id)
            while len(self._records) > RECORD_CACHE_SIZE:
                self._records.popitem(last=False)

    def list_binaries(
        self, binary_filter: BinaryFilter, last: str = "", limit: int = 50
    ) -> tuple[int, list[Binary], str]:
        """The number of matches, one page of them newest first (after the page whose
        token is ``last``), and the token of the next page ("" after the last one)."""
        f = binary_filter
        after = _parse_token(last)
        store_filter = ItemFilter(
            part_id=f.part_id,
            component=f.component,
            method=f.method,
            since_ns=f.since_ns,
            until_ns=f.until_ns,
        )
        wanted_tags = set(f.tags)
        matches = [
            b
            for b in self._binaries(store_filter)
            if (not wanted_tags or wanted_tags.intersection(b.tags))
            and (f.dataset_id is None or f.dataset_id in b.dataset_ids)
        ]
        matches.sort(key=_position, reverse=True)
        later = [b for b in matches if after is None or _position(b) < after]
        page = later[:limit]
        more = len(later) > limit
        return len(matches), page, _token(page[-1]) if more else ""

    def get_binary(self, binary_id: str) -> Binary:
        record = self._find(binary_id)
        return _binary(record, self._edits.get(binary_id))

    def _find(self, binary_id: str) -> BlobRecord:
        with self._cache_lock:
            cached = self._records.get(binary_id)
        if cached is not None:
            return cached
        # Today's store has no lookup by id: scan the binaries (swapped for the data API's).
        for record in self._store.query(ItemFilter(kind="binary")):
            if isinstance(record, BlobRecord):
                self._remember(record)
                if record.id == binary_id:
                    return record
        raise NotFound(f"no binary with id {binary_id!r}")

    def payload_path(self, binary: Binary) -> Path:
        """Where the payload of ``binary`` is: an existing file, never outside the data dir."""
        path = self.data_dir.joinpath(*binary.path.split("/")).resolve()
        if not path.is_relative_to(self.data_dir) or path == self.data_dir:
            raise NotFound(f"the payload of {binary.id} is not in the data folder")
        if not path.is_file():
            raise NotFound(f"the payload of {binary.id} is missing")
        return path

    def _change(self, binary_ids: Sequence[str], change: Any) -> int:
        """Apply ``change(Binary) -> Binary | None`` to each; store those that changed."""
        wanted = set(binary_ids)
        with self._write_lock:
            found = {b.id: b for b in self._binaries(ItemFilter()) if b.id in wanted}
            missing = wanted - found.keys()
            if missing:
                raise NotFound(f"no binary with id {min(missing)!r}")
            changed: dict[str, Edited] = {}
            for before in found.values():
                after = change(before)
                if after is not None and after != before:
                    changed[before.id] = Edited(after.tags, after.bboxes, after.dataset_ids)
            self._edits.put(changed)
            if changed:
                self._sources = None
            return len(changed)

    def add_tags(self, binary_ids: Sequence[str], tags: Sequence[str]) -> int:
        """Add ``tags`` to each binary; returns how many binaries gained a tag."""
        new = [check_tag(t) for t in tags]
        return self._change(
            binary_ids, lambda b: replace(b, tags=tuple(dict.fromkeys((*b.tags, *new))))
        )

    def remove_tags(self, binary_ids: Sequence[str], tags: Sequence[str]) -> int:
        """Remove ``tags``; returns how many binaries lost at least one tag."""
        gone = set(tags)
        return self._change(
            binary_ids, lambda b: replace(b, tags=tuple(t for t in b.tags if t not in gone))
        )

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
        corners = (x_min, y_min, x_max, y_max)
        if not all(isinstance(v, int | float) and 0.0 <= v <= 1.0 for v in corners):
            raise ValueError("box coordinates must be numbers in [0, 1]")
        if not (x_min < x_max and y_min < y_max):
            raise ValueError("a box needs x_min < x_max and y_min < y_max")
        box = {
            "id": uuid.uuid4().hex,
            "label": label,
            "x_min_normalized": float(x_min),
            "y_min_normalized": float(y_min),
            "x_max_normalized": float(x_max),
            "y_max_normalized": float(y_max),
        }
        self._change([binary_id], lambda b: replace(b, bboxes=(*b.bboxes, box)))
        return str(box["id"])

    def remove_box(self, binary_id: str, box_id: str) -> bool:
        """Delete one box; False when the binary has no box with that id."""
        return bool(
            self._change(
                [binary_id],
                lambda b: replace(b, bboxes=tuple(x for x in b.bboxes if x.get("id") != box_id)),
            )
        )

    # --- datasets ----------------------------------------------------------------------

    def create_dataset(self, name: str) -> str:
        name = name.strip()
        if not name or len(name) > MAX_LABEL_CHARS:
            raise ValueError(f"a dataset name must be 1 to {MAX_LABEL_CHARS} characters")
        dataset_id = uuid.uuid4().hex
        self._edits.create_dataset(dataset_id, name)
        return dataset_id

    def list_datasets(self) -> list[Dataset]:
        """Datasets created here and those named by uploads, with their binary counts."""
        counts: Counter[str] = Counter()
        for binary in self._binaries(ItemFilter()):
            counts.update(binary.dataset_ids)
        names = self._edits.datasets()
        for dataset_id in counts:
            names.setdefault(dataset_id, dataset_id)
        return [Dataset(i, name, counts[i]) for i, name in names.items()]

    def _dataset(self, dataset_id: str) -> None:
        if dataset_id not in {d.id for d in self.list_datasets()}:
            raise NotFound(f"no dataset with id {dataset_id!r}")

    def add_to_dataset(self, dataset_id: str, binary_ids: Sequence[str]) -> int:
        self._dataset(dataset_id)
        return self._change(
            binary_ids,
            lambda b: replace(b, dataset_ids=tuple(dict.fromkeys((*b.dataset_ids, dataset_id)))),
        )

    def remove_from_dataset(self, dataset_id: str, binary_ids: Sequence[str]) -> int:
        self._dataset(dataset_id)
        return self._change(
            binary_ids,
            lambda b: replace(b, dataset_ids=tuple(d for d in b.dataset_ids if d != dataset_id)),
        )

    # --- sources and tags ----------------------------------------------------------------

    def sources(self) -> list[Source]:
        """Every source with its item count (recomputed at most every few seconds)."""
        cached = self._sources
        if cached is not None and time.monotonic() - cached[0] < SOURCES_CACHE_S:
            return cached[1]
        counts: Counter[tuple[str, str, str, str, str]] = Counter()
        for record in self._store.query():
            counts[
                (
                    record.part_id,
                    record.component_type,
                    record.component_name,
                    record.method_name,
                    record.kind,
                )
            ] += 1
        result = [Source(*key, count=n) for key, n in sorted(counts.items())]
        self._sources = (time.monotonic(), result)
        return result

    def tag_counts(self) -> dict[str, int]:
        """Every tag on a binary, with how many binaries carry it."""
        counts: Counter[str] = Counter()
        for binary in self._binaries(ItemFilter()):
            counts.update(binary.tags)
        return dict(sorted(counts.items()))

    # --- readings ----------------------------------------------------------------------

    def _readings(
        self,
        part_id: str | None,
        component: str,
        method: str,
        since_ns: int | None = None,
        until_ns: int | None = None,
    ) -> Iterator[TabularRecord]:
        item_filter = ItemFilter(
            part_id=part_id,
            component=component,
            method=method,
            kind="tabular",
            since_ns=since_ns,
            until_ns=until_ns,
        )
        for record in self._store.query(item_filter):
            if isinstance(record, TabularRecord):
                yield record

    def latest_readings(
        self, part_id: str | None, component: str, method: str, limit: int = 20
    ) -> list[Reading]:
        """The newest ``limit`` readings of one source, newest first."""
        last: deque[TabularRecord] = deque(maxlen=limit)
        last.extend(self._readings(part_id, component, method))
        return [Reading(r.time_requested_ns, r.time_received_ns, r.data) for r in reversed(last)]

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
        """One numeric field over time, min/max-downsampled to about ``2 * buckets`` points."""
        keys = field_path.split(".")
        times = array("q")
        values = array("d")
        for record in self._readings(part_id, component, method, since_ns, until_ns):
            value = _field(record.data, keys)
            if value is not None:
                times.append(record.time_requested_ns)
                values.append(value)
        return downsample(times, values, buckets, since_ns=since_ns, until_ns=until_ns)


def _position(binary: Binary) -> tuple[int, str]:
    return binary.time_requested_ns, binary.id


def _token(binary: Binary) -> str:
    return f"{binary.time_requested_ns}_{binary.id}"


def _parse_token(token: str) -> tuple[int, str] | None:
    """The position a page token names ("" is the first page); ValueError if malformed."""
    if not token:
        return None
    time_text, sep, binary_id = token.partition("_")
    if not sep or not binary_id or not time_text.lstrip("-").isdigit():
        raise ValueError(f"last: {token!r} is not a page token this server returned")
    return int(time_text), binary_id


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


def _binary(record: BlobRecord, edited: Edited | None) -> Binary:
    annotations = record.annotations or {}
    boxes = tuple(
        # Stored as protobuf JSON, which leaves zero coordinates out.
        {**dict.fromkeys(BOX_CORNERS, 0.0), **box, "id": box.get("id") or f"{record.id[:16]}-{i}"}
        for i, box in enumerate(annotations.get("bboxes") or ())
    )
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
        tags=edited.tags if edited else record.tags,
        bboxes=edited.bboxes if edited else boxes,
        dataset_ids=edited.dataset_ids if edited else record.dataset_ids,
        classifications=tuple(annotations.get("classifications") or ()),
        path=record.path,
    )
