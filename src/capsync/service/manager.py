"""``DataManager``: the data management service of one machine part.

It reads a machine config, builds the resources its capture methods name,
runs one :class:`Collector` per enabled (resource, method), and keeps them in
line with the config on :meth:`reconfigure`. At start it recovers ``.prog``
files left by a crash so they are synced, never lost.

When the config says where to sync (a ``sync`` or ``cloud`` section), a
:class:`~capsync.sync.SyncScheduler` uploads the completed files every
``sync_interval_mins`` (unless ``sync_disabled``, and only while the
``selective_syncer_name`` sensor says ``should_sync: true`` when one is set);
:meth:`sync_now` runs a pass on demand.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from capsync._log import RateLimitedLog
from capsync.capture.diskpressure import DeleterStats
from capsync.capture.recovery import Recovery, recover_in_progress
from capsync.config import (
    CaptureTarget,
    DataManagerConfig,
    MachineConfig,
    MongoCaptureConfig,
    ResourceConfig,
    load_config,
)
from capsync.config.model import split_resource_name
from capsync.methods import MIME_FILE_EXTENSIONS
from capsync.mongo.client import MissingExtraError, require_pymongo
from capsync.resources import (
    ModelImportError,
    Resource,
    ResourceContext,
    UnknownModelError,
    UnknownTypeError,
    build_resource,
)
from capsync.service.collector import Collector, CollectorKey, CollectorSettings, CollectorStats
from capsync.service.deletion_control import DeletionControl
from capsync.service.micro_control import MicroServerRings
from capsync.service.sync_control import SyncControl, SyncNotRunning
from capsync.sync import ProgressFn, SyncReport, SyncStats

if TYPE_CHECKING:  # pymongo is an optional extra: capsync.mongo.capture is imported when used
    from capsync.mongo.capture import MongoCaptureStats, MongoCaptureWriter

_log = logging.getLogger("capsync.manager")

# How long DataManager.sync_now keeps retrying by default.
SYNC_NOW_TIMEOUT_S = 30.0
DEPENDENCY_LOCK_TIMEOUT_S = 0.5
DATASET_DIR = "dataset"  # UploadBinaryDataToDatasets' files, under the capture dir
# One bound for closing every collector (they close in parallel): well under
# systemd's 90 s stop timeout, whatever the number of collectors.
COLLECTOR_CLOSE_TIMEOUT_S = 30.0
_CLOSE_GRACE_S = 10.0  # Collector.close's own wait after abandoning a stuck writer, and more


class ServiceError(RuntimeError):
    """The service cannot start as configured; the message names the resource."""


@dataclass(frozen=True)
class _Plan:
    """What one collector should be, from the config."""

    key: CollectorKey
    target: CaptureTarget
    settings: CollectorSettings


class DataManager:
    """Captures every enabled capture method of a machine config to local capture files."""

    def __init__(
        self,
        config: MachineConfig,
        *,
        fsync_interval_s: float = 1.0,
        deletion_interval_s: float = 30.0,
        realtime_priority: int = 0,
        stop_timeout_s: float = 10.0,
        close_timeout_s: float = COLLECTOR_CLOSE_TIMEOUT_S,
    ) -> None:
        """``stop_timeout_s``: how long :meth:`close` lets uploads in flight finish;
        ``close_timeout_s``: how long the collectors, closed together, may take to
        write what they queued."""
        self.config = config
        self.close_timeout_s = close_timeout_s
        self.fsync_interval_s = fsync_interval_s
        self.realtime_priority = realtime_priority  # capture threads' SCHED_FIFO priority
        self._collectors: dict[CollectorKey, Collector] = {}
        self._resources: dict[tuple[str, str], Resource] = {}
        self._resource_configs: dict[tuple[str, str], ResourceConfig] = {}
        self._lock = threading.RLock()
        self._started = False
        self._closed = False
        self.recovered: list[Recovery] = []
        self._final_stats: dict[str, CollectorStats] = {}
        # Resources built only to be asked something (the selective syncer sensor).
        self._other_resources: dict[tuple[str, str], Resource] = {}
        self._sync = SyncControl(
            settings=lambda: self.settings,
            before_pass=self._before_sync_pass,
            resource=self.resource,
            stop_timeout_s=stop_timeout_s,
        )
        self._resource_log = RateLimitedLog(_log, 30.0)
        self._deletion = DeletionControl(deletion_interval_s, lambda p: p in self.uploading())
        self._rings = MicroServerRings(self._sync.upload)
        self._mongo: MongoCaptureWriter | None = None  # mongo_capture_config's writer
        self._mongo_config: MongoCaptureConfig | None = None

    @classmethod
    def from_config(
        cls, source: str | os.PathLike[str] | Mapping[str, Any], **options: Any
    ) -> DataManager:
        """A manager for the config at ``source`` (a JSON file path or a dict)."""
        return cls(load_config(source), **options)

    # ----- properties -------------------------------------------------------------------

    @property
    def settings(self) -> DataManagerConfig:
        """The data_manager service's attributes (defaults when the config has none)."""
        return self.config.data_manager or DataManagerConfig()

    @property
    def capture_dir(self) -> Path:
        return Path(self.settings.capture_dir)

    @property
    def capture_enabled(self) -> bool:
        return self.config.data_manager is not None and not self.settings.capture_disabled

    # ----- lifecycle --------------------------------------------------------------------

    def start(self) -> DataManager:
        with self._lock:
            if self._started:
                return self
            self._started = True
            if self.config.data_manager is None:
                _log.warning("the config has no data_manager service: nothing is captured")
            if self.capture_dir.exists():
                self.recovered = recover_in_progress(self.capture_dir)
            try:
                self._update_mongo()  # before the collectors, so it sees their first readings
                self._apply(self._plan(self.config))
            except BaseException:
                self.close()
                raise
        self._sync.update(self.config)
        self._update_deletion()
        return self

    def reconfigure(
        self, config: MachineConfig | str | os.PathLike[str] | Mapping[str, Any]
    ) -> None:
        """Move to ``config``: collectors are added, removed, retimed or rebuilt as needed.

        A removed or rebuilt collector writes every reading it had queued
        before it goes; a collector whose only change is its frequency keeps
        running.
        """
        new_config = config if isinstance(config, MachineConfig) else load_config(config)
        with self._lock:
            self.config = new_config
            self._close_other_resources()
            if not self._started or self._closed:
                return
            self._update_mongo()
            self._apply(self._plan(new_config))
        self._sync.update(self.config)
        self._update_deletion()

    def flush_to_capture(self) -> None:
        """Complete every open tabular file (done before each sync pass)."""
        with self._lock:
            collectors = list(self._collectors.values())
        for collector in collectors:
            collector.flush_to_capture()

    def stats(self) -> dict[str, CollectorStats]:
        """Per collector (``name/Method``): captures, skipped ticks, errors, queue, bytes, files."""
        with self._lock:
            collectors = list(self._collectors.values())
        return {collector.label: collector.stats() for collector in collectors}

    def final_stats(self) -> dict[str, CollectorStats]:
        """Per collector, its totals when :meth:`close` stopped it (empty before)."""
        return dict(self._final_stats)

    def close(self) -> None:
        """Stop sync gracefully, then every collector, writing what they queued and
        completing their files.

        Sync starts no new upload; those in flight may finish (up to the stop
        timeout) and their files are deleted once the server confirmed them;
        anything still in flight then is cancelled and its file stays.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            collectors = list(self._collectors.values())
            self._collectors.clear()
        self._deletion.stop()
        self._sync.stop("the service is closed")
        self._close_collectors(collectors)
        self._final_stats = {collector.label: collector.stats() for collector in collectors}
        mongo, self._mongo, self._mongo_config = self._mongo, None, None
        if mongo is not None:
            mongo.close(5.0)
        with self._lock:
            for resource in self._resources.values():
                resource.close()
            self._resources.clear()
            self._close_other_resources()

    # ----- sync -------------------------------------------------------------------------

    def resource(self, name: str) -> Resource | None:
        """The resource ``name`` (or ``api/name``) of the config, built if no collector uses it.

        None when the config has no such resource or it cannot be built (logged).
        """
        split = split_resource_name(name)
        api, short = split if split is not None else (None, name)
        with self._lock:
            for table in (self._resources, self._other_resources):
                for (res_api, res_name), resource in table.items():
                    if res_name == short and api in (None, res_api):
                        return resource
            for config in (*self.config.components, *self.config.services):
                if config.name == short and api in (None, config.api):
                    context = self._context()
                    try:
                        resource = build_resource(
                            config.api, config.model, config.name, config.attributes, context
                        )
                    except Exception as exc:
                        self._resource_log.log(logging.ERROR, f"cannot build {name!r}: {exc}")
                        return None
                    self._other_resources[(config.api, config.name)] = resource
                    return resource
        return None

    def sync_now(
        self, progress: ProgressFn | None = None, *, timeout_s: float = SYNC_NOW_TIMEOUT_S
    ) -> SyncReport:
        """Complete the open tabular files and run one sync pass now (even if
        ``sync_disabled``); raises :class:`ServiceError` when sync is not configured.

        Failed uploads are retried for at most ``timeout_s`` (a call in flight
        then still ends by its own deadline); what could not be uploaded stays
        for a later pass. The report says what happened: ``files_uploaded``,
        ``files_left`` (with each reason) and ``last_error``.
        """
        try:
            return self._sync.sync_now(progress, timeout_s)
        except SyncNotRunning as exc:
            raise ServiceError(str(exc)) from None

    def upload_binary_to_datasets(
        self,
        data: bytes,
        mime_type: str,
        tags: tuple[str, ...] = (),
        dataset_ids: tuple[str, ...] = (),
    ) -> None:
        """Upload ``data`` now, straight into ``dataset_ids`` (DataManagerService's
        UploadBinaryDataToDatasets): written to ``<capture_dir>/dataset/`` then sent as a
        file with the config's tags plus ``tags``; the file is removed either way."""
        folder = self.capture_dir / DATASET_DIR
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"{uuid.uuid4()}{MIME_FILE_EXTENSIONS.get(mime_type, '')}"
        path = folder / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            all_tags = tuple(dict.fromkeys((*self.settings.tags, *tags)))
            try:
                self._sync.upload_file(path, name, all_tags, dataset_ids)
            except SyncNotRunning as exc:
                raise ServiceError(str(exc)) from None
        finally:
            path.unlink(missing_ok=True)

    def deletion_stats(self) -> DeleterStats | None:
        """Disk-pressure deletion counters; None while capture is off."""
        return self._deletion.stats()

    def ring_stats(self) -> dict[str, dict[str, Any]]:
        """Micro-server collectors: ring contents, overwrites and uploads, per collector."""
        return self._rings.stats()

    def _before_sync_pass(self) -> None:
        self.flush_to_capture()
        self._rings.drain_all()

    def mongo_stats(self) -> MongoCaptureStats | None:
        """MongoDB capture counters (inserted, dropped, failed); None when not configured."""
        writer = self._mongo
        return None if writer is None else writer.stats()

    def _on_tabular(
        self, key: CollectorKey, readings: Mapping[str, Any], requested_ns: int, received_ns: int
    ) -> None:
        writer = self._mongo
        if writer is not None:
            writer.submit(key, readings, requested_ns, received_ns)

    def _update_mongo(self) -> None:
        """Start, keep or replace the MongoDB capture writer to match the config."""
        wanted = self.settings.mongo_capture_config if self.capture_enabled else None
        if wanted == self._mongo_config or self._closed:
            return
        old, self._mongo, self._mongo_config = self._mongo, None, wanted
        if wanted is not None:
            try:
                require_pymongo()
                from capsync.mongo.capture import MongoCaptureWriter

                self._mongo = MongoCaptureWriter(wanted)
            except (ValueError, MissingExtraError) as exc:
                _log.error("mongo_capture_config: %s; MongoDB capture is off", exc)
        if old is not None:
            old.close(5.0)

    def _update_deletion(self) -> None:
        with self._lock:
            if not self._closed:
                self._deletion.update(self.settings, self.capture_enabled)

    def sync_stats(self) -> SyncStats | None:
        """Upload totals since sync started; None when sync is not running (see the log)."""
        return self._sync.stats()

    def uploading(self) -> frozenset[Path]:
        """The files being uploaded now: never delete one of these."""
        return self._sync.uploading()

    def _close_other_resources(self) -> None:
        for resource in self._other_resources.values():
            resource.close()
        self._other_resources.clear()

    def __enter__(self) -> DataManager:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----- planning ---------------------------------------------------------------------

    def _plan(self, config: MachineConfig) -> dict[CollectorKey, _Plan]:
        manager = config.data_manager
        if manager is None or manager.capture_disabled:
            return {}
        plans: dict[CollectorKey, _Plan] = {}
        remotes = {remote.name: remote for remote in config.remotes}
        for target in config.capture_targets():
            method = target.method
            if not method.enabled:
                continue
            if target.resource is None and target.remote in remotes:  # built as any other
                from capsync.remote import remote_resource_config  # grpc only when needed

                resource = remote_resource_config(
                    remotes[target.remote], target.api, target.resource_name
                )
                target = dataclasses.replace(target, resource=resource)
            key = CollectorKey(target.api, target.resource_name, method.method)
            plans[key] = _Plan(
                key=key,
                target=target,
                settings=CollectorSettings(
                    frequency_hz=method.capture_frequency_hz,
                    additional_params=dict(method.additional_params),
                    tags=tuple(dict.fromkeys((*manager.tags, *method.tags))),
                    queue_size=method.capture_queue_size,
                    max_file_size_bytes=manager.maximum_capture_file_size_bytes,
                    fsync_interval_s=self.fsync_interval_s,
                    cache_size_kb=method.cache_size_kb,
                    realtime_priority=self.realtime_priority,
                ),
            )
        return plans

    def _apply(self, plans: dict[CollectorKey, _Plan]) -> None:
        current = self._collectors
        changed = {
            (plan.key.api, plan.key.resource_name)
            for plan in plans.values()
            if _construction(self._resource_configs.get((plan.key.api, plan.key.resource_name)))
            not in (None, _construction(plan.target.resource))
        }
        self._close_collectors(
            [
                current.pop(key)
                for key in [
                    k for k in current if k not in plans or (k.api, k.resource_name) in changed
                ]
            ]
        )
        for ident in changed:  # rebuilt with the new attributes below
            self._resource_configs.pop(ident, None)
            resource = self._resources.pop(ident, None)
            if resource is not None:
                resource.close()
        for key, plan in plans.items():
            collector = current.get(key)
            if collector is not None:
                same_dir = collector.capture_dir == self.capture_dir
                if same_dir and collector.settings == plan.settings:
                    continue
                if same_dir and _only_frequency_changed(collector.settings, plan.settings):
                    collector.retime(plan.settings.frequency_hz)
                    continue
                self._close_collector(current.pop(key))
            current[key] = self._start_collector(plan)
        self._drop_unused_resources()

    def _close_collector(self, collector: Collector, timeout_s: float | None = None) -> None:
        collector.close(self.close_timeout_s if timeout_s is None else timeout_s)
        self._rings.remove(collector.key)

    def _close_collectors(self, collectors: list[Collector]) -> None:
        """Close ``collectors`` in parallel, all within one ``close_timeout_s``.

        A collector writing to a full disk waits for its writer up to the bound;
        closing them one after another would add those waits up.
        """
        if len(collectors) <= 1:
            for collector in collectors:
                self._close_collector(collector)
            return
        deadline = time.monotonic() + self.close_timeout_s
        threads = [
            threading.Thread(
                target=self._close_collector,
                args=(collector, self.close_timeout_s),
                name=f"capsync-close-{collector.label}",
                daemon=True,
            )
            for collector in collectors
        ]
        for thread in threads:
            thread.start()
        for thread, collector in zip(threads, collectors, strict=True):
            # Collector.close gives up on its writer after the bound, then waits a little more.
            thread.join(max(0.0, deadline - time.monotonic()) + _CLOSE_GRACE_S)
            if thread.is_alive():
                _log.error("%s: still closing after %.0f s; left behind", collector.label,
                           self.close_timeout_s)  # fmt: skip

    def _start_collector(self, plan: _Plan) -> Collector:
        resource = self._resource_for(plan.target)
        if plan.key.method not in resource.methods():
            raise ServiceError(
                f"{resource.describe()} (model {resource.model}) has no capture method "
                f"{plan.key.method!r}; it supports {', '.join(sorted(resource.methods()))}"
            )
        sink_factory = None
        if plan.settings.cache_size_kb is not None:
            sink_factory = self._rings.sink_factory(
                plan.key, plan.settings, SyncControl.part_id(self.config)
            )
        try:
            collector = Collector(
                plan.key,
                resource,
                plan.settings,
                self.capture_dir,
                sink_factory=sink_factory,
                on_tabular=self._on_tabular,
            )
        except OSError as exc:
            raise ServiceError(f"{plan.key.resource_name}/{plan.key.method}: {exc}") from exc
        collector.start()
        return collector

    def _resource_for(self, target: CaptureTarget) -> Resource:
        assert target.resource is not None
        config = target.resource
        ident = (config.api, config.name)
        resource = self._resources.get(ident)
        if resource is None and target.remote is not None:
            from capsync.remote import build_remote_resource

            resource = build_remote_resource(config, self._context())
        if resource is None:
            try:
                resource = build_resource(
                    config.api, config.model, config.name, config.attributes, self._context()
                )
            except (UnknownTypeError, UnknownModelError, ModelImportError) as exc:
                # Same type for callers that catch it; the message now names the component.
                exc.args = (f'{config.type} "{config.name}": {exc}',)
                raise
            self._resources[ident] = resource
            self._resource_configs[ident] = config
        return resource

    def _context(self) -> ResourceContext:
        source = self.config.source_path
        return ResourceContext(
            capture_dir=str(self.capture_dir),
            config_dir=str(Path(source).parent) if source else None,
            resolve=self._dependency,
        )

    def _dependency(self, name: str) -> Resource:
        """Another resource for a resource (a vision service's camera). Never waits long
        for the lock: a capture thread asking while the config changes must not block the
        reconfiguration that is joining it."""
        if not self._lock.acquire(timeout=DEPENDENCY_LOCK_TIMEOUT_S):
            raise LookupError(f"resource {name!r}: busy reconfiguring, try again")
        try:
            resource = self.resource(name)
        finally:
            self._lock.release()
        if resource is None:
            raise LookupError(f"no resource {name!r} in the config (or it cannot be built)")
        return resource

    def _drop_unused_resources(self) -> None:
        used = {(key.api, key.resource_name) for key in self._collectors}
        for ident in [i for i in self._resources if i not in used]:
            self._resource_configs.pop(ident, None)
            self._resources.pop(ident).close()


def _construction(config: ResourceConfig | None) -> ResourceConfig | None:
    """What a resource is built from: its config without the capture methods."""
    return None if config is None else dataclasses.replace(config, capture_methods=())


def _only_frequency_changed(old: CollectorSettings, new: CollectorSettings) -> bool:
    """True when every setting but the frequency is the same (a ring size too, or none)."""
    return dataclasses.replace(old, frequency_hz=new.frequency_hz) == new
