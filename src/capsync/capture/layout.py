"""The capture folder's layout (SPEC §2), in one place: folder and file names, the
one directory walker every reader of the folder uses, and the one way a file
goes to ``<capture_dir>/failed/``.

Layout: ``<capture_dir>/<api with : as _>/<name>/<Method>/<local time>.capture``
(``.prog`` while being written); ``<capture_dir>/failed/`` keeps what sync
refused and what recovery could not read, under the same relative path.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from capsync.methods import api_folder

IN_PROGRESS_EXT = ".prog"
COMPLETED_EXT = ".capture"
FAILED_DIR_NAME = "failed"
FILE_MODE = 0o600
DIR_MODE = 0o700
_MAX_NAME_SUFFIX = 100_000
# <capture_dir>/<api>/<name>/<Method>/<file>: a capture file is this many folders down.
CAPTURE_FILE_DEPTH = 3


def check_path_segment(what: str, value: str) -> str:
    """Refuse a name that would leave its folder or be empty."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    if "/" in value or "\\" in value or value in (".", "..") or "\0" in value:
        raise ValueError(f"{what} {value!r} cannot be used as a folder name")
    return value


def capture_folder(capture_dir: str | os.PathLike[str], api: str, name: str, method: str) -> Path:
    """``<capture_dir>/<api with : as _>/<name>/<Method>``."""
    check_path_segment("component_type", api)
    check_path_segment("component_name", name)
    check_path_segment("method_name", method)
    return Path(capture_dir) / api_folder(api) / name / method


def timestamp_name(now_ns: int | None = None) -> str:
    """Local creation time as ``YYYY-MM-DDTHH_MM_SS.ffffff±HH_MM``."""
    seconds, nanos = divmod(time.time_ns() if now_ns is None else now_ns, 1_000_000_000)
    local = time.localtime(seconds)
    offset_s = local.tm_gmtoff
    sign = "+" if offset_s >= 0 else "-"
    offset_s = abs(offset_s)
    return (
        time.strftime("%Y-%m-%dT%H_%M_%S", local)
        + f".{nanos // 1000:06d}{sign}{offset_s // 3600:02d}_{offset_s % 3600 // 60:02d}"
    )


def make_folder(folder: Path) -> None:
    """Create ``folder`` (mode 0700) or say which path cannot be written."""
    missing = [folder, *folder.parents]
    missing = list(reversed([p for p in missing if not p.exists()]))
    try:
        for level in missing:  # every level we create gets 0700, not just the leaf
            level.mkdir(mode=DIR_MODE, exist_ok=True)
    except OSError as exc:
        raise type(exc)(
            exc.errno, f"cannot create capture folder: {exc.strerror}", str(folder)
        ) from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, "capture folder is not writable", str(folder))


def create_in_progress(folder: Path) -> tuple[int, Path]:
    """Create a new, empty ``.prog`` file named by the time; never reuse a taken name."""
    stem = timestamp_name()
    for suffix in range(_MAX_NAME_SUFFIX):
        name = stem if suffix == 0 else f"{stem}_{suffix}"
        path = folder / (name + IN_PROGRESS_EXT)
        if (folder / (name + COMPLETED_EXT)).exists():
            continue
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
        except FileExistsError:
            continue
        except OSError as exc:
            raise type(exc)(
                exc.errno, f"cannot create capture file: {exc.strerror}", str(path)
            ) from exc
        return fd, path
    raise FileExistsError(errno.EEXIST, "no free capture file name", str(folder / stem))


def completed_path(in_progress: Path) -> Path:
    """The ``.capture`` name for a ``.prog`` file, with a suffix when that name is taken."""
    target = in_progress.with_suffix(COMPLETED_EXT)
    suffix = 0
    while target.exists():
        suffix += 1
        target = in_progress.with_name(f"{in_progress.stem}_{suffix}{COMPLETED_EXT}")
    return target


def fsync_folder(folder: Path) -> None:
    """Persist creations and renames in ``folder``."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ----- the one walker ----------------------------------------------------------------------

SkipFolder = Callable[[os.DirEntry[str], int], bool]
OnListError = Callable[[str, OSError], None]


def walk_files(
    root: str | os.PathLike[str],
    *,
    skip_folder: SkipFolder | None = None,
    max_depth: int | None = None,
    sort: bool = False,
    follow_file_links: bool = False,
    on_list_error: OnListError | None = None,
) -> Iterator[tuple[os.DirEntry[str], int]]:
    """``(entry, depth)`` of every regular file under ``root`` (depth 0: directly in it).

    Depth first; with ``sort`` each folder's entries come in name order (Go's
    ``filepath.WalkDir``, which viam-server's deletion follows). Folder links
    are never followed; file links only with ``follow_file_links``. A folder
    for which ``skip_folder(entry, depth of its parent)`` is true, or deeper
    than ``max_depth``, is not entered. Entries and folders that vanish during
    the walk are passed over; a folder that cannot be listed for another reason
    goes to ``on_list_error(path, error)``, or raises without it.
    """
    first = _list(os.fspath(root), sort, on_list_error)
    if first is None:
        return
    stack: list[tuple[Iterator[os.DirEntry[str]], int]] = [(iter(first), 0)]
    while stack:
        entries, depth = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                if max_depth is not None and depth >= max_depth:
                    continue
                if skip_folder is not None and skip_folder(entry, depth):
                    continue
                children = _list(entry.path, sort, on_list_error)
                if children is not None:
                    stack.append((iter(children), depth + 1))
            elif entry.is_file(follow_symlinks=follow_file_links):
                yield entry, depth
        except FileNotFoundError:  # removed (uploaded, deleted) while we walked
            continue


def _list(folder: str, sort: bool, on_error: OnListError | None) -> list[os.DirEntry[str]] | None:
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if on_error is None:
            raise
        on_error(folder, exc)
        return None
    if sort:
        entries.sort(key=lambda e: e.name)
    return entries


def failed_dir(capture_dir: str | os.PathLike[str]) -> Path:
    """``<capture_dir>/failed``."""
    return Path(capture_dir) / FAILED_DIR_NAME


def skip_failed(capture_dir: str | os.PathLike[str]) -> SkipFolder:
    """A ``skip_folder`` for :func:`walk_files` that leaves out ``<capture_dir>/failed``."""
    failed = os.path.abspath(failed_dir(capture_dir))
    return lambda entry, _depth: os.path.abspath(entry.path) == failed


def capture_dir_size(capture_dir: str | os.PathLike[str], *, stop_at: float | None = None) -> int:
    """The sum of the sizes (``st_size``) of every file under ``capture_dir``.

    Symlinks are not followed (nor counted). With ``stop_at``, the walk ends as
    soon as the sum reaches it, and the partial sum is returned. A missing dir
    is 0; files that vanish during the walk are skipped.
    """
    total = 0
    for entry, _depth in walk_files(capture_dir):
        try:
            total += entry.stat(follow_symlinks=False).st_size
        except FileNotFoundError:
            continue
        if stop_at is not None and total >= stop_at:
            break
    return total


# ----- failed/ -----------------------------------------------------------------------------


def move_to_failed(
    capture_dir: str | os.PathLike[str], path: Path, relative: str | os.PathLike[str]
) -> Path:
    """Move ``path`` to ``<capture_dir>/failed/<relative>``; return where it went.

    Never overwrites: a taken name gets the first free ``_N`` before its
    extension (``<stem>_1.capture``). The name is claimed atomically (a hard
    link, or an exclusive create where the target's filesystem differs), so
    two movers never pick the same one.
    """
    wanted = failed_dir(capture_dir) / relative
    make_folder(wanted.parent)
    for suffix in range(_MAX_NAME_SUFFIX):
        target = (
            wanted if suffix == 0 else wanted.with_name(f"{wanted.stem}_{suffix}{wanted.suffix}")
        )
        try:
            _claim(path, target)
        except FileExistsError:
            continue
        os.unlink(path)
        return target
    raise FileExistsError(errno.EEXIST, "no free name in failed/", str(wanted))


def _claim(path: Path, target: Path) -> None:
    """Give ``path``'s content the name ``target``, which must not exist."""
    try:
        os.link(path, target)
        return
    except FileExistsError:
        raise
    except OSError as exc:  # another filesystem, or one without hard links: copy
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK):
            raise
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        with open(path, "rb") as src, os.fdopen(fd, "wb", closefd=False) as dst:
            shutil.copyfileobj(src, dst)
        shutil.copystat(path, target)
    except BaseException:
        os.close(fd)
        target.unlink(missing_ok=True)
        raise
    os.close(fd)
