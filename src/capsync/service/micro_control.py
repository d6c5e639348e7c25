"""Collectors in micro-server mode (``cache_size_kb``): their rings and uploads.

Such a collector writes into an in-memory ring instead of capture files. The
rings are uploaded during each sync pass (so ``sync_disabled`` and the
selective syncer apply to them too) and once more when their collector closes;
a chunk leaves its ring only after the server confirmed it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from capsync import microserver
from capsync.service.collector import CollectorKey, CollectorSettings, string_params

_log = logging.getLogger("capsync.microserver")

UploadFn = Callable[[Any], Any]


class MicroServerRings:
    def __init__(self, upload: UploadFn) -> None:
        self._upload = upload
        self._parts: dict[tuple[CollectorKey, str], microserver.MicroServerCollector] = {}
        self._lock = threading.Lock()

    def sink_factory(
        self, key: CollectorKey, settings: CollectorSettings, part_id: str
    ) -> Callable[[str], Any]:
        """What the collector calls instead of opening a capture stream, per MIME type."""
        assert settings.cache_size_kb is not None
        cache_size_kb = settings.cache_size_kb

        def make_sink(mime_type: str) -> Any:
            parts = microserver.build(
                cache_size_kb,
                self._upload,
                part_id,
                component_type=key.api,
                component_name=key.resource_name,
                method_name=key.method,
                tags=settings.tags,
                method_parameters=string_params(settings.additional_params),
                mime_type=mime_type,
            )
            with self._lock:
                self._parts[(key, mime_type)] = parts
            return parts.sink

        return make_sink

    def drain_all(self) -> None:
        """Upload what every ring holds (a failed request keeps its chunk for next time)."""
        with self._lock:
            parts = list(self._parts.values())
        for part in parts:
            result = part.uploader.drain()
            if result.error is not None:
                _log.warning("%s: ring upload stopped: %s", part.sink.label, result.error)

    def remove(self, key: CollectorKey) -> None:
        """A collector closed: try once more to upload its ring, then let it go."""
        with self._lock:
            mine = [k for k in self._parts if k[0] == key]
            parts = [self._parts.pop(k) for k in mine]
        for part in parts:
            part.uploader.drain()
            left = part.ring.stats()
            if left.records:
                _log.warning(
                    "%s: %d records were not uploaded before close", part.sink.label, left.records
                )

    def stats(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {
                f"{key.resource_name}/{key.method}{'/' + mime if mime else ''}": p.stats()
                for (key, mime), p in self._parts.items()
            }
