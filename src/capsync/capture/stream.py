"""``CaptureStream``: the writer of one (resource, method)'s capture files.

Policy lives here and in :mod:`capsync.capture.stream_files` (the open file, its
rotation, file completion off the caller's thread, fsync groups); byte work
happens in the wire module (compiled or twin).

* Tabular methods append many records to one ``.prog`` file, handed to the OS
  in chunks; the file is completed (renamed to ``.capture``) once it reaches
  ``max_file_size_bytes``, on ``flush_to_capture()`` and on ``close()``.
* Binary methods write one file per reading: header, record prefix and the
  payload in a single ``writev``, straight from the caller's buffer.
* Durability comes in groups of at most ``fsync_interval_s``: between two groups
  a power cut can lose what was written since the last one; a process kill
  loses only what was still buffered, and never more than ``fsync_interval_s``
  of it.

The per-reading state (open descriptor, file size, counters, the lock) lives in
a ``TabularAppender`` (``capsync.wire._append``, or its twin): a tabular stream's
``append`` *is* the appender's ``append``, one compiled call that calls back
into the stream only on the slow paths (``_prepare_append``, ``_chunk_full``,
``_file_full``), with the lock held.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from capsync import wire
from capsync.capture import layout
from capsync.capture.flusher import FLUSHER
from capsync.capture.header import annotated_record, build_header, encode_header
from capsync.capture.stream_files import (
    BATCH_WRITE_BYTES,
    DEFAULT_MAX_BUFFERED_BYTES,
    DEFAULT_MAX_FILE_SIZE_BYTES,
    MAX_UNSYNCED_FILES,
    WRITE_CHUNK_BYTES,
    CaptureWriteError,
    StreamClosedError,
    StreamFiles,
    _with_path,
)
from capsync.methods import is_binary_method, mime_type_enum, wrap_key_for
from capsync.wire._checks import normalize_batch

__all__ = [
    "BATCH_WRITE_BYTES",
    "DEFAULT_MAX_BUFFERED_BYTES",
    "DEFAULT_MAX_FILE_SIZE_BYTES",
    "MAX_UNSYNCED_FILES",
    "WRITE_CHUNK_BYTES",
    "CaptureStream",
    "CaptureWriteError",
    "StreamClosedError",
    "StreamStats",
    "default_times",
    "open_stream",
]

_log = logging.getLogger("capsync.capture")


@dataclass(frozen=True)
class StreamStats:
    records: int  # records accepted (encoded)
    bytes_written: int  # bytes handed to the OS, headers included
    files_completed: int  # files renamed to .capture
    buffered_bytes: int  # encoded bytes not yet written
    write_errors: int  # failed write attempts
    current_path: str | None  # the open .prog file, if any


class CaptureStream(StreamFiles):
    """Writes the capture files of one (component, method) under ``capture_dir``.

    Thread-safe through one lock, and the lock lives here, in the wrapper: every
    public method runs under it (``self._lock``, the ``TabularAppender``'s lock,
    which a tabular ``append`` takes in compiled code). That lock is what makes
    the wire module's ``RecordBuffer`` safe: neither the compiled buffer nor its
    twin has a lock of its own, so nothing else may touch ``_buffer``. The
    background flusher only tries the lock (``flush_if_due``) and never makes a
    writer wait; it renames and creates files without the lock, under
    ``_completing``, which ``close``, ``flush_to_capture`` and ``stats`` take
    before the lock. tests/test_stream_threads.py appends from 8 threads while the
    flusher runs and reads every record back exactly once.
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
        self.folder: Path = layout.capture_folder(
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
        layout.make_folder(self.folder)
        self._wrap_key = wrap_key_for(method_name)
        super().__init__(
            self.folder,
            self.label,
            encode_header(self.header),
            wire.wire(),
            self._wrap_key,
            max_file_size_bytes=max_file_size_bytes,
            max_buffered_bytes=max_buffered_bytes,
            fsync_interval_s=fsync_interval_s,
        )
        self._binary = is_binary_method(method_name)
        self._mime_enum = mime_type_enum(mime_type)
        if not self._binary:
            # The hot path: one compiled call per reading, no Python frame in between.
            self.append = self._core.append  # type: ignore[method-assign]
            self.append_queued = self._core.append_queued  # type: ignore[method-assign]
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

    def append_queued(self, queue: Any, limit: int) -> int:
        """Append readings from the head of a deque of ``(readings, time_requested_ns,
        time_received_ns)``, popping each once stored, up to ``limit``; stop at an item
        whose readings is not a dict or whose append raised (left at the head). Returns
        the count. A tabular stream replaces this with its appender's (one compiled loop).
        """
        if self._binary:
            raise TypeError(f"{self.label} is a binary method: use append_binary")
        return int(self._core.append_queued(queue, limit))

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
        requested, received, matrix = normalize_batch(
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
            fd, path = layout.create_in_progress(self.folder)
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
            final = layout.completed_path(path)
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


def default_times(time_requested_ns: int | None, time_received_ns: int | None) -> tuple[int, int]:
    """The reading's two timestamps, ``time.time_ns()`` for the ones not given."""
    now = time.time_ns() if time_requested_ns is None or time_received_ns is None else 0
    return (
        now if time_requested_ns is None else time_requested_ns,
        now if time_received_ns is None else time_received_ns,
    )


def open_stream(capture_dir: str | os.PathLike[str], **options: Any) -> CaptureStream:
    """Open a :class:`CaptureStream`; see its constructor for the options."""
    return CaptureStream(capture_dir, **options)
