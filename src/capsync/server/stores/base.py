"""What the ingest server keeps, and the :class:`Store` protocol every store implements.

Three kinds of item arrive (SPEC §4, §7):

* tabular readings, which arrive and are kept as :class:`TabularBatch` es (one
  ``DataCaptureUpload`` body each, undecoded) and are read back as
  :class:`TabularRecord` s, decoded only then;
* :class:`BlobRecord`: one binary reading (``kind="binary"``) or one arbitrary
  file (``kind="file"``); the payload itself lives in a file under the data
  dir (see :mod:`capsync.server.blobs`) or in GridFS, the record points at it.

Ids are deterministic (see :mod:`capsync.server.records`): a batch's id is a hash
of its upload metadata and body, so the same upload sent twice has the same id
and the store keeps it once. De-duplication is enforced by the database itself
(a unique key, insert-or-ignore), never by check-then-insert alone: several
server processes may share a MongoDB store.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["tabular", "binary", "file"]
KINDS: tuple[Kind, ...] = ("tabular", "binary", "file")
BlobKind = Literal["binary", "file"]
DEFAULT_MONGO_DATABASE = "capsync"  # where ``serve --mongo-uri`` keeps its records


class StoreUnavailable(Exception):
    """The database cannot be reached (or is busy) right now; the same call may work later."""


@dataclass(frozen=True)
class TabularRecord:
    """One tabular reading. Times are UTC nanoseconds since the epoch (0 when unset)."""

    id: str  # dedupe key: hex sha256 of the upload metadata and the reading
    upload_id: str  # file_id of the upload that first brought this reading
    part_id: str
    component_type: str
    component_name: str
    method_name: str
    tags: tuple[str, ...]
    time_requested_ns: int
    time_received_ns: int
    mime_type: str
    data: dict[str, Any]  # the Struct as plain JSON-able values
    method_parameters: dict[str, Any] = field(default_factory=dict)
    uploaded_at_ns: int = 0  # when the server first stored it
    kind: Literal["tabular"] = "tabular"


@dataclass(frozen=True)
class BlobRecord:
    """One binary reading or arbitrary file, stored at ``path`` (relative to the data dir).

    For ``kind="file"``, ``time_requested_ns`` is the file's modification time on
    the machine (its create time, then the arrival time, when unset) and
    ``time_received_ns`` is when it arrived.
    """

    id: str  # dedupe key and binary_data_id: hex sha256 of metadata and content
    upload_id: str
    kind: BlobKind
    part_id: str
    component_type: str
    component_name: str
    method_name: str
    tags: tuple[str, ...]
    time_requested_ns: int
    time_received_ns: int
    mime_type: str
    file_extension: str  # with the leading dot, or ""
    path: str  # relative to the data dir, "/"-separated
    size_bytes: int
    sha256: str  # hex digest of the payload
    file_name: str = ""
    dataset_ids: tuple[str, ...] = ()
    annotations: dict[str, Any] = field(default_factory=dict)
    method_parameters: dict[str, Any] = field(default_factory=dict)
    uploaded_at_ns: int = 0


Record = TabularRecord | BlobRecord


@dataclass(frozen=True)
class ItemFilter:
    """Which stored items to list. Every given criterion must hold (AND).

    ``component`` matches the component name; ``tags`` must all be present;
    ``since_ns``/``until_ns`` bound ``time_requested_ns`` (inclusive since,
    exclusive until).
    """

    part_id: str | None = None
    component: str | None = None
    component_type: str | None = None
    method: str | None = None
    kind: Kind | None = None
    tags: tuple[str, ...] = ()
    since_ns: int | None = None
    until_ns: int | None = None

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if isinstance(self.tags, str):
            raise TypeError("tags must be a sequence of strings, not one string")


def matches(record: Record, f: ItemFilter) -> bool:
    """True when ``record`` meets every criterion of ``f``."""
    return (
        (f.part_id is None or record.part_id == f.part_id)
        and (f.component is None or record.component_name == f.component)
        and (f.component_type is None or record.component_type == f.component_type)
        and (f.method is None or record.method_name == f.method)
        and (f.kind is None or record.kind == f.kind)
        and all(tag in record.tags for tag in f.tags)
        and (f.since_ns is None or record.time_requested_ns >= f.since_ns)
        and (f.until_ns is None or record.time_requested_ns < f.until_ns)
    )


def blob_changes(
    tags: Sequence[str] | None,
    annotations: dict[str, Any] | None,
    dataset_ids: Sequence[str] | None,
) -> dict[str, Any]:
    """The fields :meth:`Store.update_blob` replaces: those given (not None), as stored."""
    changes: dict[str, Any] = {}
    if tags is not None:
        changes["tags"] = list(tags)
    if annotations is not None:
        changes["annotations"] = annotations
    if dataset_ids is not None:
        changes["dataset_ids"] = list(dataset_ids)
    return changes


@dataclass(frozen=True, eq=False)
class TabularBatch:
    """One accepted tabular upload, kept as bytes: what a store writes on ingest.

    ``body`` is canonical: the deterministic ``UploadMetadata`` as field 1, then
    the request's ``sensor_contents`` fields as they arrived, so it parses as a
    ``DataCaptureUploadRequest`` and its sha256 is ``id``. The arrays (one entry
    per reading, from the scanner) let a store index and de-duplicate without
    decoding: ``offsets``/``lengths`` locate each ``SensorData`` in ``body``.
    """

    id: str  # hex sha256 of body: the answer's file_id; same upload, same id
    part_id: str
    component_type: str
    component_name: str
    method_name: str
    file_name: str  # the capture file it came from ("" when not said)
    tags: tuple[str, ...]
    mime_type: str
    method_parameters: dict[str, Any]
    body: bytes
    offsets: Any  # np.int64 array: offset of each SensorData payload in body
    lengths: Any  # np.int64 array: its length in bytes
    time_requested_ns: Any  # np.int64 array
    time_received_ns: Any  # np.int64 array
    uploaded_at_ns: int = 0

    @property
    def count(self) -> int:
        return len(self.offsets)

    @property
    def time_min_ns(self) -> int:
        return int(self.time_requested_ns.min()) if self.count else 0

    @property
    def time_max_ns(self) -> int:
        return int(self.time_requested_ns.max()) if self.count else 0

    def reading_bytes(self, index: int) -> bytes:
        """The ``SensorData`` bytes of reading ``index`` (its per-reading de-dup key)."""
        at = int(self.offsets[index])
        return self.body[at : at + int(self.lengths[index])]


class Store(abc.ABC):
    """Where the ingest server records what arrived. Implementations must be thread-safe.

    Any method may raise :class:`StoreUnavailable` when the database is
    unreachable or busy (the client retries).

    Writing (the ingest path):

    * :meth:`record_batch` keeps one tabular batch, exactly once by its id;
    * :meth:`record_blob` / :meth:`record_blobs` keep blob records (one
      transaction per call for ``record_blobs``).

    Reading (``capsync data list|export``, :mod:`capsync.server.query`, the data API):

    * :meth:`query` yields decoded :class:`TabularRecord` and
      :class:`BlobRecord` s matching an :class:`ItemFilter`, in time order;
    * :meth:`iter_tabular_batches` yields whole decoded batches (lists of
      :class:`TabularRecord`, time-ordered within a batch, batches in no
      global order): the cheap way to scan readings by source and time;
    * :meth:`get_blob` finds one blob record by id.

    Changing what is kept (the data API):

    * :meth:`delete` removes records by id and/or filter;
    * :meth:`update_blob` replaces a blob record's tags, annotations or dataset ids.
    """

    # --- ingest ----------------------------------------------------------------------------

    @abc.abstractmethod
    def record_batch(self, batch: TabularBatch) -> int:
        """Keep ``batch`` durably (before returning); return how many readings were new.

        A batch whose ``id`` is already kept adds nothing (0). A new batch that
        overlaps batches from the same source file (a file re-split after a
        crash) keeps only readings not already kept, byte for byte.
        """

    @abc.abstractmethod
    def record_tabular(self, records: Sequence[TabularRecord]) -> int:
        """Keep already-decoded readings (migration, tests); return how many were new.

        Each group of records from one ``upload_id`` becomes one batch
        (:func:`capsync.server.records.batches_from_records`)."""

    @abc.abstractmethod
    def record_blob(self, record: BlobRecord) -> bool:
        """Keep one blob record; return False when one with its ``id`` was already there."""

    def record_blobs(self, records: Sequence[BlobRecord]) -> list[bool]:
        """Keep several blob records (one commit where the store can); True for each new one."""
        return [self.record_blob(record) for record in records]

    # --- reading ---------------------------------------------------------------------------

    @abc.abstractmethod
    def query(self, item_filter: ItemFilter | None = None) -> Iterator[Record]:
        """Matching records, ordered by ``time_requested_ns``, then kind, then id."""

    @abc.abstractmethod
    def iter_tabular_batches(
        self, item_filter: ItemFilter | None = None
    ) -> Iterator[list[TabularRecord]]:
        """Matching tabular readings, one list per stored batch (time-ordered within it).

        Batches come in no guaranteed order (the local store: by earliest reading);
        lists are never empty."""

    def get_blob(self, blob_id: str) -> BlobRecord | None:
        """The blob record with ``blob_id``, or None."""
        for record in self.query(ItemFilter(kind=None)):
            if isinstance(record, BlobRecord) and record.id == blob_id:
                return record
        return None

    # --- changing what is kept -------------------------------------------------------------

    @abc.abstractmethod
    def delete(
        self, ids: Sequence[str] | None = None, item_filter: ItemFilter | None = None
    ) -> int:
        """Remove records whose id is in ``ids`` (when given) and that match ``item_filter``
        (when given; both None removes nothing); return how many were removed.

        Tabular ids are reading ids (``<batch id>:<index>``); removing a blob record
        leaves its payload file to the caller."""

    @abc.abstractmethod
    def update_blob(
        self,
        blob_id: str,
        *,
        tags: Sequence[str] | None = None,
        annotations: dict[str, Any] | None = None,
        dataset_ids: Sequence[str] | None = None,
    ) -> bool:
        """Replace the given fields of one blob record; False when there is no such record."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
