"""``fake`` sensor: Readings whose values trace sines of different periods, call by call."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
from typing import Any

from .attrs import get_str_list
from .base import Resource, ResourceContext, capture_method
from .registry import register

DEFAULT_KEYS = ["a", "b", "c", "d", "e", "f"]


def _wave(index: int) -> tuple[float, ...]:
    """One period of the values of key number ``index``.

    Odd periods (37, 61, 85, ... calls) guarantee consecutive values differ.
    """
    period = 37 + 24 * index
    amplitude = 1.0 + index
    offset = 10.0 * index
    return tuple(
        round(offset + amplitude * math.sin(2.0 * math.pi * step / period), 9)
        for step in range(period)
    )


@register("rdk:component:sensor", "fake")
class FakeSensor(Resource):
    """Attributes: ``keys`` (list of reading names, default a..f).

    Values are precomputed, so Readings costs one dict build (~1 µs for six keys): it can be
    captured at tens of kHz.
    """

    def __init__(self, name: str, attributes: Mapping[str, Any], context: ResourceContext) -> None:
        super().__init__(name, attributes, context)
        self._keys = tuple(get_str_list(self, self.attributes, "keys", DEFAULT_KEYS))
        self._waves: tuple[Iterator[float], ...] = tuple(
            itertools.cycle(_wave(i)) for i in range(len(self._keys))
        )

    @capture_method("Readings")
    def readings(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return dict(zip(self._keys, map(next, self._waves), strict=True))
