# cython: language_level=3
"""Compiled hot path: ``SensorData`` encoding into numpy-owned buffers (``RecordBuffer``).

The pure-Python twin, ``capsync.wire._wire_py``, is the specification: every public
name here has the same signature and byte-identical output there. Inputs are
normalised, and refusals worded, by ``capsync.wire._checks`` (shared with the
twin, which this module never imports). The framing functions (``_framing``) and
the upload scanner (``_upload``) are re-exported so that this stays the one
module the selector switches.

The ``RecordBuffer`` cdef class stays in one compiled module: split across modules,
its inline ``_put_*`` calls would become vtable calls on the per-reading path. Its
parts live in files by concern: the general dict-to-``Struct`` walk in
``_struct_encoding.pxi`` (included here, at module level), varints and Timestamp
bodies in ``_varint.pxd``, the batch kernel and its ``RowBatch`` struct in
``_rows.pxd``, the ``writev`` loop in ``_fdio.pxd``.
"""

from collections.abc import Mapping

import numpy as np

from capsync.wire._checks import (
    as_int64,
    check_binary_prefix,
    check_capacity,
    check_start_row,
    normalize_batch,
    readings_not_dict,
    reading_error,
)
from capsync.wire._framing import encode_varint, frame, read_varint, scan_frames, upload_body
from capsync.wire._upload import scan_upload

# The API, the same names as the twin's ``__all__`` (tests/test_wire_parity.py checks it).
__all__ = [
    "RecordBuffer", "encode_varint", "frame", "read_varint", "scan_frames", "scan_upload",
    "upload_body",
]

from cpython.exc cimport PyErr_Occurred
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.string cimport memcpy, memmove, strerror

from capsync.wire._fdio cimport write_all
from capsync.wire._rows cimport RowBatch, encode_rows, max_row_bytes, number_slots
from capsync.wire._varint cimport (
    MAX_TIMESTAMP_BYTES,
    MAX_VARINT_BYTES,
    put_timestamp_body,
    put_varint,
    varint_size,
)

cdef enum:
    MAX_NESTING_DEPTH = 100
    BATCH_CHUNK_ROWS = 4096
    # A map entry {key, Value{number}} past its key: key tag + length, value tag + length,
    # number tag + 8 bytes. Keys up to SHORT_KEY_BYTES keep every length in one byte.
    FLOAT_ENTRY_OVERHEAD = 13
    SHORT_KEY_BYTES = 100

_np_bool = np.bool_
_np_number = (np.integer, np.floating)


include "_struct_encoding.pxi"


cdef inline int64_t _as_int64(object value, str name) except? -1:
    """``value`` as int64: C fast path for a plain int, the shared checks (and errors) else."""
    cdef int overflow = 0
    cdef long long number
    if type(value) is int:
        number = PyLong_AsLongLongAndOverflow(value, &overflow)
        if overflow == 0 and not (number == -1 and PyErr_Occurred()):
            return number
    return as_int64(value, name)


cdef class RecordBuffer:
    """RecordBuffer(capacity_bytes=65536)
--

    A growable byte buffer that length-delimited ``SensorData`` records are encoded into.

    Numpy owns the memory. ``write_to`` hands the bytes to a file descriptor
    and empties the buffer only once everything was written.
    """

    def __cinit__(self, Py_ssize_t capacity_bytes=65536):
        check_capacity(capacity_bytes)
        self._array = np.empty(capacity_bytes, dtype=np.uint8)
        self._size = 0
        self._bind()

    cdef int _bind(self) except -1:
        cdef uint8_t[::1] view = self._array
        self._data = &view[0]
        self._capacity = view.shape[0]
        return 0

    cdef int _reserve(self, Py_ssize_t extra_bytes) except -1:
        cdef Py_ssize_t needed = self._size + extra_bytes
        cdef Py_ssize_t capacity
        if needed <= self._capacity:
            return 0
        capacity = max(needed, 2 * self._capacity)
        grown = np.empty(capacity, dtype=np.uint8)
        cdef uint8_t[::1] grown_view = grown
        memcpy(&grown_view[0], self._data, self._size)
        self._array = grown
        self._bind()
        return 0

    cdef inline int _put_byte(self, uint8_t value) except -1:
        if self._size >= self._capacity:
            self._reserve(1)
        self._data[self._size] = value
        self._size += 1
        return 0

    cdef inline int _put_varint(self, uint64_t value) except -1:
        self._reserve(MAX_VARINT_BYTES)
        self._size += put_varint(self._data + self._size, value)
        return 0

    cdef inline int _put_bytes(self, const char* data, Py_ssize_t nbytes) except -1:
        self._reserve(nbytes)
        memcpy(self._data + self._size, data, nbytes)
        self._size += nbytes
        return 0

    cdef inline Py_ssize_t _open_len(self) except -1:
        """Start a length-delimited body: one placeholder byte for its length."""
        cdef Py_ssize_t start = self._size
        self._put_byte(0)
        return start

    cdef int _close_len(self, Py_ssize_t start) except -1:
        """Write the length of the body opened at ``start``; widen the prefix if >= 128."""
        cdef Py_ssize_t nbytes = self._size - start - 1
        cdef int prefix
        if nbytes < 0x80:
            self._data[start] = <uint8_t>nbytes
            return 0
        prefix = varint_size(<uint64_t>nbytes)
        self._reserve(prefix - 1)
        memmove(self._data + start + prefix, self._data + start + 1, nbytes)
        put_varint(self._data + start, <uint64_t>nbytes)
        self._size += prefix - 1
        return 0

    cdef int _timestamp(self, int64_t ns) except -1:
        self._reserve(MAX_TIMESTAMP_BYTES + 1)
        cdef Py_ssize_t body = put_timestamp_body(self._data + self._size + 1, ns)
        self._data[self._size] = <uint8_t>body
        self._size += 1 + body
        return 0

    cdef int _metadata(self, int64_t time_requested_ns, int64_t time_received_ns,
                       uint64_t mime_type) except -1:
        cdef Py_ssize_t start
        self._put_byte(0x0A)  # SensorData.metadata
        start = self._open_len()
        self._put_byte(0x0A)  # SensorMetadata.time_requested
        self._timestamp(time_requested_ns)
        self._put_byte(0x12)  # SensorMetadata.time_received
        self._timestamp(time_received_ns)
        if mime_type:
            self._put_byte(0x18)  # SensorMetadata.mime_type
            self._put_varint(mime_type)
        self._close_len(start)
        return 0

    @property
    def nbytes(self):
        """Bytes currently held (encoded and not yet written)."""
        return self._size

    @property
    def capacity_bytes(self):
        """Bytes the buffer can hold before it grows."""
        return self._capacity

    def append_frame(self, payload):
        """Append an already-encoded message as one delimited frame; return bytes appended."""
        cdef const uint8_t[::1] view = memoryview(payload).cast("B")
        cdef Py_ssize_t start = self._size
        self._put_varint(<uint64_t>view.shape[0])
        if view.shape[0]:
            self._put_bytes(<const char*>&view[0], view.shape[0])
        return self._size - start

    cdef bint _from_template(self, dict readings, object wrap_key, double* values) except -1:
        """True (and ``values`` filled) when ``readings`` fits the cached template."""
        cdef Py_ssize_t i = 0
        cdef tuple keys = self._tpl_keys
        if keys is None or wrap_key is not self._tpl_wrap_key or len(readings) != len(keys):
            return False
        for key, value in readings.items():
            if key is not keys[i] or type(value) is not float:
                return False
            values[i] = PyFloat_AS_DOUBLE(value)
            i += 1
        return True

    cdef int _build_template(self, dict readings, object wrap_key) except -1:
        """Cache ``readings``' template when it is all floats under short string keys."""
        cdef Py_ssize_t nbytes
        cdef Py_ssize_t n = len(readings)
        if n == 0 or n > MAX_TEMPLATE_KEYS:
            return 0
        for key, value in readings.items():
            if type(key) is not str or type(value) is not float:
                return 0
            PyUnicode_AsUTF8AndSize(key, &nbytes)
            if nbytes > SHORT_KEY_BYTES:
                return 0
        keys = tuple(readings)
        template = RecordBuffer(64 + 32 * n)
        encode_wrapped_struct(template, dict.fromkeys(keys, 0.0), wrap_key)
        number_slots(template._data, template._size, bool(wrap_key), self._tpl_slots, n)
        self._tpl = template
        self._tpl_keys = keys
        self._tpl_wrap_key = wrap_key
        return 0

    cdef int _append_readings(self, object readings, object time_requested_ns,
                              object time_received_ns, object wrap_key) except -1:
        """``append_readings`` without the return value (the stream's per-reading call)."""
        cdef int64_t requested
        cdef int64_t received
        cdef Py_ssize_t frame_start = self._size
        cdef Py_ssize_t struct_start
        cdef double values[MAX_TEMPLATE_KEYS]
        cdef RowBatch batch
        cdef bint is_dict = type(readings) is dict
        if not is_dict and not isinstance(readings, Mapping):
            raise readings_not_dict(readings)
        requested = _as_int64(time_requested_ns, "time_requested_ns")
        received = _as_int64(time_received_ns, "time_received_ns")
        if is_dict and self._from_template(<dict>readings, wrap_key, values):
            batch.requested = &requested
            batch.received = &received
            batch.values = values
            batch.n_cols = len(self._tpl_keys)
            batch.template = self._tpl._data
            batch.struct_nbytes = self._tpl._size
            batch.slots = self._tpl_slots
            batch.first_row = 0
            batch.limit_bytes = -1
            batch.full = False
            self._reserve(max_row_bytes(&batch))
            encode_rows(&batch, self._data, &self._size, 0, 1)
            return 0
        try:
            frame_start = self._open_len()
            self._metadata(requested, received, 0)
            self._put_byte(0x12)  # SensorData.struct
            struct_start = self._open_len()
            encode_wrapped_struct(self, readings, wrap_key)
            self._close_len(struct_start)
            self._close_len(frame_start)
        except Exception:
            self._size = frame_start
            error = reading_error(readings, wrap_key)
            if error is not None:
                raise error from None
            raise
        if is_dict:
            self._build_template(<dict>readings, wrap_key)
        return 0

    def append_readings(self, readings, time_requested_ns, time_received_ns, wrap_key=None):
        """Encode one tabular ``SensorData`` from a dict; return bytes appended.

        With ``wrap_key`` (e.g. ``"readings"``) the struct is ``{wrap_key: readings}``.
        On error nothing is appended.
        """
        cdef Py_ssize_t start = self._size
        self._append_readings(readings, time_requested_ns, time_received_ns, wrap_key)
        return self._size - start

    def append_batch(self, time_requested_ns, time_received_ns, values, keys, wrap_key=None,
                     Py_ssize_t start_row=0, Py_ssize_t limit_bytes=-1):
        """Encode rows of ``values`` (float64, shape (n, k)) as records keyed by ``keys``.

        Starts at ``start_row`` and stops before the row that would take the
        buffer past ``limit_bytes`` (when ``>= 0``), but always encodes at least
        one row. Returns the index of the next row to encode.
        """
        requested_arr, received_arr, values_arr = normalize_batch(
            time_requested_ns, time_received_ns, values, keys)
        cdef const int64_t[::1] requested = requested_arr
        cdef const int64_t[::1] received = received_arr
        cdef const double[:, ::1] matrix = values_arr
        cdef Py_ssize_t n_rows = matrix.shape[0]
        cdef Py_ssize_t n_cols = matrix.shape[1]
        check_start_row(start_row, n_rows)
        if n_rows == start_row:
            return start_row
        # One row's struct is the same bytes every time but for the doubles:
        # encode it once with zeros and remember where each double goes.
        template = RecordBuffer(64 + 32 * n_cols)
        encode_wrapped_struct(template, dict.fromkeys(keys, 0.0), wrap_key)
        slots_arr = np.empty(max(n_cols, 1), dtype=np.intp)
        cdef Py_ssize_t[::1] slots = slots_arr
        number_slots(template._data, template._size, bool(wrap_key), &slots[0], n_cols)
        cdef RowBatch batch
        batch.requested = &requested[0]
        batch.received = &received[0]
        batch.values = &matrix[0, 0]
        batch.n_cols = n_cols
        batch.template = template._data
        batch.struct_nbytes = template._size
        batch.slots = &slots[0]
        batch.first_row = start_row
        batch.limit_bytes = limit_bytes
        batch.full = False
        cdef Py_ssize_t row = start_row
        cdef Py_ssize_t chunk_end
        while row < n_rows and not batch.full:
            chunk_end = min(n_rows, row + BATCH_CHUNK_ROWS)
            self._reserve((chunk_end - row) * max_row_bytes(&batch))
            with nogil:
                row = encode_rows(&batch, self._data, &self._size, row, chunk_end)
        return row

    def append_binary_prefix(self, Py_ssize_t payload_nbytes, time_requested_ns,
                             time_received_ns, mime_type=0):
        """Encode a binary ``SensorData`` up to its payload, which ``write_to`` sends after it."""
        cdef int64_t requested
        cdef int64_t received
        cdef Py_ssize_t start = self._size
        cdef Py_ssize_t head_nbytes
        cdef int prefix
        check_binary_prefix(payload_nbytes, mime_type)
        requested = _as_int64(time_requested_ns, "time_requested_ns")
        received = _as_int64(time_received_ns, "time_received_ns")
        self._metadata(requested, received, mime_type)
        self._put_byte(0x1A)  # SensorData.binary
        self._put_varint(<uint64_t>payload_nbytes)
        # Frame length counts the payload that is not in the buffer.
        head_nbytes = self._size - start
        prefix = varint_size(<uint64_t>(head_nbytes + payload_nbytes))
        self._reserve(prefix)
        memmove(self._data + start + prefix, self._data + start, head_nbytes)
        put_varint(self._data + start, <uint64_t>(head_nbytes + payload_nbytes))
        self._size += prefix
        return self._size - start

    def write_to(self, int fd, tail=None):
        """Write the buffered bytes, then ``tail`` (any buffer) when given, to ``fd``.

        Retries short writes and ``EINTR``. On success the buffer is emptied and
        the byte count returned; on an ``OSError`` the buffer is left as it was
        (the caller decides what to do with what reached the file).
        """
        cdef const uint8_t[::1] tail_view
        cdef const uint8_t* tail_data = NULL
        cdef Py_ssize_t tail_nbytes = 0
        cdef int error
        if tail is not None:
            tail_view = memoryview(tail).cast("B")
            tail_nbytes = tail_view.shape[0]
            if tail_nbytes:
                tail_data = &tail_view[0]
        with nogil:
            error = write_all(fd, self._data, self._size, tail_data, tail_nbytes)
        if error:
            raise OSError(error, strerror(error).decode("utf-8", "replace"))
        total = self._size + tail_nbytes
        self._size = 0
        return total

    def getvalue(self):
        """A copy of the buffered bytes."""
        return (<char*>self._data)[:self._size]

    def clear(self):
        """Drop the buffered bytes."""
        self._size = 0
