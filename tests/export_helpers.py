"""Helpers shared by the MCAP encoder tests: capture-file frames of given readings, and
an encoder's output (or its error) in a form two implementations can be compared by."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from capsync import wire
from capsync.proto import data_sync_pb2


def frame_records(
    records: Iterable[data_sync_pb2.SensorData],
) -> tuple[bytes, list[int], list[int]]:
    """The records as varint-delimited frames, with each body's offset and length."""
    out = bytearray()
    offsets, lengths = [], []
    for record in records:
        body = record.SerializeToString()
        out += wire.PURE.encode_varint(len(body))
        offsets.append(len(out))
        lengths.append(len(body))
        out += body
    return bytes(out), offsets, lengths


def run_encoder(encode: Callable[..., Any], *args: Any) -> Any:
    """``tabular_message_records``'s output as plain values, or ``("error", message)``."""
    try:
        records, log_times, offsets = encode(*args)
    except ValueError as exc:
        return ("error", str(exc))
    return records, [int(t) for t in log_times], [int(o) for o in offsets]
