cimport cython
from libc.stdint cimport int64_t, uint8_t, uint64_t

cdef enum:
    # Readings with at most this many float values may be encoded from a cached template.
    MAX_TEMPLATE_KEYS = 32


@cython.final
cdef class RecordBuffer:
    cdef object _array          # numpy uint8 array that owns the bytes
    cdef uint8_t* _data         # start of _array's memory (valid while _array lives)
    cdef Py_ssize_t _capacity   # bytes _array can hold
    cdef Py_ssize_t _size       # bytes in use (encoded, not yet written)
    # The template of the last all-float reading: its struct encoded with zeros, and where
    # each double goes. A reading with the same key objects in the same order, all floats,
    # and the same wrap key is a copy of it with the numbers patched in.
    cdef tuple _tpl_keys        # the key objects, in order (None: no template yet)
    cdef object _tpl_wrap_key   # the wrap key it was built with
    cdef RecordBuffer _tpl      # the struct body (wrapped when _tpl_wrap_key is set)
    cdef Py_ssize_t _tpl_slots[MAX_TEMPLATE_KEYS]  # offset of each double in _tpl

    cdef int _bind(self) except -1
    cdef int _reserve(self, Py_ssize_t extra_bytes) except -1
    cdef int _put_byte(self, uint8_t value) except -1
    cdef int _put_varint(self, uint64_t value) except -1
    cdef int _put_bytes(self, const char* data, Py_ssize_t nbytes) except -1
    cdef Py_ssize_t _open_len(self) except -1
    cdef int _close_len(self, Py_ssize_t start) except -1
    cdef int _timestamp(self, int64_t ns) except -1
    cdef int _metadata(self, int64_t time_requested_ns, int64_t time_received_ns,
                       uint64_t mime_type) except -1
    cdef bint _from_template(self, dict readings, object wrap_key, double* values) except -1
    cdef int _build_template(self, dict readings, object wrap_key) except -1
    cdef int _append_readings(self, object readings, object time_requested_ns,
                              object time_received_ns, object wrap_key) except -1
