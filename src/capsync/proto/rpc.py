"""gRPC clients and handlers for capsync's services, on Viam's method paths.

capsync's .proto packages are Viam's with a ``capsync.`` prefix
(``capsync.viam.app.datasync.v1``), so capsync and viam-sdk can register their
messages in protobuf's default descriptor pool in one process. Full message names
never go on the wire, but the gRPC method paths do, and those must stay exactly
Viam's (``/viam.app.datasync.v1.DataSyncService/DataCaptureUpload``). So no
``_pb2_grpc`` module is generated; this module builds the client callables and
the server handlers from a service descriptor, with the prefix dropped::

    from capsync.proto import rpc

    stub = rpc.data_sync_stub(channel)
    stub.DataCaptureUpload(request, metadata=..., timeout=...)

    rpc.add_service(server, rpc.data_sync_service(), servicer)  # a method per RPC

A method named in ``raw=`` passes bytes through both ways (no protobuf objects:
the caller serializes the request, or parses it, itself); capsync's sync client
and ingest server use that for ``DataCaptureUpload``.

A new service follows the same pattern: define it in its capsync-prefixed
.proto, generate it with ``make proto``, and pass its descriptor
(``X_pb2.DESCRIPTOR.services_by_name["Name"]``) to :class:`ServiceStub` and
:func:`add_service`.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, MethodDescriptor, ServiceDescriptor

#: The prefix of capsync's .proto packages; the wire names are without it.
PACKAGE_PREFIX = "capsync."

#: Viam's full name of the sync service, as it appears in method paths.
DATA_SYNC_SERVICE = "viam.app.datasync.v1.DataSyncService"


def wire_service_name(service: ServiceDescriptor) -> str:
    """Viam's full name of ``service``: its full name without the ``capsync.`` prefix."""
    full_name: str = service.full_name
    if not full_name.startswith(PACKAGE_PREFIX):
        raise ValueError(f"service {full_name} is not in a capsync.-prefixed package")
    return full_name.removeprefix(PACKAGE_PREFIX)


def method_path(method: MethodDescriptor) -> str:
    """The method's path on the wire: ``/viam.app.datasync.v1.DataSyncService/Name``."""
    return f"/{wire_service_name(method.containing_service)}/{method.name}"


def _message_class(descriptor: Descriptor) -> Any:
    """The generated class of a message (the very class of its ``_pb2`` module)."""
    return message_factory.GetMessageClass(descriptor)


def _shape(method: MethodDescriptor) -> str:
    """``unary_unary``, ``stream_unary``, ... as grpc names a method's shape."""
    request = "stream" if method.client_streaming else "unary"
    response = "stream" if method.server_streaming else "unary"
    return f"{request}_{response}"


class ServiceStub:
    """A client of ``service`` on ``channel``: one callable attribute per RPC.

    Each attribute is what ``channel.unary_unary(path, ...)`` (or the streaming
    variant) returns, so it takes ``metadata=``, ``timeout=`` and the rest of
    grpc's keyword arguments, exactly as a generated stub's would.
    """

    def __init__(
        self, channel: grpc.Channel, service: ServiceDescriptor, *, raw: Collection[str] = ()
    ) -> None:
        for method in service.methods:
            make = getattr(channel, _shape(method))
            passthrough = method.name in raw
            callable_ = make(
                method_path(method),
                request_serializer=(
                    None if passthrough else _message_class(method.input_type).SerializeToString
                ),
                response_deserializer=(
                    None if passthrough else _message_class(method.output_type).FromString
                ),
                _registered_method=True,
            )
            setattr(self, method.name, callable_)

    def __getattr__(self, name: str) -> Any:  # for type checkers: RPCs are set per instance
        raise AttributeError(name)


def method_handlers(
    service: ServiceDescriptor, servicer: object, *, raw: Collection[str] = ()
) -> dict[str, Any]:
    """grpc method handlers for every RPC of ``service``, each calling ``servicer.<Name>``.

    The servicer's methods take ``(request_or_iterator, context)`` like a
    generated servicer's; a missing one is an error here, not at call time.
    Methods in ``raw`` take and return bytes.
    """
    handlers: dict[str, Any] = {}
    for method in service.methods:
        behaviour = getattr(servicer, method.name, None)
        if behaviour is None:
            raise TypeError(f"{type(servicer).__name__} has no method {method.name}")
        make = getattr(grpc, f"{_shape(method)}_rpc_method_handler")
        passthrough = method.name in raw
        handlers[method.name] = make(
            behaviour,
            request_deserializer=(
                None if passthrough else _message_class(method.input_type).FromString
            ),
            response_serializer=(
                None if passthrough else _message_class(method.output_type).SerializeToString
            ),
        )
    return handlers


def add_service(
    server: grpc.Server,
    service: ServiceDescriptor,
    servicer: object,
    *,
    raw: Collection[str] = (),
) -> None:
    """Serve ``servicer`` as ``service`` on ``server``, under Viam's method paths
    (``raw``: methods whose bytes pass through undecoded)."""
    name = wire_service_name(service)
    handlers = method_handlers(service, servicer, raw=raw)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))
    server.add_registered_method_handlers(name, handlers)


def data_sync_service() -> ServiceDescriptor:
    """The descriptor of capsync's copy of ``DataSyncService``."""
    from capsync.proto import data_sync_pb2

    service: ServiceDescriptor = data_sync_pb2.DESCRIPTOR.services_by_name["DataSyncService"]
    return service


def data_sync_stub(channel: grpc.Channel, *, raw: Collection[str] = ()) -> ServiceStub:
    """A ``DataSyncService`` client on ``channel`` (Viam's method paths; ``raw``: methods
    that send and return bytes)."""
    return ServiceStub(channel, data_sync_service(), raw=raw)
