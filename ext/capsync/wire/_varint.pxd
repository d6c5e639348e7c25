# cython: language_level=3
"""C helpers every wire kernel shares: varints and Timestamp bodies (inline, no module).

Cimported by ``_framing``, ``_wire``, ``_upload`` and ``_rows``; there is no
``_varint.pyx``: every helper here is ``inline`` and compiled into its user.
"""

from libc.stdint cimport int64_t, uint8_t, uint64_t

cdef enum:
    NS_PER_S = 1000000000
    MAX_VARINT_BYTES = 10
    # A Timestamp body is at most tag + 10-byte seconds + tag + 5-byte nanos.
    MAX_TIMESTAMP_BYTES = 17
    # What get_varint returns for a varint that the buffer cuts / that runs past 10 bytes.
    VARINT_TRUNCATED = -1
    VARINT_OVERLONG = -2


cdef inline int varint_size(uint64_t value) noexcept nogil:
    """Bytes ``value`` takes as a varint."""
    cdef int n = 1
    while value >= 0x80:
        value >>= 7
        n += 1
    return n


cdef inline Py_ssize_t put_varint(uint8_t* out, uint64_t value) noexcept nogil:
    """Write ``value`` as a varint at ``out`` (room for MAX_VARINT_BYTES); return bytes written."""
    cdef Py_ssize_t i = 0
    while value >= 0x80:
        out[i] = <uint8_t>((value & 0x7F) | 0x80)
        value >>= 7
        i += 1
    out[i] = <uint8_t>value
    return i + 1


cdef inline Py_ssize_t get_varint(const uint8_t* data, Py_ssize_t pos, Py_ssize_t end,
                                  uint64_t* value) noexcept nogil:
    """Decode a varint at ``pos``; return the offset after it, or VARINT_TRUNCATED/OVERLONG."""
    cdef uint64_t result = 0
    cdef int shift = 0
    cdef uint8_t byte
    while True:
        if pos >= end:
            return VARINT_TRUNCATED
        if shift >= 70:
            return VARINT_OVERLONG
        byte = data[pos]
        pos += 1
        result |= (<uint64_t>(byte & 0x7F)) << shift if shift < 64 else 0
        if byte < 0x80:
            value[0] = result
            return pos
        shift += 7


cdef inline void split_ns(int64_t ns, int64_t* seconds, int64_t* nanos) noexcept nogil:
    """Floor division, as ``divmod`` does: nanos is always in [0, 1e9)."""
    seconds[0] = ns // NS_PER_S
    nanos[0] = ns % NS_PER_S
    if nanos[0] < 0:
        nanos[0] += NS_PER_S
        seconds[0] -= 1


cdef inline Py_ssize_t put_timestamp_body(uint8_t* out, int64_t ns) noexcept nogil:
    """Write a ``Timestamp`` body (seconds, nanos; zeros left out); return bytes written."""
    cdef int64_t seconds, nanos
    cdef Py_ssize_t n = 0
    split_ns(ns, &seconds, &nanos)
    if seconds != 0:
        out[n] = 0x08
        n += 1 + put_varint(out + n + 1, <uint64_t>seconds)
    if nanos != 0:
        out[n] = 0x10
        n += 1 + put_varint(out + n + 1, <uint64_t>nanos)
    return n
