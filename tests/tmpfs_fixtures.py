"""A real, small filesystem for disk-pressure tests: a 32 MB tmpfs, and a camera that fills it.

Registered for every test module by tests/conftest.py (``pytest_plugins``):
a test asks for the ``tmpfs`` fixture by name. The tmpfs is mounted by the
fixture itself (tests run as root in CI); where mounting is refused, the test
is skipped with the reason.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from capsync.resources import BinaryResult, Resource, capture_method

TMPFS_BYTES = 32 * 1024 * 1024
PAYLOAD_BYTES = 100_000
CAMERA = "rdk:component:camera"


class FirehoseCamera(Resource):
    """ReadImage at whatever rate it is asked: 100 KB payloads stamped with a counter."""

    api = CAMERA
    model = "test:models:firehose"

    def __init__(self, name: str, attributes: Mapping[str, Any], context: Any) -> None:
        super().__init__(name, attributes, context)
        self._counter = itertools.count()
        self._body = os.urandom(PAYLOAD_BYTES - 8)

    @capture_method("ReadImage")
    def read_image(self, params: Mapping[str, Any]) -> BinaryResult:
        return BinaryResult(next(self._counter).to_bytes(8, "big") + self._body, "image/jpeg")


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    options = f"size={TMPFS_BYTES // (1024 * 1024)}m,mode=0700"
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {(done.stderr or done.stdout).strip()}")
    try:
        yield mount_point
    finally:
        result = subprocess.run(
            ["umount", str(mount_point)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:  # something still holds a file: detach it anyway
            subprocess.run(["umount", "-l", str(mount_point)], check=False)
