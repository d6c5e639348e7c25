"""``host`` sensor: this machine's real figures through psutil."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil

from .base import Resource, ResourceContext, capture_method
from .registry import register


def _existing_dir(path: str | None) -> str:
    """``path`` or its nearest existing ancestor (the capture dir may not exist yet)."""
    p = Path(path).expanduser().resolve() if path else Path("/")
    while not p.exists() and p != p.parent:
        p = p.parent
    return str(p)


def _temperatures_c() -> dict[str, dict[str, float]]:
    """Temperatures by chip and label, in °C; empty where the OS reports none."""
    read = getattr(psutil, "sensors_temperatures", None)
    if read is None:
        return {}
    try:
        chips = read()
    except (OSError, RuntimeError):
        return {}
    result: dict[str, dict[str, float]] = {}
    for chip, entries in chips.items():
        temps = {
            (entry.label or f"temp{i}"): float(entry.current)
            for i, entry in enumerate(entries, start=1)
            if entry.current is not None
        }
        if temps:
            result[chip] = temps
    return result


@register("rdk:component:sensor", "host")
class HostSensor(Resource):
    """Readings: CPU load, load averages, memory, disk usage of the capture folder, network
    byte counters, process count and temperatures (where available). No attributes.
    """

    def __init__(self, name: str, attributes: Mapping[str, Any], context: ResourceContext) -> None:
        super().__init__(name, attributes, context)
        self._disk_path = _existing_dir(context.capture_dir)
        psutil.cpu_percent(interval=None)  # the first non-blocking call has no baseline

    @capture_method("Readings")
    def readings(self, params: Mapping[str, Any]) -> dict[str, Any]:
        load_1, load_5, load_15 = psutil.getloadavg()
        memory = psutil.virtual_memory()
        disk = psutil.disk_usage(self._disk_path)
        readings: dict[str, Any] = {
            "cpu_percent": float(psutil.cpu_percent(interval=None)),
            "cpu_count": os.cpu_count() or 1,
            "load_1": load_1,
            "load_5": load_5,
            "load_15": load_15,
            "memory_used_bytes": memory.used,
            "memory_available_bytes": memory.available,
            "memory_percent": float(memory.percent),
            "disk_path": self._disk_path,
            "disk_total_bytes": disk.total,
            "disk_used_bytes": disk.used,
            "disk_free_bytes": disk.free,
            "disk_percent": float(disk.percent),
            "process_count": len(psutil.pids()),
            "uptime_s": time.time() - psutil.boot_time(),
        }
        net = psutil.net_io_counters()
        if net is not None:
            readings["net_bytes_sent"] = net.bytes_sent
            readings["net_bytes_recv"] = net.bytes_recv
        temperatures = _temperatures_c()
        if temperatures:
            readings["temperatures_c"] = temperatures
        return readings
