"""``CaptureStream``: the writer of one (resource, method)'s capture files.

Policy lives here; byte work happens in the wire module (compiled or twin).

* Tabular methods append many records to one ``.prog`` file, handed to the OS
  in chunks of ``WRITE_CHUNK_BYTES``; the file is completed (renamed to
  ``.capture``) once it reaches ``max_file_size_bytes``, on
  ``flush_to_capture()`` and on ``close()``.
* Binary methods write one file per reading: header, record prefix and the
  payload in a single ``writev``, straight from the caller's buffer.
* Durability comes in groups: at most every ``fsync_interval_s`` the buffered
  bytes go to the OS and every file touched since the last group is fsynced,
  then its folder. Between two groups a power cut can lose what was written
  since the last one; a process kill loses only what was still buffered, and
  never more than ``fsync_interval_s`` of it.
* A failed write never leaves half a record in a file: the file is cut back to
  its last whole record and the bytes stay buffered to be retried, up to
  ``max_buffered_bytes``; past that, ``append`` refuses new records with
  :class:`CaptureWriteError` so the caller can count them.

The per-reading state (open descriptor, file size, counters, the lock) lives in
a ``TabularAppender`` (``capsync.wire._append``, or its twin): a tabular stream's
``append`` *is* the appender's ``append``, one compiled call that calls back
into this class only on the slow paths (``_prepare_append``, ``_chunk_full``,
``_file_full``), with the lock held.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from capsync import wire
from capsync.capture import layout as naming
from capsync.capture.files import create_locked, discard, fsync_group
from capsync.capture.flusher import FLUSHER
from capsync.capture.header import annotated_record, build_header, encode_header
from capsync.methods import is_binary_method, mime_type_enum, wrap_key_for
from capsync.wire import _wire_py

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


@dataclass(frozen=True)
class StreamStats:
    records: int  # records accepted (encoded)
    bytes_written: int  # bytes handed to the OS, headers included
    files_completed: int  # files renamed to .capture
    buffered_bytes: int  # encoded bytes not yet written
    write_errors: int  # failed write attempts
    current_path: str | None  # the open .prog file, if any


class CaptureStream:
    """Writes the capture files of one (component, method) under ``capture_dir``.

    Thread-safe: every public method runs under the stream's one lock, and that
    lock is what makes the wire module's ``RecordBuffer`` safe: neither the
    compiled buffer nor its twin has a lock of its own, so nothing else may touch
    ``_buffer``. The background flusher only tries the lock (``flush_if_due``)
    and never makes a writer wait. tests/test_stream_threads.py appends from 8
    threads while the flusher runs and reads every record back exactly once.
    """

    def __init__(
        self,
        capture_dir: str | os.PathLike[str],
        *,
        component_type: str,
        component_name: str,
        method_name: str,
        tags: Iterable[str] = (),
        method_parameters: Mapping[str, Any] | None = None,
        mime_type: str = "",
        max_file_size_bytes: int = DEFAULT_MAX_FILE_SIZE_BYTES,
        fsync_interval_s: float = 1.0,
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
    ) -> None:
        if max_file_size_bytes <= 0:
            raise ValueError(f"max_file_size_bytes must be > 0, got {max_file_size_bytes}")
        if not fsync_interval_s > 0:
            raise ValueError(f"fsync_interval_s must be > 0, got {fsync_interval_s}")
        self.folder: Path = naming.capture_folder(
            capture_dir, component_type, component_name, method_name
        )
        self.label = f"{component_type}/{component_name}/{method_name}"
        self.header = build_header(
            component_type=component_type,
            component_name=component_name,
            method_name=method_name,
            tags=tags,
            method_parameters=method_parameters,
            mime_type=mime_type,
        )
        naming.make_folder(self.folder)
        self._header_bytes = encode_header(self.header)
        self._binary = is_binary_method(method_name)
        self._wrap_key = wrap_key_for(method_name)
        self._mime_enum = mime_type_enum(mime_type)
        self._max_file_size_bytes = max_file_size_bytes
        self._max_buffered_bytes = max_buffered_bytes
        self._interval_ns = int(fsync_interval_s * 1e9)
        self._wire = wire.wire()
        self._buffer = self._wire.RecordBuffer(2 * WRITE_CHUNK_BYTES)
        # Per-reading state and the lock (fd, file size, counters): see the module docstring.
        self._core = wire.append_for(self._wire).TabularAppender(
            self,
            self._buffer,
            self._wrap_key,
            max_file_size_bytes,
            max_buffered_bytes,
            WRITE_CHUNK_BYTES,
        )
        if not self._binary:
            # The hot path: one compiled call per reading, no Python frame in between.
            self.append = self._core.append  # type: ignore[method-assign]
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
        FLUSHER.register(self)

    # ----- public API -------------------------------------------------------------------

    @property
    def is_binary(self) -> bool:
        return self._binary

    @property
    def write_error(self) -> OSError | None:
        """The last write error not yet resolved by a successful write, if any."""
        return self._write_error

    def append(
        self,
        readings: Mapping[str, Any],
        time_requested_ns: int | None = None,
        time_received_ns: int | None = None,
    ) -> None:
        """Append one tabular reading (a dict of JSON-like values).

        A tabular stream replaces this method with its appender's ``append`` (same
        signature); this one is what a binary stream has.
        """
        if self._binary:
            raise TypeError(f"{self.label} is a binary method: use append_binary")
        self._core.append(readings, time_requested_ns, time_received_ns)

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

    def append_batch(
        self,
        time_requested_ns: Any,
        time_received_ns: Any,
        values: Any,
        keys: Sequence[str],
    ) -> None:
        """Append ``len(values)`` tabular readings: row i is ``dict(zip(keys, values[i]))``.

        If writes start failing part way, the rows encoded so far are kept (and
        retried) and :class:`CaptureWriteError` says how many rows were accepted
        in its ``rows_accepted`` attribute.
        """
        if self._binary:
            raise TypeError(f"{self.label} is a binary method: use append_binary")
        requested, received, matrix = _wire_py.normalize_batch(
            time_requested_ns, time_received_ns, values, keys
        )
        n_rows = int(matrix.shape[0])
        core = self._core
        with self._lock:
            row = 0
            while row < n_rows:
                try:
                    self._check_can_accept()
                except CaptureWriteError as exc:
                    exc.rows_accepted = row  # type: ignore[attr-defined]
                    raise
                self._open_if_needed()
                room_bytes = self._max_file_size_bytes - core.file_nbytes
                limit_bytes = min(room_bytes, BATCH_WRITE_BYTES)
                next_row = self._buffer.append_batch(
                    requested, received, matrix, keys, self._wrap_key, row, limit_bytes
                )
                core.records += next_row - row
                core.file_records += next_row - row
                row = next_row
                # Full when the buffer reached the file's room, or when the room (not the
                # write chunk) is what stopped the encoder before the last row.
                file_full = self._buffer.nbytes >= room_bytes or (
                    row < n_rows and room_bytes <= BATCH_WRITE_BYTES
                )
                if file_full:
                    self._rotate()
                else:
                    self._try_write()
            self._sync_if_due()

    def append_binary(
        self,
        payload: Any,
        time_requested_ns: int | None = None,
        time_received_ns: int | None = None,
        *,
        annotations: bytes = b"",
    ) -> Path:
        """Write one binary reading (any buffer) to a file of its own; return the file's path.

        The payload goes from the caller's buffer to the file descriptor
        without a copy. On a write error the partial file is removed and the
        error raised: the reading is still the caller's to retry.
        ``annotations`` (a serialized ``viam.app.data.v1.Annotations``) goes into the
        record's ``SensorMetadata``; such records are encoded by the protobuf runtime.
        """
        if not self._binary:
            raise TypeError(f"{self.label} is a tabular method: use append or append_batch")
        view = memoryview(payload)
        requested, received = default_times(time_requested_ns, time_received_ns)
        with self._lock:
            self._check_open()
            fd, path = naming.create_in_progress(self.folder)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._buffer.append_frame(self._header_bytes)
                if annotations:
                    self._buffer.append_frame(
                        annotated_record(view, requested, received, self._mime_enum, annotations)
                    )
                    written = self._buffer.write_to(fd)
                else:
                    self._buffer.append_binary_prefix(
                        view.nbytes, requested, received, self._mime_enum
                    )
                    written = self._buffer.write_to(fd, view)
            except OSError as exc:
                self._buffer.clear()
                os.close(fd)
                path.unlink(missing_ok=True)
                self._core.write_errors += 1
                raise _with_path(exc, path, "cannot write capture file") from exc
            final = naming.completed_path(path)
            os.rename(path, final)
            self._unsynced_fds.append(fd)
            self._folder_dirty = True
            core = self._core
            core.records += 1
            core.bytes_written += written
            core.files_completed += 1
            if len(self._unsynced_fds) >= MAX_UNSYNCED_FILES:
                self._group_sync()
            else:
                self._sync_if_due()
            return final

    def flush(self) -> None:
        """Hand every buffered byte to the OS; raise the write error if that fails."""
        with self._lock:
            self._check_open()
            if not self._try_write() and self._write_error is not None:
                raise self._write_error

    def flush_to_capture(self) -> Path | None:
        """Complete the open file (``.prog`` -> ``.capture``) and fsync; return its new path.

        Files filled earlier and not yet renamed by the flusher thread are completed too,
        and the spare file is removed: afterwards no ``.prog`` file is left.
        """
        with self._completing, self._lock:
            self._check_open()
            self._complete_full_files()
            self._drop_spare()
            completed = self._complete_current()
            if self._core.fd >= 0 and self._write_error is not None:
                raise self._write_error
            self._group_sync()
            return completed

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

    def close(self) -> None:
        """Write everything, complete the open file, fsync; idempotent."""
        core = self._core
        with self._completing, self._lock:
            if core.closed:
                return
            try:
                self._complete_full_files()
                self._drop_spare()
                self._complete_current()
                self._group_sync()
                if core.fd >= 0 and self._write_error is not None:
                    raise self._write_error
            finally:
                core.closed = True
                FLUSHER.unregister(self)
                if core.fd >= 0:
                    lost = self._buffer.nbytes
                    os.close(core.fd)
                    core.fd = -1
                    if lost:
                        _log.error(
                            "%s: %d bytes could not be written to %s", self.label, lost, self._path
                        )

    def stats(self) -> StreamStats:
        core = self._core
        with self._completing, self._lock:
            self._complete_full_files()
            return StreamStats(
                records=core.records,
                bytes_written=core.bytes_written,
                files_completed=core.files_completed,
                buffered_bytes=self._buffer.nbytes,
                write_errors=core.write_errors,
                current_path=str(self._path) if core.fd >= 0 else None,
            )

    def __enter__(self) -> CaptureStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._core.closed else "open"
        return f"<CaptureStream {self.label} {state} in {self.folder}>"

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


def default_times(time_requested_ns: int | None, time_received_ns: int | None) -> tuple[int, int]:
    """The reading's two timestamps, ``time.time_ns()`` for the ones not given."""
    now = time.time_ns() if time_requested_ns is None or time_received_ns is None else 0
    return (
        now if time_requested_ns is None else time_requested_ns,
        now if time_received_ns is None else time_received_ns,
    )


def _with_path(exc: OSError, path: Path | None, what: str) -> OSError:
    """The same kind of OSError, naming the file it is about."""
    return OSError(exc.errno, f"{what}: {exc.strerror or exc}", str(path) if path else None)


def open_stream(capture_dir: str | os.PathLike[str], **options: Any) -> CaptureStream:
    """Open a :class:`CaptureStream`; see its constructor for the options."""
    return CaptureStream(capture_dir, **options)
