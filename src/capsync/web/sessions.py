"""Login sessions of the data page: a random token per login, kept in memory.

A session is opened by presenting one of the server's API keys (the same
``key id`` + ``key`` that sync uses) and lives for ``lifetime_s`` or until
logout. The token travels only in a cookie that is ``HttpOnly`` (no script
reads it), ``SameSite=Strict`` (no other site's page can send it) and
``Secure`` when the page is served over TLS. Sessions end with the process.
"""

from __future__ import annotations

import secrets
import threading
import time

from capsync.server.auth import ApiKeys

COOKIE_NAME = "capsync_session"
DEFAULT_LIFETIME_S = 12 * 3600.0
MAX_SESSIONS = 10_000


class Sessions:
    """Open sessions: token -> (key id, expiry on the monotonic clock)."""

    def __init__(self, keys: ApiKeys, *, lifetime_s: float = DEFAULT_LIFETIME_S) -> None:
        self._keys = keys
        self._lifetime_s = lifetime_s
        self._lock = threading.Lock()
        self._open: dict[str, tuple[str, float]] = {}

    def login(self, key_id: str, key: str) -> str | None:
        """A new session token when the key is one of the server's, else None."""
        if not key_id or not key or not self._keys.check(key_id, key):
            return None
        token = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            if len(self._open) >= MAX_SESSIONS:
                self._open = {t: s for t, s in self._open.items() if s[1] > now}
                while len(self._open) >= MAX_SESSIONS:  # still full: drop the oldest
                    del self._open[next(iter(self._open))]
            self._open[token] = (key_id, now + self._lifetime_s)
        return token

    def key_id(self, token: str | None) -> str | None:
        """The key id a live session was opened with, or None."""
        if not token:
            return None
        with self._lock:
            found = self._open.get(token)
            if found is None:
                return None
            if found[1] <= time.monotonic():
                del self._open[token]
                return None
            return found[0]

    def logout(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._open.pop(token, None)

    def cookie(self, token: str, *, secure: bool) -> str:
        """The ``Set-Cookie`` value that carries ``token``."""
        attributes = [
            f"{COOKIE_NAME}={token}",
            "Path=/",
            "HttpOnly",
            "SameSite=Strict",
            f"Max-Age={int(self._lifetime_s)}",
        ]
        if secure:
            attributes.append("Secure")
        return "; ".join(attributes)

    @staticmethod
    def expired_cookie(*, secure: bool) -> str:
        value = f"{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
        return value + ("; Secure" if secure else "")
