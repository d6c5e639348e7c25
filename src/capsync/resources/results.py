"""What capture methods return, and which methods produce binary data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

from ..methods import BINARY_METHODS, is_binary_method

MIME_JPEG = "image/jpeg"
MIME_PNG = "image/png"
MIME_PCD = "pointcloud/pcd"

__all__ = [
    "BINARY_METHODS",
    "MIME_JPEG",
    "MIME_PCD",
    "MIME_PNG",
    "TABULAR_METHODS",
    "BinaryResult",
    "CaptureResult",
    "is_binary_method",
    "normalize_mime_type",
]

# BINARY_METHODS / is_binary_method (methods stored one binary payload per file, SPEC §2)
# come from capsync.methods, the single source of truth, and are re-exported here.

# Tabular capture methods viam defines across component and service APIs. Any method not
# in BINARY_METHODS is treated as tabular; this set is for documentation and validation.
TABULAR_METHODS: frozenset[str] = frozenset(
    {
        "Readings",
        "DoCommand",
        "Position",
        "LinearVelocity",
        "AngularVelocity",
        "LinearAcceleration",
        "CompassHeading",
        "Orientation",
        "Analogs",
        "Gpios",
        "EndPosition",
        "JointPositions",
        "Lengths",
        "IsPowered",
        "TickCount",
        "Voltage",
        "Current",
        "Power",
    }
)


@dataclass(frozen=True, slots=True)
class BinaryResult:
    """One binary reading.

    Attributes
    ----------
    payload:
        The encoded bytes (JPEG, PNG, binary PCD, ...).
    mime_type:
        The payload's MIME type, e.g. ``image/jpeg`` or ``pointcloud/pcd``.
    name:
        The source name for images returned by ``GetImages``; ``""`` otherwise.
    annotations:
        A serialized ``viam.app.data.v1.Annotations`` stored in the record's
        ``SensorMetadata`` (CaptureAllFromCamera); ``b""`` for none.
    time_requested_ns, time_received_ns:
        When the reading was taken, if not in the call that returned it (a frame a
        filtered camera held back); None means the call's own times.
    """

    payload: bytes | memoryview
    mime_type: str
    name: str = ""
    annotations: bytes = b""
    time_requested_ns: int | None = None
    time_received_ns: int | None = None


# Tabular methods return a JSON-like dict; binary methods one BinaryResult, or a list of
# them for GetImages.
CaptureResult: TypeAlias = dict[str, Any] | BinaryResult | list[BinaryResult]


def normalize_mime_type(mime_type: str) -> str:
    """Lower-case ``mime_type`` and drop viam's ``+lazy`` suffix (``image/jpeg+lazy``)."""
    mime = mime_type.strip().lower()
    return mime.removesuffix("+lazy")
