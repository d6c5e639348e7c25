"""capsync: capture timestamped robot data to Viam-format files and sync it to the cloud.

The public face only. Each name is imported on first use (PEP 562), so
``import capsync`` loads none of numpy, protobuf, grpc, psutil, PIL or pymongo,
and ``import capsync.X`` runs only what ``X`` needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from capsync.capture.reader import CaptureFileError, read_capture_file, scan_records
    from capsync.capture.recovery import Recovery, recover_in_progress
    from capsync.capture.stream import (
        CaptureStream,
        CaptureWriteError,
        StreamClosedError,
        StreamStats,
        open_stream,
    )
    from capsync.service import DataManager, ServiceError
    from capsync.wire import native_available

# public name -> the module that defines it
_EXPORTS = {
    "native_available": "capsync.wire",
    "CaptureFileError": "capsync.capture.reader",
    "read_capture_file": "capsync.capture.reader",
    "scan_records": "capsync.capture.reader",
    "Recovery": "capsync.capture.recovery",
    "recover_in_progress": "capsync.capture.recovery",
    "CaptureStream": "capsync.capture.stream",
    "CaptureWriteError": "capsync.capture.stream",
    "StreamClosedError": "capsync.capture.stream",
    "StreamStats": "capsync.capture.stream",
    "open_stream": "capsync.capture.stream",
    "DataManager": "capsync.service",
    "ServiceError": "capsync.service",
}

__all__ = [
    "CaptureFileError",
    "CaptureStream",
    "CaptureWriteError",
    "DataManager",
    "Recovery",
    "ServiceError",
    "StreamClosedError",
    "StreamStats",
    "native_available",
    "open_stream",
    "read_capture_file",
    "recover_in_progress",
    "scan_records",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """Import a public name on first access and keep it (PEP 562)."""
    try:
        module_name = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
