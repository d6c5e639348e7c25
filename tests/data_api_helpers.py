"""Helpers for the data API tests: viam-sdk's DataClient against a real ``capsync serve``."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from server_fixtures import KEY, KEY_ID, ServerProcess
from viam.app.data_client import DataClient

T = TypeVar("T")
T0_NS = 1_764_460_800_000_000_000  # 2025-11-30T00:00:00Z
SECOND_NS = 1_000_000_000


def utc(ns: int) -> dt.datetime:
    """What viam-sdk's ``Timestamp.ToDatetime()`` gives: a naive UTC datetime (microseconds)."""
    return dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=ns // 1000)


def call(
    server: ServerProcess,
    action: Callable[[DataClient], Awaitable[T]],
    key_id: str = KEY_ID,
    key: str = KEY,
) -> T:
    """Run ``action(client)`` with a fresh DataClient on its own grpclib channel."""

    async def main() -> T:
        channel = Channel("127.0.0.1", server.port)
        try:
            return await action(DataClient(channel, {"key_id": key_id, "key": key}))
        finally:
            channel.close()

    return asyncio.run(main())


def refused(
    server: ServerProcess, action: Callable[[DataClient], Awaitable[Any]], **keys: str
) -> GRPCError:
    """The GRPCError that ``action`` fails with."""
    with pytest.raises(GRPCError) as caught:
        call(server, action, **keys)
    return caught.value


def invalid(server: ServerProcess, action: Callable[[DataClient], Awaitable[Any]]) -> str:
    """``action`` fails with INVALID_ARGUMENT; return the message."""
    error = refused(server, action)
    assert error.status == Status.INVALID_ARGUMENT, error
    return str(error.message)
