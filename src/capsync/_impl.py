"""Pick the wire implementation: the compiled ``capsync._wire`` or its pure-Python twin.

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

from capsync import _wire_py


def _load_compiled() -> ModuleType | None:
    if os.environ.get("CAPSYNC_NO_EXTENSIONS", "") not in ("", "0"):
        return None
    if sys.byteorder != "little":
        return None
    try:
        return importlib.import_module("capsync._wire")
    except ImportError:
        return None


COMPILED: ModuleType | None = _load_compiled()
PURE: ModuleType = _wire_py
_current: ModuleType = COMPILED if COMPILED is not None else PURE


def wire() -> ModuleType:
    """The wire module in use."""
    return _current


def use(module: ModuleType) -> ModuleType:
    """Switch the wire module (tests); return the previous one."""
    global _current
    previous = _current
    _current = module
    return previous


def native_available() -> bool:
    """True when the compiled hot path is the one in use."""
    return _current is not PURE
