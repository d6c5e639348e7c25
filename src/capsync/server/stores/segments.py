"""Append-only segment files holding tabular batch bodies, with group ``fdatasync``.

A segment ``seg-<n>.log`` is a sequence of entries::

    magic "CSB2" | len(body) u64 | batch id (32 raw bytes) | sha256(body) (32 bytes) |
    uploaded_at_ns i64 | body

(little-endian). The body's digest is usually the batch id itself (a batch id is
the sha256 of its canonical body), so the hot path computes no checksum of its
own; it is checked when a segment is scanned at start.

Entries are written with one ``write`` each and made durable by
:meth:`SegmentLog.sync`, which lets concurrent writers share one
``fdatasync``: a writer that finds a sync already running waits for it and
then, if its bytes were not covered, runs the next one for everybody.

A crash can leave a torn last entry; :func:`scan_segment` stops before it and
:meth:`SegmentLog.open` cuts it off, so the segments hold only whole entries.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from capsync.capture.layout import fsync_folder

log = logging.getLogger(__name__)

MAGIC = b"CSB2"
HEADER = struct.Struct("<4sQ32s32sq")
HEADER_BYTES = HEADER.size
SEGMENT_MAX_BYTES = 256 * 1024 * 1024  # start a new segment past this
_NAME = re.compile(r"^seg-(\d{6,})\.log$")
FILE_MODE = 0o600


@dataclass(frozen=True)
class Entry:
    """Where one batch body sits: ``body`` starts at ``offset + HEADER_BYTES``."""

    segment: int
    offset: int  # of the entry header in the segment file
    length: int  # of the body
    batch_id: str
    uploaded_at_ns: int


def segment_name(number: int) -> str:
    return f"seg-{number:06d}.log"


def list_segments(folder: Path) -> list[int]:
    """Segment numbers in ``folder``, ascending."""
    if not folder.is_dir():
        return []
    numbers = [int(m.group(1)) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return sorted(numbers)


def scan_segment(path: Path, number: int, *, verify: bool = True) -> tuple[list[Entry], int]:
    """The whole entries of a segment and the offset just past the last one.

    With ``verify``, each body's sha256 is checked (a mismatch ends the scan there).
    """
    entries: list[Entry] = []
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        offset = 0
        while offset + HEADER_BYTES <= size:
            handle.seek(offset)
            magic, length, raw_id, digest, uploaded = HEADER.unpack(handle.read(HEADER_BYTES))
            if magic != MAGIC or offset + HEADER_BYTES + length > size:
                break
            if verify and hashlib.sha256(handle.read(length)).digest() != digest:
                break
            entries.append(Entry(number, offset, length, raw_id.hex(), uploaded))
            offset += HEADER_BYTES + length
    return entries, offset


class SegmentLog:
    """The segments in ``folder``: append entries, sync them, read bodies back."""

    def __init__(self, folder: Path, *, segment_max_bytes: int = SEGMENT_MAX_BYTES) -> None:
        self.folder = folder
        self._max_bytes = segment_max_bytes
        self._lock = threading.Lock()  # guards writing state
        self._sync_cond = threading.Condition(threading.Lock())
        self._fds: dict[int, int] = {}  # segment -> fd for appending (only the last is used)
        self._read_fds: dict[int, int] = {}  # segment -> read-only fd
        self._number = 0
        self._size = 0
        self._written = 0  # appends so far
        self._synced = 0  # appends known durable
        self._syncing = False
        self._dirty_fds: set[int] = set()  # segments written since the last sync
        self._closed = False

    def open(self, *, writable: bool = True) -> list[tuple[int, int]]:
        """Open the log; return (segment, valid size) for each segment.

        ``writable`` (the server) cuts torn tails and prepares appending; without
        it (a reader beside a running server) nothing on disk is changed.

        Several servers may share one data folder: a writer appends only to a
        segment it holds an exclusive ``flock`` on (kept until :meth:`close`), so
        the offsets it records are the file's real ones; a segment another live
        server holds is neither cut nor appended to."""
        if not writable:
            self._closed = True  # no appends
            return []
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        _remove_private_leftovers(self.folder)
        numbers = list_segments(self.folder)
        sizes = []
        for number in numbers:
            path = self.folder / segment_name(number)
            fd = _locked_fd(path)
            if fd is None:  # another server is writing it: its tail is not torn
                sizes.append((number, scan_segment(path, number, verify=False)[1]))
                continue
            try:
                _, end = scan_segment(path, number, verify=False)
                if end < os.fstat(fd).st_size:
                    log.warning("%s: cutting %d bytes of a torn entry", path,
                                os.fstat(fd).st_size - end)  # fmt: skip
                    os.ftruncate(fd, end)
                    os.fsync(fd)
            finally:
                os.close(fd)
            sizes.append((number, end))
        last = numbers[-1] if numbers else 0
        fd = _locked_fd(self.folder / segment_name(last)) if numbers else None
        if fd is None:
            self._start_segment(last + 1)
        else:
            self._fds[last] = fd
            self._number, self._size = last, os.fstat(fd).st_size
        return sizes

    def _start_segment(self, number: int) -> None:
        """Create and lock the first segment from ``number`` on that no one else created.

        The file is created and locked under a private name and only then linked
        to its segment name, so no other process ever sees it unlocked (it would
        take it for a free segment and lock it first)."""
        number = max([number, *(n + 1 for n in list_segments(self.folder))])
        private = self.folder / f".new-{os.getpid()}-{threading.get_ident()}.tmp"
        private.unlink(missing_ok=True)
        fd = os.open(private, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC,
                     FILE_MODE)  # fmt: skip
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # new and ours: never contended
            while True:
                try:
                    os.link(private, self.folder / segment_name(number))
                    break
                except FileExistsError:
                    number += 1
        except BaseException:
            os.close(fd)
            raise
        finally:
            private.unlink(missing_ok=True)
        self._fds[number] = fd
        fsync_folder(self.folder)
        self._number, self._size = number, 0

    @contextlib.contextmanager
    def reconcilable(self) -> Iterator[list[int]]:
        """The segments no other live process writes to, locked while the block runs.

        Those are this log's own and the free ones (left by a server that stopped
        or died). A segment another server holds is its writer's: that writer
        indexes what it appends, so a reconcile beside it neither adds rows for
        its entries (they may not be durable yet) nor drops rows pointing into it."""
        own = set(self._fds)
        held: list[int] = []
        numbers: list[int] = []
        try:
            for number in list_segments(self.folder):
                if number in own:
                    numbers.append(number)
                    continue
                fd = _locked_fd(self.folder / segment_name(number))
                if fd is not None:
                    held.append(fd)
                    numbers.append(number)
            yield numbers
        finally:
            for fd in held:
                os.close(fd)

    def append(
        self, batch_id: str, body: bytes, uploaded_at_ns: int, digest: bytes | None = None
    ) -> tuple[Entry, int]:
        """Write one entry (not yet durable); return it and the sequence to :meth:`sync` to.

        ``digest`` is sha256(body), when it is not the batch id."""
        raw_id = bytes.fromhex(batch_id)
        header = HEADER.pack(MAGIC, len(body), raw_id, digest or raw_id, uploaded_at_ns)
        with self._lock:
            if self._closed:
                raise RuntimeError("the segment log is closed")
            if self._size and self._size + HEADER_BYTES + len(body) > self._max_bytes:
                self._start_segment(self._number + 1)
            fd = self._fds[self._number]
            offset = self._size
            try:
                _write_all(fd, header, body)
            except BaseException:
                os.ftruncate(fd, offset)  # never leave half an entry before the next one
                raise
            self._size += HEADER_BYTES + len(body)
            self._written += 1
            self._dirty_fds.add(self._number)
            return Entry(self._number, offset, len(body), batch_id, uploaded_at_ns), self._written

    def sync(self, sequence: int) -> None:
        """Return once append number ``sequence`` is on disk (one fdatasync for many callers)."""
        with self._sync_cond:
            while self._synced < sequence:
                if self._syncing:
                    self._sync_cond.wait()
                    continue
                self._syncing = True
                with self._lock:
                    target = self._written
                    dirty, self._dirty_fds = self._dirty_fds, set()
                    fds = [self._fds[n] for n in sorted(dirty)]
                self._sync_cond.release()
                try:
                    for fd in fds:
                        os.fdatasync(fd)
                except BaseException:
                    with self._lock:
                        self._dirty_fds |= dirty
                    raise
                finally:
                    self._sync_cond.acquire()
                    self._syncing = False
                    self._sync_cond.notify_all()
                self._synced = max(self._synced, target)

    def read(self, segment: int, offset: int, length: int) -> bytes:
        """The body of the entry at ``offset`` in ``segment``."""
        fd = self._read_fds.get(segment)
        if fd is None:
            with self._lock:
                fd = self._read_fds.get(segment)
                if fd is None:
                    path = self.folder / segment_name(segment)
                    fd = self._read_fds[segment] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        data = os.pread(fd, length, offset + HEADER_BYTES)
        if len(data) != length:
            raise OSError(f"segment {segment_name(segment)} ends inside the entry at {offset}")
        return data

    def iter_entries(self, numbers: list[int] | None = None) -> Iterator[Entry]:
        """Every whole entry of segments ``numbers`` (default: all), segment by segment
        (digests checked)."""
        for number in list_segments(self.folder) if numbers is None else numbers:
            entries, _ = scan_segment(self.folder / segment_name(number), number)
            yield from entries

    def close(self) -> None:
        with self._lock:
            self._closed = True
            fds = [*self._fds.values(), *self._read_fds.values()]
            self._fds, self._read_fds = {}, {}
        for fd in fds:
            os.close(fd)


def _remove_private_leftovers(folder: Path) -> None:
    """Remove the private names of segments being created that a crash left behind.

    Another server may be creating one right now (and not yet hold its lock), so
    only names older than a minute go; a creation takes microseconds."""
    too_old = time.time() - 60.0
    for path in folder.glob(".new-*.tmp"):
        try:
            if path.stat().st_mtime < too_old:
                path.unlink()
        except FileNotFoundError:
            continue


def _locked_fd(path: Path) -> int | None:
    """An appending descriptor of ``path`` with an exclusive ``flock``, or None when
    another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _write_all(fd: int, header: bytes, body: bytes) -> None:
    written = os.writev(fd, (header, body))
    if written < len(header) + len(body):  # a short write: finish it plainly
        rest = memoryview(header + body)[written:]
        while rest:
            rest = rest[os.write(fd, rest) :]
