"""What sync does about each failure: retry, wait for the server, keep the file, or move it aside.

==================== ============================================================
kind                 what the syncer does
==================== ============================================================
``TRANSIENT``        retry the file with exponential backoff (200 ms, doubling, capped)
``UNREACHABLE``      the server is down: every worker waits (1 s, doubling, capped)
``REJECTED``         the key is refused: keep every file, wait, try again later
``PERMANENT``        the file itself is refused: move it to ``<capture_dir>/failed/``
==================== ============================================================
"""

from __future__ import annotations

import enum
import threading
import time

import grpc

from capsync._retry import Backoff

FIRST_BACKOFF_S = 0.2
FIRST_UNREACHABLE_BACKOFF_S = 1.0
BACKOFF_JITTER = 0.1  # +-10 %, so that workers that failed together do not retry together


class SyncConfigError(ValueError):
    """Sync cannot run as configured; the message names the missing or bad key."""


class ErrorKind(enum.Enum):
    TRANSIENT = "transient"
    UNREACHABLE = "unreachable"
    REJECTED = "rejected"
    PERMANENT = "permanent"


_KINDS = {
    grpc.StatusCode.UNAVAILABLE: ErrorKind.UNREACHABLE,
    grpc.StatusCode.UNAUTHENTICATED: ErrorKind.REJECTED,
    grpc.StatusCode.PERMISSION_DENIED: ErrorKind.REJECTED,
    # A server without DataSyncService: the address is wrong, not the file.
    grpc.StatusCode.UNIMPLEMENTED: ErrorKind.REJECTED,
    grpc.StatusCode.INVALID_ARGUMENT: ErrorKind.PERMANENT,
}


def classify(code: grpc.StatusCode | None) -> ErrorKind:
    """The kind of a gRPC status code; anything not listed is worth retrying."""
    if code is None:
        return ErrorKind.TRANSIENT
    return _KINDS.get(code, ErrorKind.TRANSIENT)


def describe_rpc_error(error: grpc.RpcError) -> str:
    """``UNAVAILABLE: failed to connect ...``: the status code and the server's message."""
    code = error.code() if hasattr(error, "code") else None
    details = error.details() if hasattr(error, "details") else None
    name = code.name if code is not None else "UNKNOWN"
    if details and "WRONG_VERSION_NUMBER" in details:  # a TLS handshake answered in plaintext
        return (
            f"{name}: the server answered in plaintext, not TLS; if that is intended, set "
            '"insecure": true in the sync section'
        )
    return f"{name}: {details}" if details else name


class Gate:
    """A pause every worker honours: the server is unreachable or refuses the key.

    The first worker to see the failure closes the gate for the next delay of
    that failure's backoff; workers that see the same failure while it is
    closed leave it as it is, so N workers cost one backoff step, not N. A
    success opens it and resets the backoffs.
    """

    def __init__(self, max_backoff_s: float) -> None:
        self._lock = threading.Lock()
        self._until = 0.0  # time.monotonic() when calls may go again
        self.reason = ""  # why it was last shut
        self._backoffs = {
            ErrorKind.UNREACHABLE: Backoff(
                FIRST_UNREACHABLE_BACKOFF_S, max_backoff_s, jitter=BACKOFF_JITTER
            ),
            ErrorKind.REJECTED: Backoff(
                FIRST_UNREACHABLE_BACKOFF_S, max_backoff_s, jitter=BACKOFF_JITTER
            ),
        }

    def remaining_s(self) -> float:
        with self._lock:
            return max(0.0, self._until - time.monotonic())

    def close_for(self, kind: ErrorKind, reason: str) -> float:
        """Close the gate after a ``kind`` failure (if it is open); the seconds it stays shut."""
        with self._lock:
            now = time.monotonic()
            if self._until <= now:
                self._until = now + self._backoffs[kind].next()
                self.reason = reason
            return self._until - now

    def open(self) -> None:
        with self._lock:
            self._until = 0.0
            for backoff in self._backoffs.values():
                backoff.reset()
