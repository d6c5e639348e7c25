"""The retention header: how the sync client tells capsync's server a capture
method's ``retention_policy`` without changing the upload (SPEC §1, §7).

Each upload of a capture method that has a policy carries the gRPC metadata
entry ``capsync-retention-bin`` holding JSON::

    {"part_id": "...", "component_type": "rdk:component:sensor",
     "component_name": "thermo", "method_name": "Readings",
     "days": 7, "binary_limit_gb": null, "tabular_limit_gb": 0.5}

A Viam server ignores metadata it does not know, so the same client talks to
either. (The ``-bin`` suffix makes gRPC carry the value as bytes, so any
component name goes through.)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

RETENTION_HEADER = "capsync-retention-bin"
SourceKey = tuple[str, str, str, str]  # part id, component type, component name, method


@dataclass(frozen=True)
class Retention:
    """How long / how much of one source's data the server keeps (None: no limit)."""

    days: float | None = None
    binary_limit_gb: float | None = None
    tabular_limit_gb: float | None = None

    def __post_init__(self) -> None:
        for name in ("days", "binary_limit_gb", "tabular_limit_gb"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
                or not math.isfinite(value) or value < 0
            ):  # fmt: skip
                raise ValueError(f"retention {name} must be a number >= 0, got {value!r}")

    @property
    def empty(self) -> bool:
        return self.days is None and self.binary_limit_gb is None and self.tabular_limit_gb is None

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Retention:
        """From ``{"days": ..., "binary_limit_gb": ..., "tabular_limit_gb": ...}`` (0 or
        missing: no limit, as in a capture config)."""
        values = {}
        for name in ("days", "binary_limit_gb", "tabular_limit_gb"):
            value = document.get(name)
            values[name] = value if value else None
        return cls(**values)

    def document(self) -> dict[str, float | None]:
        return {
            "days": self.days,
            "binary_limit_gb": self.binary_limit_gb,
            "tabular_limit_gb": self.tabular_limit_gb,
        }


def encode_header(key: SourceKey, retention: Retention) -> bytes:
    part_id, component_type, component_name, method_name = key
    document: dict[str, Any] = {
        "part_id": part_id,
        "component_type": component_type,
        "component_name": component_name,
        "method_name": method_name,
        **retention.document(),
    }
    return json.dumps(document, separators=(",", ":")).encode()


def decode_header(value: bytes | str) -> tuple[SourceKey, Retention]:
    """The source and policy of a header value; ValueError when malformed."""
    try:
        document = json.loads(value)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{RETENTION_HEADER} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ValueError(f"{RETENTION_HEADER} must be a JSON object")
    key = tuple(document.get(k, "") for k in
                ("part_id", "component_type", "component_name", "method_name"))  # fmt: skip
    if not all(isinstance(k, str) for k in key):
        raise ValueError(f"{RETENTION_HEADER}: the source fields must be strings")
    return (key[0], key[1], key[2], key[3]), Retention.from_document(document)
