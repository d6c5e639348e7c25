"""A request that does not parse is INVALID_ARGUMENT, not gRPC's INTERNAL.

gRPC answers a request its deserializer cannot read with INTERNAL ("Exception
deserializing request!"), which every client retries forever. The usual
cause is client data: a ``google.protobuf.Struct`` nested deeper than
protobuf's limit of 100 message levels. :class:`UndecodableRequestInterceptor`
lets the deserializer hand such a request on as :class:`Undecodable` and
refuses it with INVALID_ARGUMENT saying why, so the client sets the file aside.
In a stream the packet raises :class:`UndecodableRequest` in the handler's loop.

DataSyncService passes through as raw bytes (nothing to deserialize: the
servicer refuses a bad body or packet itself, with :class:`UndecodableRequest` and
:func:`describe` for a stream's packet); this guards every other service on the
server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf.message import DecodeError


class UndecodableRequest(ValueError):
    """Raised to a streaming handler for a packet that did not parse; its handler answers it
    with INVALID_ARGUMENT (:class:`~capsync.server.sync_servicer.DataSyncServicer` does)."""


class Undecodable:
    """Stands for a request message that did not parse."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def describe(error: Exception) -> str:
    """Why a request did not parse, for the client (protobuf rarely says which field)."""
    text = str(error)
    if "MaxDepth" in text or "recursion" in text.lower():
        return (
            "the request does not parse: a message (e.g. sensor_contents[].struct) is nested "
            "deeper than protobuf's limit of 100 levels"
        )
    return (
        f"the request does not parse ({text}): it is malformed, or a message in it (e.g. "
        "sensor_contents[].struct) is nested deeper than protobuf's limit of 100 levels"
    )


def _tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except (DecodeError, RecursionError) as exc:
            return Undecodable(exc)

    return parse


def _refuse(context: grpc.ServicerContext, request: Undecodable) -> None:
    context.abort(grpc.StatusCode.INVALID_ARGUMENT, describe(request.error))


def _checked_stream(requests: Iterator[Any]) -> Iterator[Any]:
    for request in requests:
        if isinstance(request, Undecodable):
            # Not context.abort: inside the handler's loop that would be taken for a failure
            # of the handler (INTERNAL); the handler refuses this itself.
            raise UndecodableRequest(describe(request.error))
        yield request


def _wrap(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    kwargs = {
        "request_deserializer": _tolerant(handler.request_deserializer),
        "response_serializer": handler.response_serializer,
    }
    if handler.request_streaming:
        inner = handler.stream_stream if handler.response_streaming else handler.stream_unary

        def streamed(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            try:
                return inner(_checked_stream(requests), context)
            except UndecodableRequest as exc:  # a handler that let it through
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))

        make = (
            grpc.stream_stream_rpc_method_handler
            if handler.response_streaming
            else grpc.stream_unary_rpc_method_handler
        )
        return make(streamed, **kwargs)
    inner = handler.unary_stream if handler.response_streaming else handler.unary_unary

    def unary(request: Any, context: grpc.ServicerContext) -> Any:
        if isinstance(request, Undecodable):
            _refuse(context, request)
        return inner(request, context)

    make = (
        grpc.unary_stream_rpc_method_handler
        if handler.response_streaming
        else grpc.unary_unary_rpc_method_handler
    )
    return make(unary, **kwargs)


class UndecodableRequestInterceptor(grpc.ServerInterceptor):
    """Refuses a request that does not parse with INVALID_ARGUMENT (see the module doc)."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        return None if handler is None else _wrap(handler)
