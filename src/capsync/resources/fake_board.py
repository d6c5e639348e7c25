"""``fake`` board: analog readers tracing slow sines, GPIO pins that toggle per read."""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Mapping
from typing import Any

from .base import Resource, ResourceContext, capture_method
from .registry import register

_ADC_MAX = 4095  # a 12-bit converter
_MAX_RANGE_V = 3.3
_PERIOD_S = 10.0


@register("rdk:component:board", "fake")
class FakeBoard(Resource):
    """Attributes: ``analogs`` (optional ``[{"name": ...}]``; when given, Analogs accepts only
    those reader names, otherwise any name).

    ``Analogs`` needs additional param ``reader_name``; ``Gpios`` needs ``pin_name``.
    """

    def __init__(self, name: str, attributes: Mapping[str, Any], context: ResourceContext) -> None:
        super().__init__(name, attributes, context)
        self._readers = self._reader_names(self.attributes.get("analogs"))
        self._start_s = time.monotonic()
        self._pin_reads: dict[str, int] = {}

    def _reader_names(self, analogs: Any) -> frozenset[str] | None:
        if analogs is None:
            return None
        if not isinstance(analogs, list) or not all(
            isinstance(a, Mapping) and isinstance(a.get("name"), str) and a["name"] for a in analogs
        ):
            raise self.config_error(
                "analogs", f'must be a list of {{"name": ...}}, got {analogs!r}'
            )
        return frozenset(a["name"] for a in analogs)

    def _param(self, params: Mapping[str, Any], key: str, method: str) -> str:
        value = params.get(key)
        if not isinstance(value, str) or not value:
            raise self.config_error(key, f"is required in additional_params of {method}")
        return value

    @capture_method("Analogs")
    def analogs(self, params: Mapping[str, Any]) -> dict[str, Any]:
        reader = self._param(params, "reader_name", "Analogs")
        if self._readers is not None and reader not in self._readers:
            raise self.config_error(
                "reader_name",
                f"{reader!r} is not a configured analog; have {sorted(self._readers)}",
            )
        phase = (zlib.crc32(reader.encode()) % 1000) / 1000.0 * 2.0 * math.pi
        t_s = time.monotonic() - self._start_s
        level = 0.5 + 0.5 * math.sin(2.0 * math.pi * t_s / _PERIOD_S + phase)
        return {
            "value": round(level * _ADC_MAX),
            "min_range": 0.0,
            "max_range": _MAX_RANGE_V,
            "step_size": _MAX_RANGE_V / _ADC_MAX,
        }

    @capture_method("Gpios")
    def gpios(self, params: Mapping[str, Any]) -> dict[str, Any]:
        pin = self._param(params, "pin_name", "Gpios")
        reads = self._pin_reads.get(pin, 0)
        self._pin_reads[pin] = reads + 1
        return {"high": reads % 2 == 1}
