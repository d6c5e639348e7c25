"""A real MongoDB wire-protocol server for the tests, started on loopback by the tests.

``MONGO_URI`` in the environment points the tests at a server you run
yourself. Without it, the tests install SecantusDB (``secantusdb==0.7.0b3``: a
MongoDB-compatible server on WiredTiger; GPL-2.0, a test tool only, never
imported or shipped) into its own virtualenv, ``<repo>/.venv-secantus`` (kept
between runs; ``CAPSYNC_SECANTUS_VENV`` moves it), and start it as a
subprocess. The tests speak only standard MongoDB to it.

If that install fails the tests are skipped with the reason, except in CI
(``CI`` set) where they fail: CI must run them.

Tests that stop and restart MongoDB always get a server of their own
(SecantusDB, even with ``MONGO_URI`` set): :class:`MongoServer`, via the
``mongo_server_factory`` fixture.

The fixtures ``mongo_uri``, ``mongo_db`` and ``mongo_server_factory`` are registered
for every test module by tests/conftest.py (``pytest_plugins``): ask for them by name.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymongo
import pytest

REPO = Path(__file__).resolve().parents[1]
SECANTUS_REQUIREMENT = "secantusdb==0.7.0b3"
SECANTUS_VENV = Path(os.environ.get("CAPSYNC_SECANTUS_VENV", REPO / ".venv-secantus"))
INSTALL_TIMEOUT_S = 900.0
START_TIMEOUT_S = 30.0
_STAMP = ".capsync-installed"


class MongoUnavailable(RuntimeError):
    """No MongoDB server can be provided here (the message says why)."""


def unavailable(message: str) -> None:
    """Skip the test, or fail it in CI: CI must never skip the MongoDB tests."""
    if os.environ.get("CI"):
        pytest.fail(f"MongoDB tests cannot run (CI requires them): {message}")
    pytest.skip(message)


# --- SecantusDB in its own virtualenv ----------------------------------------------------


def secantus_executable(venv: Path = SECANTUS_VENV) -> Path:
    """``secantusd-py`` in ``venv``, installed there first when missing."""
    failed = _install_failures.get(venv)
    if failed is not None:  # do not retry a slow failing install for every test
        raise MongoUnavailable(failed)
    try:
        return _install_secantus(venv)
    except OSError as exc:
        _install_failures[venv] = f"cannot install {SECANTUS_REQUIREMENT} in {venv}: {exc}"
    except MongoUnavailable as exc:
        _install_failures[venv] = str(exc)
    raise MongoUnavailable(_install_failures[venv])


_install_failures: dict[Path, str] = {}


def _install_secantus(venv: Path) -> Path:
    executable = venv / "bin" / "secantusd-py"
    stamp = venv / _STAMP
    if executable.exists() and _read(stamp) == SECANTUS_REQUIREMENT:
        return executable
    venv.mkdir(parents=True, exist_ok=True)
    with open(venv / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another pytest may be installing right now
        if executable.exists() and _read(stamp) == SECANTUS_REQUIREMENT:
            return executable
        stamp.unlink(missing_ok=True)
        python = venv / "bin" / "python"
        _run([sys.executable, "-m", "venv", str(venv)], "create the SecantusDB virtualenv")
        _run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             SECANTUS_REQUIREMENT],
            f"pip install {SECANTUS_REQUIREMENT}",
        )  # fmt: skip
        if not executable.exists():
            raise MongoUnavailable(f"{SECANTUS_REQUIREMENT} installed no {executable.name}")
        stamp.write_text(SECANTUS_REQUIREMENT)
    return executable


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _run(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MongoUnavailable(f"cannot {what}: {exc}") from None
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()[-2000:]
        raise MongoUnavailable(f"cannot {what} (exit {done.returncode}): {output}")


# --- one server process --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ping(uri: str, timeout_s: float = 0.25) -> bool:
    """True when a MongoDB server answers at ``uri``."""
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        uri,
        serverSelectionTimeoutMS=int(timeout_s * 1000),
        connectTimeoutMS=int(timeout_s * 1000),
        directConnection=True,
    )
    try:
        client.admin.command("ping")
    except pymongo.errors.PyMongoError:
        return False
    finally:
        client.close()
    return True


@dataclass
class MongoServer:
    """SecantusDB on ``127.0.0.1:port`` keeping its data in ``storage``.

    :meth:`start`, :meth:`stop` (SIGTERM), :meth:`kill` (SIGKILL) and
    :meth:`restart` keep the port and the storage, so clients reconnect to the
    same server with the same data.
    """

    executable: Path
    storage: Path
    log_path: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        if not self.port:
            self.port = free_port()

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout_s: float = START_TIMEOUT_S) -> MongoServer:
        """Start the server; return once it answers ``ping``."""
        if self.running:
            return self
        self.storage.mkdir(parents=True, exist_ok=True)
        command = [
            str(self.executable), "--host", "127.0.0.1", "--port", str(self.port),
            "--storage-path", str(self.storage), "--log-level", "WARNING",
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stopped as one
                cwd=self.storage.parent,
            )
        deadline = time.monotonic() + timeout_s
        while not ping(self.uri):
            if self.proc.poll() is not None:
                raise MongoUnavailable(
                    f"secantusd-py exited ({self.proc.returncode}): {self._log_tail()}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise MongoUnavailable(
                    f"secantusd-py did not answer within {timeout_s:.0f} s: {self._log_tail()}"
                )
            time.sleep(0.05)  # the poll interval of this wait for the server
        return self

    def _signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit within ``timeout_s``."""
        if self.proc is None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: the server dies at once, as in a crash."""
        if self.proc is None:
            return
        self._signal(signal.SIGKILL)
        self.proc.wait(15.0)
        self.proc = None

    def restart(self) -> MongoServer:
        self.stop()
        return self.start()

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"


def new_server(base: Path) -> MongoServer:
    """A :class:`MongoServer` (not started) with its storage and log under ``base``."""
    base.mkdir(parents=True, exist_ok=True)
    return MongoServer(secantus_executable(), base / "storage", base / "secantusd.log")


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session", name="mongo_uri")
def mongo_uri_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URI of the MongoDB server the tests share: ``MONGO_URI``, or SecantusDB started
    for this session."""
    external = os.environ.get("MONGO_URI")
    if external:
        if not ping(external, timeout_s=5.0):
            unavailable(f"MONGO_URI={external} does not answer ping")
        yield external
        return
    server: MongoServer | None = None
    try:
        server = new_server(tmp_path_factory.mktemp("mongo")).start()
    except MongoUnavailable as exc:
        unavailable(str(exc))
    assert server is not None
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture(name="mongo_db")
def mongo_db_fixture(mongo_uri: str) -> Iterator[str]:
    """A database name no other test uses, dropped afterwards."""
    name = f"capsync_test_{uuid.uuid4().hex[:12]}"
    yield name
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        mongo_uri, serverSelectionTimeoutMS=5000
    )
    try:
        client.drop_database(name)
    finally:
        client.close()


@pytest.fixture(name="mongo_server_factory")
def mongo_server_factory_fixture(tmp_path: Path) -> Iterator[Callable[[], MongoServer]]:
    """Makes servers of the test's own (not started), each on its own port; all are
    killed at the end of the test (their data is thrown away)."""
    servers: list[MongoServer] = []

    def make() -> MongoServer:
        try:
            server = new_server(tmp_path / f"mongo-{len(servers)}")
        except MongoUnavailable as exc:
            unavailable(str(exc))
            raise
        servers.append(server)
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.kill()


def client_for(uri: str) -> pymongo.MongoClient[dict[str, Any]]:
    """A client for checking what a test wrote (dates come back timezone-aware)."""
    return pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000, tz_aware=True)
