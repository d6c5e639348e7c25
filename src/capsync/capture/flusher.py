"""One background thread that keeps idle capture streams within their durability window
and completes the files busy streams fill.

A stream that receives records checks its own deadline on every append; a
stream that goes quiet would otherwise keep its last records in memory (or
unsynced in the page cache) indefinitely. The flusher visits every open stream
a few times per second and asks it to flush and fsync when its deadline has
passed. A stream that fills a file hands it over with :meth:`_Flusher.wake`:
the flusher then renames it and creates the stream's next file, off the
writer's thread. Streams are held weakly, so a forgotten stream can still be
collected.
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

    def complete_in_background(self) -> None: ...


class _Flusher:
    def __init__(self) -> None:
        self._streams: weakref.WeakSet[Flushable] = weakref.WeakSet()
        self._woken: list[Flushable] = []  # streams with full files to complete
        self._lock = threading.Lock()
        self._wake = threading.Event()
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

    def wake(self, stream: Flushable) -> None:
        """``stream`` has full files to complete: do it now rather than at the next poll."""
        with self._lock:
            self._woken.append(stream)
        self._wake.set()

    def _run(self) -> None:
        while True:
            woken = self._wake.wait(_POLL_INTERVAL_S)
            self._wake.clear()
            with self._lock:
                busy, self._woken = self._woken, []
                streams = [] if woken else list(self._streams)
            for stream in dict.fromkeys(busy):
                try:
                    stream.complete_in_background()
                except Exception:  # the writer sees and reports the same error itself
                    _log.debug("background completion failed", exc_info=True)
            for stream in streams:
                try:
                    stream.flush_if_due()
                except Exception:  # the writer sees and reports the same error itself
                    _log.debug("background flush failed", exc_info=True)
            del busy, streams


FLUSHER = _Flusher()
