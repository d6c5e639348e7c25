"""Pick the implementation of the compiled entry points, or their pure-Python twins.

Three compiled modules are switched: ``capsync.wire._wire`` (the capture file hot
path: record encoding, plus the framing functions of ``_framing`` and the upload
scanner of ``_upload``, which it re-exports), ``capsync.wire._append`` (a tabular
stream's per-reading path) and ``capsync.wire._clock`` (GIL-free waiting); their
twins are ``_wire_py`` (re-exporting ``_framing_py`` and ``_upload_py``),
``_append_py`` and ``_clock_py``. They are switched together. Input checks and
error wording both sides share live in ``_checks`` and ``_upload_checks``.

:class:`WireKernel` and :class:`ClockKernel` are the APIs both implementations of
a module provide: mypy checks the twins against them below, and
tests/test_wire_parity.py checks that each compiled module has the twin's names
and signatures.

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
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from capsync.wire import _append_py, _clock_py, _wire_py

Int64Array = npt.NDArray[np.int64]


class RecordBufferApi(Protocol):
    """A growable buffer that length-delimited ``SensorData`` records are encoded into."""

    @property
    def nbytes(self) -> int: ...
    @property
    def capacity_bytes(self) -> int: ...
    def append_frame(self, payload: Any) -> int: ...
    def append_readings(
        self,
        readings: Mapping[Any, Any],
        time_requested_ns: int,
        time_received_ns: int,
        wrap_key: str | None = None,
    ) -> int: ...
    def append_batch(
        self,
        time_requested_ns: Any,
        time_received_ns: Any,
        values: Any,
        keys: Sequence[str],
        wrap_key: str | None = None,
        start_row: int = 0,
        limit_bytes: int = -1,
    ) -> int: ...
    def append_binary_prefix(
        self, payload_nbytes: int, time_requested_ns: int, time_received_ns: int, mime_type: int = 0
    ) -> int: ...
    def write_to(self, fd: int, tail: Any = None) -> int: ...
    def getvalue(self) -> bytes: ...
    def clear(self) -> None: ...


class WireKernel(Protocol):
    """What ``capsync.wire._wire`` and its twin ``_wire_py`` both provide."""

    def RecordBuffer(self, capacity_bytes: int = 65536) -> RecordBufferApi: ...
    def encode_varint(self, value: int) -> bytes: ...
    def read_varint(self, buf: Any, offset: int = 0) -> tuple[int, int]: ...
    def frame(self, payload: Any) -> bytes: ...
    def scan_frames(
        self, buf: Any, offset: int = 0, max_frames: int = -1
    ) -> tuple[Int64Array, Int64Array, int]: ...
    def scan_upload(self, body: Any) -> tuple[Any, ...]: ...
    def upload_body(self, head: Any, buf: Any, start: int, end: int) -> tuple[bytes, int]: ...


class ClockKernel(Protocol):
    """What ``capsync.wire._clock`` and its twin ``_clock_py`` both provide."""

    def spin_until_ns(self, deadline_ns: int) -> int: ...
    def sleep_until_ns(self, deadline_ns: int) -> int: ...


# mypy checks here that the twins satisfy the protocols (the compiled modules have no
# stubs: tests/test_wire_parity.py holds them to the twins' names and signatures).
_WIRE_TWIN: WireKernel = _wire_py
_CLOCK_TWIN: ClockKernel = _clock_py


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
