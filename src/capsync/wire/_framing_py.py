"""Pure-Python twin of ``capsync.wire._framing``: varints and length-delimited frames.

A capture file's records and a ``DataCaptureUploadRequest``'s readings are
the same length-delimited frames; this module encodes, finds and re-tags them
without decoding a record. Same names, signatures and output as the compiled
module (tests/test_wire_parity.py, tests/test_wire.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from capsync.wire._checks import U64_MASK as _U64_MASK
from capsync.wire._checks import read_varint_view, upload_region_error

__all__ = ["encode_varint", "frame", "read_varint", "scan_frames", "upload_body"]

_TAG_SENSOR_CONTENTS = 0x12  # DataCaptureUploadRequest.sensor_contents, LEN


def encode_varint(value: int) -> bytes:
    """Encode ``value`` as a protobuf varint; negative values as 64-bit two's complement."""
    value &= _U64_MASK
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_varint(buf: Any, offset: int = 0) -> tuple[int, int]:
    """Decode the varint at ``offset``; return ``(value, offset_after)``.

    Raises ``ValueError`` when the buffer ends inside the varint or the varint
    is longer than 10 bytes.
    """
    # Release the views even when raising: a live export would keep an mmap from closing.
    with memoryview(buf) as raw, raw.cast("B") as view:
        return read_varint_view(view, offset)


def frame(payload: Any) -> bytes:
    """Return ``payload`` prefixed with its length as a varint (one delimited record)."""
    data = bytes(memoryview(payload).cast("B"))
    return encode_varint(len(data)) + data


def scan_frames(
    buf: Any, offset: int = 0, max_frames: int = -1
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], int]:
    """Find the length-delimited frames of ``buf`` from ``offset`` on, without decoding them.

    Returns ``(offsets, lengths, end)``: the offset of each frame's payload,
    its length in bytes, and the offset just past the last whole frame. The
    scan stops at the end of the buffer, after ``max_frames`` frames (when
    ``>= 0``), or at a frame that does not fit (a truncated tail: ``end`` then
    points at its length prefix).
    """
    offsets: list[int] = []
    lengths: list[int] = []
    with memoryview(buf) as raw, raw.cast("B") as view:
        size = len(view)
        if offset < 0 or offset > size:
            raise ValueError(f"offset {offset} is outside a buffer of {size} bytes")
        pos = offset
        while pos < size and (max_frames < 0 or len(offsets) < max_frames):
            try:
                length, payload_at = read_varint_view(view, pos)
            except ValueError:
                break
            if length > size - payload_at:
                break
            offsets.append(payload_at)
            lengths.append(length)
            pos = payload_at + length
    return np.array(offsets, dtype=np.int64), np.array(lengths, dtype=np.int64), pos


def upload_body(head: Any, buf: Any, start: int, end: int) -> tuple[bytes, int]:
    """``head`` then every frame of ``buf[start:end]`` behind the ``sensor_contents`` tag.

    A capture file's records are length-delimited frames; a ``DataCaptureUploadRequest``
    holds the same frames, each behind one tag byte. So a request body is built
    from the file's bytes without decoding a record. Returns ``(body, records)``;
    raises ``ValueError`` when the region does not end on a frame boundary.
    """
    with memoryview(buf) as raw, raw.cast("B") as view:
        if not 0 <= start <= end <= len(view):
            raise upload_region_error(start, end, len(view))
        parts = [bytes(memoryview(head).cast("B"))]
        pos = start
        records = 0
        while pos < end:
            try:
                length, payload_at = read_varint_view(view[:end], pos)
            except ValueError:
                raise upload_region_error(start, end, len(view), pos) from None
            if length > end - payload_at:
                raise upload_region_error(start, end, len(view), pos)
            parts.append(bytes((_TAG_SENSOR_CONTENTS,)))
            parts.append(bytes(view[pos : payload_at + length]))
            pos = payload_at + length
            records += 1
    return b"".join(parts), records
