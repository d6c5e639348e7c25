"""What capsync knows about capture methods: binary or tabular, how results are wrapped,
which file extension and MIME type they carry (SPEC §2)."""

from __future__ import annotations

BINARY_METHODS = frozenset(
    {
        "ReadImage",
        "GetImages",
        "NextPointCloud",
        "PointCloudMap",
        "CaptureAllFromCamera",
        "GetAudio",
    }
)

# Tabular results stored under one key instead of as the struct itself.
WRAP_KEYS = {"Readings": "readings", "DoCommand": "docommand_output"}

TABULAR_FILE_EXTENSION = ".dat"

MIME_FILE_EXTENSIONS = {
    "image/jpeg": ".jpeg",
    "image/png": ".png",
    "pointcloud/pcd": ".pcd",
    "video/mp4": ".mp4",
}

# viam.app.datasync.v1.MimeType values, for SensorMetadata.mime_type.
MIME_TYPE_ENUM = {
    "image/jpeg": 1,
    "image/png": 2,
    "pointcloud/pcd": 3,
    "video/mp4": 4,
}

_METHOD_DEFAULT_EXTENSIONS = {"NextPointCloud": ".pcd"}
# rdk writes no extension for these binary methods whatever the MIME type (SPEC §8;
# rdk's data.getFileExt: only ReadImage, NextPointCloud and GetAudio get one). The
# MIME type stays in the header and in each reading's metadata.
_NO_EXTENSION_METHODS = frozenset({"CaptureAllFromCamera", "GetImages", "PointCloudMap"})


def is_binary_method(method_name: str) -> bool:
    """True for methods whose every reading is one binary payload (one file each)."""
    return method_name in BINARY_METHODS


def wrap_key_for(method_name: str) -> str | None:
    """The key a tabular result is stored under, or None when stored as it is."""
    return WRAP_KEYS.get(method_name)


def file_extension_for(method_name: str, mime_type: str = "") -> str:
    """The header's ``file_extension``: ``.dat`` for tabular data, else from the MIME type."""
    if not is_binary_method(method_name):
        return TABULAR_FILE_EXTENSION
    if method_name in _NO_EXTENSION_METHODS:
        return ""
    if mime_type in MIME_FILE_EXTENSIONS:
        return MIME_FILE_EXTENSIONS[mime_type]
    return _METHOD_DEFAULT_EXTENSIONS.get(method_name, "")


def mime_type_enum(mime_type: str) -> int:
    """``SensorMetadata.mime_type`` for a MIME type string (0 when it has no enum value)."""
    return MIME_TYPE_ENUM.get(mime_type, 0)


def api_folder(api: str) -> str:
    """The folder name of a resource API: ``rdk:component:sensor`` -> ``rdk_component_sensor``."""
    return api.replace(":", "_")
