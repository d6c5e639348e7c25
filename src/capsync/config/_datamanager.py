"""Parsing of the ``data_manager`` service's attributes (SPEC §1's table).

Numbers must be >= 0 and 0 means "use the default"; bools must be JSON booleans.
"""

from __future__ import annotations

import os

from ._reader import ObjectReader, Warnings
from .model import (
    DEFAULT_CAPTURE_DIR_DELETION_THRESHOLD,
    DEFAULT_DELETE_EVERY_NTH_WHEN_DISK_FULL,
    DEFAULT_DISK_USAGE_DELETION_THRESHOLD,
    DEFAULT_FILE_LAST_MODIFIED_MILLIS,
    DEFAULT_MAXIMUM_CAPTURE_FILE_SIZE_BYTES,
    DEFAULT_MONGO_COLLECTION,
    DEFAULT_MONGO_DATABASE,
    DEFAULT_SYNC_INTERVAL_MINS,
    SYNC_INTERVAL_EPSILON_MINS,
    DataManagerConfig,
    MongoCaptureConfig,
    ResourceConfig,
    default_num_sync_threads,
    resolve_capture_dir,
)


def parse_data_manager(service: ResourceConfig, warnings: Warnings) -> DataManagerConfig:
    """The typed attributes of ``service`` (a ``data_manager`` entry of ``services``)."""
    r = ObjectReader(service.attributes, f'{service.type} "{service.name}"', warnings)
    sync_interval_mins = r.number("sync_interval_mins")
    if sync_interval_mins is None or sync_interval_mins < SYNC_INTERVAL_EPSILON_MINS:
        sync_interval_mins = DEFAULT_SYNC_INTERVAL_MINS
    cache_size_kb = r.number("cache_size_kb") or None
    if cache_size_kb is not None and cache_size_kb < 1:
        r.bad("cache_size_kb", "at least 1 (KB)", r.raw("cache_size_kb"))
    config = DataManagerConfig(
        name=service.name,
        capture_dir=resolve_capture_dir(r.text("capture_dir") or ""),
        capture_disabled=bool(r.flag("capture_disabled")),
        sync_disabled=bool(r.flag("sync_disabled")),
        sync_interval_mins=sync_interval_mins,
        tags=r.tags("tags"),
        additional_sync_paths=tuple(
            os.path.expanduser(p) for p in r.strings("additional_sync_paths") or ()
        ),
        file_last_modified_millis=(
            r.number("file_last_modified_millis") or DEFAULT_FILE_LAST_MODIFIED_MILLIS
        ),
        maximum_num_sync_threads=(
            r.integer("maximum_num_sync_threads") or default_num_sync_threads()
        ),
        delete_every_nth_when_disk_full=(
            r.integer("delete_every_nth_when_disk_full") or DEFAULT_DELETE_EVERY_NTH_WHEN_DISK_FULL
        ),
        disk_usage_deletion_threshold=_fraction(
            r, "disk_usage_deletion_threshold", DEFAULT_DISK_USAGE_DELETION_THRESHOLD
        ),
        capture_dir_deletion_threshold=_fraction(
            r, "capture_dir_deletion_threshold", DEFAULT_CAPTURE_DIR_DELETION_THRESHOLD
        ),
        maximum_capture_file_size_bytes=(
            r.integer("maximum_capture_file_size_bytes") or DEFAULT_MAXIMUM_CAPTURE_FILE_SIZE_BYTES
        ),
        selective_syncer_name=r.text("selective_syncer_name") or "",
        mongo_capture_config=_mongo(r.child("mongo_capture_config")),
        cache_size_kb=cache_size_kb,
        delete_data_on_part_deletion=bool(r.flag("delete_data_on_part_deletion")),
    )
    r.finish()
    return config


def _fraction(r: ObjectReader, key: str, default: float) -> float:
    """A fraction in (0, 1]; 0 or absent means ``default``."""
    value = r.number(key)
    if value is not None and value > 1:
        r.bad(key, "a number <= 1", r.raw(key))
    return value or default


def _mongo(r: ObjectReader | None) -> MongoCaptureConfig | None:
    if r is None:
        return None
    config = MongoCaptureConfig(
        uri=r.required_text("uri"),
        database=r.text("database") or DEFAULT_MONGO_DATABASE,
        collection=r.text("collection") or DEFAULT_MONGO_COLLECTION,
    )
    r.finish()
    return config
