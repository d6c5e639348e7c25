"""The files of one capture stream: the open ``.prog`` file, its writes and rotation,
file completion off the caller's thread, and the fsync groups.

:class:`StreamFiles` is the lower half of :class:`~capsync.capture.stream.CaptureStream`
(which adds the public API and documents the lock). Every method here runs with the
stream's lock held, except :meth:`StreamFiles.complete_in_background` and
:meth:`StreamFiles.flush_if_due`, which the flusher thread calls: they only ever *try*
the lock, and otherwise meet the writer through three deques (full files, renamed
files, spare files), so a writer holding the lock through a long ``append_batch``
never stops the flusher and the flusher never makes a writer wait.

* A tabular file is handed to the OS in chunks of ``WRITE_CHUNK_BYTES`` and is
  full once it reaches ``max_file_size_bytes``. A full file is written out and
  queued; the flusher thread renames it to ``.capture``, starts its writeback
  (``sync_file_range``) and keeps up to ``MAX_SPARE_FILES`` empty files ready, so
  the writer goes on in a file it did not have to create.
* Durability comes in groups: at most every ``fsync_interval_s`` the buffered
  bytes go to the OS and every file touched since the last group is fsynced,
  then its folder (on the flusher thread when the lock is free; the files the
  flusher renamed it fsyncs itself if a writer holds the lock and they pile up).
  A group starts every file's writeback before its first fsync, so the disk gets
  one stream of writes and one journal commit covers most of the group.
* A failed write never leaves half a record in a file: the file is cut back to
  its last whole record and the bytes stay buffered to be retried, up to
  ``max_buffered_bytes``; past that, the stream refuses new records with
  :class:`CaptureWriteError`.

Over 400 lines but one concern: the files of one stream, whose write, rotation and
fsync steps share the same deques and lock discipline and would not be safer apart.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from pathlib import Path
from types import ModuleType

from capsync import wire
from capsync.capture import layout
from capsync.capture.files import (
    create_locked,
    discard,
    fsync_group,
    start_writeback,
    start_writeback_all,
)
from capsync.capture.flusher import FLUSHER

_log = logging.getLogger("capsync.capture")

WRITE_CHUNK_BYTES = 64 * 1024
BATCH_WRITE_BYTES = 1024 * 1024
DEFAULT_MAX_FILE_SIZE_BYTES = 262_144
DEFAULT_MAX_BUFFERED_BYTES = 8 * 1024 * 1024
# Completed files whose fsync waits for the next group; more forces a group early.
MAX_UNSYNCED_FILES = 64
MAX_SPARE_FILES = 2  # empty files the flusher keeps ready for the next rotations


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
        # The hand-off to the flusher thread is three deques (appends and pops are atomic),
        # so neither side waits for the other's lock: the flusher works while a writer
        # holds the stream's lock through a long append_batch.
        # Files filled by append, written out, waiting for the flusher thread to rename them.
        self._full_files: collections.deque[tuple[int, Path]] = collections.deque()
        # What the flusher renamed: (descriptor, renamed?), for the writer to count and
        # fsync with its next group (``_absorb_renamed``, lock held).
        self._renamed: collections.deque[tuple[int, bool]] = collections.deque()
        # Empty .prog files the flusher created for the next rotations, each tagged with
        # ``_own_creations`` as it was before the file was made (see ``_open_if_needed``).
        self._spares: collections.deque[tuple[int, tuple[int, Path]]] = collections.deque()
        self._own_creations = 0  # files the writer had to create itself
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
        """Called by the flusher thread: rename the full files, start their writeback, keep
        a spare file ready and, once the fsync interval has passed, run the fsync group.

        Renames, creation and fsyncs run without the stream's lock, so the writer keeps
        appending meanwhile; the fsync group is taken only when the lock is free (a busy
        writer runs it itself when due).
        """
        core = self._core
        with self._completing:
            if core.closed:
                return
            while self._full_files:
                fd, path = self._full_files.popleft()
                start_writeback(fd)  # the disk starts on it while the writer fills the next
                try:
                    os.rename(path, layout.completed_path(path))
                    self._renamed.append((fd, True))
                except OSError:
                    _log.error("%s: cannot complete %s", self.label, path, exc_info=True)
                    self._renamed.append((fd, False))
            if len(self._spares) < MAX_SPARE_FILES:
                # File names (creation times) follow the order of the data: a spare made
                # while the writer created a file of its own is older than that file, and
                # the writer drops it (its tag no longer matches).
                tag = self._own_creations
                try:
                    self._spares.append((tag, create_locked(self.folder)))
                except OSError:  # the writer creates its next file itself and reports why not
                    _log.debug("%s: no spare capture file", self.label, exc_info=True)
            many = len(self._renamed) >= MAX_UNSYNCED_FILES
            if not (many or self._sync_due()):
                return
            if core.acquire(blocking=False):
                try:
                    group = self._take_group()
                finally:
                    core.release()
                self._fsync_group(*group)  # the slow part last, without the lock
            elif many:  # a writer holds the lock (a long batch): sync what it renamed
                self._sync_renamed()

    def _sync_renamed(self) -> None:
        """fsync the files the flusher renamed (and their folder) without the stream's lock;
        the writer then only counts them (their descriptors are closed here)."""
        done = []
        while self._renamed:
            done.append(self._renamed.popleft())
        # Entries this method already synced (descriptor -1) may still wait to be counted.
        fsync_group(self.label, self.folder, [fd for fd, _ in done if fd >= 0], -1)
        for _, renamed in done:
            self._renamed.append((-1, renamed))

    def _sync_due(self) -> bool:
        return self._sync_requested or time.monotonic_ns() >= self._next_sync_ns

    def _take_group(self) -> tuple[list[int], int]:
        """Start an fsync group (lock held): write the buffer, take the completed files'
        descriptors and a duplicate of the open file's, for :meth:`_fsync_group`."""
        self._sync_requested = False
        self._next_sync_ns = time.monotonic_ns() + self._interval_ns
        self._try_write()
        self._absorb_renamed()
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
        fd = -1
        while self._spares:
            tag, (spare_fd, spare_path) = self._spares.popleft()
            if tag == self._own_creations:
                fd, path = spare_fd, spare_path
                break
            discard((spare_fd, spare_path))  # older than a file the writer made since
        if fd < 0:
            fd, path = create_locked(self.folder)
            self._own_creations += 1
        core.fd, self._path = fd, path
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
        if self._spares:
            self._open_if_needed()
        FLUSHER.wake(self)

    def _complete_full_files(self) -> None:
        """Rename the full files the flusher thread has not renamed yet (lock held)."""
        while self._full_files:
            fd, path = self._full_files.popleft()
            os.rename(path, layout.completed_path(path))
            self._renamed.append((fd, True))
        self._absorb_renamed()
        if len(self._unsynced_fds) >= MAX_UNSYNCED_FILES:
            self._group_sync()

    def _absorb_renamed(self) -> None:
        """Count the files the flusher completed; their descriptors join the next group."""
        core = self._core
        while self._renamed:
            fd, renamed = self._renamed.popleft()
            if fd >= 0:  # else already fsynced and closed by the flusher
                self._unsynced_fds.append(fd)
                self._folder_dirty = True
            core.files_completed += renamed

    def _drop_spare(self) -> None:
        while self._spares:
            discard(self._spares.popleft()[1])

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
        final = layout.completed_path(path)
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
        self._absorb_renamed()
        unsynced, self._unsynced_fds = self._unsynced_fds, []
        start_writeback_all(unsynced)
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
                layout.fsync_folder(self.folder)
                self._folder_dirty = False
            except OSError:
                _log.error("%s: fsync of folder %s failed", self.label, self.folder, exc_info=True)


def _with_path(exc: OSError, path: Path | None, what: str) -> OSError:
    """The same kind of OSError, naming the file it is about."""
    return OSError(exc.errno, f"{what}: {exc.strerror or exc}", str(path) if path else None)
