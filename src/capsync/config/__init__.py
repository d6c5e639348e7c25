"""The machine config: viam-server's JSON, loaded into checked, typed objects (SPEC §1).

>>> config = load_config("examples/robot.json")  # doctest: +SKIP
>>> [(t.api, t.resource_name, t.method.method) for t in config.capture_targets()]  # doctest: +SKIP
"""

from .errors import ConfigError
from .load import load_config
from .model import (
    CaptureMethodConfig,
    CaptureTarget,
    CloudConfig,
    DataManagerConfig,
    MachineConfig,
    MongoCaptureConfig,
    RemoteConfig,
    ResourceConfig,
    RetentionPolicy,
    SyncConfig,
    default_capture_dir,
    split_resource_name,
)

__all__ = [
    "CaptureMethodConfig",
    "CaptureTarget",
    "CloudConfig",
    "ConfigError",
    "DataManagerConfig",
    "MachineConfig",
    "MongoCaptureConfig",
    "RemoteConfig",
    "ResourceConfig",
    "RetentionPolicy",
    "SyncConfig",
    "default_capture_dir",
    "load_config",
    "split_resource_name",
]
