"""The ingest service: the receiving end of sync (SPEC §4, §7).

A gRPC server implementing ``viam.app.datasync.v1.DataSyncService`` that lets
in only callers holding an API key, stores binary payloads and files as files
under the data dir and tabular readings in an embedded batch log (:class:`LocalStore`; or in
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
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Protocol, TextIO

from capsync.mongo.client import require_pymongo
from capsync.server.app import (
    DEFAULT_GRACE_S,
    DEFAULT_LISTEN,
    IngestServer,
    TlsConfig,
    parse_listen,
)
from capsync.server.auth import (
    KEYS_FILE_NAME,
    ApiKey,
    ApiKeys,
    ApiKeysError,
    generate_api_key,
    load_api_keys,
    write_api_keys_file,
)
from capsync.server.query import export, list_items, open_store
from capsync.server.stores.base import (
    DEFAULT_MONGO_DATABASE,
    BlobRecord,
    ItemFilter,
    Store,
    StoreUnavailable,
    TabularBatch,
    TabularRecord,
)
from capsync.server.stores.local import LocalStore

SqliteStore = LocalStore  # the name of the embedded store before segments

if TYPE_CHECKING:
    from capsync.query.retention import RetentionRules

__all__ = [
    "DEFAULT_LISTEN",
    "ApiKey",
    "ApiKeys",
    "ApiKeysError",
    "BlobRecord",
    "Companion",
    "IngestServer",
    "ItemFilter",
    "LocalStore",
    "SqliteStore",
    "Store",
    "StoreUnavailable",
    "TabularBatch",
    "TabularRecord",
    "TlsConfig",
    "export",
    "list_items",
    "open_store",
    "parse_listen",
    "serve",
]

log = logging.getLogger(__name__)


class Companion(Protocol):
    """Something that runs beside the ingest server in ``serve`` (such as the data page)."""

    def bind(self) -> None:
        """Take its address before the server starts (raise :class:`OSError` if it cannot)."""

    def start(self) -> str:
        """Start, once the server has started; return a line for the console."""

    def stop(self) -> None: ...


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
    blobs: str = "local",
    retention: RetentionRules | None = None,
    compact_interval_s: float = 10.0,
    retention_interval_s: float = 3600.0,
    companions: Sequence[Callable[[IngestServer], Companion]] = (),
    metrics: str | None = None,
) -> int:
    """Run the server until SIGTERM or SIGINT, then stop gracefully; returns 0.

    Each of ``companions`` is called with the server; the companion it returns
    binds its address before the server starts, is started after it (its line
    printed as ``capsync serve: <line>``) and stopped before it.

    Prints ``capsync serve: listening on HOST:PORT`` to ``out`` (stdout) once
    bound. Without ``api_keys_file``, keys come from ``<data_dir>/api-keys.json``,
    created with a new key (mode 0600) on first use. With ``mongo_uri``, records
    go to MongoDB database ``mongo_database`` instead of the local batch log (a server that is
    down at start is a warning: uploads get UNAVAILABLE until it is up). Must run
    in the main thread (it installs signal handlers). ``blobs="gridfs"`` (with
    ``mongo_uri``) keeps binary payloads and files in MongoDB GridFS instead of ``data_dir``.
    With ``metrics`` (``HOST:PORT``), Prometheus metrics are served at
    ``http://HOST:PORT/metrics``.
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
    payloads = None
    if blobs == "gridfs":
        if mongo_uri is None:
            raise ValueError("--blobs gridfs needs --mongo-uri")
        require_pymongo()
        from capsync.server.gridfs_blobs import GridFsBlobs

        payloads = GridFsBlobs(mongo_uri, mongo_database)
    server = IngestServer(
        data_path, keys, listen=listen, tls=tls, store=store, blobs=payloads,
        retention=retention, compact_interval_s=compact_interval_s,
        retention_interval_s=retention_interval_s,
    )  # fmt: skip
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    running: list[Companion] = []
    endpoint = None
    try:
        for make in companions:
            companion = make(server)
            companion.bind()
            running.append(companion)
        server.start()
        if new_key is not None:
            if write_api_keys_file(keys_path, new_key):
                print(f"capsync serve: generated an API key in {keys_path}", file=sys.stderr,
                      flush=True)  # fmt: skip
            else:  # created meanwhile by another process: ours is not on disk, so stop
                raise ApiKeysError(f"{keys_path} appeared while the server started; start again")
        for companion in running:
            print(f"capsync serve: {companion.start()}", file=out, flush=True)
        print(f"capsync serve: listening on {server.address}", file=out, flush=True)
        if metrics is not None:
            from capsync.metrics import MetricsEndpoint, ServerMetrics

            endpoint = MetricsEndpoint(metrics, ServerMetrics(server.stats))
            print(f"capsync serve: metrics at {endpoint.url}", file=out, flush=True)
        while not stop_requested.wait(0.5):
            pass
        log.info("stopping: finishing calls in flight (up to %.0f s)", grace)
        for companion in reversed(running):
            companion.stop()
        running.clear()
        server.stop(grace)
    finally:
        for companion in reversed(running):
            companion.stop()
        if endpoint is not None:
            endpoint.close()
        server.stop(0)
        if store is not None:
            store.close()
        if payloads is not None:
            payloads.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _open_mongo(uri: str, database: str) -> Store:
    require_pymongo()
    from capsync.server.stores.mongo import MongoStore

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
