"""What the ingest server keeps, and the interface of the database that keeps it.

Two kinds of item arrive (SPEC §4, §7):

* :class:`TabularRecord`: one tabular ``SensorData`` (a struct reading);
* :class:`BlobRecord`: one binary reading (``kind="binary"``) or one arbitrary
  file (``kind="file"``); the payload itself lives in a file under the data
  dir (see :mod:`capsync.server.blobs`), the record points at it.

Every record carries an ``id`` computed by the caller from the upload's part,
metadata and content (:mod:`capsync.server.service`), so the same upload sent
twice yields the same ids. A :class:`Store` must insert a record whose ``id``
it already holds as a no-op, enforced by the database itself (a unique key,
insert-or-ignore), never by check-then-insert: several server processes may
share one store.
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


class Store(abc.ABC):
    """Where the ingest server records what arrived. Implementations must be thread-safe.

    A method may raise :class:`StoreUnavailable` when the database is unreachable.
    """

    @abc.abstractmethod
    def record_tabular(self, records: Sequence[TabularRecord]) -> int:
        """Insert the records in one transaction; return how many were new."""

    @abc.abstractmethod
    def record_blob(self, record: BlobRecord) -> bool:
        """Insert one blob record; return False when one with its ``id`` was already there."""

    @abc.abstractmethod
    def query(self, item_filter: ItemFilter | None = None) -> Iterator[Record]:
        """Matching records, ordered by ``time_requested_ns``, then kind, then id."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
