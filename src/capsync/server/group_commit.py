"""Group commit: concurrent callers share one expensive durable step (an fsync, a commit).

The first caller becomes the leader: it takes every item queued so far, runs the
step once for all of them, hands each caller its result, and repeats while more
arrived meanwhile. The others just wait for their result. Nobody returns before
the step that covered its item has finished.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Slot(Generic[R]):
    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: R | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[T, R]):
    """Runs ``step(items) -> results`` (one result per item, in order) for waiting callers."""

    def __init__(self, step: Callable[[Sequence[T]], Sequence[R]]) -> None:
        self._step = step
        self._lock = threading.Lock()
        self._pending: list[tuple[T, _Slot[R]]] = []
        self._leading = False

    def submit(self, item: T) -> R:
        """Queue ``item``; return its result once a step covering it has finished."""
        slot: _Slot[R] = _Slot()
        with self._lock:
            self._pending.append((item, slot))
            lead = not self._leading
            self._leading = True
        if lead:
            self._lead()
        slot.done.wait()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def _lead(self) -> None:
        while True:
            with self._lock:
                batch, self._pending = self._pending, []
                if not batch:
                    self._leading = False
                    return
            try:
                results = self._step([item for item, _ in batch])
                for (_, slot), result in zip(batch, results, strict=True):
                    slot.result = result
            except BaseException as exc:  # every caller of this step sees the failure
                for _, slot in batch:
                    slot.error = exc
            for _, slot in batch:
                slot.done.set()
