"""Binary readings as Foxglove messages: images as ``foxglove.CompressedImage``,
point clouds (PCD) as ``foxglove.PointCloud``.

Each message is built as the Foxglove schema's fields without the payload,
serialized by protobuf, followed by the payload field written last (protobuf
accepts fields in any order), so a multi-megabyte image is copied once, into
the MCAP chunk, and never through a protobuf object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from foxglove_schemas_protobuf.CompressedImage_pb2 import CompressedImage
from foxglove_schemas_protobuf.PackedElementField_pb2 import PackedElementField
from foxglove_schemas_protobuf.PointCloud_pb2 import PointCloud
from google.protobuf.timestamp_pb2 import Timestamp
from mcap_protobuf.schema import build_file_descriptor_set

from capsync import _time, wire

IMAGE_FORMATS = {
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/png": "png",
    "image/webp": "webp",
    ".jpeg": "jpeg",
    ".jpg": "jpeg",
    ".png": "png",
    ".webp": "webp",
}
POINTCLOUD_KEYS = ("pointcloud/pcd", ".pcd")

_IMAGE_DATA_FIELD = CompressedImage.DESCRIPTOR.fields_by_name["data"].number
_POINTS_DATA_FIELD = PointCloud.DESCRIPTOR.fields_by_name["data"].number


def schema_data(message_class: type) -> bytes:
    """The serialized FileDescriptorSet an MCAP ``protobuf`` schema record holds."""
    return bytes(build_file_descriptor_set(message_class).SerializeToString())


_varint = wire.PURE.encode_varint  # the byte layer's one varint encoder


def length_prefix(field_number: int, nbytes: int) -> bytes:
    """Tag and length of a length-delimited field of ``nbytes``."""
    return _varint(field_number << 3 | 2) + _varint(nbytes)


def _timestamp(ns: int) -> Timestamp:
    return _time.timestamp(ns)


def image_format(mime_type: str, file_extension: str) -> str | None:
    """Foxglove's ``format`` for an image payload, or None when it is not an image."""
    return IMAGE_FORMATS.get(mime_type.lower()) or IMAGE_FORMATS.get(file_extension.lower())


def is_pointcloud(mime_type: str, file_extension: str) -> bool:
    return mime_type.lower() in POINTCLOUD_KEYS or file_extension.lower() in POINTCLOUD_KEYS


def image_prefix(time_ns: int, frame_id: str, fmt: str, data_nbytes: int) -> bytes:
    """A ``CompressedImage`` up to its ``data``; the image bytes follow it."""
    head = CompressedImage(timestamp=_timestamp(time_ns), frame_id=frame_id, format=fmt)
    return head.SerializeToString() + length_prefix(_IMAGE_DATA_FIELD, data_nbytes)


# --- PCD -------------------------------------------------------------------------------

_PCD_TYPES = {
    ("F", 4): PackedElementField.FLOAT32,
    ("F", 8): PackedElementField.FLOAT64,
    ("U", 1): PackedElementField.UINT8,
    ("U", 2): PackedElementField.UINT16,
    ("U", 4): PackedElementField.UINT32,
    ("I", 1): PackedElementField.INT8,
    ("I", 2): PackedElementField.INT16,
    ("I", 4): PackedElementField.INT32,
}
_NUMPY_TYPES = {"F": "f", "U": "u", "I": "i"}
PCD_HEADER_MAX_BYTES = 4096


class PcdError(ValueError):
    """A point cloud that cannot be turned into a ``foxglove.PointCloud``."""


@dataclass(frozen=True)
class PcdLayout:
    fields: list[PackedElementField]
    point_stride: int
    points: int
    data_format: str  # "binary" or "ascii"
    data_offset: int  # where the point data starts in the file
    numpy_dtype: np.dtype


def parse_pcd_header(head: bytes) -> PcdLayout:
    """The layout of a PCD file from its first bytes (at least its whole header)."""
    values: dict[str, list[str]] = {}
    pos = 0
    while True:
        newline = head.find(b"\n", pos)
        if newline < 0:
            raise PcdError("PCD header has no DATA line")
        line = head[pos:newline].decode("ascii", "replace").strip()
        pos = newline + 1
        if not line or line.startswith("#"):
            continue
        key, *rest = line.split()
        values[key.upper()] = rest
        if key.upper() == "DATA":
            break
    try:
        names = values["FIELDS"]
        sizes = [int(v) for v in values["SIZE"]]
        types = [v.upper() for v in values["TYPE"]]
        counts = [int(v) for v in values.get("COUNT", ["1"] * len(names))]
        points = int(values.get("POINTS", values.get("WIDTH", ["0"]))[0])
        data_format = values["DATA"][0].lower()
    except (KeyError, IndexError, ValueError) as exc:
        raise PcdError(f"PCD header is incomplete ({exc})") from None
    if not len(names) == len(sizes) == len(types) == len(counts):
        raise PcdError("PCD header FIELDS, SIZE, TYPE and COUNT differ in length")
    if data_format not in ("binary", "ascii"):
        raise PcdError(f"PCD DATA {data_format} is not supported (binary and ascii are)")
    fields = []
    dtype_fields: list[tuple[str, str]] = []
    offset = 0
    for name, size, kind, count in zip(names, sizes, types, counts, strict=True):
        element = _PCD_TYPES.get((kind, size))
        if element is None:
            raise PcdError(f"PCD field {name} has unsupported type {kind}{size}")
        for index in range(count):
            label = name if count == 1 else f"{name}_{index}"
            fields.append(PackedElementField(name=label, offset=offset, type=element))
            dtype_fields.append((label, f"<{_NUMPY_TYPES[kind]}{size}"))
            offset += size
    return PcdLayout(
        fields=fields,
        point_stride=offset,
        points=points,
        data_format=data_format,
        data_offset=pos,
        numpy_dtype=np.dtype(dtype_fields),
    )


def pcd_points(layout: PcdLayout, body: Any) -> Any:
    """The point data of a PCD file (``body`` is what follows the header), packed."""
    if layout.data_format == "binary":
        need = layout.points * layout.point_stride
        if len(body) < need:
            raise PcdError(f"PCD data is truncated ({len(body)} of {need} bytes)")
        return body[:need]
    text = bytes(body).decode("ascii", "replace")
    rows = [line.split() for line in text.splitlines() if line.strip()]
    table = np.zeros(len(rows), dtype=layout.numpy_dtype)
    names = layout.numpy_dtype.names or ()
    try:
        for column, name in enumerate(names):
            table[name] = [float(row[column]) for row in rows]
    except (IndexError, ValueError) as exc:
        raise PcdError(f"PCD ascii data does not parse ({exc})") from None
    return table.tobytes()


def pointcloud_prefix(time_ns: int, frame_id: str, layout: PcdLayout, data_nbytes: int) -> bytes:
    """A ``PointCloud`` up to its ``data``; the packed points follow it."""
    head = PointCloud(
        timestamp=_timestamp(time_ns),
        frame_id=frame_id,
        point_stride=layout.point_stride,
        fields=layout.fields,
    )
    head.pose.orientation.w = 1.0
    return head.SerializeToString() + length_prefix(_POINTS_DATA_FIELD, data_nbytes)
