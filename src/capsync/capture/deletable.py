"""Which capture files disk-pressure deletion may remove, and removing one safely.

A file may go when it is a regular ``.capture`` file exactly at
``<capture_dir>/<api>/<name>/<Method>/`` (the only place capsync writes them),
not under ``<capture_dir>/failed/`` or an ``exclude``d folder, and not held by
anyone's ``flock`` (a sync worker uploading it, or its writer). The thread that
decides when to delete is :mod:`capsync.capture.diskpressure`.
"""

from __future__ import annotations

import enum
import fcntl
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from capsync.capture.layout import CAPTURE_FILE_DEPTH, COMPLETED_EXT, FAILED_DIR_NAME, walk_files

_log = logging.getLogger("capsync.capture.diskpressure")


class Outcome(enum.Enum):
    DELETED = enum.auto()
    IN_FLIGHT = enum.auto()
    GONE = enum.auto()  # removed by someone else meanwhile
    ERROR = enum.auto()


def completed_capture_files(
    capture_dir: str | os.PathLike[str], exclude: Iterable[str] = ()
) -> Iterator[tuple[Path, int]]:
    """``(path, size)`` of every completed capture file that deletion may consider, in order.

    Depth first, each folder's entries in sorted name order; only regular
    ``.capture`` files exactly ``CAPTURE_FILE_DEPTH`` folders down; never under
    ``<capture_dir>/failed`` or a folder in ``exclude`` (real paths).
    """
    excluded = set(exclude)

    def skip(entry: os.DirEntry[str], depth: int) -> bool:
        if depth == 0 and entry.name == FAILED_DIR_NAME:
            return True
        return bool(excluded) and os.path.realpath(entry.path) in excluded

    root = Path(capture_dir)
    for entry, depth in walk_files(root, skip_folder=skip, max_depth=CAPTURE_FILE_DEPTH, sort=True):
        if depth != CAPTURE_FILE_DEPTH or not entry.name.endswith(COMPLETED_EXT):
            continue
        try:
            size = entry.stat(follow_symlinks=False).st_size
        except FileNotFoundError:  # removed (uploaded) while we walked
            continue
        yield Path(entry.path), size


def unlink_unless_locked(path: Path) -> Outcome:
    """Remove ``path`` unless another open file holds its ``flock`` (a sync worker
    uploading it, in this process or another, or a writer still holding it)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:  # uploaded (and deleted) by the sync layer meanwhile
        return Outcome.GONE
    except OSError as exc:
        _log.error("cannot delete capture file %s under disk pressure: %s", path, exc)
        return Outcome.ERROR
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return Outcome.IN_FLIGHT
        try:
            os.unlink(path)
        except FileNotFoundError:
            return Outcome.GONE
        except OSError as exc:
            _log.error("cannot delete capture file %s under disk pressure: %s", path, exc)
            return Outcome.ERROR
        return Outcome.DELETED
    finally:
        os.close(fd)  # releases the lock
