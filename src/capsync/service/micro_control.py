"""Collectors in micro-server mode (``cache_size_kb``): their rings and uploads.

Such a collector writes into an in-memory ring instead of capture files. The
rings are uploaded during each sync pass (so ``sync_disabled`` and the
selective syncer apply to them too) and once more when their collector closes;
a chunk leaves its ring only after the server confirmed it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from capsync.capture.ring import RecordRing
from capsync.capture.ring_sink import RingCollectorSink, cache_capacity_bytes
from capsync.capture.sink import CaptureSpec
from capsync.service.collector import CollectorKey, CollectorSettings, string_params
from capsync.sync.ring_upload import (
    DEFAULT_TIMEOUT_S,
    MAX_REQUEST_BYTES,
    RingUploader,
    max_record_bytes_for,
)

_log = logging.getLogger("capsync.microserver")

UploadFn = Callable[[Any], Any]


@dataclass
class MicroServerCollector:
    """The ring, sink and uploader of one micro-server collector (see :func:`build`)."""

    ring: RecordRing
    sink: RingCollectorSink
    uploader: RingUploader

    def stats(self) -> dict[str, Any]:
        """Ring and upload counters, for the DataManager's stats."""
        return {"ring": self.ring.stats(), "upload": self.uploader.stats()}


def build(
    cache_size_kb: float,
    upload: Any,
    part_id: str,
    spec: CaptureSpec,
    *,
    call_metadata: Sequence[tuple[str, str]] = (),
    max_request_bytes: int = MAX_REQUEST_BYTES,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> MicroServerCollector:
    """A ring of ``cache_size_kb * 1000`` bytes, a sink writing to it and an uploader of it.

    The ring refuses records larger than one request can carry, so every
    record it keeps can be uploaded.
    """
    capacity = cache_capacity_bytes(cache_size_kb)
    metadata = spec.upload_metadata(part_id)
    ring = RecordRing(capacity, max_record_bytes=max_record_bytes_for(metadata, max_request_bytes))
    uploader = RingUploader(
        ring,
        upload,
        metadata,
        max_request_bytes=max_request_bytes,
        call_metadata=call_metadata,
        timeout_s=timeout_s,
        label=f"{spec.component_name}/{spec.method_name}",
    )
    return MicroServerCollector(ring, RingCollectorSink(ring, spec), uploader)


class MicroServerRings:
    def __init__(self, upload: UploadFn) -> None:
        self._upload = upload
        self._parts: dict[tuple[CollectorKey, str], MicroServerCollector] = {}
        self._lock = threading.Lock()

    def sink_factory(
        self, key: CollectorKey, settings: CollectorSettings, part_id: str
    ) -> Callable[[str], RingCollectorSink]:
        """What the collector calls instead of opening a capture stream, per MIME type."""
        assert settings.cache_size_kb is not None
        cache_size_kb = settings.cache_size_kb

        def make_sink(mime_type: str) -> RingCollectorSink:
            spec = CaptureSpec(
                component_type=key.api,
                component_name=key.resource_name,
                method_name=key.method,
                tags=tuple(settings.tags),
                method_parameters=string_params(settings.additional_params),
                mime_type=mime_type,
            )
            parts = build(cache_size_kb, self._upload, part_id, spec)
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
