"""File operations of a capture stream that run on the flusher thread as well as the writer's:
creating a locked ``.prog`` file, dropping an unused one, starting a completed file's
writeback early, and an fsync group."""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import logging
import os
from pathlib import Path
from typing import Any

from capsync.capture import layout

_log = logging.getLogger("capsync.capture")

SYNC_FILE_RANGE_WRITE = 2  # <fcntl.h>: start writeback of dirty pages, do not wait


def _sync_file_range() -> Any:
    """Linux's ``sync_file_range`` from libc (``os`` has no binding), or None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return function


_SYNC_FILE_RANGE = _sync_file_range()


def start_writeback(fd: int) -> None:
    """Have the kernel start writing a completed file's pages to disk, without waiting.

    The fsync group that later makes the file durable then finds most of its pages
    already written, so the disk works while the writer encodes the next file
    instead of all at once when the group runs. Not durability by itself (the
    group's fsync still follows); a no-op where ``sync_file_range`` is missing.
    """
    if _SYNC_FILE_RANGE is not None:
        _SYNC_FILE_RANGE(fd, 0, 0, SYNC_FILE_RANGE_WRITE)  # a failure leaves it to fsync


def start_writeback_all(fds: list[int]) -> None:
    """Before a group's fsyncs: every file's writeback starts at once, so the disk gets
    one stream of writes and the first fsync's journal commit covers most of the group
    (the later fsyncs then find their files durable) instead of a commit per file."""
    if len(fds) > 1:
        for fd in fds:
            start_writeback(fd)


def create_locked(folder: Path) -> tuple[int, Path]:
    """A new ``.prog`` file, flock-ed so recovery knows a live writer holds it."""
    fd, path = layout.create_in_progress(folder)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    return fd, path


def discard(file: tuple[int, Path]) -> None:
    """Remove an unused (empty) spare file."""
    fd, path = file
    os.close(fd)
    path.unlink(missing_ok=True)


def _fsync_and_close(fd: int, label: str, which: str) -> None:
    try:
        os.fsync(fd)
    except OSError:
        _log.error("%s: fsync of %s capture file failed", label, which, exc_info=True)
    finally:
        os.close(fd)


def fsync_group(label: str, folder: Path, completed: list[int], open_fd: int) -> None:
    """fsync and close the completed files' descriptors, fsync the open file (a duplicate
    descriptor, closed here, or -1) and then the folder; errors are logged."""
    start_writeback_all(completed)
    for fd in completed:
        _fsync_and_close(fd, label, "a completed")
    if open_fd >= 0:
        _fsync_and_close(open_fd, label, "the open")
    try:
        layout.fsync_folder(folder)
    except OSError:
        _log.error("%s: fsync of folder %s failed", label, folder, exc_info=True)
