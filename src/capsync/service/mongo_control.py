"""Keeps the MongoDB capture writer (``mongo_capture_config``) in line with the settings
(a :class:`~capsync.service._control.BackgroundControl`).

The writer copies every tabular reading into a MongoDB collection as well;
pymongo is an optional extra, so :mod:`capsync.mongo.capture` is imported
only when the config asks for it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from capsync.config import MachineConfig, MongoCaptureConfig
from capsync.mongo.client import MissingExtraError, require_pymongo
from capsync.service._control import capture_settings
from capsync.service.collector import CollectorKey

if TYPE_CHECKING:
    from capsync.mongo.capture import MongoCaptureStats, MongoCaptureWriter

_log = logging.getLogger("capsync.manager")

CLOSE_TIMEOUT_S = 5.0


class MongoControl:
    """Start, keep or replace the writer when ``mongo_capture_config`` changes."""

    def __init__(self) -> None:
        self._writer: MongoCaptureWriter | None = None
        self._config: MongoCaptureConfig | None = None

    def update(self, config: MachineConfig) -> None:
        """MongoDB capture runs while capture is on and the config names a collection."""
        settings, capture_enabled = capture_settings(config)
        wanted = settings.mongo_capture_config if capture_enabled else None
        if wanted == self._config:
            return
        old, self._writer, self._config = self._writer, None, wanted
        if wanted is not None:
            try:
                require_pymongo()
                from capsync.mongo.capture import MongoCaptureWriter

                self._writer = MongoCaptureWriter(wanted)
            except (ValueError, MissingExtraError) as exc:
                _log.error("mongo_capture_config: %s; MongoDB capture is off", exc)
        if old is not None:
            old.close(CLOSE_TIMEOUT_S)

    def submit(
        self, key: CollectorKey, readings: Mapping[str, Any], requested_ns: int, received_ns: int
    ) -> None:
        """A collector's tabular reading (its ``on_tabular``)."""
        writer = self._writer
        if writer is not None:
            writer.submit(key, readings, requested_ns, received_ns)

    def stop(self) -> None:
        writer, self._writer, self._config = self._writer, None, None
        if writer is not None:
            writer.close(CLOSE_TIMEOUT_S)

    def stats(self) -> MongoCaptureStats | None:
        writer = self._writer
        return None if writer is None else writer.stats()
