"""Every test runs against both wire implementations: the compiled extension and its twin.

A test module that never touches the hot path (config parsing, schema checks)
marks itself ``pytestmark = pytest.mark.wire_independent`` and runs once.
The ``python`` run also sets ``CAPSYNC_NO_EXTENSIONS=1`` in the environment,
so subprocesses a test starts use the twin too.

Where the extension is missing the compiled runs are skipped with that reason,
except in CI (``CI`` set) or with ``CAPSYNC_REQUIRE_EXTENSIONS=1``, where a
missing extension fails the run: CI must never skip the core.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import ModuleType

import pytest

from capsync import wire

# Shared fixtures, available to every test module by name (no imports, no noqa):
# api_keys_file, ingest_server (server_fixtures); mongo_uri, mongo_db,
# mongo_server_factory (mongo_fixtures); tmpfs (tmpfs_fixtures).
pytest_plugins = ["server_fixtures", "mongo_fixtures", "tmpfs_fixtures"]

IMPLEMENTATIONS = ("compiled", "python")


def _extension_required() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("CAPSYNC_REQUIRE_EXTENSIONS") == "1"


def _extensions_switched_off() -> bool:
    """The run was started with CAPSYNC_NO_EXTENSIONS set (``make test-python``)."""
    return os.environ.get("CAPSYNC_NO_EXTENSIONS", "") not in ("", "0")


#: ``make test-python``: the whole run has the extension switched off. Read once, at
#: import, before any test changes the environment.
EXTENSIONS_OFF_FOR_RUN = _extensions_switched_off()


def require_compiled(module: object, what: str) -> None:
    """Skip or fail a test that compares a compiled module with its twin when it is missing.

    In a ``make test-python`` run there is nothing compiled to compare (``make test``
    in the same CI compares them); elsewhere CI fails rather than skips."""
    if module is not None:
        return
    if EXTENSIONS_OFF_FOR_RUN:
        pytest.skip(f"{what}: compared by `make test`; this run has the extension switched off")
    if _extension_required():
        pytest.fail(f"the compiled extension {what} is not importable (CI requires it)")
    pytest.skip(f"compiled {what} not built here")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "wire_impl" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("wire_independent"):
        return
    # With the extension switched off for the whole run, a "compiled" case would only
    # repeat the "python" one: run the twin once.
    implementations = ("python",) if _extensions_switched_off() else IMPLEMENTATIONS
    # CI's `make test` runs only the compiled case: its `make test-python` step runs
    # every test again on the twin, so the "python" case here would only repeat it.
    only = os.environ.get("CAPSYNC_TEST_WIRE", "")
    if only:
        if only not in IMPLEMENTATIONS:
            raise pytest.UsageError(f"CAPSYNC_TEST_WIRE={only!r}: expected compiled or python")
        implementations = tuple(name for name in implementations if name == only)
    metafunc.parametrize("wire_impl", implementations, indirect=True)


@pytest.fixture(autouse=True)
def wire_impl(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModuleType]:
    """The wire module this test runs against (installed as the one capsync uses)."""
    name = getattr(request, "param", "default")
    if name == "python":
        module = wire.PURE
        monkeypatch.setenv("CAPSYNC_NO_EXTENSIONS", "1")
    elif wire.COMPILED is not None:
        module = wire.COMPILED
        monkeypatch.delenv("CAPSYNC_NO_EXTENSIONS", raising=False)
    elif name == "default":
        module = wire.PURE
    elif _extension_required():
        pytest.fail("the compiled extension capsync.wire._wire is not importable (CI requires it)")
    else:
        pytest.skip("compiled extension not built here (CAPSYNC_NO_EXTENSIONS or no build)")
    previous = wire.use(module)
    try:
        yield module
    finally:
        wire.use(previous)
