"""Which files a sync pass uploads, and where a refused one goes.

* capture files: completed ``.capture`` files anywhere under the capture dir,
  except in ``<capture_dir>/failed/`` (``.prog`` files are still being
  written and are never touched);
* arbitrary files: every file under each ``additional_sync_paths`` folder
  that is non-empty, not a capture file (``.capture``/``.prog``) and
  unmodified for ``file_last_modified_millis``. A ``tag=<x>`` folder on its
  path adds tag ``x``, a ``dataset=<id>`` folder adds dataset id ``id``.

Oldest files go first.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from capsync.capture import layout

_log = logging.getLogger("capsync.sync")

# Next to a capture file split across several requests: how far the server confirmed it.
RESUME_SUFFIX = ".syncprog"
_OWN_SUFFIXES = (
    layout.COMPLETED_EXT,
    layout.IN_PROGRESS_EXT,
    RESUME_SUFFIX,
    RESUME_SUFFIX + ".tmp",
)
_TAG = re.compile(r"[A-Za-z0-9_-]+")
TAG_PREFIX = "tag="
DATASET_PREFIX = "dataset="

Kind = Literal["capture", "file"]


@dataclass(frozen=True)
class SyncItem:
    """One file a sync pass may upload."""

    path: Path
    kind: Kind
    root: Path  # the capture dir, or the additional sync path the file was found under
    size_bytes: int
    mtime_ns: int

    @property
    def relative_name(self) -> str:
        """The path below its root, with ``/`` separators (the upload's ``file_name``)."""
        return self.path.relative_to(self.root).as_posix()


def _warn_unlisted(folder: str, exc: OSError) -> None:
    _log.warning("cannot list %s: %s", folder, exc.strerror or exc)


def _walk_files(root: Path, skip: layout.SkipFolder | None) -> Iterator[os.DirEntry[str]]:
    """Every regular file under ``root`` (file links followed), leaving out ``skip``."""
    for entry, _depth in layout.walk_files(
        root, skip_folder=skip, follow_file_links=True, on_list_error=_warn_unlisted
    ):
        yield entry


def capture_files(capture_dir: str | os.PathLike[str]) -> list[SyncItem]:
    """Completed capture files under ``capture_dir`` (not in ``failed/``), oldest first."""
    root = Path(os.path.abspath(capture_dir))
    items: list[SyncItem] = []
    for entry in _walk_files(root, layout.skip_failed(root)):
        if not entry.name.endswith(layout.COMPLETED_EXT):
            continue
        try:
            st = entry.stat()
        except OSError:
            continue
        items.append(SyncItem(Path(entry.path), "capture", root, st.st_size, st.st_mtime_ns))
    items.sort(key=lambda item: (item.mtime_ns, item.path))
    return items


def arbitrary_files(
    paths: Iterable[str | os.PathLike[str]],
    *,
    capture_dir: str | os.PathLike[str],
    min_age_s: float,
    now_ns: int | None = None,
) -> list[SyncItem]:
    """Files under ``paths`` ready for a ``FileUpload``, oldest first."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    newest_ns = now_ns - int(min_age_s * 1e9)
    skip = layout.skip_failed(os.path.abspath(capture_dir))
    items: list[SyncItem] = []
    seen: set[str] = set()
    for path in paths:
        root = Path(os.path.abspath(os.path.expanduser(path)))
        for entry in _walk_files(root, skip):
            if entry.name.endswith(_OWN_SUFFIXES) or entry.path in seen:
                continue
            try:
                st = entry.stat()
            except OSError:
                continue
            if st.st_size == 0 or st.st_mtime_ns > newest_ns:
                continue
            seen.add(entry.path)
            items.append(SyncItem(Path(entry.path), "file", root, st.st_size, st.st_mtime_ns))
    items.sort(key=lambda item: (item.mtime_ns, item.path))
    return items


def _folder_segments(path: Path) -> list[str]:
    return list(path.parent.parts)


def path_tags(path: Path) -> tuple[str, ...]:
    """Tags from the ``tag=<x>`` folders on ``path``, in order (invalid tags left out)."""
    tags: list[str] = []
    for segment in _folder_segments(path):
        if segment.startswith(TAG_PREFIX):
            tag = segment[len(TAG_PREFIX) :]
            if _TAG.fullmatch(tag):
                tags.append(tag)
            else:
                _log.warning("%s: folder %r is not a valid tag (letters, digits, _ and - only)",
                             path, segment)  # fmt: skip
    return tuple(dict.fromkeys(tags))


def path_dataset_ids(path: Path) -> tuple[str, ...]:
    """Dataset ids from the ``dataset=<id>`` folders on ``path``, in order."""
    ids = [
        segment[len(DATASET_PREFIX) :]
        for segment in _folder_segments(path)
        if segment.startswith(DATASET_PREFIX) and len(segment) > len(DATASET_PREFIX)
    ]
    return tuple(dict.fromkeys(ids))


def resume_path(path: Path) -> Path:
    """The resume record of a capture file: ``<file>.syncprog``."""
    return path.with_name(path.name + RESUME_SUFFIX)


def remove_orphan_resume_files(capture_dir: str | os.PathLike[str]) -> int:
    """Delete resume records whose capture file is gone (deleted under disk pressure, say)."""
    removed = 0
    for entry in _walk_files(Path(capture_dir), None):
        if not entry.name.endswith((RESUME_SUFFIX, RESUME_SUFFIX + ".tmp")):
            continue
        target = entry.path.removesuffix(".tmp").removesuffix(RESUME_SUFFIX)
        if not os.path.exists(target):
            try:
                os.unlink(entry.path)
                removed += 1
            except OSError:
                pass
    return removed


def failed_relative(item: SyncItem) -> Path:
    """Where below ``<capture_dir>/failed/`` a refused file goes: its relative path; an
    arbitrary file keeps the name of the sync folder it came from
    (``<folder name>/<relative path>``)."""
    relative = Path(item.relative_name)
    if item.kind == "file":
        relative = Path(item.root.name or "root") / relative
    return relative


def move_to_failed(capture_dir: str | os.PathLike[str], item: SyncItem) -> Path:
    """Move ``item`` to ``failed/`` keeping its folder structure; return the new path."""
    return layout.move_to_failed(capture_dir, item.path, failed_relative(item))
