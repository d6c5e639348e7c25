"""Reading capture files: the header, the records, and a scan of record spans.

Files are memory-mapped, so a scan touches only the bytes it needs and a
large file is never read into memory whole. A truncated last record (a
crash mid-write) ends the records quietly; anything else that does not parse
raises :class:`CaptureFileError` naming the file.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError

from capsync import wire
from capsync.proto import data_sync_pb2

SCAN_CHUNK_RECORDS = 65_536


class CaptureFileError(ValueError):
    """A capture file that cannot be read; the message names the file."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        super().__init__(f"{os.fspath(path)}: {problem}")
        self.path = os.fspath(path)
        self.problem = problem


@dataclass(frozen=True)
class HeaderSpan:
    header: data_sync_pb2.DataCaptureMetadata
    records_offset: int  # where the first SensorData frame starts
    file_nbytes: int


@contextmanager
def mapped(path: str | os.PathLike[str]) -> Iterator[Any]:
    """The file's bytes as a read-only buffer (an mmap, or b"" for an empty file)."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            yield b""
            return
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
            yield view


def parse_header(path: str | os.PathLike[str], data: Any) -> HeaderSpan:
    """Decode the leading ``DataCaptureMetadata`` frame of ``data`` (the bytes of ``path``)."""
    kernels = wire.wire()
    if len(data) == 0:
        raise CaptureFileError(path, "file is empty (no header)")
    try:
        length, start = kernels.read_varint(data, 0)
    except ValueError:
        raise CaptureFileError(path, "header length is truncated") from None
    end = start + length
    if end > len(data):
        raise CaptureFileError(path, f"header is truncated ({len(data) - start} of {length} bytes)")
    header = data_sync_pb2.DataCaptureMetadata()
    try:
        header.ParseFromString(bytes(data[start:end]))
    except DecodeError as exc:
        raise CaptureFileError(path, f"header does not parse: {exc}") from None
    if not header.component_type and not header.method_name:
        raise CaptureFileError(path, "header does not parse: no component type or method")
    return HeaderSpan(header=header, records_offset=end, file_nbytes=len(data))


def read_header(path: str | os.PathLike[str]) -> HeaderSpan:
    with mapped(path) as data:
        return parse_header(path, data)


def iter_spans(data: Any, offset: int) -> Iterator[tuple[int, int]]:
    """(offset, length) of each whole frame of ``data`` from ``offset`` on, in chunks."""
    scan = wire.wire().scan_frames
    while True:
        offsets, lengths, end = scan(data, offset, SCAN_CHUNK_RECORDS)
        yield from zip(offsets.tolist(), lengths.tolist(), strict=True)
        if len(offsets) < SCAN_CHUNK_RECORDS or end == offset:
            return
        offset = end


def scan_records(path: str | os.PathLike[str]) -> Iterator[tuple[int, int]]:
    """Yield ``(offset, length)`` of each ``SensorData`` record of a capture file, undecoded.

    Offsets are of the record's bytes (after its length prefix) from the
    start of the file. A truncated last record is left out.
    """
    with mapped(path) as data:
        span = parse_header(path, data)
        yield from iter_spans(data, span.records_offset)


def _decode_records(path: str, data: Any, offset: int) -> Iterator[data_sync_pb2.SensorData]:
    for start, length in iter_spans(data, offset):
        record = data_sync_pb2.SensorData()
        try:
            record.ParseFromString(bytes(data[start : start + length]))
        except DecodeError as exc:
            raise CaptureFileError(
                path, f"record at offset {start} does not parse: {exc}"
            ) from None
        yield record


def read_capture_file(
    path: str | os.PathLike[str],
) -> tuple[data_sync_pb2.DataCaptureMetadata, Iterator[data_sync_pb2.SensorData]]:
    """The header and an iterator over the records of a capture file.

    The header is read at once (a bad one raises :class:`CaptureFileError`
    here); records are decoded lazily and the file is closed when the
    iterator is exhausted or closed.
    """
    header = read_header(path).header

    def records() -> Iterator[data_sync_pb2.SensorData]:
        with mapped(path) as data:
            span = parse_header(path, data)
            yield from _decode_records(os.fspath(path), data, span.records_offset)

    return header, records()


def is_capture_file(path: Path) -> bool:
    return path.suffix in (".capture", ".prog")
