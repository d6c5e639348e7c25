"""The compiled modules and their pure-Python twins expose the same API (as propcache checks).

``capsync.wire._wire`` / ``_wire_py`` and ``capsync.wire._clock`` / ``_clock_py``:
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
from types import ModuleType
from typing import Any

import pytest

from capsync.wire import _clock_py, _wire_py

pytestmark = pytest.mark.wire_independent

# Names the twin defines publicly besides its API: input normalisation the compiled
# module borrows from it (to move to a shared module of checks, issue 10).
TWIN_HELPERS = {"as_int64", "normalize_batch", "MAX_NESTING_DEPTH"}


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


PAIRS = [("_wire", _wire_py), ("_clock", _clock_py)]


@pytest.mark.parametrize(("compiled_name", "twin"), PAIRS, ids=["wire", "clock"])
def test_same_names(compiled_name: str, twin: ModuleType) -> None:
    compiled = _compiled(compiled_name)
    assert sorted(compiled.__all__) == sorted(twin.__all__)
    for name in twin.__all__:
        assert hasattr(compiled, name), name
        assert hasattr(twin, name), name
    # Nothing public is left out of __all__ on either side.
    assert _own_public_names(compiled) == set(compiled.__all__)
    assert _own_public_names(twin) == set(twin.__all__) | (
        TWIN_HELPERS if twin is _wire_py else set()
    )


@pytest.mark.parametrize(("compiled_name", "twin"), PAIRS, ids=["wire", "clock"])
def test_same_signatures(compiled_name: str, twin: ModuleType) -> None:
    compiled = _compiled(compiled_name)
    for name in twin.__all__:
        ours, theirs = getattr(compiled, name), getattr(twin, name)
        assert inspect.isclass(ours) == inspect.isclass(theirs), name
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
