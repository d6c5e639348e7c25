"""Where sync uploads to and how: the address, the API key, TLS, and the gRPC channel.

The target comes from the config's ``sync`` section (capsync's own) or else
its ``cloud`` section (viam-server's): ``app_address``, ``id`` (the part id,
sent as the key id) and ``secret``. A ``sync`` section's fields win one by
one, so ``{"sync": {"address": ...}}`` with a ``cloud`` section keeps the
cloud's credentials. TLS is used unless ``sync.insecure`` is true.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc

from capsync.config import MachineConfig
from capsync.config.model import DEFAULT_MAX_BACKOFF_S
from capsync.proto import data_sync_pb2, rpc
from capsync.retention import RETENTION_HEADER, Retention, encode_header
from capsync.sync.errors import SyncConfigError

DEFAULT_TLS_PORT = 443
KEY_ID_HEADER = "key_id"
KEY_HEADER = "key"
DEFAULT_RPC_TIMEOUT_S = 60.0
# Streams get DEFAULT_RPC_TIMEOUT_S plus their size at this rate: a slow link is not an error.
MIN_UPLOAD_RATE_BYTES_PER_S = 256 * 1024
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_SCHEMES = ("https://", "grpcs://", "grpc://", "dns:///")


@dataclass(frozen=True)
class SyncTarget:
    """Everything needed to reach the ingest service."""

    address: str  # host:port, as gRPC takes it
    part_id: str
    key_id: str
    key: str = field(repr=False)
    insecure: bool = False
    ca_file: str | None = None
    max_backoff_s: float = DEFAULT_MAX_BACKOFF_S

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The call metadata carrying the API key."""
        return ((KEY_ID_HEADER, self.key_id), (KEY_HEADER, self.key))


def sync_configured(config: MachineConfig) -> bool:
    """True when the config says where to sync (a ``sync`` or ``cloud`` section)."""
    return config.sync is not None or config.cloud is not None


def normalize_address(address: str, *, insecure: bool) -> str:
    """``https://app.viam.com`` -> ``app.viam.com:443``; ``host:port`` as it is.

    ``http://`` is refused unless ``insecure`` is set: plaintext must be asked for.
    """
    text = address.strip()
    if text.startswith("http://"):
        if not insecure:
            raise SyncConfigError(
                f"sync address {address!r} is http:// (plaintext): "
                'set "insecure": true in the sync section to allow that'
            )
        text = text[len("http://") :]
    for scheme in _SCHEMES:
        if text.startswith(scheme):
            text = text[len(scheme) :]
            break
    text = text.split("/", 1)[0]
    if not text:
        raise SyncConfigError(f"sync address {address!r} has no host")
    if text.startswith("["):  # [v6] or [v6]:port
        _host, bracket, rest = text.partition("]")
        if not bracket or (rest and not (rest.startswith(":") and _is_port(rest[1:]))):
            raise SyncConfigError(f"sync address {address!r} is not [IPv6]:PORT")
        return text if rest else f"{text}:{DEFAULT_TLS_PORT}"
    host, colon, port = text.rpartition(":")
    if not colon:
        return f"{text}:{DEFAULT_TLS_PORT}"
    if not host or not _is_port(port):
        raise SyncConfigError(f"sync address {address!r} is not HOST:PORT")
    return text


def _is_port(text: str) -> bool:
    return text.isdigit() and 0 < int(text) <= 65535


def resolve_target(config: MachineConfig) -> SyncTarget:
    """The target from the config's ``sync`` and ``cloud`` sections, or :class:`SyncConfigError`."""
    sync = config.sync
    cloud = config.cloud
    if sync is None and cloud is None:
        raise SyncConfigError("no sync target: the config has neither a sync nor a cloud section")
    insecure = bool(sync and sync.insecure)
    raw_address = (sync.address if sync else None) or (cloud.app_address if cloud else None)
    if not raw_address:
        raise SyncConfigError("sync.address is required (or a cloud section with app_address)")
    address = normalize_address(raw_address, insecure=insecure)
    part_id = (sync.part_id if sync else None) or (cloud.id if cloud else None)
    if not part_id:
        raise SyncConfigError("sync.part_id is required (or a cloud section with id)")
    if sync is not None and sync.api_key_id and sync.api_key:
        key_id, key = sync.api_key_id, sync.api_key
    elif cloud is not None and cloud.secret:
        key_id, key = cloud.id, cloud.secret  # viam's legacy part secret
    else:
        raise SyncConfigError(
            "no API key: set sync.api_key_id and sync.api_key (or cloud.id and cloud.secret)"
        )
    return SyncTarget(
        address=address,
        part_id=part_id,
        key_id=key_id,
        key=key,
        insecure=insecure,
        ca_file=sync.ca_file if sync else None,
        max_backoff_s=sync.max_backoff_s if sync else DEFAULT_MAX_BACKOFF_S,
    )


def channel_credentials(target: SyncTarget) -> grpc.ChannelCredentials:
    """TLS credentials: the system roots, or the CA certificates of ``ca_file``."""
    root: bytes | None = None
    if target.ca_file:
        try:
            with open(os.path.expanduser(target.ca_file), "rb") as handle:
                root = handle.read()
        except OSError as exc:
            raise SyncConfigError(
                f"sync.ca_file {target.ca_file!r} cannot be read: {exc.strerror or exc}"
            ) from None
    return grpc.ssl_channel_credentials(root_certificates=root)


def open_channel(target: SyncTarget) -> grpc.Channel:
    """A channel to ``target``: TLS unless it is explicitly insecure.

    Reconnection backs off from 200 ms up to the target's ``max_backoff_s``, so a
    server that comes back is found again soon, and one that stays away is not
    hammered (calls in between fail fast with UNAVAILABLE).
    """
    max_backoff_ms = max(200, int(target.max_backoff_s * 1000))
    options: list[tuple[str, Any]] = [
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.min_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", max_backoff_ms),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ]
    if target.insecure:
        return grpc.insecure_channel(target.address, options=options)
    return grpc.secure_channel(target.address, channel_credentials(target), options=options)


#: Methods whose requests and answers the client passes as bytes (built from file bytes).
RAW_METHODS = ("DataCaptureUpload", "StreamingDataCaptureUpload", "FileUpload")


class CallsStopped(Exception):
    """The client was told to start no new calls (a graceful stop is under way)."""


class UploadClient:
    """The three upload calls of DataSyncService, with the API key and a deadline on each.

    ``DataCaptureUpload`` goes out as raw bytes (a body built from capture-file
    frames is sent as it is; a message is serialized once), and its deadline
    grows with the body's size. After :meth:`refuse_new_calls` a call that has
    not started raises :class:`CallsStopped`; calls already in flight go on to
    their answer.
    """

    def __init__(
        self,
        channel: grpc.Channel,
        target: SyncTarget,
        *,
        rpc_timeout_s: float = DEFAULT_RPC_TIMEOUT_S,
        retention: Mapping[tuple[str, str, str], Retention] | None = None,
    ) -> None:
        self.part_id = target.part_id
        self._stub = rpc.data_sync_stub(channel, raw=RAW_METHODS)
        self._metadata: tuple[tuple[str, str | bytes], ...] = target.metadata
        self._rpc_timeout_s = rpc_timeout_s
        self._retention = dict(retention or {})
        self._refusing = threading.Event()

    def _call_metadata(self, upload_metadata: Any) -> tuple[tuple[str, str | bytes], ...]:
        """The API key, plus the retention header when the upload's source has a policy
        (capsync's server applies it; a Viam server ignores the header)."""
        if not self._retention or upload_metadata is None:
            return self._metadata
        key = (upload_metadata.component_type, upload_metadata.component_name,
               upload_metadata.method_name)  # fmt: skip
        policy = self._retention.get(key)
        if policy is None:
            return self._metadata
        header = encode_header((upload_metadata.part_id, *key), policy)
        return (*self._metadata, (RETENTION_HEADER, header))

    def refuse_new_calls(self) -> None:
        self._refusing.set()

    def _check(self) -> None:
        if self._refusing.is_set():
            raise CallsStopped("sync is stopping: no new upload starts")

    def timeout_s(self, nbytes: int) -> float:
        return self._rpc_timeout_s + nbytes / MIN_UPLOAD_RATE_BYTES_PER_S

    def data_capture_upload(self, request: Any) -> Any:
        """Send one request (raw body bytes or a message); return the response message."""
        return self.data_capture_upload_future(request).result()

    def data_capture_upload_future(self, request: Any) -> _UploadFuture:
        """Start one upload; ``.result()`` waits for the response message (or raises)."""
        self._check()
        body = request if isinstance(request, bytes | bytearray) else request.SerializeToString()
        upload_metadata = _leading_metadata(body) if self._retention else None
        future = self._stub.DataCaptureUpload.future(
            body, metadata=self._call_metadata(upload_metadata), timeout=self.timeout_s(len(body))
        )
        return _UploadFuture(future)

    def streaming_data_capture_upload(
        self, packets: Iterator[Any], nbytes: int, upload_metadata: Any = None
    ) -> Any:
        """Send a stream of packets (pre-framed bytes, or messages); return the response.

        ``upload_metadata`` is the stream's ``UploadMetadata`` (for the retention
        header) when the packets are bytes; from message packets it is read off
        the first one."""
        self._check()
        metadata = self._metadata
        if self._retention:
            first = next(packets, None)
            if first is not None:
                if (
                    upload_metadata is None
                    and not isinstance(first, bytes | bytearray)
                    and first.WhichOneof("upload_packet") == "metadata"
                ):
                    upload_metadata = first.metadata.upload_metadata
                metadata = self._call_metadata(upload_metadata)
                packets = itertools.chain([first], packets)
        answer = self._stub.StreamingDataCaptureUpload(
            _raw_packets(packets), metadata=metadata, timeout=self.timeout_s(nbytes)
        )
        return data_sync_pb2.StreamingDataCaptureUploadResponse.FromString(answer)

    def file_upload(self, packets: Iterator[Any], nbytes: int) -> Any:
        """Send a stream of packets (pre-framed bytes, or messages); return the response."""
        self._check()
        answer = self._stub.FileUpload(
            _raw_packets(packets), metadata=self._metadata, timeout=self.timeout_s(nbytes)
        )
        return data_sync_pb2.FileUploadResponse.FromString(answer)


def _raw_packets(packets: Iterator[Any]) -> Iterator[bytes]:
    """Each packet as bytes: pre-framed ones as they are, a message serialized once."""
    for packet in packets:
        yield packet if isinstance(packet, bytes) else packet.SerializeToString()


class _UploadFuture:
    """A DataCaptureUpload in flight; :meth:`result` parses the answer."""

    def __init__(self, future: Any) -> None:
        self._future = future

    def result(self) -> Any:
        return data_sync_pb2.DataCaptureUploadResponse.FromString(self._future.result())

    def cancel(self) -> None:
        self._future.cancel()


def _leading_metadata(body: bytes | bytearray) -> Any:
    """The ``UploadMetadata`` of a DataCaptureUpload body when it comes first (as capsync
    writes bodies), else None; only that field is parsed, never the readings."""
    if not body or body[0] != 0x0A:
        return None
    length, shift, at = 0, 0, 1
    while at < len(body):
        byte = body[at]
        at += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    else:
        return None
    try:
        return data_sync_pb2.UploadMetadata.FromString(bytes(body[at : at + length]))
    except Exception:  # a body the server will refuse anyway: send no header
        return None
