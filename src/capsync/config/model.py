"""Typed, immutable view of a machine config (SPEC §1).

Every class here is a frozen dataclass; change one with ``dataclasses.replace``.
Dict-valued fields (resource ``attributes``, ``additional_params``) are left out of
hashing so that the objects stay hashable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["component", "service"]

DEFAULT_NAMESPACE = "rdk"
# A capture method below this frequency never fires: it counts as disabled.
MIN_CAPTURE_FREQUENCY_HZ = 1e-6
DEFAULT_CAPTURE_QUEUE_SIZE = 250
DEFAULT_CAPTURE_BUFFER_SIZE_BYTES = 4096
DEFAULT_SYNC_INTERVAL_MINS = 0.1
# A sync_interval_mins closer to 0 than this means "use the default".
SYNC_INTERVAL_EPSILON_MINS = 1e-4
DEFAULT_FILE_LAST_MODIFIED_MILLIS = 10000.0
DEFAULT_DELETE_EVERY_NTH_WHEN_DISK_FULL = 5
DEFAULT_DISK_USAGE_DELETION_THRESHOLD = 0.9
DEFAULT_CAPTURE_DIR_DELETION_THRESHOLD = 0.5
DEFAULT_MAXIMUM_CAPTURE_FILE_SIZE_BYTES = 256 * 1024
DEFAULT_MONGO_DATABASE = "sensorData"
DEFAULT_MONGO_COLLECTION = "readings"
DEFAULT_APP_ADDRESS = "https://app.viam.com:443"
DEFAULT_MAX_BACKOFF_S = 60.0


def default_capture_dir() -> str:
    """``$VIAM_HOME/capture`` when VIAM_HOME is set, else ``~/.viam/capture``; absolute."""
    viam_home = os.environ.get("VIAM_HOME", "")
    base = (
        os.path.join(viam_home, "capture") if viam_home else os.path.join("~", ".viam", "capture")
    )
    return os.path.abspath(os.path.expanduser(base))


def resolve_capture_dir(configured: str) -> str:
    """The capture dir for a configured ``capture_dir``: "" means the default, ``~`` expands."""
    if not configured:
        return default_capture_dir()
    return os.path.abspath(os.path.expanduser(configured))


def default_num_sync_threads() -> int:
    """Half the logical CPUs (viam-server's default), but at least two.

    Two, so that a file waiting out a retry on a small machine never leaves the
    others without a worker between attempts.
    """
    return max(2, (os.cpu_count() or 1) // 2)


def split_resource_name(full_name: str) -> tuple[str, str] | None:
    """``"rdk:component:board/my-esp32"`` -> ``("rdk:component:board", "my-esp32")``.

    None when ``full_name`` is not ``<namespace>:<kind>:<type>/<name>``.
    """
    api, sep, name = full_name.partition("/")
    parts = api.split(":")
    if not sep or not name or len(parts) != 3 or not all(parts):
        return None
    return api, name


@dataclass(frozen=True)
class RetentionPolicy:
    """How long the cloud side keeps what a capture method uploaded."""

    days: int | None = None
    binary_limit_gb: float | None = None
    tabular_limit_gb: float | None = None


@dataclass(frozen=True)
class CaptureMethodConfig:
    """One entry of ``service_configs[].attributes.capture_methods[]``."""

    method: str
    capture_frequency_hz: float
    # Method-specific, e.g. mime_type (ReadImage), reader_name (Analogs), pin_name (Gpios).
    additional_params: dict[str, Any] = field(default_factory=dict, hash=False)
    disabled: bool = False
    tags: tuple[str, ...] = ()
    # Readings that may wait between the collector and the writer.
    capture_queue_size: int = DEFAULT_CAPTURE_QUEUE_SIZE
    capture_buffer_size: int = DEFAULT_CAPTURE_BUFFER_SIZE_BYTES
    retention_policy: RetentionPolicy | None = None
    cache_size_kb: float | None = None
    # The resource's full name as written, e.g. "rdk:component:board/my-esp32"
    # (required for a remote's capture methods, usually "" otherwise).
    name: str = ""

    @property
    def enabled(self) -> bool:
        """False when ``disabled`` is set or the frequency is <= 0 (or below 1e-6 Hz)."""
        return not self.disabled and self.capture_frequency_hz >= MIN_CAPTURE_FREQUENCY_HZ


@dataclass(frozen=True)
class ResourceConfig:
    """A ``components[]`` or ``services[]`` entry."""

    name: str
    type: str
    kind: Kind = "component"
    namespace: str = DEFAULT_NAMESPACE
    # As written: "fake", "rdk:builtin:fake", "acme:demo:lidar", or "" when absent.
    model: str = ""
    attributes: dict[str, Any] = field(default_factory=dict, hash=False)
    depends_on: tuple[str, ...] = ()
    capture_methods: tuple[CaptureMethodConfig, ...] = ()

    @property
    def api(self) -> str:
        """The resource API, e.g. ``rdk:component:sensor``."""
        return f"{self.namespace}:{self.kind}:{self.type}"

    @property
    def model_name(self) -> str:
        """The model's last ``:`` segment: ``fake`` for both ``fake`` and ``rdk:builtin:fake``."""
        return self.model.rsplit(":", 1)[-1]


@dataclass(frozen=True)
class RemoteConfig:
    """A ``remotes[]`` entry: another machine whose resources this one can capture."""

    name: str
    address: str = ""
    insecure: bool = False
    # Each names its resource by full name (CaptureMethodConfig.name).
    capture_methods: tuple[CaptureMethodConfig, ...] = ()


@dataclass(frozen=True)
class MongoCaptureConfig:
    """``mongo_capture_config``: tabular readings are also written to MongoDB."""

    uri: str
    database: str = DEFAULT_MONGO_DATABASE
    collection: str = DEFAULT_MONGO_COLLECTION


@dataclass(frozen=True)
class DataManagerConfig:
    """The attributes of the ``data_manager`` service, defaults filled in (SPEC §1).

    ``DataManagerConfig()`` is the all-defaults configuration.
    """

    name: str = ""
    # Absolute, "~" expanded; the default when the config says "".
    capture_dir: str = field(default_factory=default_capture_dir)
    capture_disabled: bool = False
    sync_disabled: bool = False
    sync_interval_mins: float = DEFAULT_SYNC_INTERVAL_MINS
    tags: tuple[str, ...] = ()
    additional_sync_paths: tuple[str, ...] = ()
    file_last_modified_millis: float = DEFAULT_FILE_LAST_MODIFIED_MILLIS
    maximum_num_sync_threads: int = field(default_factory=default_num_sync_threads)
    delete_every_nth_when_disk_full: int = DEFAULT_DELETE_EVERY_NTH_WHEN_DISK_FULL
    # Fraction (0, 1] of the filesystem in use that starts deletion.
    disk_usage_deletion_threshold: float = DEFAULT_DISK_USAGE_DELETION_THRESHOLD
    # Fraction (0, 1] of the filesystem the capture dir must hold before deletion.
    capture_dir_deletion_threshold: float = DEFAULT_CAPTURE_DIR_DELETION_THRESHOLD
    maximum_capture_file_size_bytes: int = DEFAULT_MAXIMUM_CAPTURE_FILE_SIZE_BYTES
    selective_syncer_name: str = ""
    mongo_capture_config: MongoCaptureConfig | None = None
    cache_size_kb: float | None = None
    delete_data_on_part_deletion: bool = False

    @property
    def sync_interval_s(self) -> float:
        """Time between scheduled sync passes, in seconds."""
        return self.sync_interval_mins * 60.0

    @property
    def file_last_modified_s(self) -> float:
        """How long an arbitrary file must stay unmodified before upload, in seconds."""
        return self.file_last_modified_millis / 1000.0


@dataclass(frozen=True)
class CloudConfig:
    """viam-server's ``cloud`` section (the part of it capsync uses)."""

    id: str
    secret: str = field(default="", repr=False)
    app_address: str = DEFAULT_APP_ADDRESS


@dataclass(frozen=True)
class SyncConfig:
    """capsync's own optional top-level ``sync`` section: where and how to upload.

    None means "not configured"; the sync code decides the fallback (e.g. ``cloud``).
    """

    address: str | None = None
    api_key_id: str | None = None
    api_key: str | None = field(default=None, repr=False)
    insecure: bool = False
    ca_file: str | None = None
    part_id: str | None = None
    # Cap of the exponential retry backoff, in seconds.
    max_backoff_s: float = DEFAULT_MAX_BACKOFF_S


@dataclass(frozen=True)
class CaptureTarget:
    """One (resource, capture method) pair to run a collector for."""

    resource_name: str
    api: str
    method: CaptureMethodConfig
    # The local resource; None for a remote's resource.
    resource: ResourceConfig | None = None
    # The remote's name when the resource lives on a remote.
    remote: str | None = None


@dataclass(frozen=True)
class MachineConfig:
    """A whole machine config."""

    components: tuple[ResourceConfig, ...] = ()
    services: tuple[ResourceConfig, ...] = ()
    remotes: tuple[RemoteConfig, ...] = ()
    # The data_manager service; None when the config has none (the caller decides).
    data_manager: DataManagerConfig | None = None
    cloud: CloudConfig | None = None
    sync: SyncConfig | None = None
    # Absolute path of the file it came from; None for a dict.
    source_path: str | None = None
    # Unknown keys and the like: reported, not fatal.
    warnings: tuple[str, ...] = ()

    def capture_targets(self, *, enabled_only: bool = False) -> list[CaptureTarget]:
        """Every capture method of components, services and remotes, in config order."""
        targets: list[CaptureTarget] = []
        for resource in (*self.components, *self.services):
            for method in resource.capture_methods:
                targets.append(CaptureTarget(resource.name, resource.api, method, resource))
        for remote in self.remotes:
            for method in remote.capture_methods:
                split = split_resource_name(method.name)
                if split is None:  # the loader rejects these; a hand-built config may not
                    raise ValueError(f"remote {remote.name!r}: bad resource name {method.name!r}")
                api, name = split
                targets.append(CaptureTarget(name, api, method, None, remote.name))
        if enabled_only:
            targets = [t for t in targets if t.method.enabled]
        return targets
