"""Content-addressed payload files: ``<data_dir>/<part>/<component_type>/<component_name>/
<method>/<sha256><ext>`` (``<data_dir>/<part>/files/<sha256><ext>`` for a file from no
component).

A payload is written to a temporary file in its final folder, flushed to disk,
then renamed to its hash name, so a reader never sees half a payload and two
writers of the same content (two server processes, a re-sent upload) end with
one file. ``component_type`` is written as in capture folders (``:`` -> ``_``);
an empty segment is written as ``_``.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from capsync.capture.layout import fsync_folder
from capsync.methods import api_folder
from capsync.server.group_commit import GroupCommit

FILE_MODE = 0o600
DIR_MODE = 0o700
EMPTY_SEGMENT = "_"
MAX_SEGMENT_BYTES = 255
MAX_EXTENSION_CHARS = 32
# Names at the top of the data dir that a part folder must not take.
RESERVED_NAMES = frozenset(
    {
        "capsync.db",
        "capsync.db-wal",
        "capsync.db-shm",
        "api-keys.json",
        "tabular",
        "capsync-query",
        # the data page's thumbnail cache
        ".page-thumbnails",
    }
)
_TEMP_PREFIX = ".upload-"
_UNSAFE = re.compile(r"[/\\\x00]")  # what no file or folder name may hold
# A partial upload untouched this long belongs to no live call (uploads write every chunk).
PARTIAL_UPLOAD_MIN_AGE_S = 600.0


def remove_partial_uploads(
    root: str | os.PathLike[str], min_age_s: float = PARTIAL_UPLOAD_MIN_AGE_S
) -> int:
    """Delete the ``.upload-*.tmp`` payloads a killed server left under ``root``; how many.

    Only those untouched for ``min_age_s``: another server sharing the data
    folder may be writing newer ones right now.
    """
    removed = 0
    cutoff = time.time() - min_age_s
    for folder, _dirs, names in os.walk(root):
        for name in names:
            if name.startswith(_TEMP_PREFIX) and name.endswith(".tmp"):
                path = os.path.join(folder, name)
                try:
                    if os.stat(path).st_mtime <= cutoff:
                        os.unlink(path)
                        removed += 1
                except FileNotFoundError:
                    pass
    return removed


class UnsafePathError(ValueError):
    """Upload metadata that would name a path outside its folder (or no usable path)."""


def _check_segment(what: str, value: str) -> str:
    if not value:
        return EMPTY_SEGMENT
    if value in (".", "..") or _UNSAFE.search(value):
        raise UnsafePathError(f"{what} {value!r} cannot be used as a folder name")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
        raise UnsafePathError(f"{what} is longer than {MAX_SEGMENT_BYTES} bytes")
    return value


def payload_folder(
    part_id: str, component_type: str, component_name: str, method_name: str
) -> tuple[str, ...]:
    """The folder segments for a payload, or :class:`UnsafePathError`."""
    part = _check_segment("part_id", part_id)
    if part in RESERVED_NAMES or part.startswith(_TEMP_PREFIX):
        raise UnsafePathError(f"part_id {part_id!r} is a reserved name")
    return (
        part,
        _check_segment("component_type", api_folder(component_type)),
        _check_segment("component_name", component_name),
        _check_segment("method_name", method_name),
    )


def check_extension(extension: str) -> str:
    """A file extension with its leading dot (added when missing), or "" for none."""
    if not extension:
        return ""
    if not extension.startswith("."):
        extension = "." + extension
    if (
        extension in (".", "..")
        or len(extension) > MAX_EXTENSION_CHARS
        or _UNSAFE.search(extension)
    ):
        raise UnsafePathError(f"file_extension {extension!r} cannot be used in a file name")
    return extension


@dataclass(frozen=True)
class StoredPayload:
    """Where a payload was stored (relative to the data dir, "/"-separated) and its digest."""

    path: str
    sha256: str
    size_bytes: int


class PayloadWriter:
    """Receives one payload in chunks; :meth:`commit` makes it visible under its hash name.

    Used as a context manager, a payload not committed is removed on exit.
    """

    def __init__(
        self,
        root: Path,
        folder: tuple[str, ...],
        extension: str,
        sync_dir: Callable[[Path], None] | None = None,
    ) -> None:
        self._root = root
        self._sync_dir = sync_dir or fsync_folder
        self._folder_parts = folder
        self._folder = root.joinpath(*folder)
        self._extension = check_extension(extension)
        _make_folders(root, folder)
        fd, temp_name = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=".tmp", dir=self._folder)
        self._temp = Path(temp_name)
        self._file = os.fdopen(fd, "wb", buffering=0)
        self._hash = hashlib.sha256()
        self._size = 0
        self._done = False

    def write(self, chunk: bytes | memoryview) -> None:
        """Append ``chunk`` (hashed once, as it goes by)."""
        view = memoryview(chunk)
        while view:
            written = self._file.write(view)
            view = view[written or 0 :]
        self._hash.update(chunk)
        self._size += len(chunk)

    @property
    def size_bytes(self) -> int:
        return self._size

    def sync(self) -> None:
        """Flush what was written to disk (done by :meth:`commit` when not called before)."""
        if self._done:
            raise RuntimeError("payload already committed or aborted")
        if not self._file.closed:
            os.fdatasync(self._file.fileno())
            self._file.close()

    def commit(self) -> StoredPayload:
        """Flush to disk and rename to ``<sha256><ext>``; an existing equal file is kept."""
        self.sync()
        digest = self._hash.hexdigest()
        name = digest + self._extension
        final = self._folder / name
        try:
            if final.is_file() and final.stat().st_size == self._size:
                self._temp.unlink()
            else:
                os.replace(self._temp, final)
                self._sync_dir(self._folder)  # shared with concurrent commits in this folder
        except BaseException:
            self._temp.unlink(missing_ok=True)
            raise
        finally:
            self._done = True
        return StoredPayload("/".join((*self._folder_parts, name)), digest, self._size)

    def abort(self) -> None:
        """Drop the partial payload (safe to call more than once)."""
        if self._done:
            return
        self._done = True
        self._file.close()
        self._temp.unlink(missing_ok=True)

    def __enter__(self) -> PayloadWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.abort()


def _make_folders(root: Path, parts: tuple[str, ...]) -> None:
    """Create ``root/parts...``, each new level with mode 0700."""
    root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    folder = root
    for part in parts:
        folder = folder / part
        folder.mkdir(mode=DIR_MODE, exist_ok=True)


def _dir_step(folder: Path) -> Callable[[Sequence[None]], list[None]]:
    def step(items: Sequence[None]) -> list[None]:
        fsync_folder(folder)
        return [None] * len(items)

    return step


class BlobStore:
    """Payload files under one data dir. Payloads committed at the same time in the same
    folder share one fsync of that folder (:class:`GroupCommit`)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._dir_syncs: dict[Path, GroupCommit[None, None]] = {}
        self._lock = threading.Lock()

    def _sync_dir(self, folder: Path) -> None:
        with self._lock:
            group = self._dir_syncs.get(folder)
            if group is None:
                group = self._dir_syncs[folder] = GroupCommit(_dir_step(folder))
        group.submit(None)

    def writer(self, folder: tuple[str, ...], extension: str) -> PayloadWriter:
        """A writer for one payload in ``folder`` (from :func:`payload_folder`)."""
        return PayloadWriter(self.root, folder, extension, self._sync_dir)

    def put(
        self, folder: tuple[str, ...], extension: str, data: bytes | memoryview
    ) -> StoredPayload:
        """Store a whole payload at once."""
        with self.writer(folder, extension) as writer:
            writer.write(data)
            return writer.commit()

    def resolve(self, relative_path: str) -> Path:
        """The absolute path of a stored payload."""
        return self.root.joinpath(*relative_path.split("/"))
