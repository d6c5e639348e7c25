"""``spliced_entries``: the ``data`` fields of a TabularDataByFilterResponse copied from a
stored batch body, five bytes rewritten per reading (the layout is described in
``capsync.server.data_wire``). The pure-Python twin is ``capsync.server._splice_py``
(numpy); both give the same bytes, or both None, for any input."""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport int64_t, uint8_t
from libc.string cimport memcpy

import numpy as np

__all__ = ["spliced_entries"]  # the same as the twin's


cdef inline int64_t _at(const uint8_t[::1] view, int64_t pos, int64_t last) noexcept nogil:
    """The byte at ``pos``, or the body's last byte past its end (as the twin reads)."""
    return view[pos if pos < last else last]


cdef inline int64_t _varint_size(int64_t value) noexcept nogil:
    cdef int64_t size = 1
    cdef int bits
    for bits in range(7, 36, 7):
        if value >= (<int64_t>1 << bits):
            size += 1
    return size


def spliced_entries(body, offsets, lengths, int metadata_index):
    """The ``data`` fields (tag 2, one ``TabularData`` each) of the readings whose
    ``SensorData`` sits at ``offsets``/``lengths`` in ``body``, and the total size of the
    entries; None when some reading is not laid out the plain way."""
    cdef const int64_t[::1] o = np.ascontiguousarray(offsets, dtype=np.int64)
    cdef const int64_t[::1] n = np.ascontiguousarray(lengths, dtype=np.int64)
    cdef Py_ssize_t count = o.shape[0]
    if count == 0:
        return b"", 0
    if not 0 <= metadata_index < 128:
        return None
    cdef const uint8_t[::1] view = memoryview(body).cast("B")
    cdef int64_t size = view.shape[0], last = size - 1
    cdef int64_t out_size = 0, total = 0
    cdef int64_t i, start, at, end, meta_len, m, j, p, v1, v2, v3, struct_len, struct_varint
    cdef bint plain = True
    with nogil:
        for i in range(count):
            at = o[i]
            end = at + n[i]
            start = at - 1 - _varint_size(n[i])
            if start < 0 or end > size or size == 0:
                plain = False
                break
            meta_len = _at(view, at + 1, last)
            m = at + 2
            j = m + 2 + _at(view, m + 1, last)
            p = m + meta_len
            v1 = _at(view, p + 1, last)
            v2 = _at(view, p + 2, last)
            v3 = _at(view, p + 3, last)
            if v1 < 128:
                struct_len, struct_varint = v1, 1
            elif v2 < 128:
                struct_len, struct_varint = (v1 & 0x7F) | (v2 << 7), 2
            else:
                struct_len, struct_varint = (v1 & 0x7F) | ((v2 & 0x7F) << 7) | (v3 << 14), 3
            if not (
                view[start] == 0x12 and _at(view, at, last) == 0x0A and meta_len < 128
                and _at(view, m, last) == 0x0A and _at(view, m + 1, last) < 128
                and _at(view, j, last) == 0x12 and _at(view, j + 1, last) < 128
                and j + 2 + _at(view, j + 1, last) == p and _at(view, p, last) == 0x12
                and (v1 < 128 or v2 < 128 or v3 < 128)
                and p + 1 + struct_varint + struct_len == end
            ):
                plain = False
                break
            out_size += end - start
            total += n[i]
    if not plain:
        return None
    out = PyBytes_FromStringAndSize(NULL, out_size)
    cdef uint8_t *dest = <uint8_t *>PyBytes_AS_STRING(out)
    cdef int64_t put = 0, shift
    with nogil:
        for i in range(count):
            at = o[i]
            end = at + n[i]
            start = at - 1 - _varint_size(n[i])
            memcpy(dest + put, &view[start], end - start)
            shift = put - start
            m = at + 2
            j = m + 2 + view[m + 1]
            p = m + view[at + 1]
            dest[at + shift] = 0x10  # metadata_index
            dest[at + 1 + shift] = <uint8_t>metadata_index
            dest[m + shift] = 0x1A  # time_requested
            dest[j + shift] = 0x22  # time_received
            dest[p + shift] = 0x0A  # data
            put += end - start
    return out, total
