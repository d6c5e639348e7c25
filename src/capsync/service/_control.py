"""The shape every background job of a data manager has (``*_control.py``).

Each job (scheduled sync, disk-pressure deletion, MongoDB capture) is started,
restarted or stopped by ``update(config)`` to match the machine config (it
keeps running when nothing it depends on changed), stopped for good by
``stop()``, and counted by ``stats()`` (None while it is not running).
"""

from __future__ import annotations

from typing import Any, Protocol

from capsync.config import DataManagerConfig, MachineConfig


class BackgroundControl(Protocol):
    def update(self, config: MachineConfig) -> None: ...

    def stop(self) -> None: ...

    def stats(self) -> Any: ...


def capture_settings(config: MachineConfig) -> tuple[DataManagerConfig, bool]:
    """The data_manager attributes (defaults when there are none) and whether capture is on."""
    manager = config.data_manager
    settings = manager or DataManagerConfig()
    return settings, manager is not None and not settings.capture_disabled
