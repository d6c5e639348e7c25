"""One background thread that keeps idle capture streams within their durability window.

A stream that receives records checks its own deadline on every append; a
stream that goes quiet would otherwise keep its last records in memory (or
unsynced in the page cache) indefinitely. The flusher visits every open stream
a few times per second and asks it to flush and fsync when its deadline has
passed. Streams are held weakly, so a forgotten stream can still be collected.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Protocol

_log = logging.getLogger("capsync.capture")
_POLL_INTERVAL_S = 0.05


class Flushable(Protocol):
    def flush_if_due(self) -> None: ...


class _Flusher:
    def __init__(self) -> None:
        self._streams: weakref.WeakSet[Flushable] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def register(self, stream: Flushable) -> None:
        with self._lock:
            self._streams.add(stream)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="capsync-flusher", daemon=True
                )
                self._thread.start()

    def unregister(self, stream: Flushable) -> None:
        with self._lock:
            self._streams.discard(stream)

    def _run(self) -> None:
        wake = threading.Event()
        while True:
            wake.wait(_POLL_INTERVAL_S)
            with self._lock:
                streams = list(self._streams)
            for stream in streams:
                try:
                    stream.flush_if_due()
                except Exception:  # the writer sees and reports the same error itself
                    _log.debug("background flush failed", exc_info=True)
            del streams


FLUSHER = _Flusher()
