"""Keeps one disk-pressure deleter running in line with the data_manager settings
(a :class:`~capsync.service._control.BackgroundControl`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from capsync.capture.diskpressure import DeleterStats, DiskPressureDeleter
from capsync.config import MachineConfig
from capsync.service._control import capture_settings


class DeletionControl:
    """Start, restart or stop the deleter when the settings that shape it change."""

    def __init__(self, interval_s: float, is_in_flight: Callable[[Path], bool]) -> None:
        self.interval_s = interval_s
        self._is_in_flight = is_in_flight
        self._deleter: DiskPressureDeleter | None = None
        self._key: tuple[Any, ...] | None = None

    def update(self, config: MachineConfig) -> None:
        """Deletion runs exactly while capture is on (SPEC §5)."""
        settings, capture_enabled = capture_settings(config)
        key = (
            (
                settings.capture_dir,
                settings.disk_usage_deletion_threshold,
                settings.capture_dir_deletion_threshold,
                settings.delete_every_nth_when_disk_full,
                settings.additional_sync_paths,
            )
            if capture_enabled
            else None
        )
        if key == self._key:
            return
        self.stop()
        self._key = key
        if key is not None:
            self._deleter = DiskPressureDeleter.from_config(
                settings, interval_s=self.interval_s, is_in_flight=self._is_in_flight
            ).start()

    def stop(self) -> None:
        deleter, self._deleter, self._key = self._deleter, None, None
        if deleter is not None:
            deleter.stop()

    def stats(self) -> DeleterStats | None:
        return None if self._deleter is None else self._deleter.stats()
