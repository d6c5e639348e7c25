# cython: language_level=3
"""Compiled hot path: protobuf framing and ``SensorData`` encoding into numpy-owned buffers.

The pure-Python twin, ``capsync.wire._wire_py``, is the specification: every public
name here has the same signature and byte-identical output there. Error
messages are produced by re-running the twin on the input that failed, so
both implementations say exactly the same thing.
"""

from collections.abc import Mapping

import numpy as np

from capsync.wire import _wire_py

# The API, the same names as the twin's ``__all__`` (tests/test_wire_parity.py checks it).
__all__ = [
    "RecordBuffer", "encode_varint", "frame", "read_varint", "scan_frames", "scan_upload",
    "upload_body",
]

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.exc cimport PyErr_Occurred
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.errno cimport EINTR, errno
from libc.stdint cimport int8_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcpy, memmove, strerror
from posix.uio cimport iovec, writev

cdef enum:
    NS_PER_S = 1000000000
    MAX_VARINT_BYTES = 10
    # A Timestamp body is at most tag + 10-byte seconds + tag + 5-byte nanos.
    MAX_TIMESTAMP_BYTES = 17
    MAX_NESTING_DEPTH = 100
    BATCH_CHUNK_ROWS = 4096
    # A map entry {key, Value{number}} past its key: key tag + length, value tag + length,
    # number tag + 8 bytes. Keys up to SHORT_KEY_BYTES keep every length in one byte.
    FLOAT_ENTRY_OVERHEAD = 13
    SHORT_KEY_BYTES = 100

_np_bool = np.bool_
_np_number = (np.integer, np.floating)


cdef inline int varint_size(uint64_t value) noexcept nogil:
    cdef int n = 1
    while value >= 0x80:
        value >>= 7
        n += 1
    return n


cdef inline Py_ssize_t put_varint(uint8_t* out, uint64_t value) noexcept nogil:
    cdef Py_ssize_t i = 0
    while value >= 0x80:
        out[i] = <uint8_t>((value & 0x7F) | 0x80)
        value >>= 7
        i += 1
    out[i] = <uint8_t>value
    return i + 1


cdef inline Py_ssize_t get_varint(const uint8_t* data, Py_ssize_t pos, Py_ssize_t end,
                                  uint64_t* value) noexcept nogil:
    """Decode a varint at ``pos``; return the offset after it, or -1 if truncated/overlong."""
    cdef uint64_t result = 0
    cdef int shift = 0
    cdef uint8_t byte
    while True:
        if pos >= end or shift >= 70:
            return -1
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


cdef inline int64_t _as_int64(object value, str name) except? -1:
    """``value`` as int64: C fast path for a plain int, the twin's checks (and errors) else."""
    cdef int overflow = 0
    cdef long long number
    if type(value) is int:
        number = PyLong_AsLongLongAndOverflow(value, &overflow)
        if overflow == 0 and not (number == -1 and PyErr_Occurred()):
            return number
    return _wire_py.as_int64(value, name)


cdef object _twin_error(object encode, tuple args):
    """The exception the pure-Python twin raises for ``args``, or None if it raises none."""
    try:
        encode(*args)
    except Exception as exc:
        return exc
    return None


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
        return _wire_py.read_varint(buf, offset)  # raises the twin's exact error
    return value, after


def frame(payload):
    """Return ``payload`` prefixed with its length as a varint (one delimited record)."""
    cdef const uint8_t[::1] view = memoryview(payload).cast("B")
    cdef Py_ssize_t n = view.shape[0]
    cdef RecordBuffer out = RecordBuffer(n + MAX_VARINT_BYTES)
    out._put_varint(<uint64_t>n)
    if n:
        out._put_bytes(<const char*>&view[0], n)
    return out.getvalue()


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


cdef class RecordBuffer:
    """RecordBuffer(capacity_bytes=65536)
--

    A growable byte buffer that length-delimited ``SensorData`` records are encoded into.

    Numpy owns the memory. ``write_to`` hands the bytes to a file descriptor
    and empties the buffer only once everything was written.
    """

    def __cinit__(self, Py_ssize_t capacity_bytes=65536):
        if capacity_bytes < 1:
            raise ValueError(f"capacity_bytes must be >= 1, got {capacity_bytes}")
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

    cdef int _value(self, object value, int depth) except -1:
        cdef Py_ssize_t start
        cdef Py_ssize_t nbytes
        cdef const char* utf8
        cdef double number
        if type(value) is float:
            number = PyFloat_AS_DOUBLE(value)
        elif isinstance(value, bool):
            self._put_byte(0x20)  # Value.bool_value
            self._put_byte(1 if value else 0)
            return 0
        elif isinstance(value, (int, float)):
            number = float(value)
        elif isinstance(value, str):
            utf8 = PyUnicode_AsUTF8AndSize(value, &nbytes)
            self._put_byte(0x1A)  # Value.string_value
            self._put_varint(<uint64_t>nbytes)
            self._put_bytes(utf8, nbytes)
            return 0
        elif value is None:
            self._put_byte(0x08)  # Value.null_value
            self._put_byte(0x00)
            return 0
        elif isinstance(value, (dict, Mapping)):
            self._put_byte(0x2A)  # Value.struct_value
            start = self._open_len()
            self._struct(value, depth + 1)
            self._close_len(start)
            return 0
        elif isinstance(value, (list, tuple)):
            self._put_byte(0x32)  # Value.list_value
            start = self._open_len()
            self._list(value, depth + 1)
            self._close_len(start)
            return 0
        elif isinstance(value, _np_bool):
            self._put_byte(0x20)
            self._put_byte(1 if value else 0)
            return 0
        elif isinstance(value, _np_number):
            number = float(value)
        else:
            raise TypeError("no Struct representation")  # the twin words the message
        self._reserve(9)
        self._data[self._size] = 0x11  # Value.number_value
        memcpy(self._data + self._size + 1, &number, 8)
        self._size += 9
        return 0

    cdef int _list(self, object values, int depth) except -1:
        cdef Py_ssize_t start
        if depth > MAX_NESTING_DEPTH:
            raise ValueError("nested too deep")
        for item in values:
            self._put_byte(0x0A)  # ListValue.values
            start = self._open_len()
            self._value(item, depth)
            self._close_len(start)
        return 0

    cdef int _struct(self, object fields, int depth) except -1:
        if depth > MAX_NESTING_DEPTH:
            raise ValueError("nested too deep")
        if type(fields) is dict:
            for key, item in (<dict>fields).items():
                self._entry(key, item, depth)
        else:
            for key, item in fields.items():
                self._entry(key, item, depth)
        return 0

    cdef int _entry(self, object key, object item, int depth) except -1:
        """One ``Struct.fields`` map entry: key, then value."""
        cdef Py_ssize_t entry_start, value_start, nbytes
        cdef const char* utf8
        cdef uint8_t* out
        cdef double number
        if type(key) is not str and not isinstance(key, str):
            raise TypeError("key is not a string")
        utf8 = PyUnicode_AsUTF8AndSize(key, &nbytes)
        if type(item) is float and nbytes <= SHORT_KEY_BYTES:
            # The common case, written in one go: every length fits in one byte.
            self._reserve(2 + FLOAT_ENTRY_OVERHEAD + nbytes)
            out = self._data + self._size
            out[0] = 0x0A  # Struct.fields entry
            out[1] = <uint8_t>(FLOAT_ENTRY_OVERHEAD + nbytes)
            out[2] = 0x0A  # entry key
            out[3] = <uint8_t>nbytes
            memcpy(out + 4, utf8, nbytes)
            out += 4 + nbytes
            out[0] = 0x12  # entry value
            out[1] = 9  # Value length
            out[2] = 0x11  # Value.number_value
            number = PyFloat_AS_DOUBLE(item)
            memcpy(out + 3, &number, 8)
            self._size += 2 + FLOAT_ENTRY_OVERHEAD + nbytes
            return 0
        self._put_byte(0x0A)  # Struct.fields entry
        entry_start = self._open_len()
        self._put_byte(0x0A)  # entry key
        self._put_varint(<uint64_t>nbytes)
        self._put_bytes(utf8, nbytes)
        self._put_byte(0x12)  # entry value
        value_start = self._open_len()
        self._value(item, depth)
        self._close_len(value_start)
        self._close_len(entry_start)
        return 0

    cdef int _wrapped_struct(self, object readings, object wrap_key) except -1:
        cdef Py_ssize_t entry_start, value_start, struct_start, nbytes
        cdef const char* utf8
        if not wrap_key:
            return self._struct(readings, 1)
        utf8 = PyUnicode_AsUTF8AndSize(wrap_key, &nbytes)
        self._put_byte(0x0A)
        entry_start = self._open_len()
        self._put_byte(0x0A)
        self._put_varint(<uint64_t>nbytes)
        self._put_bytes(utf8, nbytes)
        self._put_byte(0x12)
        value_start = self._open_len()
        self._put_byte(0x2A)
        struct_start = self._open_len()
        self._struct(readings, 2)
        self._close_len(struct_start)
        self._close_len(value_start)
        self._close_len(entry_start)
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
        template._wrapped_struct(dict.fromkeys(keys, 0.0), wrap_key)
        _number_slots(template._data, template._size, bool(wrap_key), self._tpl_slots, n)
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
        cdef bint full = False
        cdef bint is_dict = type(readings) is dict
        if not is_dict and not isinstance(readings, Mapping):
            raise TypeError(f"readings must be a dict, got {type(readings).__name__}")
        requested = _as_int64(time_requested_ns, "time_requested_ns")
        received = _as_int64(time_received_ns, "time_received_ns")
        if is_dict and self._from_template(<dict>readings, wrap_key, values):
            self._reserve(MAX_VARINT_BYTES + 2 + 2 * (2 + MAX_TIMESTAMP_BYTES) + 1
                          + MAX_VARINT_BYTES + self._tpl._size)
            _encode_rows(self._data, &self._size, &requested, &received, values,
                         len(self._tpl_keys), 0, 1, 0, -1, self._tpl._data, self._tpl._size,
                         self._tpl_slots, &full)
            return 0
        try:
            frame_start = self._open_len()
            self._metadata(requested, received, 0)
            self._put_byte(0x12)  # SensorData.struct
            struct_start = self._open_len()
            self._wrapped_struct(readings, wrap_key)
            self._close_len(struct_start)
            self._close_len(frame_start)
        except Exception:
            self._size = frame_start
            error = _twin_error(_wire_py._wrapped_struct, (readings, wrap_key))
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
        requested_arr, received_arr, values_arr = _wire_py.normalize_batch(
            time_requested_ns, time_received_ns, values, keys)
        cdef const int64_t[::1] requested = requested_arr
        cdef const int64_t[::1] received = received_arr
        cdef const double[:, ::1] matrix = values_arr
        cdef Py_ssize_t n_rows = matrix.shape[0]
        cdef Py_ssize_t n_cols = matrix.shape[1]
        if not 0 <= start_row <= n_rows:
            raise ValueError(f"start_row {start_row} is outside 0..{n_rows}")
        if n_rows == start_row:
            return start_row
        # One row's struct is the same bytes every time but for the doubles:
        # encode it once with zeros and remember where each double goes.
        template = RecordBuffer(64 + 32 * n_cols)
        template._wrapped_struct(dict.fromkeys(keys, 0.0), wrap_key)
        cdef Py_ssize_t struct_nbytes = template._size
        slots_arr = np.empty(max(n_cols, 1), dtype=np.intp)
        cdef Py_ssize_t[::1] slots = slots_arr
        _number_slots(template._data, struct_nbytes, bool(wrap_key), &slots[0], n_cols)
        cdef Py_ssize_t max_row_bytes = (
            MAX_VARINT_BYTES + 2 + 2 * (2 + MAX_TIMESTAMP_BYTES) + 1 + MAX_VARINT_BYTES
            + struct_nbytes)
        cdef Py_ssize_t row = start_row
        cdef Py_ssize_t chunk_end
        cdef bint full = False
        while row < n_rows and not full:
            chunk_end = min(n_rows, row + BATCH_CHUNK_ROWS)
            self._reserve((chunk_end - row) * max_row_bytes)
            with nogil:
                row = _encode_rows(self._data, &self._size, &requested[0], &received[0],
                                   &matrix[0, 0], n_cols, row, chunk_end, start_row,
                                   limit_bytes, template._data, struct_nbytes, &slots[0], &full)
        return row

    def append_binary_prefix(self, Py_ssize_t payload_nbytes, time_requested_ns,
                             time_received_ns, mime_type=0):
        """Encode a binary ``SensorData`` up to its payload, which ``write_to`` sends after it."""
        cdef int64_t requested
        cdef int64_t received
        cdef Py_ssize_t start = self._size
        cdef Py_ssize_t head_nbytes
        cdef int prefix
        if payload_nbytes < 0:
            raise ValueError(f"payload_nbytes must be >= 0, got {payload_nbytes}")
        if mime_type < 0:
            raise ValueError(f"mime_type must be >= 0, got {mime_type}")
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
        cdef Py_ssize_t total
        cdef Py_ssize_t written = 0
        cdef Py_ssize_t n
        cdef int error = 0
        cdef iovec parts[2]
        cdef int count
        if tail is not None:
            tail_view = memoryview(tail).cast("B")
            tail_nbytes = tail_view.shape[0]
            if tail_nbytes:
                tail_data = &tail_view[0]
        total = self._size + tail_nbytes
        with nogil:
            while written < total:
                count = 0
                if written < self._size:
                    parts[0].iov_base = <void*>(self._data + written)
                    parts[0].iov_len = <size_t>(self._size - written)
                    count = 1
                    if tail_nbytes:
                        parts[1].iov_base = <void*>tail_data
                        parts[1].iov_len = <size_t>tail_nbytes
                        count = 2
                else:
                    parts[0].iov_base = <void*>(tail_data + (written - self._size))
                    parts[0].iov_len = <size_t>(total - written)
                    count = 1
                n = writev(fd, parts, count)
                if n < 0:
                    if errno == EINTR:
                        continue
                    error = errno
                    break
                written += n
        if error:
            raise OSError(error, strerror(error).decode("utf-8", "replace"))
        self._size = 0
        return total

    def getvalue(self):
        """A copy of the buffered bytes."""
        return (<char*>self._data)[:self._size]

    def clear(self):
        """Drop the buffered bytes."""
        self._size = 0


cdef Py_ssize_t _skip_field_header(const uint8_t* data, Py_ssize_t pos, Py_ssize_t end,
                                   Py_ssize_t* body_end) except -1:
    """Step over a one-byte tag and a length varint; return the body offset, set its end."""
    cdef uint64_t length
    pos = get_varint(data, pos + 1, end, &length)
    if pos < 0:
        raise AssertionError("malformed batch template")
    body_end[0] = pos + <Py_ssize_t>length
    return pos


cdef int _number_slots(const uint8_t* data, Py_ssize_t nbytes, bint wrapped,
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


cdef Py_ssize_t _encode_rows(uint8_t* data, Py_ssize_t* size,
                             const int64_t* requested, const int64_t* received,
                             const double* matrix, Py_ssize_t n_cols, Py_ssize_t row,
                             Py_ssize_t stop_row, Py_ssize_t first_row, Py_ssize_t limit_bytes,
                             const uint8_t* template, Py_ssize_t struct_nbytes,
                             const Py_ssize_t* slots, bint* full) noexcept nogil:
    """Encode rows [row, stop_row) at ``data + size[0]`` (capacity reserved by the caller)."""
    cdef uint8_t stamp_requested[MAX_TIMESTAMP_BYTES]
    cdef uint8_t stamp_received[MAX_TIMESTAMP_BYTES]
    cdef Py_ssize_t n_requested, n_received, metadata_nbytes, record_nbytes, frame_nbytes
    cdef Py_ssize_t col
    cdef uint8_t* p
    cdef uint8_t* body
    cdef int struct_prefix = varint_size(<uint64_t>struct_nbytes)
    while row < stop_row:
        n_requested = put_timestamp_body(stamp_requested, requested[row])
        n_received = put_timestamp_body(stamp_received, received[row])
        metadata_nbytes = 2 + n_requested + 2 + n_received  # always < 128
        record_nbytes = 2 + metadata_nbytes + 1 + struct_prefix + struct_nbytes
        frame_nbytes = varint_size(<uint64_t>record_nbytes) + record_nbytes
        if row > first_row and limit_bytes >= 0 and size[0] + frame_nbytes > limit_bytes:
            full[0] = True
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
            memcpy(body + slots[col], &matrix[row * n_cols + col], 8)
        size[0] += frame_nbytes
        row += 1
    return row


# --- the upload scanner (server side) ------------------------------------------------------
# Mirrors ``_wire_py.scan_upload`` rule for rule; on any refusal the twin is re-run
# on the same body to raise its exact message.

cdef enum:
    WT_VARINT = 0
    WT_I64 = 1
    WT_LEN = 2
    WT_I32 = 5
    V_STRUCT = 0
    V_ENTRY = 1
    V_LIST = 2
    V_VALUE = 3
    MAX_MESSAGE_DEPTH = 100

cdef int64_t NS_MIN_S = (-9223372036854775807 - 1) // 1000000000 - 1  # floor, as Python's //
cdef int64_t NS_MAX_S = 9223372036854775807 // 1000000000


cdef inline Py_ssize_t read_field(const uint8_t* d, Py_ssize_t pos, Py_ssize_t end,
                                  uint64_t* number, int* wire_type,
                                  Py_ssize_t* start, Py_ssize_t* stop) noexcept nogil:
    """One field header at ``pos``; sets number, wire type and body span; -1 if malformed."""
    cdef uint64_t key, length, ignored
    pos = get_varint(d, pos, end, &key)
    if pos < 0:
        return -1
    number[0] = key >> 3
    wire_type[0] = <int>(key & 7)
    if number[0] == 0 or number[0] > 0x1FFFFFFF:
        return -1
    if wire_type[0] == WT_VARINT:
        start[0] = pos
        pos = get_varint(d, pos, end, &ignored)
        if pos < 0:
            return -1
        stop[0] = pos
    elif wire_type[0] == WT_I64 or wire_type[0] == WT_I32:
        start[0] = pos
        pos += 8 if wire_type[0] == WT_I64 else 4
        if pos > end:
            return -1
        stop[0] = pos
    elif wire_type[0] == WT_LEN:
        pos = get_varint(d, pos, end, &length)
        if pos < 0 or length > <uint64_t>(end - pos):
            return -1
        start[0] = pos
        stop[0] = pos + <Py_ssize_t>length
    else:
        return -1
    return stop[0]


cdef int check_values(const uint8_t* d, Py_ssize_t pos, Py_ssize_t end, int depth,
                      int kind) noexcept nogil:
    """Walk a Struct/entry/ListValue/Value message; 0 when sound, -1 when not."""
    cdef uint64_t number
    cdef int wt
    cdef Py_ssize_t start, stop
    if depth > MAX_MESSAGE_DEPTH:
        return -1
    while pos < end:
        if read_field(d, pos, end, &number, &wt, &start, &stop) < 0:
            return -1
        if kind == V_STRUCT and number == 1:
            if wt != WT_LEN or check_values(d, start, stop, depth + 1, V_ENTRY) < 0:
                return -1
        elif kind == V_ENTRY and number == 1:
            if wt != WT_LEN:
                return -1
        elif kind == V_ENTRY and number == 2:
            if wt != WT_LEN or check_values(d, start, stop, depth + 1, V_VALUE) < 0:
                return -1
        elif kind == V_LIST and number == 1:
            if wt != WT_LEN or check_values(d, start, stop, depth + 1, V_VALUE) < 0:
                return -1
        elif kind == V_VALUE:
            if number == 1 or number == 4:
                if wt != WT_VARINT:
                    return -1
            elif number == 2:
                if wt != WT_I64:
                    return -1
            elif number == 3:
                if wt != WT_LEN:
                    return -1
            elif number == 5:
                if wt != WT_LEN or check_values(d, start, stop, depth + 1, V_STRUCT) < 0:
                    return -1
            elif number == 6:
                if wt != WT_LEN or check_values(d, start, stop, depth + 1, V_LIST) < 0:
                    return -1
        pos = stop
    return 0


cdef int read_timestamp(const uint8_t* d, Py_ssize_t pos, Py_ssize_t end,
                        int64_t* ns) noexcept nogil:
    cdef uint64_t number
    cdef uint64_t value = 0
    cdef int wt
    cdef Py_ssize_t start, stop
    cdef int64_t seconds = 0
    cdef int64_t nanos = 0
    while pos < end:
        if read_field(d, pos, end, &number, &wt, &start, &stop) < 0:
            return -1
        if number == 1 or number == 2:
            if wt != WT_VARINT:
                return -1
            get_varint(d, start, stop, &value)
            if number == 1:
                seconds = <int64_t>value
            else:
                nanos = <int64_t>value
        pos = stop
    if nanos < 0 or nanos >= NS_PER_S:
        return -1
    if not (NS_MIN_S < seconds < NS_MAX_S):
        return -1
    ns[0] = seconds * NS_PER_S + nanos
    return 0


cdef int scan_reading(const uint8_t* d, Py_ssize_t pos, Py_ssize_t end, int8_t* kind,
                      int64_t* requested, int64_t* received) noexcept nogil:
    cdef uint64_t number, m_number
    cdef int wt, m_wt
    cdef Py_ssize_t start, stop, m_pos, m_start, m_stop
    cdef bint seen_metadata = False
    kind[0] = 0
    requested[0] = 0
    received[0] = 0
    while pos < end:
        if read_field(d, pos, end, &number, &wt, &start, &stop) < 0:
            return -1
        if number == 1:
            if wt != WT_LEN or seen_metadata:
                return -1
            seen_metadata = True
            m_pos = start
            while m_pos < stop:
                if read_field(d, m_pos, stop, &m_number, &m_wt, &m_start, &m_stop) < 0:
                    return -1
                if m_number == 1 or m_number == 2:
                    if m_wt != WT_LEN:
                        return -1
                    if read_timestamp(d, m_start, m_stop,
                                      requested if m_number == 1 else received) < 0:
                        return -1
                elif m_number == 3:
                    if m_wt != WT_VARINT:
                        return -1
                elif m_number == 4:
                    if m_wt != WT_LEN:
                        return -1
                m_pos = m_stop
        elif number == 2 or number == 3:
            if wt != WT_LEN or kind[0] != 0:
                return -1
            kind[0] = <int8_t>number
            if number == 2 and check_values(d, start, stop, 2, V_STRUCT) < 0:
                return -1
        pos = stop
    return 0


cdef Py_ssize_t scan_request(const uint8_t* d, Py_ssize_t end, Py_ssize_t* meta,
                             Py_ssize_t* records, bint* contiguous, int64_t* offsets,
                             int64_t* lengths, int8_t* kinds, int64_t* requested,
                             int64_t* received) noexcept nogil:
    """Walk the request; fill the arrays when not NULL; return the record count or -1."""
    cdef uint64_t number
    cdef int wt
    cdef Py_ssize_t start, stop
    cdef Py_ssize_t pos = 0
    cdef Py_ssize_t n = 0
    cdef int8_t kind
    cdef int64_t t_req, t_rec
    meta[0] = -1
    meta[1] = 0
    records[0] = -1
    records[1] = -1
    contiguous[0] = True
    while pos < end:
        if read_field(d, pos, end, &number, &wt, &start, &stop) < 0:
            return -1
        if number == 1:
            if wt != WT_LEN or meta[0] >= 0:
                return -1
            meta[0] = start
            meta[1] = stop - start
        elif number == 2:
            if wt != WT_LEN:
                return -1
            if offsets != NULL:
                if scan_reading(d, start, stop, &kind, &t_req, &t_rec) < 0:
                    return -1
                offsets[n] = start
                lengths[n] = stop - start
                kinds[n] = kind
                requested[n] = t_req
                received[n] = t_rec
            if records[0] < 0:
                records[0] = pos
            elif records[1] != pos:
                contiguous[0] = False
            records[1] = stop
            n += 1
        pos = stop
    if records[0] < 0:
        records[0] = end
        records[1] = end
    return n


def scan_upload(body):
    """Check and index a ``DataCaptureUploadRequest`` body without decoding it (see the twin)."""
    cdef const uint8_t[::1] view = memoryview(body).cast("B")
    cdef Py_ssize_t size = view.shape[0]
    cdef const uint8_t* d = &view[0] if size else NULL
    cdef Py_ssize_t meta[2]
    cdef Py_ssize_t records[2]
    cdef bint contiguous
    cdef Py_ssize_t count
    cdef int64_t[::1] offsets_v, lengths_v, requested_v, received_v
    cdef int8_t[::1] kinds_v
    with nogil:
        count = scan_request(d, size, meta, records, &contiguous,
                             NULL, NULL, NULL, NULL, NULL)
    if count >= 0:
        offsets = np.empty(count, dtype=np.int64)
        lengths = np.empty(count, dtype=np.int64)
        kinds = np.empty(count, dtype=np.int8)
        requested = np.empty(count, dtype=np.int64)
        received = np.empty(count, dtype=np.int64)
        if count:
            offsets_v = offsets
            lengths_v = lengths
            kinds_v = kinds
            requested_v = requested
            received_v = received
            with nogil:
                count = scan_request(d, size, meta, records, &contiguous, &offsets_v[0],
                                     &lengths_v[0], &kinds_v[0], &requested_v[0],
                                     &received_v[0])
    if count < 0:
        return _wire_py.scan_upload(body)  # raises the twin's exact error
    return (meta[0], meta[1], records[0], records[1], bool(contiguous),
            offsets, lengths, kinds, requested, received)


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
        return _wire_py.upload_body(head, buf, start, end)  # raises the twin's error
    with nogil:
        stop = _scan(data, start, end, -1, NULL, NULL, &count)
    if stop != end:
        return _wire_py.upload_body(head, buf, start, end)
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
