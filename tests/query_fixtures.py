"""An in-memory store with the interface the query layer uses, and a source over it
that also offers a change feed (so the Parquet compactor can be tested)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

from capsync.server.store_source import StoreSource
from capsync.server.stores.base import (
    BlobRecord,
    ItemFilter,
    Record,
    TabularRecord,
    matches,
)


class MemoryStore:
    """query/get_blob/delete/update_blob over a list, each record with its insertion number."""

    def __init__(self, records: Sequence[Record] = ()) -> None:
        self.rows: list[tuple[int, Record]] = []
        self._seq = 0
        self.record_tabular(records)

    @property
    def records(self) -> list[Record]:
        return [r for _, r in self.rows]

    def record_tabular(self, records: Sequence[Record]) -> int:
        for record in records:
            self._seq += 1
            self.rows.append((self._seq, record))
        return len(records)

    def record_blob(self, record: BlobRecord) -> bool:
        self.record_tabular([record])
        return True

    def query(self, item_filter: ItemFilter | None = None) -> Iterator[Record]:
        f = item_filter or ItemFilter()
        found = [r for r in self.records if matches(r, f)]
        return iter(sorted(found, key=lambda r: (r.time_requested_ns, r.kind, r.id)))

    def get_blob(self, blob_id: str) -> BlobRecord | None:
        return next(
            (r for r in self.records if isinstance(r, BlobRecord) and r.id == blob_id), None
        )

    def delete(
        self, ids: Sequence[str] | None = None, item_filter: ItemFilter | None = None
    ) -> int:
        if ids is None and item_filter is None:
            return 0
        kept = [
            (seq, r)
            for seq, r in self.rows
            if not (
                (ids is None or r.id in ids) and (item_filter is None or matches(r, item_filter))
            )
        ]
        removed = len(self.rows) - len(kept)
        self.rows = kept
        return removed

    def update_blob(self, blob_id: str, **changes: Any) -> bool:
        for index, (seq, record) in enumerate(self.rows):
            if isinstance(record, BlobRecord) and record.id == blob_id:
                given = {k: tuple(v) if k != "annotations" else v
                         for k, v in changes.items() if v is not None}  # fmt: skip
                self.rows[index] = (seq, dataclasses.replace(record, **given))
                return True
        return False


class ChangingSource(StoreSource):
    """A StoreSource over a MemoryStore, with the change feed the stores do not offer yet."""

    supports_changes = True

    def __init__(self, store: MemoryStore) -> None:
        super().__init__(store)
        self.memory = store

    def changes_since(
        self, mark: int, limit: int, *, settled: bool = True
    ) -> tuple[list[TabularRecord], int]:
        rows = [(s, r) for s, r in self.memory.rows if s > mark and isinstance(r, TabularRecord)]
        rows = rows[:limit]
        if not rows:
            return [], mark
        return [r for _, r in rows if isinstance(r, TabularRecord)], rows[-1][0]
