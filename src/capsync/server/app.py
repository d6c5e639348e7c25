"""The gRPC app: the DataSyncService handlers, TLS, health, and :class:`IngestServer`.

``DataCaptureUpload`` is registered with pass-through (de)serializers, so its
body reaches :meth:`DataSyncServicer.data_capture_upload` as the bytes that
arrived and the answer leaves as the bytes it returns. The method paths are
Viam's (``/viam.app.datasync.v1.DataSyncService/...``). All handler
construction is in :func:`add_datasync_service` (on :mod:`capsync.proto.rpc`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import time
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import grpc

from capsync.proto import rpc
from capsync.server.auth import ApiKeyInterceptor, ApiKeys
from capsync.server.blobs import BlobStore, remove_partial_uploads
from capsync.server.counters import ServerCounters, ServerStats
from capsync.server.health import SERVING, HealthServicer, health_service
from capsync.server.stores.base import Store
from capsync.server.stores.local import LocalStore
from capsync.server.sync_servicer import DataSyncServicer
from capsync.server.undecodable import UndecodableRequestInterceptor

if TYPE_CHECKING:
    from capsync.query import DataQuery
    from capsync.query.retention import RetentionBook, RetentionRules
    from capsync.server.maintenance import Maintenance

DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_GRACE_S = 10.0
DEFAULT_MAX_WORKERS = 32
# Unary uploads are bounded by the client (batches; binaries over 1 MB are streamed),
# but leave room above gRPC's 4 MiB default.
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_GRPC_GRACE_MARGIN_S = 30.0
DATA_SERVICE_NAME = rpc.DATA_SYNC_SERVICE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TlsConfig:
    """A PEM certificate chain and its private key."""

    cert_chain: bytes
    private_key: bytes

    @classmethod
    def from_files(
        cls, cert_file: str | os.PathLike[str], key_file: str | os.PathLike[str]
    ) -> TlsConfig:
        return cls(Path(cert_file).read_bytes(), Path(key_file).read_bytes())


#: Methods whose bytes pass through undecoded (the servicer scans the body, or reads
#: the streams' packets, itself).
RAW_METHODS = ("DataCaptureUpload", "StreamingDataCaptureUpload", "FileUpload")


def add_datasync_service(server: grpc.Server, servicer: DataSyncServicer) -> None:
    """Serve ``servicer`` as DataSyncService on Viam's method paths: every method takes
    and answers raw bytes (the streams' packets: 64 KiB chunks)."""
    rpc.add_service(server, rpc.data_sync_service(), servicer, raw=RAW_METHODS)


def bind_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (gRPC only says "Failed to bind"); None if unknown.

    Found by binding a plain socket there the same way (no SO_REUSEPORT).
    """
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"cannot resolve {host!r}: {exc.strerror}"
    for family, kind, proto, _name, sockaddr in infos:
        try:
            with socket.socket(family, kind, proto) as probe:
                probe.bind(sockaddr)
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def parse_listen(address: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) as (host, port); port 0 means any free one."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"listen address must be HOST:PORT, got {address!r}")
    if host.startswith("[") != host.endswith("]"):
        raise ValueError(f"bad IPv6 address in {address!r}")
    return host, int(port_text)


class IngestServer:
    """The DataSyncService on one address, storing into ``data_dir``.

    ``store`` defaults to a :class:`LocalStore` in ``data_dir``, opened by
    :meth:`start` and closed by :meth:`stop`; a store passed in is left open.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        api_keys: ApiKeys,
        *,
        listen: str = DEFAULT_LISTEN,
        tls: TlsConfig | None = None,
        store: Store | None = None,
        blobs: Any = None,
        max_workers: int = DEFAULT_MAX_WORKERS,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        retention: RetentionRules | None = None,
        compact_interval_s: float = 10.0,
        retention_interval_s: float = 3600.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host, self._requested_port = parse_listen(listen)
        self._keys = api_keys
        self._tls = tls
        self._store = store
        self._owns_store = store is None
        self._blobs = blobs  # a BlobStore-like payload store; default: files in data_dir
        self._max_workers = max_workers
        self._max_message_bytes = max_message_bytes
        self._server: grpc.Server | None = None
        self._health: HealthServicer | None = None
        self._servicer: DataSyncServicer | None = None
        self._query: DataQuery | None = None
        self._retention = retention
        self._compact_interval_s = compact_interval_s
        self._retention_interval_s = retention_interval_s
        self._maintenance: Maintenance | None = None
        self._book: RetentionBook | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The bound port (the chosen one when listening on port 0)."""
        if self._port is None:
            raise RuntimeError("the server is not started")
        return self._port

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def api_keys(self) -> ApiKeys:
        return self._keys

    @property
    def tls(self) -> TlsConfig | None:
        return self._tls

    @property
    def store(self) -> Store:
        """The store uploads go to (open from :meth:`start` on)."""
        if self._store is None:
            raise RuntimeError("the server is not started")
        return self._store

    @property
    def query(self) -> DataQuery:
        """The data API's query layer over the store (open from :meth:`start` on)."""
        if self._query is None:
            raise RuntimeError("the server is not started")
        return self._query

    def start(self) -> None:
        """Open the store, bind and start serving; raises :class:`OSError` if it cannot bind."""
        if self._server is not None:
            raise RuntimeError("the server is already started")
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        removed = remove_partial_uploads(self.data_dir)
        if removed:
            log.info("removed %d partial uploads left by an earlier server", removed)
        if self._store is None:
            self._store = LocalStore(self.data_dir)
        from capsync.query.retention import RetentionBook, RetentionRules
        from capsync.server.maintenance import RetentionHeaderInterceptor

        self._book = RetentionBook(self.data_dir)
        server = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=self._max_workers, thread_name_prefix="capsync-ingest"
            ),
            # Raw DataCaptureUpload bodies are checked by the servicer; the streams'
            # messages that do not parse are refused by UndecodableRequestInterceptor.
            interceptors=[
                RetentionHeaderInterceptor(self._book, self._keys),
                ApiKeyInterceptor(self._keys),
                UndecodableRequestInterceptor(),
            ],
            options=[
                ("grpc.max_receive_message_length", self._max_message_bytes),
                ("grpc.so_reuseport", 0),  # a second server on a taken port must fail
            ],
        )
        blobs = self._blobs if self._blobs is not None else BlobStore(self.data_dir)
        self._servicer = servicer = DataSyncServicer(self._store, blobs)
        add_datasync_service(server, self._servicer)
        # Viam's data query API on the same port, behind the same API keys.
        from capsync.server.data_service import data_service_handler
        from capsync.server.data_sources import query_for_store
        from capsync.server.dataset_service import dataset_service_handler
        from capsync.server.maintenance import Maintenance

        self._query = query_for_store(self._store, self.data_dir, self._blobs)
        server.add_generic_rpc_handlers(
            (data_service_handler(self._query), dataset_service_handler(self._query))
        )
        self._maintenance = Maintenance(
            self._query,
            self._book,
            self._retention or RetentionRules(),
            compact_interval_s=self._compact_interval_s,
            retention_interval_s=self._retention_interval_s,
            activity=lambda: servicer.counters.readings_stored,
        )
        self._health = HealthServicer()
        rpc.add_service(server, health_service(), self._health)
        address = f"{self.host}:{self._requested_port}"
        try:
            if self._tls is None:
                port = server.add_insecure_port(address)
            else:
                credentials = grpc.ssl_server_credentials(
                    [(self._tls.private_key, self._tls.cert_chain)]
                )
                port = server.add_secure_port(address, credentials)
        except RuntimeError as exc:  # grpc reports a failed bind this way, without the cause
            self._close_owned_store()
            cause = bind_problem(self.host, self._requested_port) or str(exc)
            raise OSError(f"cannot listen on {address}: {cause}") from None
        if not port:
            self._close_owned_store()
            raise OSError(f"cannot listen on {address}")
        self._port = port
        for service in ("", DATA_SERVICE_NAME):
            self._health.set(service, SERVING)
        server.start()
        self._server = server
        self._maintenance.start()
        log.info("listening on %s:%d (%s)", self.host, port, "TLS" if self._tls else "plaintext")

    def stop(self, grace: float | None = DEFAULT_GRACE_S) -> None:
        """Refuse new calls, let calls in flight finish for up to ``grace`` seconds (None or 0:
        cancel them now), then close the store."""
        server, self._server = self._server, None
        if server is None:
            return
        if self._health is not None:
            self._health.enter_graceful_shutdown()
        # gRPC cancels what still runs at the end of the grace period; do that
        # ourselves, after telling the servicer, so it never keeps a cut stream.
        done = server.stop(max(grace or 0.0, 0.0) + _GRPC_GRACE_MARGIN_S)
        if not done.wait(max(grace or 0.0, 0.0)):
            log.warning("calls still running after %.1f s: cancelling them", grace or 0.0)
            if self._servicer is not None:
                self._servicer.cancelling.set()
            server.stop(0)
            done.wait()
        self._close_owned_store()
        log.info("stopped")

    def _close_owned_store(self) -> None:
        if self._maintenance is not None:
            self._maintenance.stop()
            self._maintenance = None
        if self._book is not None:
            self._book.close()
            self._book = None
        if self._query is not None:
            self._query.close()
            self._query = None
        if self._owns_store and self._store is not None:
            self._store.close()
            self._store = None

    def stats(self) -> ServerStats:
        """Uploads accepted, requests refused, readings stored since start (zeros before)."""
        if self._servicer is None:
            return ServerCounters().snapshot()
        stats = self._servicer.counters.snapshot()
        query = self._query
        if query is None:
            return stats
        # A store indexes an upload before it is acknowledged: nothing acknowledged waits.
        stats = dataclasses.replace(stats, store_lag_s=0.0)
        lag = query.columnar.lag(time.time_ns()) if query.columnar is not None else None
        if lag is not None:
            readings, seconds = lag
            extra = {**stats.extra, "compaction_lag_readings": float(readings)}
            stats = dataclasses.replace(stats, compaction_lag_s=seconds, extra=extra)
        return stats

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server stops (True) or ``timeout`` passes (False)."""
        if self._server is None:
            return True
        return bool(self._server.wait_for_termination(timeout))

    def __enter__(self) -> IngestServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
