# cython: language_level=3
"""One row batch as a C struct, and the kernel that encodes it (inline, no module).

``RecordBuffer.append_batch`` (and the per-reading template path) fills a
``RowBatch`` and hands it to ``encode_rows``, so the kernel takes a handful of
arguments instead of fourteen (asyncpg's pattern: a commented struct in the
``.pxd`` with inline helpers). Cimported by ``_wire`` only.
"""

from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.string cimport memcpy

from capsync.wire._varint cimport (
    MAX_TIMESTAMP_BYTES,
    MAX_VARINT_BYTES,
    get_varint,
    put_timestamp_body,
    put_varint,
    varint_size,
)


cdef struct RowBatch:
    # The rows, read-only; every row becomes one framed tabular SensorData.
    const int64_t* requested   # time_requested of each row, ns since the epoch
    const int64_t* received    # time_received of each row, ns since the epoch
    const double* values       # the doubles, row-major: row r's are values[r * n_cols:][:n_cols]
    Py_ssize_t n_cols          # doubles per row (= keys of the struct)
    # One row's SensorData.struct body, encoded once with 0.0 for every double.
    const uint8_t* template    # its bytes
    Py_ssize_t struct_nbytes   # its length in bytes
    const Py_ssize_t* slots    # offset in template of each of the n_cols doubles
    # Where to stop.
    Py_ssize_t first_row       # the call's first row: always encoded, whatever limit_bytes says
    Py_ssize_t limit_bytes     # stop before a row that would take the buffer past this; -1: never
    bint full                  # out: set when limit_bytes stopped the batch


cdef inline Py_ssize_t max_row_bytes(const RowBatch* batch) noexcept nogil:
    """An upper bound of one framed row's bytes (for the caller's reservation)."""
    return (MAX_VARINT_BYTES + 2 + 2 * (2 + MAX_TIMESTAMP_BYTES) + 1 + MAX_VARINT_BYTES
            + batch.struct_nbytes)


cdef inline Py_ssize_t _skip_field_header(const uint8_t* data, Py_ssize_t pos,
                                          Py_ssize_t end, Py_ssize_t* body_end) except -1:
    """Step over a one-byte tag and a length varint; return the body offset, set its end."""
    cdef uint64_t length
    pos = get_varint(data, pos + 1, end, &length)
    if pos < 0:
        raise AssertionError("malformed batch template")
    body_end[0] = pos + <Py_ssize_t>length
    return pos


cdef inline int number_slots(const uint8_t* data, Py_ssize_t nbytes, bint wrapped,
                             Py_ssize_t* slots, Py_ssize_t n_cols) except -1:
    """Offsets of the doubles in a one-row struct template.

    Each map entry ends with its ``Value``: tag 0x11 and the 8 bytes of a double.
    """
    cdef Py_ssize_t pos = 0
    cdef Py_ssize_t end = nbytes
    cdef Py_ssize_t col
    cdef Py_ssize_t body_end
    if wrapped:  # {wrap_key: Value{struct_value: <the row struct>}}
        pos = _skip_field_header(data, pos, end, &body_end)  # the entry
        pos = _skip_field_header(data, pos, end, &body_end)  # its key
        pos = _skip_field_header(data, body_end, end, &body_end)  # its value
        pos = _skip_field_header(data, pos, end, &end)  # struct_value
    for col in range(n_cols):
        _skip_field_header(data, pos, end, &body_end)
        slots[col] = body_end - 8
        pos = body_end
    return 0


cdef inline Py_ssize_t encode_rows(RowBatch* batch, uint8_t* data, Py_ssize_t* size,
                                   Py_ssize_t row, Py_ssize_t stop_row) noexcept nogil:
    """Encode rows [row, stop_row) at ``data + size[0]`` (capacity reserved by the caller);
    return the next row (``stop_row``, or an earlier one with ``batch.full`` set)."""
    cdef uint8_t stamp_requested[MAX_TIMESTAMP_BYTES]
    cdef uint8_t stamp_received[MAX_TIMESTAMP_BYTES]
    cdef Py_ssize_t n_requested, n_received, metadata_nbytes, record_nbytes, frame_nbytes
    cdef Py_ssize_t col
    cdef uint8_t* p
    cdef uint8_t* body
    # Locals, not batch->field: the memcpy into data could alias *batch as far as the
    # compiler knows, which would make it reload every field on every row.
    cdef const int64_t* requested = batch.requested
    cdef const int64_t* received = batch.received
    cdef const double* values = batch.values
    cdef const uint8_t* template = batch.template
    cdef const Py_ssize_t* slots = batch.slots
    cdef Py_ssize_t n_cols = batch.n_cols
    cdef Py_ssize_t struct_nbytes = batch.struct_nbytes
    cdef Py_ssize_t first_row = batch.first_row
    cdef Py_ssize_t limit_bytes = batch.limit_bytes
    cdef int struct_prefix = varint_size(<uint64_t>struct_nbytes)
    while row < stop_row:
        n_requested = put_timestamp_body(stamp_requested, requested[row])
        n_received = put_timestamp_body(stamp_received, received[row])
        metadata_nbytes = 2 + n_requested + 2 + n_received  # always < 128
        record_nbytes = 2 + metadata_nbytes + 1 + struct_prefix + struct_nbytes
        frame_nbytes = varint_size(<uint64_t>record_nbytes) + record_nbytes
        if row > first_row and limit_bytes >= 0 and size[0] + frame_nbytes > limit_bytes:
            batch.full = True
            return row
        p = data + size[0]
        p += put_varint(p, <uint64_t>record_nbytes)
        p[0] = 0x0A  # SensorData.metadata
        p[1] = <uint8_t>metadata_nbytes
        p[2] = 0x0A  # time_requested
        p[3] = <uint8_t>n_requested
        memcpy(p + 4, stamp_requested, n_requested)
        p += 4 + n_requested
        p[0] = 0x12  # time_received
        p[1] = <uint8_t>n_received
        memcpy(p + 2, stamp_received, n_received)
        p += 2 + n_received
        p[0] = 0x12  # SensorData.struct
        p += 1 + put_varint(p + 1, <uint64_t>struct_nbytes)
        body = p
        memcpy(body, template, struct_nbytes)
        for col in range(n_cols):
            memcpy(body + slots[col], &values[row * n_cols + col], 8)
        size[0] += frame_nbytes
        row += 1
    return row
