"""capture/layout.py: the one walker and the one move to failed/ (never overwrites)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from capsync.capture import layout

pytestmark = pytest.mark.wire_independent


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_walk_sorted_depth_first_with_depths_and_skips(tmp_path: Path) -> None:
    _touch(tmp_path / "b" / "2.capture")
    _touch(tmp_path / "b" / "1.capture")
    _touch(tmp_path / "a" / "deep" / "x.capture")
    _touch(tmp_path / "failed" / "f.capture")
    _touch(tmp_path / "top.capture")
    os.symlink(tmp_path / "a", tmp_path / "link")  # folder links are never followed
    walk = [
        (Path(e.path).relative_to(tmp_path).as_posix(), depth)
        for e, depth in layout.walk_files(
            tmp_path, sort=True, skip_folder=layout.skip_failed(tmp_path)
        )
    ]
    assert walk == [
        ("a/deep/x.capture", 2),
        ("b/1.capture", 1),
        ("b/2.capture", 1),
        ("top.capture", 0),
    ]
    shallow = [e.name for e, _ in layout.walk_files(tmp_path, sort=True, max_depth=1)]
    assert shallow == ["1.capture", "2.capture", "f.capture", "top.capture"]
    assert list(layout.walk_files(tmp_path / "missing")) == []


def test_walk_reports_an_unlistable_folder_or_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _touch(tmp_path / "ok" / "a.capture")
    _touch(tmp_path / "locked" / "b.capture")
    real_scandir = os.scandir

    def scandir(path: str):  # type: ignore[no-untyped-def]
        if str(path).endswith("locked"):
            raise PermissionError(errno.EACCES, "denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    seen: list[str] = []
    names = [
        e.name for e, _ in layout.walk_files(tmp_path, on_list_error=lambda p, _e: seen.append(p))
    ]
    assert names == ["a.capture"] and seen == [str(tmp_path / "locked")]
    with pytest.raises(PermissionError):
        list(layout.walk_files(tmp_path))


def test_move_to_failed_never_overwrites(tmp_path: Path) -> None:
    first = _touch(tmp_path / "api" / "n" / "M" / "f.capture", b"first")
    second = _touch(tmp_path / "other" / "f.capture", b"second")
    third = _touch(tmp_path / "third.bin", b"third")
    relative = Path("api/n/M/f.capture")
    assert layout.move_to_failed(tmp_path, first, relative) == tmp_path / "failed" / relative
    moved = layout.move_to_failed(tmp_path, second, relative)
    assert moved == tmp_path / "failed" / "api/n/M/f_1.capture"
    assert layout.move_to_failed(tmp_path, third, relative).name == "f_2.capture"
    assert (tmp_path / "failed" / relative).read_bytes() == b"first"
    assert moved.read_bytes() == b"second"
    assert not first.exists() and not second.exists() and not third.exists()


def test_move_to_failed_copies_across_filesystems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_link(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    _touch(tmp_path / "failed" / "f.txt", b"taken")
    source = _touch(tmp_path / "elsewhere" / "f.txt", b"payload")
    target = layout.move_to_failed(tmp_path, source, "f.txt")
    assert target.name == "f_1.txt" and target.read_bytes() == b"payload"
    assert (tmp_path / "failed" / "f.txt").read_bytes() == b"taken" and not source.exists()
