"""How much a sync pass keeps in flight at once: a lane (a thread) per file, bounded in bytes.

A small file's upload is mostly waiting for the server's answer (its ``fdatasync``,
shared by the calls that arrive together), so many small files in flight make the
server commit them together: more files, more readings per sync. Big bodies gain
nothing from that and cost memory on both ends, so each worker also has a budget of
bytes in flight: a file holds ``min(size, request_max_bytes)`` of it while it is
uploaded. 256 KiB tabular files go 8 per worker; 768 KiB images 4, as before.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Files each sync worker keeps in flight (lanes); each holds its map, one descriptor
# and one request body.
FILES_IN_FLIGHT_PER_WORKER = 8
# Bytes of files each sync worker keeps in flight (a file counts up to one request).
BYTES_IN_FLIGHT_PER_WORKER = 3 * 1024 * 1024


class ByteBudget:
    """Up to ``limit_bytes`` held at once; one holder at a time may exceed it alone."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self._held = 0
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, size_bytes: int) -> Iterator[None]:
        """Wait until ``size_bytes`` fit (or nothing is held), hold them for the block."""
        with self._cond:
            while self._held and self._held + size_bytes > self.limit_bytes:
                self._cond.wait()
            self._held += size_bytes
        try:
            yield
        finally:
            with self._cond:
                self._held -= size_bytes
                self._cond.notify_all()

    @property
    def held_bytes(self) -> int:
        with self._cond:
            return self._held
