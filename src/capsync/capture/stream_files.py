"""The files of one capture stream: the open ``.prog`` file, its writes and rotation,
file completion off the caller's thread, and the fsync groups.

:class:`StreamFiles` is the lower half of :class:`~capsync.capture.stream.CaptureStream`
(which adds the public API and documents the lock). Every method here runs with the
stream's lock held, except :meth:`StreamFiles.complete_in_background` and
:meth:`StreamFiles.flush_if_due`, which the flusher thread calls and which take it
themselves.

* A tabular file is handed to the OS in chunks of ``WRITE_CHUNK_BYTES`` and is
  full once it reaches ``max_file_size_bytes``. A full file is written out and
  queued; the flusher thread renames it to ``.capture`` and creates the next
  (spare) file, without the lock, so the writer goes on meanwhile.
* Durability comes in groups: at most every ``fsync_interval_s`` the buffered
  bytes go to the OS and every file touched since the last group is fsynced,
  then its folder (on the flusher thread when a writer is busy).
* A failed write never leaves half a record in a file: the file is cut back to
  its last whole record and the bytes stay buffered to be retried, up to
  ``max_buffered_bytes``; past that, the stream refuses new records with
  :class:`CaptureWriteError`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from types import ModuleType

from capsync import wire
from capsync.capture import naming
from capsync.capture.files import create_locked, discard, fsync_group
from capsync.capture.flusher import FLUSHER

_log = logging.getLogger("capsync.capture")

WRITE_CHUNK_BYTES = 64 * 1024
BATCH_WRITE_BYTES = 1024 * 1024
DEFAULT_MAX_FILE_SIZE_BYTES = 262_144
DEFAULT_MAX_BUFFERED_BYTES = 8 * 1024 * 1024
# Completed files whose fsync waits for the next group; more forces a group early.
MAX_UNSYNCED_FILES = 64


class StreamClosedError(ValueError):
    """Raised when a closed ``CaptureStream`` is used."""


class CaptureWriteError(OSError):
    """The stream cannot take more data: writes keep failing and its memory bound is reached."""


class StreamFiles:
    """Open, write, rotate, complete and fsync the files of one stream (lock held)."""

    def __init__(
        self,
        folder: Path,
        label: str,
        header_bytes: bytes,
        wire_module: ModuleType,
        wrap_key: str | None,
        *,
        max_file_size_bytes: int,
        max_buffered_bytes: int,
        fsync_interval_s: float,
    ) -> None:
        self.folder = folder
        self.label = label
        self._header_bytes = header_bytes
        self._max_file_size_bytes = max_file_size_bytes
        self._max_buffered_bytes = max_buffered_bytes
        self._interval_ns = int(fsync_interval_s * 1e9)
        self._wire = wire_module
        self._buffer = wire_module.RecordBuffer(2 * WRITE_CHUNK_BYTES)
        # The per-reading state and the stream's one lock (fd, file size, counters) live
        # in a compiled object; it calls the slow paths below, lock held.
        self._core = wire.append_for(wire_module).TabularAppender(
            self,
            self._buffer,
            wrap_key,
            max_file_size_bytes,
            max_buffered_bytes,
            WRITE_CHUNK_BYTES,
        )
        self._lock = self._core  # ``with self._lock`` takes the appender's lock
        self._path: Path | None = None  # the open tabular .prog file
        self._unsynced_fds: list[int] = []  # completed files awaiting fsync + close
        self._fd_dirty = False  # the open file has writes not yet fsynced
        self._folder_dirty = False  # creations/renames not yet fsynced
        self._next_sync_ns = time.monotonic_ns() + self._interval_ns
        self._sync_requested = False  # the flusher thread is asked to run the fsync group
        self._write_error: OSError | None = None
        # Files filled by append, written out, waiting for the flusher thread to rename them.
        self._full_files: list[tuple[int, Path]] = []
        # An empty .prog file the flusher thread created for the next rotation, if any.
        self._spare: tuple[int, Path] | None = None
        self._files_opened = 0  # tabular files opened so far
        # Held by the flusher thread while it renames and creates files without the lock;
        # whoever needs every full file completed (close, stats) takes it before the lock.
        self._completing = threading.Lock()

    # Slow paths of the appender's ``append``, called with the lock held.

    def _prepare_append(self) -> None:
        """No open file, closed, or too much unwritten: refuse or open."""
        self._check_can_accept()
        self._open_if_needed()

    def _chunk_full(self) -> None:
        self._try_write()
        self._sync_soon()

    def _file_full(self) -> None:
        self._rotate()
        self._sync_soon()

    def _sync_soon(self) -> None:
        """Past the fsync deadline: have the flusher thread run the group, off this thread.

        (An idle stream meets its deadline through the flusher's regular visits.)
        """
        if not self._sync_requested and time.monotonic_ns() >= self._next_sync_ns:
            self._sync_requested = True
            FLUSHER.wake(self)

    def complete_in_background(self) -> None:
        """Called by the flusher thread: rename the full files, create the next spare and,
        once the fsync interval has passed, run the fsync group.

        Renames, creation and fsyncs run without the stream's lock, so the writer keeps
        appending meanwhile.
        """
        core = self._core
        with self._completing:
            with self._lock:
                if core.closed:
                    return
                full, self._full_files = self._full_files, []
                want_spare = self._spare is None
                # The spare must be newer than every file opened before it: file names
                # (creation times) follow the order of the data.
                opened = self._files_opened
                group = self._take_group() if self._sync_due() else None
            renamed = []
            for fd, path in full:
                try:
                    os.rename(path, naming.completed_path(path))
                    renamed.append(fd)
                except OSError:
                    _log.error("%s: cannot complete %s", self.label, path, exc_info=True)
            spare = None
            if want_spare:
                try:
                    spare = create_locked(self.folder)
                except OSError:  # the writer creates its next file itself and reports why not
                    _log.debug("%s: no spare capture file", self.label, exc_info=True)
            with self._lock:
                core.files_completed += len(renamed)
                if group is None:
                    self._unsynced_fds.extend(fd for fd, _ in full)
                    self._folder_dirty = True
                if spare is not None:
                    if core.closed or self._spare is not None or self._files_opened != opened:
                        discard(spare)
                    else:
                        self._spare = spare
                if len(self._unsynced_fds) >= MAX_UNSYNCED_FILES:
                    self._sync_requested = True
                    FLUSHER.wake(self)
            if group is not None:  # the slow part last, once the writer has its next file
                unsynced, open_fd = group
                self._fsync_group([*unsynced, *(fd for fd, _ in full)], open_fd)

    def _sync_due(self) -> bool:
        return self._sync_requested or time.monotonic_ns() >= self._next_sync_ns

    def _take_group(self) -> tuple[list[int], int]:
        """Start an fsync group (lock held): write the buffer, take the completed files'
        descriptors and a duplicate of the open file's, for :meth:`_fsync_group`."""
        self._sync_requested = False
        self._next_sync_ns = time.monotonic_ns() + self._interval_ns
        self._try_write()
        unsynced, self._unsynced_fds = self._unsynced_fds, []
        open_fd = -1
        if self._core.fd >= 0 and self._fd_dirty:
            open_fd = os.dup(self._core.fd)
            self._fd_dirty = False
        self._folder_dirty = False
        return unsynced, open_fd

    def _fsync_group(self, completed: list[int], open_fd: int) -> None:
        fsync_group(self.label, self.folder, completed, open_fd)

    def flush_if_due(self) -> None:
        """Called by the background flusher: flush and fsync when the interval has passed."""
        core = self._core
        if not core.acquire(blocking=False):
            return  # the writer is active and checks the deadline itself
        try:
            if not core.closed:
                self._sync_if_due()
        finally:
            core.release()

    # ----- internals (called with the lock held) ----------------------------------------

    @property
    def _fd(self) -> int | None:
        """The open tabular file's descriptor, or None."""
        fd = self._core.fd
        return None if fd < 0 else int(fd)

    @_fd.setter
    def _fd(self, fd: int | None) -> None:
        self._core.fd = -1 if fd is None else fd

    def _check_open(self) -> None:
        if self._core.closed:
            raise StreamClosedError(f"capture stream {self.label} is closed")

    def _check_can_accept(self) -> None:
        self._check_open()
        if self._buffer.nbytes < self._max_buffered_bytes:
            return
        if not self._try_write():
            error = self._write_error
            raise CaptureWriteError(
                error.errno if error else None,
                f"capture stream {self.label} holds {self._buffer.nbytes} unwritten bytes "
                f"and cannot write them ({error})",
                str(self._path),
            )

    def _open_if_needed(self) -> None:
        core = self._core
        if core.fd >= 0:
            return
        if self._spare is not None:
            (fd, path), self._spare = self._spare, None
        else:
            fd, path = create_locked(self.folder)
        core.fd, self._path = fd, path
        self._files_opened += 1
        core.file_nbytes = 0
        core.file_records = 0
        self._folder_dirty = True
        self._buffer.append_frame(self._header_bytes)

    def _try_write(self) -> bool:
        """Write the buffer to the open file. False (and the error kept) if that failed."""
        core = self._core
        if core.fd < 0 or self._buffer.nbytes == 0:
            return True
        try:
            written = self._buffer.write_to(core.fd)
        except OSError as exc:
            core.write_errors += 1
            self._write_error = _with_path(exc, self._path, "cannot write capture file")
            self._cut_back()
            return False
        core.file_nbytes += written
        core.bytes_written += written
        self._fd_dirty = True
        self._write_error = None
        return True

    def _cut_back(self) -> None:
        """After a failed write, end the file at its last whole record again."""
        core = self._core
        try:
            os.ftruncate(core.fd, core.file_nbytes)
            os.lseek(core.fd, core.file_nbytes, os.SEEK_SET)
        except OSError:
            _log.warning(
                "%s: cannot cut %s back to %d bytes",
                self.label,
                self._path,
                core.file_nbytes,
                exc_info=True,
            )

    def _rotate(self) -> None:
        """The open file is full: write it out, leave its renaming to the flusher thread and
        go on in the spare file (when the flusher made one, else the next append creates one).

        A file whose last write failed stays open (the write is retried, as before).
        """
        core = self._core
        if core.fd < 0 or core.file_records == 0:
            self._complete_current()
            return
        if not self._try_write():
            return
        assert self._path is not None
        self._full_files.append((core.fd, self._path))
        core.fd, self._path = -1, None
        self._fd_dirty = False  # the full file is fsynced with the next group
        if self._spare is not None:
            self._open_if_needed()
        FLUSHER.wake(self)

    def _complete_full_files(self) -> None:
        """Rename the full files the flusher thread has not renamed yet (lock held)."""
        full, self._full_files = self._full_files, []
        for fd, path in full:
            os.rename(path, naming.completed_path(path))
            self._unsynced_fds.append(fd)
            self._folder_dirty = True
            self._core.files_completed += 1
        if len(self._unsynced_fds) >= MAX_UNSYNCED_FILES:
            self._group_sync()

    def _drop_spare(self) -> None:
        spare, self._spare = self._spare, None
        if spare is not None:
            discard(spare)

    def _complete_current(self) -> Path | None:
        """Write out and rename the open file to ``.capture``; keep its fd for the fsync group."""
        core = self._core
        if core.fd < 0 or not self._try_write():
            return None
        fd, path = core.fd, self._path
        assert path is not None
        core.fd, self._path = -1, None
        self._folder_dirty = True
        if core.file_records == 0:  # a header alone is not worth syncing
            os.close(fd)
            path.unlink(missing_ok=True)
            self._fd_dirty = False
            return None
        final = naming.completed_path(path)
        os.rename(path, final)
        self._unsynced_fds.append(fd)
        self._fd_dirty = False
        core.files_completed += 1
        if len(self._unsynced_fds) >= MAX_UNSYNCED_FILES:
            self._group_sync()
        return final

    def _sync_if_due(self) -> None:
        if time.monotonic_ns() >= self._next_sync_ns:
            self._group_sync()

    def _group_sync(self) -> None:
        """Write the buffer, fsync every file touched since the last group, then the folder."""
        self._next_sync_ns = time.monotonic_ns() + self._interval_ns
        self._sync_requested = False
        self._try_write()
        unsynced, self._unsynced_fds = self._unsynced_fds, []
        for fd in unsynced:
            try:
                os.fsync(fd)
            except OSError:
                _log.error(
                    "%s: fsync of a completed capture file failed", self.label, exc_info=True
                )
            finally:
                os.close(fd)
        if self._fd is not None and self._fd_dirty:
            try:
                os.fsync(self._fd)
                self._fd_dirty = False
            except OSError:
                _log.error("%s: fsync of %s failed", self.label, self._path, exc_info=True)
        if self._folder_dirty:
            try:
                naming.fsync_folder(self.folder)
                self._folder_dirty = False
            except OSError:
                _log.error("%s: fsync of folder %s failed", self.label, self.folder, exc_info=True)


def _with_path(exc: OSError, path: Path | None, what: str) -> OSError:
    """The same kind of OSError, naming the file it is about."""
    return OSError(exc.errno, f"{what}: {exc.strerror or exc}", str(path) if path else None)
