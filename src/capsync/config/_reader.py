"""Typed reads from one JSON object, failing with a message that says where and what.

Messages read ``<where>: <key> must be <what>, got <value as JSON>``, e.g.
``sensor "imu": capture_methods[0]: capture_frequency_hz must be a number, got "fast"``.
A reader remembers the keys it was asked for; ``finish`` reports the others as unknown.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NoReturn

from .errors import ConfigError

_TAG = re.compile(r"[A-Za-z0-9_-]+")
_MAX_SHOWN_CHARS = 60


def render(value: Any) -> str:
    """``value`` as it would be written in JSON, shortened to one readable line."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):  # e.g. non-string keys in a dict given from Python
        text = repr(value)
    return text if len(text) <= _MAX_SHOWN_CHARS else text[: _MAX_SHOWN_CHARS - 3] + "..."


def is_object(value: Any) -> bool:
    return isinstance(value, Mapping)


def is_array(value: Any) -> bool:
    return isinstance(value, list | tuple)


def is_number(value: Any) -> bool:
    """A finite JSON number (bools are not numbers here)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class Warnings:
    """Warning lines in the order found, each once."""

    def __init__(self) -> None:
        self._lines: dict[str, None] = {}

    def add(self, line: str) -> None:
        self._lines.setdefault(line, None)

    def lines(self) -> tuple[str, ...]:
        return tuple(self._lines)


class ObjectReader:
    """Reads the keys of one JSON object.

    ``where`` names the thing the object describes (``sensor "imu"``, "" at top level);
    ``path`` is put before every key (``retention_policy.``) for nested objects.
    Every getter returns None for an absent key or a JSON null.
    """

    def __init__(
        self, data: Mapping[str, Any], where: str, warnings: Warnings, path: str = ""
    ) -> None:
        self.data = data
        self.where = where
        self.warnings = warnings
        self.path = path
        self._read: set[str] = set()

    def label(self, key: str) -> str:
        return f"{self.path}{key}"

    def fail(self, key: str, problem: str) -> NoReturn:
        prefix = f"{self.where}: " if self.where else ""
        raise ConfigError(f"{prefix}{self.label(key)} {problem}")

    def bad(self, key: str, expected: str, value: Any) -> NoReturn:
        self.fail(key, f"must be {expected}, got {render(value)}")

    def raw(self, key: str) -> Any:
        self._read.add(key)
        return self.data.get(key)

    def required(self, key: str) -> Any:
        value = self.raw(key)
        if value is None:
            self.fail(key, "is required")
        return value

    def text(self, key: str) -> str | None:
        value = self.raw(key)
        if value is not None and not isinstance(value, str):
            self.bad(key, "a string", value)
        return value

    def required_text(self, key: str) -> str:
        """A string that must be there and not be empty."""
        value = self.required(key)
        if not isinstance(value, str) or not value:
            self.bad(key, "a non-empty string", value)
        return value

    def flag(self, key: str) -> bool | None:
        value = self.raw(key)
        if value is not None and not isinstance(value, bool):
            self.bad(key, "true or false", value)
        return value

    def number(self, key: str, *, minimum: float | None = 0.0) -> float | None:
        """A finite number, >= ``minimum`` unless that is None."""
        if self.raw(key) is None:
            return None
        return self.required_number(key, minimum=minimum)

    def required_number(self, key: str, *, minimum: float | None = 0.0) -> float:
        value = self.required(key)
        expected = "a number" if minimum is None else f"a number >= {minimum:g}"
        if not is_number(value) or (minimum is not None and value < minimum):
            self.bad(key, expected, value)
        return float(value)

    def integer(self, key: str, *, minimum: int | None = 0) -> int | None:
        """An integral number (3.0 is 3), >= ``minimum`` unless that is None."""
        value = self.raw(key)
        if value is None:
            return None
        expected = "an integer" if minimum is None else f"an integer >= {minimum}"
        if not is_number(value) or value != int(value):
            self.bad(key, expected, value)
        if minimum is not None and value < minimum:
            self.bad(key, expected, value)
        return int(value)

    def strings(self, key: str) -> tuple[str, ...] | None:
        value = self.raw(key)
        if value is None:
            return None
        if not is_array(value):
            self.bad(key, "a list of strings", value)
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.bad(f"{key}[{i}]", "a string", item)
        return tuple(value)

    def tags(self, key: str) -> tuple[str, ...]:
        """A list of tags: letters, digits, ``_`` and ``-`` only."""
        tags = self.strings(key) or ()
        for i, tag in enumerate(tags):
            if not _TAG.fullmatch(tag):
                self.bad(f"{key}[{i}]", 'a tag of letters, digits, "_" and "-" only', tag)
        return tags

    def mapping(self, key: str) -> Mapping[str, Any] | None:
        value = self.raw(key)
        if value is not None and not is_object(value):
            self.bad(key, "an object", value)
        return value

    def array(self, key: str) -> Sequence[Any] | None:
        value = self.raw(key)
        if value is not None and not is_array(value):
            self.bad(key, "a list", value)
        return value

    def child(self, key: str) -> ObjectReader | None:
        """A reader for the nested object at ``key`` (keys shown as ``key.sub``)."""
        value = self.mapping(key)
        if value is None:
            return None
        return ObjectReader(value, self.where, self.warnings, f"{self.label(key)}.")

    def finish(self, ignored: Iterable[str] = ()) -> None:
        """Warn once about each key never read and not in ``ignored``."""
        skip = self._read.union(ignored)
        for key in self.data:
            if key in skip:
                continue
            if self.where:
                self.warnings.add(f"{self.where}: unknown key {render(self.label(key))}")
            elif self.path:
                self.warnings.add(f"unknown key {render(self.label(key))}")
            else:
                self.warnings.add(f"unknown top-level key {render(key)}")
