"""The ingest service: the receiving end of sync (SPEC §4, §7).

A gRPC server implementing ``viam.app.datasync.v1.DataSyncService`` that lets
in only callers holding an API key, stores binary payloads and files as files
under the data dir and tabular readings in an embedded SQLite database (or in
MongoDB: pass ``store=MongoStore(uri)``), de-duplicates re-sent uploads and
serves the standard gRPC health service::

    keys = ApiKeys([ApiKey("my-key-id", "my-secret")])
    with IngestServer("/srv/capsync", keys, listen="127.0.0.1:0") as server:
        print(server.port)
        ...

What arrived is read back with :mod:`capsync.server.query`.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import TextIO

import grpc

from capsync._mongo import require_pymongo
from capsync.proto import rpc
from capsync.server.auth import (
    KEYS_FILE_NAME,
    ApiKey,
    ApiKeyInterceptor,
    ApiKeys,
    ApiKeysError,
    generate_api_key,
    load_api_keys,
    write_api_keys_file,
)
from capsync.server.blobs import BlobStore, remove_partial_uploads
from capsync.server.health import SERVING, HealthServicer, health_service
from capsync.server.query import export, list_items, open_store
from capsync.server.service import DataSyncServicer
from capsync.server.sqlite_store import SqliteStore
from capsync.server.store import (
    DEFAULT_MONGO_DATABASE,
    BlobRecord,
    ItemFilter,
    Store,
    StoreUnavailable,
    TabularRecord,
)
from capsync.server.undecodable import UndecodableRequestInterceptor

__all__ = [
    "DEFAULT_LISTEN",
    "ApiKey",
    "ApiKeys",
    "ApiKeysError",
    "BlobRecord",
    "IngestServer",
    "ItemFilter",
    "SqliteStore",
    "Store",
    "StoreUnavailable",
    "TabularRecord",
    "TlsConfig",
    "export",
    "list_items",
    "open_store",
    "parse_listen",
    "serve",
]

DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_GRACE_S = 10.0
DEFAULT_MAX_WORKERS = 16
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

    ``store`` defaults to a :class:`SqliteStore` in ``data_dir``, opened by
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
        max_workers: int = DEFAULT_MAX_WORKERS,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host, self._requested_port = parse_listen(listen)
        self._keys = api_keys
        self._tls = tls
        self._store = store
        self._owns_store = store is None
        self._max_workers = max_workers
        self._max_message_bytes = max_message_bytes
        self._server: grpc.Server | None = None
        self._health: HealthServicer | None = None
        self._servicer: DataSyncServicer | None = None
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

    def start(self) -> None:
        """Open the store, bind and start serving; raises :class:`OSError` if it cannot bind."""
        if self._server is not None:
            raise RuntimeError("the server is already started")
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        removed = remove_partial_uploads(self.data_dir)
        if removed:
            log.info("removed %d partial uploads left by an earlier server", removed)
        if self._store is None:
            self._store = SqliteStore(self.data_dir)
        server = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=self._max_workers, thread_name_prefix="capsync-ingest"
            ),
            interceptors=[ApiKeyInterceptor(self._keys), UndecodableRequestInterceptor()],
            options=[
                ("grpc.max_receive_message_length", self._max_message_bytes),
                ("grpc.so_reuseport", 0),  # a second server on a taken port must fail
            ],
        )
        self._servicer = DataSyncServicer(self._store, BlobStore(self.data_dir))
        rpc.add_service(server, rpc.data_sync_service(), self._servicer)
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
        if self._owns_store and self._store is not None:
            self._store.close()
            self._store = None

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


def serve(
    data_dir: str | os.PathLike[str],
    *,
    listen: str = DEFAULT_LISTEN,
    api_keys_file: str | os.PathLike[str] | None = None,
    tls: TlsConfig | None = None,
    grace: float = DEFAULT_GRACE_S,
    out: TextIO | None = None,
    mongo_uri: str | None = None,
    mongo_database: str = DEFAULT_MONGO_DATABASE,
) -> int:
    """Run the server until SIGTERM or SIGINT, then stop gracefully; returns 0.

    Prints ``capsync serve: listening on HOST:PORT`` to ``out`` (stdout) once
    bound. Without ``api_keys_file``, keys come from ``<data_dir>/api-keys.json``,
    created with a new key (mode 0600) on first use. With ``mongo_uri``, records
    go to MongoDB database ``mongo_database`` instead of SQLite (a server that is
    down at start is a warning: uploads get UNAVAILABLE until it is up). Must run
    in the main thread (it installs signal handlers).
    """
    out = out or sys.stdout
    data_path = Path(data_dir)
    data_path.mkdir(mode=0o700, parents=True, exist_ok=True)
    new_key: ApiKey | None = None  # written to keys_path only once the port is bound
    keys_path = data_path / KEYS_FILE_NAME
    if api_keys_file is not None:
        keys = load_api_keys(api_keys_file)
    elif keys_path.exists():
        keys = load_api_keys(keys_path)
        print(f"capsync serve: using API keys from {keys_path}", file=sys.stderr, flush=True)
    else:
        new_key = generate_api_key()
        keys = ApiKeys([new_key])
    store: Store | None = None
    if mongo_uri is not None:
        store = _open_mongo(mongo_uri, mongo_database)
    server = IngestServer(data_path, keys, listen=listen, tls=tls, store=store)
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.start()
        if new_key is not None:
            if write_api_keys_file(keys_path, new_key):
                print(f"capsync serve: generated an API key in {keys_path}", file=sys.stderr,
                      flush=True)  # fmt: skip
            else:  # created meanwhile by another process: ours is not on disk, so stop
                raise ApiKeysError(f"{keys_path} appeared while the server started; start again")
        print(f"capsync serve: listening on {server.address}", file=out, flush=True)
        while not stop_requested.wait(0.5):
            pass
        log.info("stopping: finishing calls in flight (up to %.0f s)", grace)
        server.stop(grace)
    finally:
        server.stop(0)
        if store is not None:
            store.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _open_mongo(uri: str, database: str) -> Store:
    require_pymongo()
    from capsync.server.mongo_store import MongoStore

    store = MongoStore(uri, database)
    print(
        f"capsync serve: records go to MongoDB {store.uri_for_logs} database {database}",
        file=sys.stderr,
        flush=True,
    )
    try:
        store.ensure_indexes()
    except StoreUnavailable as exc:
        log.warning("%s; uploads are refused (UNAVAILABLE) until MongoDB is reachable", exc)
    except BaseException:
        store.close()
        raise
    return store
