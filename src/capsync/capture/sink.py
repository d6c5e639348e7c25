"""What a collector writes its readings to, and the one description of what it captures.

:class:`RecordSink` is the contract between a collector and where its readings
go: a :class:`~capsync.capture.stream.CaptureStream` (capture files) or a
:class:`~capsync.capture.ring_sink.RingCollectorSink` (micro-server mode's
in-memory ring). Both satisfy it; mypy checks that (see ``ring_sink.py``).

:class:`CaptureSpec` is the identity of one collector's data (resource,
method, tags, parameters, MIME type) with what follows from it (its capture
header, whether it is binary, its MIME enum), computed once.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from capsync.capture.header import build_header, upload_metadata
from capsync.methods import is_binary_method, mime_type_enum, wrap_key_for

if TYPE_CHECKING:
    from pathlib import Path

    from capsync.capture.stream import StreamStats
    from capsync.proto import data_sync_pb2


class RecordSink(Protocol):
    """Where a collector's readings go (one sink per collector and MIME type).

    ``append`` takes a tabular reading, ``append_binary`` a binary one (with
    optional serialized ``Annotations``); each raises TypeError for the other
    kind and may raise ``OSError`` (a disk that refuses). ``write_error`` is the
    last write failure still unresolved (None when writes succeed);
    ``flush_to_capture`` completes what is buffered; ``close`` refuses further
    readings; ``stats`` counts what was written.
    """

    label: str

    @property
    def folder(self) -> Path | str: ...

    @property
    def is_binary(self) -> bool: ...

    @property
    def write_error(self) -> OSError | None: ...

    def append(
        self,
        readings: Mapping[str, Any],
        time_requested_ns: int | None = None,
        time_received_ns: int | None = None,
    ) -> Any: ...

    def append_binary(
        self,
        payload: Any,
        time_requested_ns: int | None = None,
        time_received_ns: int | None = None,
        *,
        annotations: bytes = b"",
    ) -> Any: ...

    def flush_to_capture(self) -> Any: ...

    def close(self) -> None: ...

    def stats(self) -> StreamStats: ...


@dataclass(frozen=True)
class CaptureSpec:
    """What one collector captures, for one MIME type; derived facts are computed once."""

    component_type: str
    component_name: str
    method_name: str
    tags: tuple[str, ...] = ()
    method_parameters: Mapping[str, Any] = field(default_factory=dict)
    mime_type: str = ""

    @property
    def label(self) -> str:
        return f"{self.component_type}/{self.component_name}/{self.method_name}"

    @functools.cached_property
    def header(self) -> data_sync_pb2.DataCaptureMetadata:
        """The ``DataCaptureMetadata`` a capture file of this collector starts with."""
        return build_header(
            component_type=self.component_type,
            component_name=self.component_name,
            method_name=self.method_name,
            tags=self.tags,
            method_parameters=self.method_parameters,
            mime_type=self.mime_type,
        )

    @functools.cached_property
    def is_binary(self) -> bool:
        return is_binary_method(self.method_name)

    @functools.cached_property
    def wrap_key(self) -> str | None:
        return wrap_key_for(self.method_name)

    @functools.cached_property
    def mime_enum(self) -> int:
        return mime_type_enum(self.mime_type)

    def upload_metadata(self, part_id: str) -> data_sync_pb2.UploadMetadata:
        """The ``UploadMetadata`` of uploads of this collector's data."""
        return upload_metadata(self.header, part_id=part_id)
