"""``capsync run --listen``: the data manager's own API on the robot.

Serves ``viam.service.datamanager.v1.DataManagerService`` (Viam's method paths):

* ``Sync`` completes the open files, runs one sync pass and answers when it is done
  (UNAVAILABLE, with the reason, when files could not be uploaded);
* ``UploadBinaryDataToDatasets`` uploads the bytes straight into the given datasets
  (as rdk does: an arbitrary-file upload with the tags and dataset ids);
* ``GetStatus`` answers collector and sync figures; ``DoCommand`` takes
  ``{"command": "sync"}`` and ``{"command": "status"}``.

Every call needs an API key from the keys file (``{"keys": [{"id", "key"}]}``):
either as ``key_id``/``key`` metadata, or the way viam's dial authenticates:
``/proto.rpc.v1.AuthService/Authenticate`` with entity = key id and credentials
``{type: "api-key", payload: key}`` returns an access token, sent after that as
``authorization: Bearer <token>``.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from concurrent import futures
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import json_format

from capsync.proto.goutils.rpc.v1 import auth_pb2
from capsync.proto.viam.common.v1 import common_pb2
from capsync.proto.viam.service.datamanager.v1 import data_manager_pb2 as dm_pb2

if TYPE_CHECKING:
    from capsync.server.auth import ApiKeys
    from capsync.service.manager import DataManager

_log = logging.getLogger("capsync.api")

SERVICE = "viam.service.datamanager.v1.DataManagerService"
AUTH_SERVICE = "proto.rpc.v1.AuthService"
API_KEY_CREDENTIALS = "api-key"
DEFAULT_SYNC_RETRY_S = 60.0
_MIME_NAMES = {1: "image/jpeg", 2: "image/png", 3: "pointcloud/pcd", 4: "video/mp4"}


class _Tokens:
    """Access tokens handed out by Authenticate (in memory: a restart asks for new ones)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: set[str] = set()

    def issue(self) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens.add(token)
        return token

    def valid(self, token: str) -> bool:
        with self._lock:
            return token in self._tokens


class _AuthInterceptor(grpc.ServerInterceptor):
    def __init__(self, keys: ApiKeys, tokens: _Tokens) -> None:
        self._keys = keys
        self._tokens = tokens

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        if handler is None or (details.method or "").startswith(f"/{AUTH_SERVICE}/"):
            return handler
        metadata = {k: v for k, v in details.invocation_metadata or () if isinstance(v, str)}
        bearer = metadata.get("authorization", "")
        if bearer.startswith("Bearer ") and self._tokens.valid(bearer[len("Bearer ") :]):
            return handler
        key_id, key = metadata.get("key_id", ""), metadata.get("key", "")
        if key_id and key and self._keys.check(key_id, key):
            return handler
        return _refuse(handler)


def _refuse(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    def refuse(request: Any, context: grpc.ServicerContext) -> None:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "an API key or access token is required")

    return grpc.unary_unary_rpc_method_handler(
        refuse,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class DataManagerApi:
    """The handlers; each runs on a gRPC worker thread."""

    def __init__(self, manager: DataManager, keys: ApiKeys, tokens: _Tokens) -> None:
        self.manager = manager
        self.keys = keys
        self.tokens = tokens

    def authenticate(
        self, request: auth_pb2.AuthenticateRequest, context: grpc.ServicerContext
    ) -> auth_pb2.AuthenticateResponse:
        credentials = request.credentials
        if credentials.type != API_KEY_CREDENTIALS or not self.keys.check(
            request.entity, credentials.payload
        ):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "unknown API key")
        return auth_pb2.AuthenticateResponse(access_token=self.tokens.issue())

    def sync(self, request: dm_pb2.SyncRequest, context: grpc.ServicerContext) -> Any:
        """OK once every file was uploaded; UNAVAILABLE (saying why) when some are left."""
        report = self._sync(context)
        if report["files_left"]:
            context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"{report['files_left']} files not uploaded: {report['first_reason']}",
            )
        return dm_pb2.SyncResponse()

    def _sync(self, context: grpc.ServicerContext) -> dict[str, Any]:
        from capsync.service.manager import ServiceError

        # Retry failed uploads only while the caller still waits (a minute without a deadline).
        remaining_s = context.time_remaining()
        retry_for_s = DEFAULT_SYNC_RETRY_S if remaining_s is None else max(0.0, remaining_s - 1.0)
        try:
            report = self.manager.sync_now(timeout_s=retry_for_s)
        except ServiceError as exc:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        return {
            "files_uploaded": report.files_uploaded,
            "files_left": report.files_left,
            "files_moved_to_failed": report.files_moved,
            "complete": report.complete,
            "first_reason": next(iter(report.left.values()), ""),
        }

    def upload_binary_data_to_datasets(
        self, request: dm_pb2.UploadBinaryDataToDatasetsRequest, context: grpc.ServicerContext
    ) -> Any:
        from capsync.service.manager import ServiceError

        if not request.dataset_ids:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "dataset_ids must not be empty")
        try:
            self.manager.upload_binary_to_datasets(
                request.binary_data,
                _MIME_NAMES.get(request.mime_type, ""),
                tuple(request.tags),
                tuple(request.dataset_ids),
            )
        except ServiceError as exc:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except (OSError, grpc.RpcError) as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"upload failed: {exc}")
        return dm_pb2.UploadBinaryDataToDatasetsResponse()

    def status(self) -> dict[str, Any]:
        collectors = {
            label: {
                "captures": s.captures,
                "skipped_ticks": s.skipped_ticks,
                "errors": s.errors,
                "queue_depth": s.queue_depth,
                "files": s.files,
            }
            for label, s in self.manager.stats().items()
        }
        sync = self.manager.sync_stats()
        return {
            "collectors": collectors,
            "sync": None if sync is None else {"files_uploaded": sync.files_uploaded},
        }

    def get_status(self, request: common_pb2.GetStatusRequest, context: Any) -> Any:
        response = common_pb2.GetStatusResponse()
        response.result.update(self.status())
        return response

    def do_command(self, request: common_pb2.DoCommandRequest, context: Any) -> Any:
        command = json_format.MessageToDict(request.command)
        what = command.get("command")
        if what == "sync":
            result = self._sync(context)
        elif what == "status":
            result = self.status()
        else:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f'unknown command {what!r}: expected {{"command": "sync"}} or "status"',
            )
        response = common_pb2.DoCommandResponse()
        response.result.update(result)
        return response


def _handler(fn: Callable[..., Any], request_type: Any) -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(
        fn,
        request_deserializer=request_type.FromString,
        response_serializer=lambda message: message.SerializeToString(),
    )


def start_api_server(
    manager: DataManager, address: str, keys: ApiKeys, *, max_workers: int = 4
) -> tuple[grpc.Server, int]:
    """Serve the data manager's API on ``address`` (``HOST:PORT``, port 0 picks one).

    Returns the started server and its port; stop it with ``server.stop(grace)``.
    """
    tokens = _Tokens()
    api = DataManagerApi(manager, keys, tokens)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="capsync-api"),
        interceptors=[_AuthInterceptor(keys, tokens)],
        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
    )
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE,
                {
                    "Sync": _handler(api.sync, dm_pb2.SyncRequest),
                    "UploadBinaryDataToDatasets": _handler(
                        api.upload_binary_data_to_datasets, dm_pb2.UploadBinaryDataToDatasetsRequest
                    ),
                    "GetStatus": _handler(api.get_status, common_pb2.GetStatusRequest),
                    "DoCommand": _handler(api.do_command, common_pb2.DoCommandRequest),
                },
            ),
            grpc.method_handlers_generic_handler(
                AUTH_SERVICE,
                {"Authenticate": _handler(api.authenticate, auth_pb2.AuthenticateRequest)},
            ),
        )
    )
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    server.start()
    return server, port
