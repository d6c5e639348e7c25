"""What a sync worker does with one claimed file: upload it and delete it, or move it
to ``<capture_dir>/failed/``. Both fill in the file's :class:`Outcome`."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from capsync.sync import files
from capsync.sync.connection import UploadClient
from capsync.sync.files import SyncItem
from capsync.sync.pass_state import Outcome, PassState
from capsync.sync.upload import upload_arbitrary_file, upload_capture_file

_log = logging.getLogger("capsync.sync")

BUSY = "being uploaded by another worker or process"


@contextlib.contextmanager
def locked(path: Path) -> Iterator[Outcome | None]:
    """Hold ``path``'s ``flock`` for the whole upload, so another process (or a deleter)
    keeps off; yields None while held, or the outcome when it cannot be taken."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        yield Outcome("gone")
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield Outcome("left", BUSY)
            return
        if not _same_file(fd, path):  # deleted or replaced before we locked it
            yield Outcome("gone")
            return
        yield None
    finally:
        os.close(fd)


def upload_and_delete(
    client: UploadClient,
    item: SyncItem,
    outcome: Outcome,
    state: PassState,
    *,
    request_max_bytes: int,
    tags: tuple[str, ...],
    on_confirmed: Callable[[], None],
) -> Outcome:
    """Upload ``item`` and delete it; raises on any failure (the file stays).

    ``on_confirmed`` runs after every request the server confirmed."""

    def confirmed(records: int, nbytes: int) -> None:
        outcome.records += records
        outcome.file_bytes += nbytes
        state.add_bytes(nbytes)
        on_confirmed()

    if item.kind == "capture":
        upload_capture_file(
            client,
            item.path,
            file_name=item.relative_name,
            request_max_bytes=request_max_bytes,
            on_confirmed=confirmed,
        )
        os.unlink(item.path)
        _remove_quietly(files.resume_path(item.path))
    else:
        before = os.stat(item.path)
        result = upload_arbitrary_file(
            client,
            item.path,
            file_name=item.relative_name,
            tags=tuple(dict.fromkeys((*tags, *files.path_tags(item.path)))),
            dataset_ids=files.path_dataset_ids(item.path),
        )
        on_confirmed()
        after = os.stat(item.path)
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
            outcome.reason = "it changed while it was uploaded; a later pass sends it again"
            return outcome
        os.unlink(item.path)
        outcome.file_bytes += result.file_bytes
        state.add_bytes(result.file_bytes)
    _log.debug("uploaded %s (%d records, %d bytes)", item.path, outcome.records,
               outcome.file_bytes)  # fmt: skip
    outcome.status = "uploaded"
    outcome.reason = ""
    return outcome


def move_aside(capture_dir: Path, item: SyncItem, outcome: Outcome, reason: str) -> Outcome:
    """Move a refused ``item`` to ``failed/`` with an ERROR line saying ``reason``."""
    try:
        target = files.move_to_failed(capture_dir, item)
    except OSError as exc:
        _log.error("%s: %s; cannot move it to failed/: %s", item.path, reason, exc)
        outcome.reason = f"{reason}; cannot move it to failed/: {exc.strerror or exc}"
        return outcome
    _remove_quietly(files.resume_path(item.path))
    _log.error("moved %s to %s: %s", item.path, target, reason)
    outcome.status = "moved"
    outcome.reason = reason
    return outcome


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (held.st_dev, held.st_ino)


def _remove_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        _log.warning("cannot remove %s: %s", path, exc.strerror or exc)
