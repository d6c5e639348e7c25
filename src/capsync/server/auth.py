"""API keys: the keys file, and the interceptor that lets only holders of a key in.

Clients send two gRPC metadata entries, ``key_id`` and ``key`` (Viam's
convention). The keys file is JSON::

    {"keys": [{"id": "<key id>", "key": "<secret>"}]}

A call is let in when some entry matches both; every entry is compared, each
with :func:`hmac.compare_digest`, so the time taken says nothing about which
part matched. The gRPC health service is open to all (load balancers and
probes hold no key).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

KEY_ID_HEADER = "key_id"
KEY_HEADER = "key"
KEYS_FILE_NAME = "api-keys.json"
OPEN_SERVICE_PREFIXES = ("/grpc.health.v1.Health/",)

log = logging.getLogger(__name__)


class ApiKeysError(ValueError):
    """A keys file that cannot be read or has the wrong shape."""


@dataclass(frozen=True)
class ApiKey:
    id: str
    key: str

    def __repr__(self) -> str:  # never print the secret
        return f"ApiKey(id={self.id!r}, key=***)"


class ApiKeys:
    """A fixed set of keys; :meth:`check` is constant-time in the presented values."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self._keys = tuple((k.id.encode(), k.key.encode()) for k in keys)
        if not self._keys:
            raise ApiKeysError("no API keys: every call would be refused")

    def __len__(self) -> int:
        return len(self._keys)

    def check(self, key_id: str | bytes, key: str | bytes) -> bool:
        id_bytes = key_id.encode() if isinstance(key_id, str) else key_id
        key_bytes = key.encode() if isinstance(key, str) else key
        found = False
        for known_id, known_key in self._keys:
            id_ok = hmac.compare_digest(known_id, id_bytes)
            key_ok = hmac.compare_digest(known_key, key_bytes)
            found |= id_ok & key_ok
        return found


def parse_api_keys(document: Any, source: str = "API keys") -> ApiKeys:
    """Keys from the parsed JSON document of a keys file."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ApiKeysError(f'{source}: expected {{"keys": [{{"id": ..., "key": ...}}]}}')
    keys: list[ApiKey] = []
    for index, entry in enumerate(document["keys"]):
        if not isinstance(entry, dict):
            raise ApiKeysError(f"{source}: keys[{index}] must be an object")
        key_id, key = entry.get("id"), entry.get("key")
        if not isinstance(key_id, str) or not key_id:
            raise ApiKeysError(f"{source}: keys[{index}].id must be a non-empty string")
        if not isinstance(key, str) or not key:
            raise ApiKeysError(f"{source}: keys[{index}].key must be a non-empty string")
        keys.append(ApiKey(key_id, key))
    if not keys:
        raise ApiKeysError(f"{source}: the keys list is empty")
    return ApiKeys(keys)


def load_api_keys(path: str | os.PathLike[str]) -> ApiKeys:
    """Read a keys file; warn when others may read it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except OSError as exc:
        raise ApiKeysError(f"cannot read API keys file {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("API keys file %s is readable by others (mode %o)", path, mode & 0o777)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiKeysError(f"API keys file {path} is not JSON: {exc}") from None
    return parse_api_keys(document, str(path))


def fingerprint(value: str | bytes) -> str:
    """A short, one-way stand-in for a credential in a log line."""
    data = value.encode() if isinstance(value, str) else value
    return "sha256:" + hashlib.sha256(data).hexdigest()[:8]


def generate_api_key() -> ApiKey:
    return ApiKey(str(uuid.uuid4()), secrets.token_urlsafe(32))


def ensure_api_keys_file(data_dir: str | os.PathLike[str]) -> tuple[Path, ApiKeys, bool]:
    """``<data_dir>/api-keys.json``, created (mode 0600) with a new key when missing.

    Returns the path, its keys, and whether it was created now.
    """
    path = Path(data_dir) / KEYS_FILE_NAME
    key = generate_api_key()
    if write_api_keys_file(path, key):
        return path, ApiKeys([key]), True
    return path, load_api_keys(path), False


def write_api_keys_file(path: Path, key: ApiKey) -> bool:
    """Create ``path`` (mode 0600) holding ``key``; False when it exists already."""
    document = {"keys": [{"id": key.id, "key": key.key}]}
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(document, out, indent=2)
        out.write("\n")
    return True


def _metadata_value(metadata: Sequence[tuple[str, str | bytes]] | None, name: str) -> str | bytes:
    for key, value in metadata or ():
        if key == name:
            return value
    return ""


def _refusal(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    def refuse(request_or_iterator: object, context: grpc.ServicerContext) -> None:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    make: Callable[..., grpc.RpcMethodHandler]
    if handler.request_streaming and handler.response_streaming:
        make = grpc.stream_stream_rpc_method_handler
    elif handler.request_streaming:
        make = grpc.stream_unary_rpc_method_handler
    elif handler.response_streaming:
        make = grpc.unary_stream_rpc_method_handler
    else:
        make = grpc.unary_unary_rpc_method_handler
    return make(refuse, **kwargs)


class ApiKeyInterceptor(grpc.ServerInterceptor):
    """Refuses (``UNAUTHENTICATED``) every call without a valid ``key_id``/``key`` pair."""

    def __init__(self, keys: ApiKeys) -> None:
        self._keys = keys

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        method = handler_call_details.method or ""
        if handler is None or method.startswith(OPEN_SERVICE_PREFIXES):
            return handler
        metadata = handler_call_details.invocation_metadata
        key_id = _metadata_value(metadata, KEY_ID_HEADER)
        key = _metadata_value(metadata, KEY_HEADER)
        if not key_id or not key:
            return _refusal(handler, "missing API key: send key_id and key metadata")
        if not self._keys.check(key_id, key):
            # What a client presents may be a secret (a swapped key_id and key): log a
            # fingerprint only, enough to tell two clients apart.
            log.info("refused %s: wrong API key (key_id fingerprint %s)", method,
                     fingerprint(key_id))  # fmt: skip
            return _refusal(handler, "invalid API key")
        return handler
