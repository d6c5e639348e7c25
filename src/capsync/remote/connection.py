"""One gRPC channel per remote part, shared by every resource captured from it.

Calls never wait for a connection: on a remote that is down they fail at once
(UNAVAILABLE) and the collector counts the error, so a dead remote costs only
its own collectors' ticks. gRPC re-dials in the background about every second
(the reconnect backoff is capped at ``RECONNECT_MAX_MS``), so capture resumes
within about two seconds of the remote coming back. Every call carries a
deadline.

Authentication follows viam's dial: with credentials configured, the first call
asks ``/proto.rpc.v1.AuthService/Authenticate`` (entity + credentials) for an
access token and sends it as ``authorization: Bearer <token>``. A remote that
does not serve AuthService (viam-sdk's ``viam.rpc.server.Server`` does not) is
called without a token. An UNAUTHENTICATED answer drops the token, so the next
call authenticates again (a restarted remote issues new tokens).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TypeVar

import grpc
from google.protobuf.message import Message

from capsync.proto.goutils.rpc.v1 import auth_pb2

_log = logging.getLogger("capsync.remote")

AUTHENTICATE_PATH = "/proto.rpc.v1.AuthService/Authenticate"
DEFAULT_CALL_TIMEOUT_S = 2.0
RECONNECT_MIN_MS = 500
RECONNECT_MAX_MS = 1000
_M = TypeVar("_M", bound=Message)


class RemoteCallError(RuntimeError):
    """A remote call failed; the message names the remote, the method and the gRPC status."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class RemoteSettings:
    """How to reach one remote part (what makes two remotes share a channel)."""

    address: str
    insecure: bool = False
    ca_file: str | None = None
    auth_entity: str = ""
    auth_type: str = ""
    auth_payload: str = field(default="", repr=False)

    @property
    def target(self) -> str:
        """The gRPC target: the address without a scheme, with a port (443 or 8080 by default)."""
        address = self.address
        for scheme in ("https://", "http://", "grpc://"):
            address = address.removeprefix(scheme)
        address = address.rstrip("/")
        host, sep, port = address.rpartition(":")
        if not sep or not port.isdigit() or (host.startswith("[") is not host.endswith("]")):
            return f"{address}:{8080 if self.insecure else 443}"
        return address


class RemoteConnection:
    """A channel to one remote part plus its access token; thread-safe."""

    def __init__(self, settings: RemoteSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._channel = self._open_channel()
        self._token: str | None = None
        self._auth_unsupported = False

    def _open_channel(self) -> grpc.Channel:
        options = [
            ("grpc.initial_reconnect_backoff_ms", RECONNECT_MIN_MS),
            ("grpc.min_reconnect_backoff_ms", RECONNECT_MIN_MS),
            ("grpc.max_reconnect_backoff_ms", RECONNECT_MAX_MS),
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        ]
        target = self.settings.target
        if self.settings.insecure:
            return grpc.insecure_channel(target, options=options)
        roots = None
        if self.settings.ca_file:
            with open(self.settings.ca_file, "rb") as f:
                roots = f.read()
        return grpc.secure_channel(target, grpc.ssl_channel_credentials(roots), options=options)

    def call(
        self,
        path: str,
        request: Message,
        response_type: type[_M],
        timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
    ) -> _M:
        """Call unary ``path`` (Viam's method path) with a deadline of ``timeout_s``."""
        metadata = self._auth_metadata(timeout_s)
        method = self._channel.unary_unary(
            path,
            request_serializer=_serialize,
            response_deserializer=response_type.FromString,
        )
        try:
            response: _M = method(request, timeout=timeout_s, metadata=metadata)
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            if code == grpc.StatusCode.UNAUTHENTICATED:
                with self._lock:
                    self._token = None
            raise _call_error(self.settings, path, exc) from None
        return response

    def _auth_metadata(self, timeout_s: float) -> tuple[tuple[str, str], ...]:
        settings = self.settings
        if not settings.auth_payload or self._auth_unsupported:
            return ()
        with self._lock:
            token = self._token
        if token is None:
            token = self._authenticate(timeout_s)
            if token is None:
                return ()
        return (("authorization", f"Bearer {token}"),)

    def _authenticate(self, timeout_s: float) -> str | None:
        settings = self.settings
        request = auth_pb2.AuthenticateRequest(
            entity=settings.auth_entity or settings.address,
            credentials=auth_pb2.Credentials(
                type=settings.auth_type, payload=settings.auth_payload
            ),
        )
        method = self._channel.unary_unary(
            AUTHENTICATE_PATH,
            request_serializer=_serialize,
            response_deserializer=auth_pb2.AuthenticateResponse.FromString,
        )
        try:
            response = method(request, timeout=timeout_s)
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            if code == grpc.StatusCode.UNIMPLEMENTED:
                _log.info("%s serves no AuthService: calling it without a token", settings.target)
                self._auth_unsupported = True
                return None
            raise _call_error(settings, AUTHENTICATE_PATH, exc) from None
        with self._lock:
            self._token = response.access_token
        return response.access_token

    def close(self) -> None:
        self._channel.close()


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _call_error(settings: RemoteSettings, path: str, exc: grpc.RpcError) -> RemoteCallError:
    if isinstance(exc, grpc.Call):
        code = exc.code()
        details = exc.details() or ""
        return RemoteCallError(
            f"{settings.target}{path}: {code.name if code else 'error'}: {details}", code
        )
    return RemoteCallError(f"{settings.target}{path}: {exc}")


class _Pool:
    """Connections by settings, counted: the last release closes the channel."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[RemoteSettings, tuple[RemoteConnection, int]] = {}

    def acquire(self, settings: RemoteSettings) -> RemoteConnection:
        with self._lock:
            entry = self._entries.get(settings)
            if entry is None:
                connection = RemoteConnection(settings)
                self._entries[settings] = (connection, 1)
                return connection
            self._entries[settings] = (entry[0], entry[1] + 1)
            return entry[0]

    def release(self, connection: RemoteConnection) -> None:
        with self._lock:
            entry = self._entries.get(connection.settings)
            if entry is None or entry[0] is not connection:
                return
            if entry[1] > 1:
                self._entries[connection.settings] = (entry[0], entry[1] - 1)
                return
            del self._entries[connection.settings]
        connection.close()

    def open_count(self) -> int:
        with self._lock:
            return len(self._entries)


POOL = _Pool()
