"""Capture files and stored records as one MCAP file, for Foxglove.

One channel per part/component/method (topic ``/<component>/<method>``, with
``/<part>`` in front for records from the server, where several parts may
share component names). Tabular readings become JSON messages (the reading's
struct, e.g. ``{"readings": {"x": 1.5}}``, so Foxglove's Plot panel plots
``/sensor/Readings.readings.x``) on a channel with a JSON schema inferred from
its first reading; images become ``foxglove.CompressedImage``; PCD point
clouds ``foxglove.PointCloud``; any other binary is kept as raw bytes on a
channel whose message encoding is its MIME type. Log time is
``time_received``, publish time ``time_requested``.

Files are read through memory maps (a few at once, as worker threads encode them:
:mod:`.mcap_pipeline`) into chunks of a few MiB: memory does not grow with the export.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from foxglove_schemas_protobuf.CompressedImage_pb2 import CompressedImage
from foxglove_schemas_protobuf.PointCloud_pb2 import PointCloud

from capsync import wire
from capsync.capture.reader import CaptureFileError, iter_spans, mapped, parse_header
from capsync.export import frames, payloads
from capsync.export.mcap_pipeline import InlineExecutor, TabularPipeline, default_workers
from capsync.export.mcap_writer import DEFAULT_CHUNK_SIZE_BYTES, McapChunkWriter
from capsync.export.reading_json import json_schema, reading_json
from capsync.proto import data_sync_pb2
from capsync.server.stores.base import BlobRecord, Record, TabularRecord

TABULAR_BATCH_RECORDS = 16_384  # frames turned into messages per call, at most
TABULAR_BATCH_BYTES = 1 << 20  # and capture bytes per call, about (at least one frame)
BATCHES_IN_FLIGHT = 3  # encoded ahead of the chunk being filled, at most
_TABULAR = data_sync_pb2.DataType.DATA_TYPE_TABULAR_SENSOR
_COMPILED = wire._load_compiled("capsync.export._export")


def tabular_encoder() -> Callable[..., tuple[bytes, Any, Any]]:
    """``tabular_message_records``: compiled when the compiled wire is in use, else the twin."""
    if _COMPILED is not None and wire.native_available():
        return _COMPILED.tabular_message_records
    return frames.tabular_message_records


def tabular_filler() -> Callable[..., tuple[int, Any, Any]]:
    """``tabular_records_into``: compiled when the compiled wire is in use, else the twin."""
    if _COMPILED is not None and wire.native_available():
        return _COMPILED.tabular_records_into
    return frames.tabular_records_into


@dataclass
class ExportCounts:
    """What an MCAP export wrote."""

    messages: int = 0
    channels: int = 0
    files: int = 0  # capture files or stored payload files read
    skipped: list[str] = field(default_factory=list)  # what was left out, and why
    peak_buffered_bytes: int = 0  # the most message bytes the writer held at once


@dataclass
class _Channel:
    id: int
    sequence: int = 0


class McapExporter:
    """Adds capture files (:meth:`add_capture_file`) or stored records
    (:meth:`add_record`) to an MCAP file written to ``stream``."""

    def __init__(
        self,
        stream: IO[bytes],
        *,
        chunk_size_bytes: int = DEFAULT_CHUNK_SIZE_BYTES,
        workers: int | None = None,
        executor: Executor | None = None,
    ) -> None:
        """``workers`` threads encode readings and compress chunks (default
        :func:`default_workers`; 0: all in the caller, one thing at a time), or
        ``executor`` does. The file is the same bytes either way."""
        self._pool: ThreadPoolExecutor | None = None
        if executor is None:
            workers = default_workers() if workers is None else workers
            if workers > 0:
                self._pool = ThreadPoolExecutor(workers, thread_name_prefix="capsync-mcap")
                executor = self._pool
            else:
                executor = InlineExecutor()
        self.writer = McapChunkWriter(stream, chunk_size_bytes=chunk_size_bytes, executor=executor)
        self._tabular = TabularPipeline(
            self.writer, tabular_filler(), executor, in_flight=BATCHES_IN_FLIGHT
        )
        self._batch_bytes = max(1, min(TABULAR_BATCH_BYTES, chunk_size_bytes // 4))
        self.counts = ExportCounts()
        self._channels: dict[tuple[str, ...], _Channel] = {}
        self._topics: set[str] = set()
        self._schema_ids: dict[str, int] = {}

    # --- channels ------------------------------------------------------------------

    def _protobuf_schema(self, message_class: type) -> int:
        name = message_class.DESCRIPTOR.full_name  # type: ignore[attr-defined]
        if name not in self._schema_ids:
            self._schema_ids[name] = self.writer.add_schema(
                name, "protobuf", payloads.schema_data(message_class)
            )
        return self._schema_ids[name]

    def _topic(self, part_id: str | None, component_name: str, method: str, kind: str) -> str:
        base = "/" + "/".join(p for p in (part_id, component_name, method) if p is not None)
        topic, n = base, 1
        while topic in self._topics:
            n += 1
            topic = f"{base}.{kind}" if n == 2 else f"{base}.{kind}{n}"
        self._topics.add(topic)
        return topic

    def _channel(
        self,
        part_id: str | None,
        component_type: str,
        component_name: str,
        method: str,
        kind: str,
        first_json: bytes = b"",
        mime_type: str = "",
    ) -> _Channel:
        key = (part_id or "", component_type, component_name, method, kind)
        channel = self._channels.get(key)
        if channel is not None:
            return channel
        metadata = {
            "component_type": component_type,
            "component_name": component_name,
            "method_name": method,
        }
        if part_id is not None:
            metadata["part_id"] = part_id
        topic = self._topic(part_id, component_name, method, kind)
        if kind == "json":
            schema = json.dumps(json_schema(json.loads(first_json or b"{}")))
            schema_id = self.writer.add_schema(
                f"capsync.{method or 'reading'}", "jsonschema", schema.encode()
            )
            encoding = "json"
        elif kind == "image":
            schema_id, encoding = self._protobuf_schema(CompressedImage), "protobuf"
        elif kind == "pointcloud":
            schema_id, encoding = self._protobuf_schema(PointCloud), "protobuf"
        else:
            schema_id, encoding = 0, mime_type or "application/octet-stream"
        channel = _Channel(self.writer.add_channel(topic, encoding, schema_id, metadata))
        self._channels[key] = channel
        self.counts.channels += 1
        return channel

    # --- binary payloads -----------------------------------------------------------

    def _add_binary(
        self,
        part_id: str | None,
        header: tuple[str, str, str],
        mime_type: str,
        extension: str,
        log_ns: int,
        publish_ns: int,
        payload: Any,
    ) -> None:
        _component_type, component_name, method = header
        fmt = payloads.image_format(mime_type, extension)
        parts: list[Any]
        if fmt is not None:
            channel = self._channel(part_id, *header, "image")
            prefix = payloads.image_prefix(log_ns, component_name, fmt, len(payload))
            parts, compress = [prefix, payload], False
        elif payloads.is_pointcloud(mime_type, extension):
            try:
                layout = payloads.parse_pcd_header(bytes(payload[: payloads.PCD_HEADER_MAX_BYTES]))
                points: Any = payloads.pcd_points(layout, payload[layout.data_offset :])
            except payloads.PcdError as exc:
                self.counts.skipped.append(f"{component_name}/{method}: {exc}")
                return
            channel = self._channel(part_id, *header, "pointcloud")
            prefix = payloads.pointcloud_prefix(log_ns, component_name, layout, len(points))
            parts, compress = [prefix, points], True
        else:
            channel = self._channel(part_id, *header, "raw", mime_type=mime_type)
            parts, compress = [payload], True
        size = sum(len(p) for p in parts)
        self.writer.add_message_parts(
            channel.id,
            log_ns,
            publish_ns,
            size,
            parts,
            sequence=channel.sequence & 0xFFFFFFFF,
            compress=compress,
        )
        channel.sequence += 1
        self.counts.messages += 1

    # --- capture files (robot side) ------------------------------------------------

    def add_capture_file(self, path: str | os.PathLike[str]) -> None:
        """Every record of one capture file. Raises CaptureFileError naming the file
        (or an earlier one, whose batches were still being encoded)."""
        with ExitStack() as stack:
            try:
                data = stack.enter_context(mapped(path))
                span = parse_header(path, data)
                header = span.header
                names = (header.component_type, header.component_name, header.method_name)
                self.counts.files += 1
                if header.type == _TABULAR:
                    self._add_tabular_frames(path, data, span.records_offset, names)
                    # the map stays open until the batches reading it are encoded
                    self._tabular.after_queued(stack.pop_all().close)
                else:
                    self._tabular.drain()  # the readings before these messages go first
                    self._add_binary_frames(data, span.records_offset, names, header)
            except CaptureFileError:
                self._tabular.drain()  # an earlier file's bad frame is reported first
                raise
            except ValueError as exc:
                self._tabular.drain()
                raise CaptureFileError(path, str(exc)) from None

    def _add_tabular_frames(
        self, path: Any, data: Any, offset: int, names: tuple[str, str, str]
    ) -> None:
        """The frames found in batches of at most TABULAR_BATCH_RECORDS frames and about
        TABULAR_BATCH_BYTES of capture bytes (a quarter of a chunk for small chunks, so
        the batches encoded ahead stay small whatever the file's size), each batch
        encoded on the pipeline's threads."""
        channel: _Channel | None = None
        scan = wire.wire().scan_frames
        limit = TABULAR_BATCH_RECORDS
        while True:
            offsets, lengths, end = scan(data, offset, limit)
            if len(offsets) == 0:
                return
            more = len(offsets) == limit
            ends = offsets + lengths
            cut = max(1, int(np.searchsorted(ends, offset + self._batch_bytes, side="right")))
            if cut < len(offsets):
                offsets, lengths, end, more = offsets[:cut], lengths[:cut], int(ends[cut - 1]), True
            limit = max(1, min(TABULAR_BATCH_RECORDS, 2 * len(offsets)))
            if channel is None:
                first, _, _ = tabular_encoder()(data, offsets[:1], lengths[:1], 0, 0)
                channel = self._channel(None, *names, "json", first_json=first[31:])
            self._tabular.submit(path, data, offsets, lengths, channel.id, channel.sequence)
            channel.sequence += len(offsets)
            self.counts.messages += len(offsets)
            if not more or end == offset:
                return
            offset = end

    def _add_binary_frames(
        self,
        data: Any,
        offset: int,
        names: tuple[str, str, str],
        header: data_sync_pb2.DataCaptureMetadata,
    ) -> None:
        with memoryview(data) as view:
            for start, length in iter_spans(data, offset):
                requested, received, data_key, data_start, data_stop = frames.parse_sensor_frame(
                    data, start, start + length
                )
                if data_key != 0x1A:
                    self.counts.skipped.append(
                        f"{header.component_name}/{header.method_name}: a record without "
                        "binary data in a binary capture file"
                    )
                    continue
                self._add_binary(
                    None,
                    names,
                    header.mime_type,
                    header.file_extension,
                    received,
                    requested,
                    view[data_start:data_stop],
                )

    # --- stored records (server side) ----------------------------------------------

    def add_record(self, record: Record, data_dir: Path) -> None:
        """One stored record; a binary one's payload is read from ``data_dir``."""
        self._tabular.drain()
        names = (record.component_type, record.component_name, record.method_name)
        log_ns, publish_ns = max(record.time_received_ns, 0), max(record.time_requested_ns, 0)
        if isinstance(record, TabularRecord):
            text = reading_json(record.data)
            channel = self._channel(record.part_id, *names, "json", first_json=text)
            self.writer.add_message(
                channel.id, log_ns, publish_ns, text, sequence=channel.sequence & 0xFFFFFFFF
            )
            channel.sequence += 1
            self.counts.messages += 1
            return
        assert isinstance(record, BlobRecord)
        if record.kind == "file":
            self.counts.skipped.append(f"file {record.file_name or record.id}: not a reading")
            return
        source = data_dir.joinpath(*record.path.split("/"))
        try:
            with mapped(source) as payload, memoryview(payload) as view:
                self.counts.files += 1
                self._add_binary(
                    record.part_id,
                    names,
                    record.mime_type,
                    record.file_extension,
                    log_ns,
                    publish_ns,
                    view,
                )
        except FileNotFoundError:
            self.counts.skipped.append(f"{record.id}: payload file {source} is missing")

    def finish(self) -> ExportCounts:
        self._tabular.drain()
        self.writer.finish()
        self.counts.peak_buffered_bytes = self.writer.peak_buffered_bytes
        return self.counts

    def close(self) -> None:
        """Stop the threads (``finish`` leaves nothing for them; call this after it, or
        when abandoning the file)."""
        self._tabular.close()
        self.writer.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


# --- entry points -----------------------------------------------------------------------


def capture_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The capture files named or under the folders named, in path order.

    A folder contributes its ``.capture`` files (completed ones); a file named
    explicitly is taken whatever its extension. A missing path raises
    FileNotFoundError.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*.capture") if p.is_file()))
        elif path.exists():
            found.append(path)
        else:
            raise FileNotFoundError(2, "no such file or folder", str(path))
    return found


def convert_capture_files(
    paths: Iterable[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    chunk_size_bytes: int = DEFAULT_CHUNK_SIZE_BYTES,
    workers: int | None = None,
    executor: Executor | None = None,
) -> ExportCounts:
    """Write the capture files at ``paths`` (files or folders) as one MCAP file ``out``
    (``workers``, ``executor``: see :class:`McapExporter`)."""
    files = capture_files(paths)
    with open(out, "wb") as stream:
        exporter = McapExporter(
            stream, chunk_size_bytes=chunk_size_bytes, workers=workers, executor=executor
        )
        try:
            for path in files:
                exporter.add_capture_file(path)
            return exporter.finish()
        finally:
            exporter.close()


def export_records(
    records: Iterable[Record],
    data_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    chunk_size_bytes: int = DEFAULT_CHUNK_SIZE_BYTES,
) -> ExportCounts:
    """Write stored records (from :meth:`Store.query`) as one MCAP file ``out``."""
    root = Path(data_dir).absolute()
    with open(out, "wb") as stream:
        exporter = McapExporter(stream, chunk_size_bytes=chunk_size_bytes)
        try:
            for record in records:
                exporter.add_record(record, root)
            return exporter.finish()
        finally:
            exporter.close()
