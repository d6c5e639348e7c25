cimport cython
from cpython.pythread cimport PyThread_type_lock

from capsync.wire._wire cimport RecordBuffer


@cython.final
cdef class TabularAppender:
    # The per-reading state of one tabular CaptureStream, as C fields. The stream
    # (Python) owns policy and runs the slow paths through ``hooks`` with the lock held.
    cdef readonly RecordBuffer buffer       # encoded records not yet written
    cdef readonly object wrap_key           # struct wrapped as {wrap_key: readings}, or None
    cdef object hooks                       # the stream: _prepare_append, _file_full, _chunk_full
    cdef PyThread_type_lock _lock           # the stream's one lock (writers, flusher, stats)
    cdef public int fd                      # the open .prog file descriptor, -1 when none
    cdef public bint closed                 # the stream is closed: append goes to the slow path
    cdef public long long file_nbytes       # bytes of the open file handed to the OS
    cdef public long long file_records      # records in the open file, buffered ones included
    cdef public long long records           # records accepted since the stream opened
    cdef public long long bytes_written     # bytes handed to the OS, headers included
    cdef public long long files_completed   # files renamed to .capture
    cdef public long long write_errors      # failed write attempts
    cdef readonly long long max_file_size_bytes  # a file is completed once it reaches this
    cdef readonly long long max_buffered_bytes   # past this, append takes the slow path
    cdef readonly long long write_chunk_bytes    # buffered bytes handed to the OS at once

    cdef int _acquire(self) except -1
    cdef int _append(self, readings, time_requested_ns, time_received_ns) except -1
