"""One exponential backoff for everything that retries: sync, the collector's writer and
the MongoDB capture writer."""

from __future__ import annotations

import random

FACTOR = 2.0


class Backoff:
    """Delays ``first_s``, doubling, capped at ``max_s``; ``reset`` after a success.

    ``jitter`` spreads each delay by up to that fraction either way (0.1 is
    +-10 %), so that workers that failed together do not retry together.
    """

    def __init__(self, first_s: float, max_s: float, *, jitter: float = 0.0) -> None:
        self.first_s = min(first_s, max_s)
        self.max_s = max_s
        self.jitter = jitter
        self._next_s = self.first_s

    def next(self) -> float:
        """The delay to wait now; the one after it doubles (up to ``max_s``)."""
        delay = self._next_s
        self._next_s = min(self._next_s * FACTOR, self.max_s)
        if self.jitter:
            delay *= random.uniform(1.0 - self.jitter, 1.0 + self.jitter)
        return delay

    def reset(self) -> None:
        self._next_s = self.first_s
