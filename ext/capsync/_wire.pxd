cimport cython
from libc.stdint cimport int64_t, uint8_t, uint64_t


@cython.final
cdef class RecordBuffer:
    cdef object _array          # numpy uint8 array that owns the bytes
    cdef uint8_t* _data         # start of _array's memory (valid while _array lives)
    cdef Py_ssize_t _capacity   # bytes _array can hold
    cdef Py_ssize_t _size       # bytes in use (encoded, not yet written)

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
    cdef int _value(self, object value, int depth) except -1
    cdef int _list(self, object values, int depth) except -1
    cdef int _struct(self, object fields, int depth) except -1
    cdef int _entry(self, object key, object item, int depth) except -1
    cdef int _wrapped_struct(self, object readings, object wrap_key) except -1
