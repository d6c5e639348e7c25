"""What the ingest server has done since it started, for ``stats()`` and its metrics.

The servicer counts per request (never per reading inside a loop). The two lag
gauges are for the store to fill: how far behind the newest upload the store's
queryable data is, and how far its compaction is behind; they stay ``None``
(and are exported as absent) until a store sets them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ServerStats:
    uploads: dict[str, int]  # accepted requests per RPC name
    rejected: dict[tuple[str, str], int]  # refused requests per (RPC name, gRPC status code)
    readings_stored: int  # tabular readings and binary payloads written to the store
    bytes_received: int  # payload bytes stored (binary and files)
    store_lag_s: float | None = None  # newest upload not yet queryable, seconds (store fills)
    compaction_lag_s: float | None = None  # oldest data not yet compacted, seconds (store fills)
    extra: dict[str, float] = field(default_factory=dict)


class ServerCounters:
    """Thread-safe counters the servicer updates once per request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._uploads: dict[str, int] = {}
        self._rejected: dict[tuple[str, str], int] = {}
        self._readings = 0
        self._bytes = 0
        self.store_lag_s: float | None = None
        self.compaction_lag_s: float | None = None

    def accepted(self, rpc: str) -> None:
        with self._lock:
            self._uploads[rpc] = self._uploads.get(rpc, 0) + 1

    def refused(self, rpc: str, code: str) -> None:
        with self._lock:
            self._rejected[rpc, code] = self._rejected.get((rpc, code), 0) + 1

    def stored(self, readings: int, payload_bytes: int = 0) -> None:
        with self._lock:
            self._readings += readings
            self._bytes += payload_bytes

    @property
    def readings_stored(self) -> int:
        """Tabular readings and binary payloads stored so far (grows with every upload)."""
        with self._lock:
            return self._readings

    def snapshot(self) -> ServerStats:
        with self._lock:
            return ServerStats(
                uploads=dict(self._uploads),
                rejected=dict(self._rejected),
                readings_stored=self._readings,
                bytes_received=self._bytes,
                store_lag_s=self.store_lag_s,
                compaction_lag_s=self.compaction_lag_s,
            )
