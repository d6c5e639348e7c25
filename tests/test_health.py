"""The health service of ``capsync serve``, asked by independent clients.

capsync serves its own copy of ``grpc.health.v1.Health`` (package
``capsync.grpc.health.v1``, standard paths). The clients here are
grpcio-health-checking's stub and, in a process of its own (its module and
grpcio-health-checking's cannot load together), grpclib's, beside viam-sdk.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from server_fixtures import AUTH, ServerProcess, subprocess_env

pytestmark = pytest.mark.wire_independent

SERVICE = "viam.app.datasync.v1.DataSyncService"
Status = health_pb2.HealthCheckResponse


def test_an_unknown_service_is_not_found(ingest_server: ServerProcess) -> None:
    stub = health_pb2_grpc.HealthStub(ingest_server.channel())
    with pytest.raises(grpc.RpcError) as caught:
        stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    watch = stub.Watch(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
    assert next(watch).status == Status.SERVICE_UNKNOWN
    watch.cancel()


def test_watchers_hear_not_serving_on_sigterm_and_the_stop_does_not_wait_for_them(
    ingest_server: ServerProcess,
) -> None:
    stub = health_pb2_grpc.HealthStub(ingest_server.channel())
    watches = [
        stub.Watch(health_pb2.HealthCheckRequest(service=name), timeout=60)
        for name in ("", SERVICE)
    ]
    assert [next(w).status for w in watches] == [Status.SERVING, Status.SERVING]
    ingest_server.terminate()
    assert [[r.status for r in w] for w in watches] == [[Status.NOT_SERVING]] * 2
    # The grace period (30 s) was not spent waiting for the watch streams.
    assert ingest_server.wait(20) == 0
    assert "cancelling them" not in ingest_server.stderr()


def test_grpclib_health_client_beside_viam_sdk_in_one_process(
    ingest_server: ServerProcess,
) -> None:
    """grpclib's health module registers grpc.health.v1 too: capsync.server loads beside it."""
    code = textwrap.dedent(
        f"""
        import asyncio
        import grpclib.client
        from grpclib.health.v1 import health_grpc, health_pb2
        import viam.app.data_client
        import capsync.server, capsync.sync

        async def check():
            channel = grpclib.client.Channel("127.0.0.1", {ingest_server.port})
            try:
                stub = health_grpc.HealthStub(channel)
                for name in ("", "{SERVICE}"):
                    request = health_pb2.HealthCheckRequest(service=name)
                    reply = await stub.Check(request, metadata={dict(AUTH)!r})
                    print(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
            finally:
                channel.close()

        asyncio.run(check())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["SERVING", "SERVING"]
