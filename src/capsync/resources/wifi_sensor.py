"""``wifi-rssi`` sensor: Wi-Fi link quality and signal level from /proc/net/wireless."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .attrs import get_str
from .base import Resource, ResourceContext, capture_method
from .errors import DataUnavailableError
from .registry import register

PROC_NET_WIRELESS = "/proc/net/wireless"
_NO_NOISE_DBM = -256.0  # drivers without a noise figure report -256


def _dbm(text: str) -> float:
    value = float(text.rstrip("."))
    # Old drivers report levels as unsigned 8-bit values: 196 means -60 dBm.
    return value - 256.0 if value > 63.0 else value


def parse_proc_net_wireless(text: str) -> list[dict[str, Any]]:
    """One dict per interface line: interface, link_quality, signal_dbm, noise_dbm."""
    interfaces = []
    for line in text.splitlines()[2:]:  # two header lines
        name, sep, rest = line.partition(":")
        fields = rest.split()
        if not sep or len(fields) < 4:
            continue
        try:
            noise = float(fields[3].rstrip("."))
            entry = {
                "interface": name.strip(),
                "link_quality": float(fields[1].rstrip(".")),
                "signal_dbm": _dbm(fields[2]),
                "noise_dbm": None if noise <= _NO_NOISE_DBM else _dbm(fields[3]),
            }
        except ValueError:
            continue
        interfaces.append(entry)
    return interfaces


@register("rdk:component:sensor", "wifi-rssi")
class WifiSensor(Resource):
    """Attributes: ``interface`` (default: the first listed), ``proc_path`` (default
    /proc/net/wireless; for tests).

    Readings raise :class:`DataUnavailableError` when the file or the interface is missing.
    """

    def __init__(self, name: str, attributes: Mapping[str, Any], context: ResourceContext) -> None:
        super().__init__(name, attributes, context)
        self.proc_path = Path(get_str(self, self.attributes, "proc_path", PROC_NET_WIRELESS) or "")
        self.interface = get_str(self, self.attributes, "interface", None)

    @capture_method("Readings")
    def readings(self, params: Mapping[str, Any]) -> dict[str, Any]:
        try:
            text = self.proc_path.read_text()
        except FileNotFoundError:
            raise self._unavailable(
                f"{self.proc_path} does not exist (it exists only on Linux with "
                "wireless extensions)"
            ) from None
        except OSError as exc:
            raise self._unavailable(f"cannot read {self.proc_path}: {exc}") from exc
        interfaces = parse_proc_net_wireless(text)
        if not interfaces:
            raise self._unavailable(
                f"{self.proc_path} lists no wireless interface (no Wi-Fi adapter, or it is down)"
            )
        if self.interface is None:
            return interfaces[0]
        for entry in interfaces:
            if entry["interface"] == self.interface:
                return entry
        names = ", ".join(e["interface"] for e in interfaces)
        raise self._unavailable(
            f"interface {self.interface!r} is not in {self.proc_path} (it lists {names})"
        )

    def _unavailable(self, why: str) -> DataUnavailableError:
        return DataUnavailableError(f"{self.describe()}: Wi-Fi signal is not available: {why}")
