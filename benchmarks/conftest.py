"""Fixtures of the capture benchmarks; independent of ``tests/conftest.py``.

Every benchmark picks its wire implementation itself (the ``wire_module`` fixture) and
installs it with :func:`capsync.wire.use` only while it opens its stream; the
fixture below puts back whatever was selected before, whatever happens.

All files go under one temporary folder, created with
``tempfile.mkdtemp(prefix="capsync-bench-", dir=$CAPSYNC_BENCH_DIR)`` (the
system temp dir when unset), so every implementation and the raw-write floor
write to the same filesystem. It is removed at the end of the session.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from capsync import wire


@pytest.fixture(scope="session")
def bench_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="capsync-bench-", dir=os.environ.get("CAPSYNC_BENCH_DIR")))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def workdir(bench_root: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """An empty folder for one benchmark, removed afterwards so the disk does not fill."""
    path = Path(tempfile.mkdtemp(prefix=request.node.name.replace("/", "_") + "-", dir=bench_root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def _restore_wire() -> Iterator[None]:
    """Whatever a benchmark selects, the next one starts from the same implementation."""
    previous = wire.wire()
    try:
        yield
    finally:
        wire.use(previous)


def _wire_module(impl: str) -> ModuleType:
    if impl == "python":
        return wire.PURE
    if impl != "compiled":
        raise ValueError(f"no wire implementation called {impl!r}")
    if wire.COMPILED is None:
        pytest.skip("compiled extension capsync.wire._wire is not importable")
    return wire.COMPILED


@pytest.fixture
def wire_module() -> Callable[[str], ModuleType]:
    """``wire_module("compiled" | "python")``: the wire module a benchmark parameter names."""
    return _wire_module
