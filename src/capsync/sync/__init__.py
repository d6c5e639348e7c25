"""Sync: uploading capture files and arbitrary files to the ingest service (SPEC §4).

>>> target = resolve_target(load_config("machine.json"))          # doctest: +SKIP
>>> with Syncer(SyncSettings(capture_dir="/data/capture"), target) as syncer:
...     report = syncer.sync_once()                                 # doctest: +SKIP

Modules: :mod:`~capsync.sync.connection` (address, key, TLS, channel),
:mod:`~capsync.sync.files` (what to upload, ``failed/``),
:mod:`~capsync.sync.upload` (the requests one file becomes),
:mod:`~capsync.sync.resume` (how far a split file was confirmed),
:mod:`~capsync.sync.errors` (retry, wait, keep or move aside),
:mod:`~capsync.sync.report` (a pass's settings, progress and report),
:mod:`~capsync.sync.pass_state` (what a pass's workers share),
:mod:`~capsync.sync.syncer` (a pass with a pool of workers),
:mod:`~capsync.sync.ring_upload` (micro-server mode's rings) and
:mod:`~capsync.sync.scheduler` (a pass every interval).
"""

from capsync.sync.connection import SyncTarget, UploadClient, resolve_target, sync_configured
from capsync.sync.errors import SyncConfigError
from capsync.sync.report import (
    ProgressFn,
    SyncClosedError,
    SyncProgress,
    SyncReport,
    SyncSettings,
    SyncStats,
)
from capsync.sync.scheduler import SyncScheduler
from capsync.sync.syncer import Syncer
from capsync.sync.upload import upload_arbitrary_file, upload_capture_file

__all__ = [
    "ProgressFn",
    "SyncClosedError",
    "SyncConfigError",
    "SyncProgress",
    "SyncReport",
    "SyncScheduler",
    "SyncSettings",
    "SyncStats",
    "SyncTarget",
    "Syncer",
    "UploadClient",
    "resolve_target",
    "sync_configured",
    "upload_arbitrary_file",
    "upload_capture_file",
]
