"""The packets of the streamed uploads, taken as raw bytes.

``StreamingDataCaptureUpload`` and ``FileUpload`` are served undecoded (see
:mod:`capsync.server.app`): the first packet (the metadata, a few hundred bytes)
is parsed as protobuf; every later one is a 64 KiB payload chunk, whose few
framing bytes are read here and whose bytes go to the payload file as a view of
the packet, never copied into a message. A packet framed any other way (still
valid protobuf: unknown fields, a field repeated) is parsed as protobuf, so the
server accepts exactly what it accepted when it decoded every packet.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from google.protobuf.message import DecodeError

from capsync import wire
from capsync.server.undecodable import UndecodableRequest, describe
from capsync.server.upload_checks import InvalidUpload

_LENGTH_DELIMITED_2 = 0x12  # field 2, wire type 2: ``data`` and ``file_contents``
_LENGTH_DELIMITED_1 = 0x0A  # field 1, wire type 2: ``FileData.data``


def _field_span(packet: bytes, at: int, tag: int) -> int:
    """Where the bytes of the length-delimited field ``tag`` at ``at`` start, when that
    field runs exactly to the end of ``packet``; else -1."""
    if at >= len(packet) or packet[at] != tag:
        return -1
    try:
        length, start = wire.wire().read_varint(packet, at + 1)
    except ValueError:  # runs off the end: left to protobuf, which refuses it
        return -1
    return start if start + length == len(packet) else -1


def parse(message_class: Any, packet: bytes) -> Any:
    """``packet`` as ``message_class``; a packet that does not parse is refused."""
    try:
        return message_class.FromString(packet)
    except (DecodeError, RecursionError) as exc:
        raise UndecodableRequest(describe(exc)) from None


def metadata_packet(packets: Iterator[bytes], message_class: Any, rpc: str) -> Any:
    """The metadata a streaming upload must start with (its ``metadata`` field)."""
    first = next(packets, None)
    message = None if first is None else parse(message_class, first)
    if message is None or message.WhichOneof("upload_packet") != "metadata":
        raise InvalidUpload(f"{rpc} must start with its metadata")
    return message.metadata


def chunks(
    packets: Iterator[bytes], message_class: Any, field: str, rpc: str
) -> Iterator[memoryview | bytes]:
    """The payload bytes of each packet after the metadata (``field``: ``data`` of a
    ``StreamingDataCaptureUploadRequest``, ``file_contents`` of a ``FileUploadRequest``)."""
    nested = field == "file_contents"  # FileData{data = 1} inside field 2
    for index, packet in enumerate(packets, start=1):
        start = _field_span(packet, 0, _LENGTH_DELIMITED_2)
        if nested and start >= 0:
            start = _field_span(packet, start, _LENGTH_DELIMITED_1)
        if start >= 0:
            yield memoryview(packet)[start:]
            continue
        message = parse(message_class, packet)
        held = message.WhichOneof("upload_packet")
        if held != field:
            raise InvalidUpload(
                f"{rpc} packet {index} holds {held or 'nothing'}; only the first may be metadata"
            )
        chunk = getattr(message, field)
        yield chunk if field == "data" else chunk.data
