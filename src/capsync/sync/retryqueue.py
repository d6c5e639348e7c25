"""``RetryQueue``: the files of one pass, each ready at its own time.

A worker takes the file that is ready first, makes one attempt and either
finishes it or puts it back with the time of its next try. So a file in
backoff holds no worker: the others go on meanwhile, and the failing one is
tried again on its own schedule. Files are taken in the order given until
retries come due.
"""

from __future__ import annotations

import heapq
import threading
import time
from typing import Generic, TypeVar

T = TypeVar("T")


class RetryQueue(Generic[T]):
    """Entries ordered by the ``time.monotonic()`` they are ready at, then by arrival."""

    def __init__(self, entries: list[T]) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, T]] = [(0.0, i, e) for i, e in enumerate(entries)]
        self._seq = len(entries)
        self._taken = 0  # entries a worker holds now (they may come back)
        self._hurry = False

    def take(self) -> T | None:
        """The next entry once it is ready; None when every entry is finished.

        After :meth:`hurry` entries are handed out at once, ready or not (so a
        stopping pass can settle them quickly).
        """
        with self._cond:
            while True:
                if self._heap:
                    delay_s = self._heap[0][0] - time.monotonic()
                    if delay_s <= 0 or self._hurry:
                        self._taken += 1
                        return heapq.heappop(self._heap)[2]
                    self._cond.wait(delay_s)
                elif self._taken == 0:
                    return None
                else:
                    self._cond.wait()

    def done(self, entry: T, retry_at: float | None = None) -> None:
        """``entry`` is finished, or (``retry_at``: a ``time.monotonic()``) comes back then."""
        with self._cond:
            self._taken -= 1
            if retry_at is not None:
                heapq.heappush(self._heap, (retry_at, self._seq, entry))
                self._seq += 1
            self._cond.notify_all()

    def hurry(self) -> None:
        """Hand every entry out now, without waiting for its time."""
        with self._cond:
            self._hurry = True
            self._cond.notify_all()
