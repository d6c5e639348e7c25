"""Folder layout and file names of capture files (SPEC §2)."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

from capsync.methods import api_folder

IN_PROGRESS_EXT = ".prog"
COMPLETED_EXT = ".capture"
FAILED_DIR_NAME = "failed"
FILE_MODE = 0o600
DIR_MODE = 0o700
_MAX_NAME_SUFFIX = 100_000


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
