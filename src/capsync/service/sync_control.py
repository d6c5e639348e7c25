"""Keeps the sync scheduler of a DataManager in line with its config.

Sync runs when the config says where to (a ``sync`` or ``cloud`` section);
a scheduled pass runs every ``sync_interval_mins`` unless ``sync_disabled``,
and only while the ``selective_syncer_name`` sensor says ``should_sync: true``
when one is set. A change of target or sync settings restarts the scheduler.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from capsync._log import RateLimitedLog
from capsync.config import DataManagerConfig, MachineConfig
from capsync.methods import MIME_FILE_EXTENSIONS
from capsync.resources import Resource
from capsync.sync import (
    ProgressFn,
    SyncConfigError,
    Syncer,
    SyncReport,
    SyncScheduler,
    SyncSettings,
    SyncStats,
    resolve_target,
    sync_configured,
    upload_arbitrary_file,
)

_log = logging.getLogger("capsync.manager")

DATASET_DIR = "dataset"  # UploadBinaryDataToDatasets' files, under the capture dir


class SyncNotRunning(RuntimeError):
    """Sync is not configured or could not start; the message says why."""


class SyncControl:
    def __init__(
        self,
        *,
        settings: Callable[[], DataManagerConfig],
        before_pass: Callable[[], None],
        resource: Callable[[str], Resource | None],
        stop_timeout_s: float = 10.0,
    ) -> None:
        self._settings = settings
        self.stop_timeout_s = stop_timeout_s
        self._before_pass = before_pass
        self._resource = resource
        self._lock = threading.Lock()
        self._scheduler: SyncScheduler | None = None
        self._key: tuple[Any, ...] | None = None
        self._error: str | None = "sync is not running (the service is not started)"
        self._log = RateLimitedLog(_log, 30.0)

    # ----- what the DataManager asks ------------------------------------------------------

    def sync_now(self, progress: ProgressFn | None, timeout_s: float) -> SyncReport:
        scheduler = self._scheduler
        if scheduler is None:
            raise SyncNotRunning(self._error or "sync is not configured")
        self._before_pass()
        return scheduler.syncer.sync_once(progress, retry_for_s=timeout_s)

    def stats(self) -> SyncStats | None:
        scheduler = self._scheduler
        return None if scheduler is None else scheduler.syncer.stats()

    def uploading(self) -> frozenset[Path]:
        scheduler = self._scheduler
        return frozenset() if scheduler is None else scheduler.syncer.uploading()

    def upload(self, request: Any) -> Any:
        """Send one DataCaptureUpload over the sync connection (micro-server rings)."""
        scheduler = self._scheduler
        if scheduler is None:
            raise ConnectionError(self._error or "sync is not running")
        return scheduler.syncer.client.data_capture_upload(request)

    def upload_to_datasets(
        self, data: bytes, mime_type: str, tags: tuple[str, ...], dataset_ids: tuple[str, ...]
    ) -> None:
        """Send ``data`` now as a FileUpload into ``dataset_ids`` over the sync connection:
        written to ``<capture_dir>/dataset/`` first, removed either way."""
        scheduler = self._scheduler
        if scheduler is None:
            raise SyncNotRunning(self._error or "sync is not running")
        folder = Path(self._settings().capture_dir) / DATASET_DIR
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"{uuid.uuid4()}{MIME_FILE_EXTENSIONS.get(mime_type, '')}"
        path = folder / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            upload_arbitrary_file(
                scheduler.syncer.client, path, file_name=name, tags=tags, dataset_ids=dataset_ids
            )
        finally:
            path.unlink(missing_ok=True)

    @staticmethod
    def part_id(config: MachineConfig) -> str:
        if not sync_configured(config):
            return ""
        try:
            return resolve_target(config).part_id
        except SyncConfigError:
            return ""

    # ----- lifecycle ------------------------------------------------------------------------

    def update(self, config: MachineConfig) -> None:
        """Start, keep or restart sync to match ``config``."""
        with self._lock:
            key: tuple[Any, ...] | None = None
            error: str | None = None
            if config.data_manager is None:
                error = "sync is not configured: the config has no data_manager service"
            elif not sync_configured(config):
                error = "sync is not configured: the config has neither a sync nor a cloud section"
            else:
                try:
                    sync_settings = SyncSettings.from_config(self._settings(), config)
                    key = (resolve_target(config), sync_settings)
                except SyncConfigError as exc:
                    error = f"sync is not running: {exc}"
            if key is not None and key == self._key:
                return
            self._stop_locked(error)
            if key is None:
                if config.data_manager is not None and sync_configured(config):
                    _log.error("%s", error)
                return
            target, settings = key
            try:
                syncer = Syncer(settings, target)
            except SyncConfigError as exc:
                self._error = f"sync is not running: {exc}"
                _log.error("%s", self._error)
                return
            self._scheduler = SyncScheduler(
                syncer,
                interval_s=lambda: self._settings().sync_interval_s,
                should_sync=self._should_sync,
                before_pass=self._before_pass,
            ).start()
            self._key = key
            self._error = None
            _log.info("%s", self._describe(settings.capture_dir, target.address))

    def _describe(self, capture_dir: str, address: str) -> str:
        """What scheduled sync will really do, for the log."""
        settings = self._settings()
        if settings.sync_disabled:
            return (
                f"scheduled sync is off (sync_disabled): {capture_dir} is uploaded to {address} "
                "only when asked (DataManager.sync_now, capsync sync)"
            )
        text = f"syncing {capture_dir} to {address} every {settings.sync_interval_s:.1f} s"
        if settings.selective_syncer_name:
            text += f" while {settings.selective_syncer_name!r} says should_sync"
        return text

    def stop(self, reason: str = "the service is closed") -> None:
        """Stop scheduling; uploads in flight may finish within the stop timeout."""
        with self._lock:
            self._stop_locked(reason)

    def _stop_locked(self, reason: str | None) -> None:
        scheduler, self._scheduler, self._key = self._scheduler, None, None
        self._error = reason
        if scheduler is not None:
            scheduler.stop(self.stop_timeout_s)

    def _should_sync(self) -> bool:
        """A scheduled pass runs unless ``sync_disabled``, or the selective syncer says no."""
        settings = self._settings()
        if settings.sync_disabled:
            return False
        name = settings.selective_syncer_name
        if not name:
            return True
        resource = self._resource(name)
        if resource is None:
            self._log.log(
                logging.WARNING,
                f"selective_syncer_name {name!r} names no resource of the config: not syncing",
            )
            return False
        try:
            readings = resource.capture("Readings", {})
        except Exception as exc:
            self._log.log(
                logging.WARNING, f"selective syncer {name!r}: Readings failed ({exc}): not syncing"
            )
            return False
        return isinstance(readings, Mapping) and readings.get("should_sync") is True
