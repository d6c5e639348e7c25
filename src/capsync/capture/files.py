"""File operations of a capture stream that run on the flusher thread as well as the writer's:
creating a locked ``.prog`` file, dropping an unused one, and an fsync group."""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

from capsync.capture import layout

_log = logging.getLogger("capsync.capture")


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


def fsync_group(label: str, folder: Path, completed: list[int], open_fd: int) -> None:
    """fsync and close the completed files' descriptors, fsync the open file (a duplicate
    descriptor, closed here, or -1) and then the folder; errors are logged."""
    for fd in completed:
        try:
            os.fsync(fd)
        except OSError:
            _log.error("%s: fsync of a completed capture file failed", label, exc_info=True)
        finally:
            os.close(fd)
    if open_fd >= 0:
        try:
            os.fsync(open_fd)
        except OSError:
            _log.error("%s: fsync of the open capture file failed", label, exc_info=True)
        finally:
            os.close(open_fd)
    try:
        layout.fsync_folder(folder)
    except OSError:
        _log.error("%s: fsync of folder %s failed", label, folder, exc_info=True)
