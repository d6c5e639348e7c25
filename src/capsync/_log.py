"""Logging that says an identical thing at most once per interval."""

from __future__ import annotations

import logging
import threading
import time


class RateLimitedLog:
    """Log each distinct message at most once per ``interval_s``; count the repeats."""

    def __init__(self, logger: logging.Logger, interval_s: float = 5.0) -> None:
        self._logger = logger
        self._interval_ns = int(interval_s * 1e9)
        self._last_ns: dict[str, int] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def log(self, level: int, message: str) -> bool:
        """Log ``message`` unless it was logged within the interval; True when it was logged."""
        now = time.monotonic_ns()
        with self._lock:
            last = self._last_ns.get(message)
            if last is not None and now - last < self._interval_ns:
                self._suppressed[message] = self._suppressed.get(message, 0) + 1
                return False
            self._last_ns[message] = now
            repeats = self._suppressed.pop(message, 0)
        suffix = f" (and {repeats} more times since last reported)" if repeats else ""
        self._logger.log(level, "%s%s", message, suffix)
        return True
