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

Over 400 lines but one concern: planning which collectors and background jobs a
config asks for, applying the plan, and the part's face over them (stats,
``sync_now``); each job's own work is its ``*_control``
module, the collectors' is :mod:`capsync.service.collector`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from capsync.capture.diskpressure import DeleterStats
from capsync.capture.recovery import Recovery, recover_in_progress
from capsync.config import (
    CaptureTarget,
    DataManagerConfig,
    MachineConfig,
    load_config,
)
from capsync.resources import (
    Resource,
)
from capsync.service.collector import Collector, CollectorKey, CollectorSettings, CollectorStats
from capsync.service.deletion_control import DeletionControl
from capsync.service.micro_control import MicroServerRings
from capsync.service.mongo_control import MongoControl
from capsync.service.resource_pool import ResourcePool
from capsync.service.sync_control import SyncControl, SyncNotRunning
from capsync.sync import ProgressFn, SyncReport, SyncStats

if TYPE_CHECKING:  # pymongo is an optional extra: capsync.mongo.capture is imported when used
    from capsync.mongo.capture import MongoCaptureStats
    from capsync.service._control import BackgroundControl

_log = logging.getLogger("capsync.manager")

# How long DataManager.sync_now keeps retrying by default.
SYNC_NOW_TIMEOUT_S = 30.0
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
        realtime_whole_process: bool = False,
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
        # With it: the process's other threads under SCHED_FIFO below the collectors.
        self.realtime_whole_process = realtime_whole_process
        self._collectors: dict[CollectorKey, Collector] = {}
        self._lock = threading.RLock()
        self._started = False
        self._closed = False
        self.recovered: list[Recovery] = []
        self._final_stats: dict[str, CollectorStats] = {}
        self._pool = ResourcePool(lambda: self.config, self._lock)
        self._sync = SyncControl(
            settings=lambda: self.settings,
            before_pass=self._before_sync_pass,
            resource=self.resource,
            stop_timeout_s=stop_timeout_s,
        )
        self._deletion = DeletionControl(deletion_interval_s, lambda p: p in self.uploading())
        self._rings = MicroServerRings(self._sync.upload)
        self._mongo = MongoControl()  # mongo_capture_config's writer
        if TYPE_CHECKING:  # every background job has the same shape
            _jobs: tuple[BackgroundControl, ...] = (self._sync, self._deletion, self._mongo)

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
            self._pool.close_others()
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
        self._sync.stop()
        self._close_collectors(collectors)
        self._final_stats = {collector.label: collector.stats() for collector in collectors}
        self._mongo.stop()
        with self._lock:
            self._pool.close()

    # ----- sync -------------------------------------------------------------------------

    def resource(self, name: str) -> Resource | None:
        """The resource ``name`` (or ``api/name``) of the config, built if no collector uses it.

        None when the config has no such resource or it cannot be built (logged).
        """
        return self._pool.resource(name)

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
        all_tags = tuple(dict.fromkeys((*self.settings.tags, *tags)))
        try:
            self._sync.upload_to_datasets(data, mime_type, all_tags, dataset_ids)
        except SyncNotRunning as exc:
            raise ServiceError(str(exc)) from None

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
        return self._mongo.stats()

    def _update_mongo(self) -> None:
        if not self._closed:
            self._mongo.update(self.config)

    def _update_deletion(self) -> None:
        with self._lock:
            if not self._closed:
                self._deletion.update(self.config)

    def sync_stats(self) -> SyncStats | None:
        """Upload totals since sync started; None when sync is not running (see the log)."""
        return self._sync.stats()

    def uploading(self) -> frozenset[Path]:
        """The files being uploaded now: never delete one of these."""
        return self._sync.uploading()

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
                    realtime_whole_process=self.realtime_whole_process,
                ),
            )
        return plans

    def _apply(self, plans: dict[CollectorKey, _Plan]) -> None:
        current = self._collectors
        changed = {
            (plan.key.api, plan.key.resource_name)
            for plan in plans.values()
            if self._pool.config_changed(plan.target)
        }
        self._close_collectors(
            [
                current.pop(key)
                for key in [
                    k for k in current if k not in plans or (k.api, k.resource_name) in changed
                ]
            ]
        )
        self._pool.forget(changed)  # rebuilt with the new attributes below
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
        self._pool.keep_only({(key.api, key.resource_name) for key in self._collectors})

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
        resource = self._pool.for_target(plan.target)
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
                on_tabular=self._mongo.submit,
            )
        except OSError as exc:
            raise ServiceError(f"{plan.key.resource_name}/{plan.key.method}: {exc}") from exc
        collector.start()
        return collector


def _only_frequency_changed(old: CollectorSettings, new: CollectorSettings) -> bool:
    """True when every setting but the frequency is the same (a ring size too, or none)."""
    return dataclasses.replace(old, frequency_hz=new.frequency_hz) == new
