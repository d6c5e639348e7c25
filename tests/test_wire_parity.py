"""The compiled modules and their pure-Python twins expose the same API (as propcache checks).

Every pair (``capsync.wire._wire`` / ``_wire_py``, ``_framing`` / ``_framing_py``,
``_upload`` / ``_upload_py``, ``_append`` / ``_append_py``, ``_clock`` / ``_clock_py``):
the same ``__all__``, every name there defined in both, of the same kind, with
the same parameters (names, kinds, defaults) and, for classes, the same public
methods and properties. Annotations are not compared: Cython's typed
arguments (``Py_ssize_t offset=0``) carry none, and adding Python annotations
there would make Cython type-check them on the hot path.

Byte-identical output is proven elsewhere (test_wire.py, the hypothesis tests).
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import capsync.wire
from capsync.wire import _append_py, _clock_py, _framing_py, _upload_py, _wire_py

pytestmark = pytest.mark.wire_independent


def _compiled(name: str) -> ModuleType:
    """The compiled module, imported directly (even where CAPSYNC_NO_EXTENSIONS is set)."""
    try:
        return importlib.import_module(f"capsync.{name}")
    except ImportError:
        if os.environ.get("CI") or os.environ.get("CAPSYNC_REQUIRE_EXTENSIONS") == "1":
            raise
        pytest.skip(f"the compiled extension capsync.{name} is not built here")


def _parameters(func: Any) -> list[tuple[str, Any, Any]]:
    """(name, kind, default) of each parameter: the signature without annotations."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(func).parameters.values()]


def _own_public_names(module: ModuleType) -> set[str]:
    """Public functions, classes and constants the module defines (not what it imported)."""
    names = set()
    for name, value in vars(module).items():
        if name.startswith("_") or inspect.ismodule(value):
            continue
        defined_in = getattr(value, "__module__", module.__name__)
        if defined_in == module.__name__ or not callable(value):
            names.add(name)
    return names - {"annotations"}  # `from __future__ import annotations`


def _class_api(cls: type) -> dict[str, Any]:
    """Public attribute -> "property" or the method's parameters."""
    api: dict[str, Any] = {}
    for name in dir(cls):
        if name.startswith("_"):
            continue
        attribute = inspect.getattr_static(cls, name)
        if isinstance(attribute, property) or inspect.isgetsetdescriptor(attribute):
            api[name] = "property"
        else:
            api[name] = _parameters(getattr(cls, name))
    return api


PAIRS = [
    ("wire._wire", _wire_py),
    ("wire._framing", _framing_py),
    ("wire._upload", _upload_py),
    ("wire._append", _append_py),
    ("wire._clock", _clock_py),
]
IDS = ["wire", "framing", "upload", "append", "clock"]
# The appender's state is C fields on one side and instance attributes on the other, so
# its API is compared on instances (tests/test_append.py), not on the classes here.
INSTANCE_CHECKED = {"wire._append"}
# A name of ``__all__`` a module does not define itself comes from its sibling of the
# same kind: the compiled ``_wire`` re-exports compiled modules, the twin re-exports twins.
TWIN_OF = {f"capsync.{name}": twin.__name__ for name, twin in PAIRS}


def test_every_compiled_module_has_a_pair() -> None:
    """Each .pyx that setup.py builds under wire/ is in PAIRS (a new module gets checked)."""
    ext = Path(__file__).resolve().parents[1] / "ext" / "capsync" / "wire"
    built = {f"wire.{path.stem}" for path in ext.glob("*.pyx")}
    assert built == {name for name, _ in PAIRS}


def test_no_compiled_module_imports_a_twin() -> None:
    """The compiled kernels depend on the shared checks, never on their twins."""
    ext = Path(__file__).resolve().parents[1] / "ext" / "capsync"
    # The twins: wire/*_py.py, and export/frames.py for the compiled export module.
    twin_import = re.compile(
        r"^\s*(from|c?import)\s.*(\b_\w+_py\b|capsync\.export\.frames\b)", re.MULTILINE
    )
    assert twin_import.search("from capsync.wire import _wire_py\n")  # the check can fail
    assert twin_import.search("from capsync.export.frames import json_string\n")
    for path in [*ext.glob("*/*.py[xd]"), *ext.glob("*/*.pxi")]:
        assert not twin_import.search(path.read_text()), path.name


@pytest.mark.parametrize(("compiled_name", "twin"), PAIRS, ids=IDS)
def test_same_names(compiled_name: str, twin: ModuleType) -> None:
    compiled = _compiled(compiled_name)
    assert sorted(compiled.__all__) == sorted(twin.__all__)
    for name in twin.__all__:
        assert hasattr(compiled, name), name
        assert hasattr(twin, name), name
        ours, theirs = getattr(compiled, name), getattr(twin, name)
        ours_from = getattr(ours, "__module__", compiled.__name__)
        theirs_from = getattr(theirs, "__module__", twin.__name__)
        # Defined in the module itself, or re-exported from the matching pair's side.
        assert TWIN_OF[ours_from] == theirs_from, name
    # Nothing public is left out of __all__ on either side.
    assert _own_public_names(compiled) == {
        n for n in compiled.__all__ if getattr(compiled, n).__module__ == compiled.__name__
    }
    assert _own_public_names(twin) == {
        n for n in twin.__all__ if getattr(twin, n).__module__ == twin.__name__
    }


def test_the_twins_satisfy_the_protocols() -> None:
    """The selector's Protocols (mypy checks the twins statically; here both sides)."""
    for name, protocol in (
        ("wire._wire", capsync.wire.WireKernel),
        ("wire._clock", capsync.wire.ClockKernel),
    ):
        twin = dict(PAIRS)[name]
        members = [m for m in vars(protocol) if not m.startswith("_")]
        assert sorted(members) == sorted(twin.__all__), name
        compiled = _compiled(name)
        for member in members:
            assert callable(getattr(compiled, member)), member


@pytest.mark.parametrize(("compiled_name", "twin"), PAIRS, ids=IDS)
def test_same_signatures(compiled_name: str, twin: ModuleType) -> None:
    compiled = _compiled(compiled_name)
    for name in twin.__all__:
        ours, theirs = getattr(compiled, name), getattr(twin, name)
        assert inspect.isclass(ours) == inspect.isclass(theirs), name
        if compiled_name in INSTANCE_CHECKED:
            continue
        assert _parameters(ours) == _parameters(theirs), name
        if inspect.isclass(theirs):
            assert _class_api(ours) == _class_api(theirs), name


def test_the_checks_see_a_difference() -> None:
    def a(buf: Any, offset: int = 0) -> None: ...

    def b(buf: Any, offset: int = 1) -> None: ...

    def c(buf: Any, *, offset: int = 0) -> None: ...

    assert _parameters(a) != _parameters(b)
    assert _parameters(a) != _parameters(c)

    class One:
        def m(self, x: int) -> None: ...

        @property
        def p(self) -> int:
            return 0

    class Two:
        def m(self, y: int) -> None: ...

        def p(self) -> int:
            return 0

    assert _class_api(One) != _class_api(Two)
