"""Run the data page on uvicorn in a thread of the ingest server's process.

::

    page = PageServer(data_dir, keys, query, listen="127.0.0.1:0")
    page.bind()           # takes the address now: OSError if it cannot
    print(page.start())   # "page on http://127.0.0.1:PORT/"
    ...
    page.stop()

The socket is bound by :meth:`PageServer.bind` (or :meth:`~PageServer.start`) in
the caller's thread, so the port is known (port 0 picks a free one) and a bind
error is raised there. ``query`` (the server's :class:`~capsync.query.DataQuery`)
may be a function that returns it, for a server that opens it only when it starts.
Under TLS the page uses the same certificate as gRPC and its session cookie
is marked ``Secure``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import uvicorn

from capsync.query import DataQuery
from capsync.server import TlsConfig, parse_listen
from capsync.server.auth import ApiKeys
from capsync.web.app import create_app
from capsync.web.data_access import DataAccess

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0

log = logging.getLogger(__name__)


def _ssl_context(tls: TlsConfig) -> ssl.SSLContext:
    """A server context from PEM bytes (``ssl`` loads chains only from files)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory(prefix="capsync-tls-") as folder:
        cert, key = Path(folder) / "cert.pem", Path(folder) / "key.pem"
        for path, content in ((cert, tls.cert_chain), (key, tls.private_key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(content)
        context.load_cert_chain(cert, key)
    return context


def _bind(host: str, port: int) -> socket.socket:
    bare = host.strip("[]")
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((bare, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port} for the page: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


class PageServer:
    """The data page of one ingest server (same data dir and query layer)."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        keys: ApiKeys,
        query: DataQuery | Callable[[], DataQuery],
        *,
        listen: str = "127.0.0.1:8081",
        tls: TlsConfig | None = None,
    ) -> None:
        self.host, self._requested_port = parse_listen(listen)
        self._data_dir = data_dir
        self._query = query
        self._data: DataAccess | None = None
        self._socket: socket.socket | None = None
        self._keys = keys
        self._tls = tls
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the page server is not started")
        return self._port

    @property
    def url(self) -> str:
        scheme = "https" if self._tls else "http"
        host = self.host if self.host not in ("0.0.0.0", "[::]") else "127.0.0.1"
        return f"{scheme}://{host}:{self.port}/"

    def bind(self) -> None:
        """Take the address now (port 0: a free one); :class:`OSError` if it cannot."""
        if self._socket is None:
            self._socket = _bind(self.host, self._requested_port)
            self._port = self._socket.getsockname()[1]

    def start(self) -> str:
        """Bind (unless :meth:`bind` did) and serve; returns ``page on URL``."""
        if self._server is not None:
            raise RuntimeError("the page server is already started")
        self.bind()
        sock, self._socket = self._socket, None
        assert sock is not None
        query = self._query if isinstance(self._query, DataQuery) else self._query()
        self._data = DataAccess(query, self._data_dir)
        app = create_app(self._data, self._keys, secure_cookie=self._tls is not None)
        config = uvicorn.Config(
            app,
            log_config=None,  # leave the process's logging alone
            access_log=False,
            lifespan="off",
            server_header=False,
            timeout_graceful_shutdown=5,
        )
        config.load()
        # uvicorn says "Started server process" at INFO; capsync already says where it listens.
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
        if self._tls is not None:
            config.ssl = _ssl_context(self._tls)
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="capsync-page", daemon=True
        )
        self._thread.start()
        for _ in range(int(START_TIMEOUT_S * 100)):
            if server.started or not self._thread.is_alive():
                break
            threading.Event().wait(0.01)
        if not server.started:
            self.stop()
            raise OSError("the page server did not start")
        log.info("page on %s", self.url)
        return f"page on {self.url}"

    def stop(self) -> None:
        server, self._server = self._server, None
        thread, self._thread = self._thread, None
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(STOP_TIMEOUT_S)
            if thread.is_alive():
                log.warning("the page server did not stop within %.0f s", STOP_TIMEOUT_S)
        sock, self._socket = self._socket, None
        if sock is not None:  # bound, never started
            sock.close()
        data, self._data = self._data, None
        if data is not None:
            with contextlib.suppress(Exception):
                data.close()
