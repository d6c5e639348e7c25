"""The standard gRPC health service, ``grpc.health.v1.Health``: Check and Watch.

Built from capsync's own copy of the proto (package ``capsync.grpc.health.v1``,
served on the standard paths by :mod:`capsync.proto.rpc`) rather than
grpcio-health-checking: that module and grpclib's (a viam-sdk dependency)
register ``grpc.health.v1.*`` in protobuf's default pool under different file
names, so they cannot load in one process, and capsync must load beside either.

Statuses are set per service name (``""`` is the server as a whole). On
:meth:`HealthServicer.enter_graceful_shutdown` every service reports
``NOT_SERVING``, watchers are told so and their streams end, and later
:meth:`~HealthServicer.set` calls are ignored.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from capsync.proto.grpc.health.v1 import health_pb2

HealthCheckResponse = health_pb2.HealthCheckResponse
Status = HealthCheckResponse.ServingStatus
SERVING = HealthCheckResponse.SERVING
NOT_SERVING = HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = HealthCheckResponse.SERVICE_UNKNOWN
# A watcher re-checks this often even without a change, so a cancelled call ends soon.
_WATCH_RECHECK_S = 1.0


def health_service() -> ServiceDescriptor:
    """The descriptor of capsync's copy of ``grpc.health.v1.Health``."""
    service: ServiceDescriptor = health_pb2.DESCRIPTOR.services_by_name["Health"]
    return service


class HealthServicer:
    """Answers Check and Watch from the statuses given to :meth:`set`."""

    def __init__(self) -> None:
        self._statuses: dict[str, Status] = {}
        self._changed = threading.Condition()
        self._shutting_down = False

    def set(self, service: str, status: Status) -> None:
        """Set the status of ``service`` (ignored once shutting down) and tell its watchers."""
        with self._changed:
            if self._shutting_down:
                return
            self._statuses[service] = status
            self._changed.notify_all()

    def enter_graceful_shutdown(self) -> None:
        """Every service becomes NOT_SERVING for good; watchers get that and their streams end."""
        with self._changed:
            self._shutting_down = True
            for service in self._statuses:
                self._statuses[service] = NOT_SERVING
            self._changed.notify_all()

    # gRPC entry points ------------------------------------------------------------------

    def Check(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self._changed:
            status = self._statuses.get(request.service)
        if status is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
            raise AssertionError("context.abort raises")  # pragma: no cover
        return HealthCheckResponse(status=status)

    def Watch(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        def wake() -> None:
            with self._changed:
                self._changed.notify_all()

        context.add_callback(wake)  # the call ended: stop waiting now
        last: Status | None = None
        while context.is_active():
            with self._changed:
                status = self._statuses.get(request.service, SERVICE_UNKNOWN)
                ending = self._shutting_down
                if status == last and not ending:
                    self._changed.wait(_WATCH_RECHECK_S)
                    continue
            if status != last:
                last = status
                yield HealthCheckResponse(status=status)
            if ending:
                return
