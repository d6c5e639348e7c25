"""``capsync serve``: run the ingest server (the receiving end of sync)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Protocol, TextIO

from capsync.cli.errors import UserError, check_folder, parse_flag

if TYPE_CHECKING:
    from capsync.query.retention import RetentionRules
    from capsync.server import IngestServer, Store, TlsConfig

log = logging.getLogger("capsync.server")

HELP = "run the ingest server that receives synced data (DataSyncService over gRPC)"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, metavar="DIR", help="where received data goes")
    parser.add_argument(
        "--listen",
        default="127.0.0.1:8080",
        metavar="HOST:PORT",
        help="address to listen on (default: 127.0.0.1:8080; port 0 picks a free port)",
    )
    parser.add_argument(
        "--api-keys",
        metavar="FILE",
        help='JSON {"keys": [{"id": ..., "key": ...}]}; default DIR/api-keys.json, '
        "created with a new key when missing",
    )
    parser.add_argument("--tls-cert", metavar="PEM", help="certificate chain: serve TLS")
    parser.add_argument("--tls-key", metavar="PEM", help="private key of --tls-cert")
    parser.add_argument(
        "--mongo-uri",
        metavar="URI",
        help="keep tabular records and the upload index in MongoDB (mongodb://...) instead of "
        "the SQLite database in DIR; binary payloads and files stay files under DIR",
    )
    parser.add_argument(
        "--mongo-database",
        default="capsync",
        metavar="NAME",
        help="the MongoDB database for --mongo-uri (default: capsync)",
    )
    parser.add_argument(
        "--retention",
        metavar="FILE",
        help='JSON {"default": {"days": N, "binary_limit_gb": X, "tabular_limit_gb": Y}, '
        '"rules": [{"component_name": ..., "method_name": ..., "days": ...}]}: what the '
        "server keeps of sources whose uploads announce no retention_policy",
    )
    parser.add_argument(
        "--retention-days",
        type=float,
        metavar="DAYS",
        help="default retention: remove data captured more than DAYS ago (overrides the "
        "file's default)",
    )
    parser.add_argument(
        "--retention-interval",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="how often expired data is removed (default: 3600)",
    )
    parser.add_argument(
        "--compact-interval",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how often new readings are compacted into Parquet for SQL (default: 10)",
    )
    parser.add_argument(
        "--blobs",
        choices=("local", "gridfs"),
        default="local",
        help="where binary payloads and files go: files under --data (default), or MongoDB "
        "GridFS (needs --mongo-uri)",
    )
    parser.add_argument(
        "--http",
        metavar="HOST:PORT",
        help="also serve the data page (gallery, annotation, readings) on this address; "
        "log in with an API key (port 0 picks a free port)",
    )
    parser.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (port 0: any free port)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="on SIGTERM/SIGINT, how long calls in flight may take to finish (default: 10)",
    )


class Companion(Protocol):
    """Something that runs beside the ingest server in ``serve`` (such as the data page)."""

    def bind(self) -> None:
        """Take its address before the server starts (raise :class:`OSError` if it cannot)."""

    def start(self) -> str:
        """Start, once the server has started; return a line for the console."""

    def stop(self) -> None: ...


def _page(listen: str) -> Callable[[IngestServer], Companion]:
    """The data page beside the ingest server: same data dir, query layer, keys and TLS."""

    def make(server: IngestServer) -> Companion:
        from capsync.web.server import PageServer

        return PageServer(
            server.data_dir, server.api_keys, lambda: server.query, listen=listen, tls=server.tls
        )

    return make


def check_tls_pair(cert_file: str, key_file: str) -> None:
    """UserError unless the files hold a PEM certificate chain and its private key.

    gRPC would only say "Failed to bind" (and log C-core lines); say what is wrong.
    """
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as exc:
        raise UserError(
            f"--tls-cert {cert_file} and --tls-key {key_file} are not a PEM certificate chain "
            f"and its matching private key ({exc.reason or exc})",
            2,
        ) from None


def run(args: argparse.Namespace) -> int:
    # Imported here so other commands do not pay for grpc.
    from capsync.server import ApiKeysError, TlsConfig, parse_listen

    parse_flag("--listen", parse_listen, args.listen)
    if args.http is not None:
        parse_flag("--http", parse_listen, args.http)
    check_folder("--data", args.data)
    if (args.tls_cert is None) != (args.tls_key is None):
        raise UserError("--tls-cert and --tls-key go together", 2)
    if args.grace < 0:
        raise UserError("--grace must be >= 0", 2)
    if args.metrics is not None:
        from capsync.metrics import parse_address

        parse_flag("--metrics", parse_address, args.metrics)
    if args.mongo_uri is not None:
        from capsync.mongo.client import MissingExtraError, check_uri

        try:
            check_uri(args.mongo_uri)
        except (ValueError, MissingExtraError) as exc:
            raise UserError(f"--mongo-uri: {exc}", 2) from None
        if not args.mongo_database:
            raise UserError("--mongo-database must not be empty", 2)
    retention = _retention(args)
    for flag in ("retention_interval", "compact_interval"):
        if not getattr(args, flag) > 0:
            raise UserError(f"--{flag.replace('_', '-')} must be > 0", 2)
    if args.blobs == "gridfs" and args.mongo_uri is None:
        raise UserError("--blobs gridfs needs --mongo-uri", 2)
    tls = None
    if args.tls_cert is not None:
        try:
            tls = TlsConfig.from_files(args.tls_cert, args.tls_key)
        except OSError as exc:
            flag = "--tls-cert" if exc.filename == args.tls_cert else "--tls-key"
            raise UserError(f"{flag} {exc.filename}: {exc.strerror}", 2) from None
        check_tls_pair(args.tls_cert, args.tls_key)
    try:
        return serve(
            args.data,
            listen=args.listen,
            api_keys_file=args.api_keys,
            tls=tls,
            grace=args.grace,
            mongo_uri=args.mongo_uri,
            mongo_database=args.mongo_database,
            retention=retention,
            compact_interval_s=args.compact_interval,
            retention_interval_s=args.retention_interval,
            blobs=args.blobs,
            companions=[] if args.http is None else [_page(args.http)],
            metrics=args.metrics,
        )
    except ApiKeysError as exc:  # the --api-keys file (or DIR/api-keys.json) is unusable
        raise UserError(str(exc), 2) from None
    except OSError as exc:  # an address that cannot be listened on, a folder not writable
        raise UserError(str(exc), 2) from None


def _retention(args: argparse.Namespace) -> RetentionRules:
    import dataclasses

    from capsync.query.retention import RetentionRules
    from capsync.retention import Retention

    rules = RetentionRules()
    if args.retention is not None:
        rules = parse_flag("--retention", RetentionRules.load, args.retention)
    if args.retention_days is not None:
        if not args.retention_days >= 0:
            raise UserError("--retention-days must be >= 0", 2)
        base = rules.default or Retention()
        days = args.retention_days or None
        rules = dataclasses.replace(rules, default=dataclasses.replace(base, days=days))
    return rules


def serve(
    data_dir: str,
    *,
    listen: str,
    api_keys_file: str | None,
    tls: TlsConfig | None,
    grace: float,
    mongo_uri: str | None,
    mongo_database: str,
    blobs: str,
    retention: RetentionRules,
    compact_interval_s: float,
    retention_interval_s: float,
    companions: Sequence[Callable[[IngestServer], Companion]],
    metrics: str | None,
    out: TextIO | None = None,
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
    from capsync.server import ApiKeys, IngestServer
    from capsync.server.auth import (
        KEYS_FILE_NAME,
        generate_api_key,
        load_api_keys,
        write_api_keys_file,
    )

    out = out or sys.stdout
    data_path = Path(data_dir)
    data_path.mkdir(mode=0o700, parents=True, exist_ok=True)
    new_key = None  # written to keys_path only once the port is bound
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
    if blobs == "gridfs" and mongo_uri is not None:
        from capsync.mongo.client import require_pymongo

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
                raise UserError(f"{keys_path} appeared while the server started; start again")
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
    from capsync.mongo.client import require_pymongo
    from capsync.server import StoreUnavailable

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
