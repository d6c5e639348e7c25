"""Recovering ``.prog`` files that a crash left behind.

A ``.prog`` file not held by a live writer (writers hold an exclusive
``flock`` on their open file; the kernel drops it when the process dies) is
cut at its last whole record and completed to ``.capture`` so it gets synced.
A file with no whole record is removed; a file whose header is unreadable is
moved to ``<capture_dir>/failed/`` for a person to look at, never deleted.
"""

from __future__ import annotations

import fcntl
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from capsync.capture import layout
from capsync.capture.reader import CaptureFileError, iter_spans, mapped, parse_header

_log = logging.getLogger("capsync.capture")


@dataclass(frozen=True)
class Recovery:
    """What recovery did with one ``.prog`` file."""

    path: str  # the .prog file found
    action: str  # "completed", "removed", "failed" or "in_use"
    new_path: str | None  # where it went, if it moved
    records: int  # whole records kept
    dropped_bytes: int  # bytes cut from the end (a partial record)
    reason: str = ""


def _whole_records_end(path: Path) -> tuple[int, int, int]:
    """(records, end offset of the last whole record, file size). Raises CaptureFileError."""
    with mapped(path) as data:
        span = parse_header(path, data)
        records = 0
        end = span.records_offset
        for start, length in iter_spans(data, span.records_offset):
            if length == 0:  # we never write an empty record: zeros from a torn page
                break
            records += 1
            end = start + length
        return records, end, len(data)


def _move_to_failed(capture_dir: Path, path: Path) -> Path:
    relative = path.relative_to(capture_dir).with_suffix(layout.COMPLETED_EXT)
    return layout.move_to_failed(capture_dir, path, relative)


def recover_file(capture_dir: Path, path: Path) -> Recovery:
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return Recovery(str(path), "in_use", None, 0, 0, "held open by a live writer")
        try:
            records, end, size = _whole_records_end(path)
        except CaptureFileError as exc:
            if os.fstat(fd).st_size == 0 or "truncated" in exc.problem:
                path.unlink()
                return Recovery(str(path), "removed", None, 0, 0, exc.problem)
            target = _move_to_failed(capture_dir, path)
            return Recovery(str(path), "failed", str(target), 0, 0, exc.problem)
        if records == 0:
            path.unlink()
            return Recovery(str(path), "removed", None, 0, size - end, "no whole record")
        if end < size:
            os.ftruncate(fd, end)
        os.fsync(fd)
        target = layout.completed_path(path)
        os.rename(path, target)
        layout.fsync_folder(path.parent)
        return Recovery(str(path), "completed", str(target), records, size - end)
    finally:
        os.close(fd)


def recover_in_progress(capture_dir: str | os.PathLike[str]) -> list[Recovery]:
    """Complete every abandoned ``.prog`` under ``capture_dir``; return what was done."""
    root = Path(capture_dir)
    found = layout.walk_files(root, skip_folder=layout.skip_failed(root))
    results = []
    for path in sorted(Path(e.path) for e, _ in found if e.name.endswith(layout.IN_PROGRESS_EXT)):
        try:
            result = recover_file(root, path)
        except FileNotFoundError:
            continue  # completed by its writer while we looked
        if result.action != "in_use":
            _log.info(
                "recovered %s: %s (%d records, %d bytes cut) %s",
                result.path,
                result.action,
                result.records,
                result.dropped_bytes,
                result.reason,
            )
        results.append(result)
    return results
