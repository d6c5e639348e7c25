"""Pick the implementation of the compiled entry points, or their pure-Python twins.

Three compiled modules exist: ``capsync.wire._wire`` (the capture file hot path),
``capsync.wire._append`` (a tabular stream's per-reading path) and
``capsync.wire._clock`` (GIL-free waiting); their twins are ``_wire_py``,
``_append_py`` and ``_clock_py``. They are switched together.

``CAPSYNC_NO_EXTENSIONS=1`` (any non-empty value but ``0``) forces the twin;
so does a missing or broken extension, or a big-endian host (the compiled
path copies doubles in the machine's byte order). Everything else in capsync
reaches the hot path through :func:`wire`, so tests can swap the
implementation with :func:`use`.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

from capsync.wire import _append_py, _clock_py, _wire_py


def _load_compiled(name: str) -> ModuleType | None:
    if os.environ.get("CAPSYNC_NO_EXTENSIONS", "") not in ("", "0"):
        return None
    if sys.byteorder != "little":
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


COMPILED: ModuleType | None = _load_compiled("capsync.wire._wire")
COMPILED_CLOCK: ModuleType | None = _load_compiled("capsync.wire._clock")
COMPILED_APPEND: ModuleType | None = _load_compiled("capsync.wire._append")
PURE: ModuleType = _wire_py
PURE_CLOCK: ModuleType = _clock_py
PURE_APPEND: ModuleType = _append_py
_current: ModuleType = COMPILED if COMPILED is not None else PURE


def wire() -> ModuleType:
    """The wire module in use."""
    return _current


def clock() -> ModuleType:
    """The clock module that goes with the wire module in use."""
    if _current is PURE or COMPILED_CLOCK is None:
        return PURE_CLOCK
    return COMPILED_CLOCK


def append_for(wire_module: ModuleType) -> ModuleType:
    """The per-reading module that goes with ``wire_module`` (its record buffers)."""
    if wire_module is PURE or COMPILED_APPEND is None:
        return PURE_APPEND
    return COMPILED_APPEND


def use(module: ModuleType) -> ModuleType:
    """Switch the wire module (tests); return the previous one."""
    global _current
    previous = _current
    _current = module
    return previous


def native_available() -> bool:
    """True when the compiled hot path is the one in use."""
    return _current is not PURE
