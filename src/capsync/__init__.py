"""capsync: capture timestamped robot data to Viam-format files and sync it to the cloud."""

from capsync._impl import native_available
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
