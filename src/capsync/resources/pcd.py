"""Binary PCD (Point Cloud Data v0.7) encoding of xyz float32 points, and header parsing."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_HEADER = (
    "VERSION .7\n"
    "FIELDS x y z\n"
    "SIZE 4 4 4\n"
    "TYPE F F F\n"
    "COUNT 1 1 1\n"
    "WIDTH {n}\n"
    "HEIGHT 1\n"
    "VIEWPOINT 0 0 0 1 0 0 0\n"
    "POINTS {n}\n"
    "DATA binary\n"
)


def encode_pcd(points_m: npt.ArrayLike) -> bytes:
    """A binary PCD file of ``points_m`` (shape ``(n, 3)``, metres) as little-endian float32."""
    xyz = np.ascontiguousarray(points_m, dtype="<f4")
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise ValueError(f"points must have shape (n, 3), got {xyz.shape}")
    return _HEADER.format(n=xyz.shape[0]).encode("ascii") + xyz.tobytes()


def parse_pcd_header(data: bytes | memoryview) -> tuple[dict[str, str], int]:
    """The header fields of a PCD file (``{"FIELDS": "x y z", ...}``) and where data starts."""
    raw = bytes(data[:4096])
    fields: dict[str, str] = {}
    offset = 0
    while True:
        end = raw.find(b"\n", offset)
        if end < 0:
            raise ValueError("PCD header is truncated (no DATA line)")
        line = raw[offset:end].decode("ascii").strip()
        offset = end + 1
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        fields[key] = value.strip()
        if key == "DATA":
            return fields, offset
