# cython: language_level=3
"""Compiled varints and length-delimited frames; the twin is ``capsync.wire._framing_py``.

Inputs are checked and refusals worded by ``capsync.wire._checks`` (shared with
the twin); the kernels here walk bytes without the GIL.
"""

import numpy as np

from capsync.wire._checks import read_varint_view, upload_region_error

# The API, the same names as the twin's ``__all__`` (tests/test_wire_parity.py checks it).
__all__ = ["encode_varint", "frame", "read_varint", "scan_frames", "upload_body"]

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.string cimport memcpy

from capsync.wire._varint cimport MAX_VARINT_BYTES, get_varint, put_varint, varint_size


def encode_varint(value):
    """Encode ``value`` as a protobuf varint; negative values as 64-bit two's complement."""
    cdef uint8_t out[MAX_VARINT_BYTES]
    cdef uint64_t unsigned = <uint64_t>(value & 0xFFFFFFFFFFFFFFFF)
    cdef Py_ssize_t n = put_varint(out, unsigned)
    return (<char*>out)[:n]


def read_varint(buf, Py_ssize_t offset=0):
    """Decode the varint at ``offset``; return ``(value, offset_after)``.

    Raises ``ValueError`` when the buffer ends inside the varint or the varint
    is longer than 10 bytes.
    """
    cdef const uint8_t[::1] view = memoryview(buf).cast("B")
    cdef uint64_t value = 0
    cdef Py_ssize_t after = -1
    if offset >= 0:
        after = get_varint(&view[0] if view.shape[0] else NULL, offset, view.shape[0], &value)
    if after < 0:
        with memoryview(buf) as raw, raw.cast("B") as words:
            return read_varint_view(words, offset)  # raises the worded error
    return value, after


def frame(payload):
    """Return ``payload`` prefixed with its length as a varint (one delimited record)."""
    cdef const uint8_t[::1] view = memoryview(payload).cast("B")
    cdef Py_ssize_t n = view.shape[0]
    cdef int prefix = varint_size(<uint64_t>n)
    out = PyBytes_FromStringAndSize(NULL, prefix + n)
    cdef uint8_t* data = <uint8_t*>PyBytes_AS_STRING(out)
    put_varint(data, <uint64_t>n)
    if n:
        memcpy(data + prefix, &view[0], n)
    return out


cdef Py_ssize_t _scan(const uint8_t* data, Py_ssize_t pos, Py_ssize_t end, Py_ssize_t max_frames,
                      int64_t* offsets, int64_t* lengths, Py_ssize_t* count) noexcept nogil:
    """Walk frames from ``pos``; fill offsets/lengths when not NULL; return the end offset."""
    cdef uint64_t length
    cdef Py_ssize_t after
    cdef Py_ssize_t n = 0
    while pos < end and (max_frames < 0 or n < max_frames):
        after = get_varint(data, pos, end, &length)
        if after < 0 or length > <uint64_t>(end - after):
            break
        if offsets != NULL:
            offsets[n] = after
            lengths[n] = <int64_t>length
        n += 1
        pos = after + <Py_ssize_t>length
    count[0] = n
    return pos


def scan_frames(buf, Py_ssize_t offset=0, Py_ssize_t max_frames=-1):
    """Find the length-delimited frames of ``buf`` from ``offset`` on, without decoding them.

    Returns ``(offsets, lengths, end)``: the offset of each frame's payload,
    its length in bytes, and the offset just past the last whole frame. The
    scan stops at the end of the buffer, after ``max_frames`` frames (when
    ``>= 0``), or at a frame that does not fit (a truncated tail: ``end`` then
    points at its length prefix).
    """
    cdef const uint8_t[::1] view = memoryview(buf).cast("B")
    cdef Py_ssize_t size = view.shape[0]
    cdef Py_ssize_t count = 0
    cdef Py_ssize_t end
    cdef const uint8_t* data = &view[0] if size else NULL
    cdef int64_t[::1] offsets_view
    cdef int64_t[::1] lengths_view
    if offset < 0 or offset > size:
        raise ValueError(f"offset {offset} is outside a buffer of {size} bytes")
    with nogil:
        end = _scan(data, offset, size, max_frames, NULL, NULL, &count)
    offsets = np.empty(count, dtype=np.int64)
    lengths = np.empty(count, dtype=np.int64)
    if count:
        offsets_view = offsets
        lengths_view = lengths
        with nogil:
            _scan(data, offset, size, count, &offsets_view[0], &lengths_view[0], &count)
    return offsets, lengths, end


def upload_body(head, buf, Py_ssize_t start, Py_ssize_t end):
    """``head`` then every frame of ``buf[start:end]`` behind the ``sensor_contents`` tag
    (see the twin); returns ``(body, records)``."""
    cdef const uint8_t[::1] view = memoryview(buf).cast("B")
    cdef const uint8_t[::1] head_view = memoryview(head).cast("B")
    cdef Py_ssize_t size = view.shape[0]
    cdef Py_ssize_t head_n = head_view.shape[0]
    cdef const uint8_t* data = &view[0] if size else NULL
    cdef Py_ssize_t count = 0
    cdef Py_ssize_t stop, pos, after, n
    cdef uint64_t length = 0
    cdef uint8_t* out
    if not (0 <= start <= end <= size):
        raise upload_region_error(start, end, size)
    with nogil:
        stop = _scan(data, start, end, -1, NULL, NULL, &count)
    if stop != end:
        raise upload_region_error(start, end, size, stop)
    body = PyBytes_FromStringAndSize(NULL, head_n + (end - start) + count)
    out = <uint8_t*>PyBytes_AS_STRING(body)
    with nogil:
        if head_n:
            memcpy(out, &head_view[0], head_n)
        out += head_n
        pos = start
        while pos < end:
            after = get_varint(data, pos, end, &length)
            n = after + <Py_ssize_t>length - pos
            out[0] = 0x12
            memcpy(out + 1, data + pos, n)
            out += 1 + n
            pos += n
    return body, count
