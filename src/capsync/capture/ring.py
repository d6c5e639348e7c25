"""``RecordRing``: a fixed-size in-memory ring of whole records (micro-server mode).

viam-micro-server keeps each collector's readings in a cache of
``cache_size_kb`` KB instead of files. :class:`RecordRing` is that cache: a
numpy ``uint8`` buffer of exactly ``capacity_bytes`` holding whole records
(opaque byte strings; capsync stores length-delimited ``SensorData`` frames).
A record may wrap around the end of the buffer, so the whole capacity is used.

* :meth:`RecordRing.append` stores one record. When it does not fit, the
  oldest whole records are overwritten (removed) until it does, and counted.
  A record larger than the ring (or than ``max_record_bytes``) can never be
  stored: :class:`RecordTooLargeError`, counted.
* :meth:`RecordRing.peek_chunk` returns the oldest records, up to a byte
  budget, with a :class:`ChunkToken`; nothing leaves the ring yet.
* :meth:`RecordRing.confirm` removes that chunk once the server has it.

Peeked records are not protected from overwriting: a full ring overwrites its
oldest record even while an upload of it is under way (as the reference does;
the alternative, refusing new readings while the network is slow, loses the
newest data instead of the oldest). Every record has a sequence number and a
token names the range ``[first_seq, end_seq)``; since records only ever leave
from the oldest end, ``confirm`` removes exactly the records of that range
that are still held, never a record appended after the peek. Records
overwritten while their upload was under way count as overwritten even if the
upload then succeeded (``overwritten_records`` may overstate the loss; never
understate it).

Thread-safe: a writer thread appends while an uploader peeks and confirms.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass

import numpy as np


class RecordTooLargeError(ValueError):
    """A record that can never fit the ring (or one upload request)."""

    def __init__(self, nbytes: int, limit: int) -> None:
        super().__init__(f"a record of {nbytes} bytes cannot be cached: the limit is {limit} bytes")
        self.nbytes = nbytes
        self.limit = limit


@dataclass(frozen=True)
class ChunkToken:
    """Names the records ``[first_seq, end_seq)`` of one peeked chunk."""

    first_seq: int
    end_seq: int
    nbytes: int

    @property
    def count(self) -> int:
        return self.end_seq - self.first_seq


@dataclass(frozen=True)
class Chunk:
    """The oldest records of a ring, still held by it until ``confirm(token)``."""

    records: list[bytes]
    token: ChunkToken

    @property
    def nbytes(self) -> int:
        return self.token.nbytes

    def __len__(self) -> int:
        return len(self.records)


@dataclass(frozen=True)
class RingStats:
    capacity_bytes: int
    records: int  # records held now
    bytes: int  # bytes held now
    appended_records: int  # records ever stored
    appended_bytes: int
    overwritten_records: int  # oldest records removed to make room (lost unless uploaded)
    overwritten_bytes: int
    oversize_records: int  # records refused as too large
    confirmed_records: int  # records removed by confirm (the server has them)
    confirmed_bytes: int


class RecordRing:
    """A ring of whole records in ``capacity_bytes`` of memory (see the module doc)."""

    def __init__(self, capacity_bytes: int, *, max_record_bytes: int | None = None) -> None:
        if isinstance(capacity_bytes, bool) or not isinstance(capacity_bytes, int):
            raise TypeError(f"capacity_bytes must be an int, got {type(capacity_bytes).__name__}")
        if capacity_bytes < 1:
            raise ValueError(f"capacity_bytes must be >= 1, got {capacity_bytes}")
        if max_record_bytes is not None and max_record_bytes < 1:
            raise ValueError(f"max_record_bytes must be >= 1, got {max_record_bytes}")
        self._buf = np.zeros(capacity_bytes, dtype=np.uint8)
        self._capacity = capacity_bytes
        self._max_record = min(capacity_bytes, max_record_bytes or capacity_bytes)
        # (offset, nbytes) of each held record, oldest first; its seq is _head_seq + index.
        self._index: collections.deque[tuple[int, int]] = collections.deque()
        self._head_seq = 0  # seq of the oldest held record (== _next_seq when empty)
        self._tail = 0  # where the next record starts
        self._held = 0  # bytes held
        self._lock = threading.Lock()
        self._appended = self._appended_bytes = 0
        self._overwritten = self._overwritten_bytes = 0
        self._oversize = 0
        self._confirmed = self._confirmed_bytes = 0

    # ----- properties -------------------------------------------------------------------

    @property
    def capacity_bytes(self) -> int:
        return self._capacity

    @property
    def max_record_bytes(self) -> int:
        """The largest record :meth:`append` accepts."""
        return self._max_record

    def __len__(self) -> int:
        return len(self._index)

    @property
    def nbytes(self) -> int:
        return self._held

    # ----- writing ----------------------------------------------------------------------

    def append(self, record: bytes | bytearray | memoryview) -> int:
        """Store one record; return how many old records were overwritten to make room.

        Raises :class:`RecordTooLargeError` (and counts it) for a record larger
        than :attr:`max_record_bytes`; the ring is then unchanged. An empty
        record is refused with ``ValueError``.
        """
        data = np.frombuffer(record, dtype=np.uint8)
        size = int(data.shape[0])
        if size == 0:
            raise ValueError("an empty record cannot be cached")
        with self._lock:
            if size > self._max_record:
                self._oversize += 1
                raise RecordTooLargeError(size, self._max_record)
            overwritten = 0
            while self._capacity - self._held < size:
                _, dropped = self._index.popleft()
                self._head_seq += 1
                self._held -= dropped
                self._overwritten += 1
                self._overwritten_bytes += dropped
                overwritten += 1
            start = self._tail
            first = min(size, self._capacity - start)
            self._buf[start : start + first] = data[:first]
            if first < size:
                self._buf[: size - first] = data[first:]
            self._tail = (start + size) % self._capacity
            self._index.append((start, size))
            self._held += size
            self._appended += 1
            self._appended_bytes += size
            return overwritten

    # ----- reading ----------------------------------------------------------------------

    def peek_chunk(
        self,
        max_bytes: int = 32_000,
        *,
        per_record_overhead: int = 0,
        max_records: int | None = None,
    ) -> Chunk:
        """The oldest records whose bytes (each plus ``per_record_overhead``) fit ``max_bytes``.

        At most ``max_records`` records. The chunk is empty when the ring is, or
        when the oldest record alone does not fit the budget. The records stay
        in the ring until :meth:`confirm` is called with the chunk's token.
        """
        with self._lock:
            records: list[bytes] = []
            used = nbytes = 0
            limit = len(self._index) if max_records is None else min(max_records, len(self._index))
            for offset, size in self._index:
                if len(records) >= limit or used + size + per_record_overhead > max_bytes:
                    break
                records.append(self._read(offset, size))
                used += size + per_record_overhead
                nbytes += size
            first = self._head_seq
            return Chunk(records, ChunkToken(first, first + len(records), nbytes))

    def _read(self, offset: int, size: int) -> bytes:
        end = offset + size
        if end <= self._capacity:
            return self._buf[offset:end].tobytes()
        return self._buf[offset:].tobytes() + self._buf[: end - self._capacity].tobytes()

    def confirm(self, token: ChunkToken) -> int:
        """Remove the records of ``token``'s chunk that are still held; return how many."""
        removed = 0
        with self._lock:
            while self._index and self._head_seq < token.end_seq:
                _, size = self._index.popleft()
                self._head_seq += 1
                self._held -= size
                self._confirmed += 1
                self._confirmed_bytes += size
                removed += 1
            if not self._index:
                self._tail = 0  # empty: start again at the front (records stay contiguous)
        return removed

    def clear(self) -> int:
        """Drop every held record (counted as neither overwritten nor confirmed)."""
        with self._lock:
            dropped = len(self._index)
            self._head_seq += dropped
            self._index.clear()
            self._held = 0
            self._tail = 0
            return dropped

    def stats(self) -> RingStats:
        with self._lock:
            return RingStats(
                capacity_bytes=self._capacity,
                records=len(self._index),
                bytes=self._held,
                appended_records=self._appended,
                appended_bytes=self._appended_bytes,
                overwritten_records=self._overwritten,
                overwritten_bytes=self._overwritten_bytes,
                oversize_records=self._oversize,
                confirmed_records=self._confirmed,
                confirmed_bytes=self._confirmed_bytes,
            )

    def __repr__(self) -> str:
        return f"<RecordRing {len(self._index)} records, {self._held}/{self._capacity} bytes>"
