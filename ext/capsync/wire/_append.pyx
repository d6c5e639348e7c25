# cython: language_level=3
"""Compiled per-reading path of a tabular ``CaptureStream``: one call, one lock, C counters.

``TabularAppender.append`` takes the stream's lock, encodes the reading into
the record buffer and counts it; only when the stream has no open file, is
closed, holds too much unwritten data, filled a write chunk or filled its
file does it call back into the stream (Python, lock still held). The twin is
``capsync.wire._append_py``.
"""

from cpython.pythread cimport (
    NOWAIT_LOCK,
    WAIT_LOCK,
    PyThread_acquire_lock,
    PyThread_allocate_lock,
    PyThread_free_lock,
    PyThread_release_lock,
)
from posix.time cimport CLOCK_REALTIME, clock_gettime, timespec

from capsync.wire._wire cimport RecordBuffer

# The API, the same names as the twin's ``__all__`` (tests/test_append.py checks it).
__all__ = ["TabularAppender"]


cdef inline object _now_ns():
    cdef timespec now_ts
    clock_gettime(CLOCK_REALTIME, &now_ts)
    return now_ts.tv_sec * 1000000000LL + now_ts.tv_nsec


cdef class TabularAppender:
    """Appends tabular readings to ``buffer``; see the module docstring."""

    def __cinit__(self, hooks, RecordBuffer buffer, wrap_key, long long max_file_size_bytes,
                  long long max_buffered_bytes, long long write_chunk_bytes):
        self._lock = PyThread_allocate_lock()
        if self._lock == NULL:
            raise MemoryError("cannot allocate a lock")
        self.hooks = hooks
        self.buffer = buffer
        self.wrap_key = wrap_key
        self.fd = -1
        self.max_file_size_bytes = max_file_size_bytes
        self.max_buffered_bytes = max_buffered_bytes
        self.write_chunk_bytes = write_chunk_bytes

    def __dealloc__(self):
        if self._lock != NULL:
            PyThread_free_lock(self._lock)

    cdef int _acquire(self) except -1:
        if not PyThread_acquire_lock(self._lock, NOWAIT_LOCK):
            with nogil:
                PyThread_acquire_lock(self._lock, WAIT_LOCK)
        return 0

    def append(self, readings, time_requested_ns=None, time_received_ns=None):
        """Append one tabular reading (a dict of JSON-like values)."""
        self._append(readings, time_requested_ns, time_received_ns)

    cdef int _append(self, readings, time_requested_ns, time_received_ns) except -1:
        cdef Py_ssize_t buffered
        if time_requested_ns is None or time_received_ns is None:
            now = _now_ns()
            if time_requested_ns is None:
                time_requested_ns = now
            if time_received_ns is None:
                time_received_ns = now
        self._acquire()
        try:
            buffer = self.buffer
            if self.fd < 0 or self.closed or buffer._size >= self.max_buffered_bytes:
                self.hooks._prepare_append()
            buffer._append_readings(readings, time_requested_ns, time_received_ns, self.wrap_key)
            self.records += 1
            self.file_records += 1
            buffered = buffer._size
            if self.file_nbytes + buffered >= self.max_file_size_bytes:
                self.hooks._file_full()
            elif buffered >= self.write_chunk_bytes:
                self.hooks._chunk_full()
        finally:
            PyThread_release_lock(self._lock)
        return 0

    def append_queued(self, queue, Py_ssize_t limit):
        """Append readings from the head of ``queue`` (a deque of ``(readings,
        time_requested_ns, time_received_ns)`` tuples), popping each once it is stored.

        Stops after ``limit`` readings, at an empty queue, or at an item whose readings
        is not a ``dict`` (left at the head for the caller); an error raised by an append
        leaves its item at the head too. Returns how many were appended.
        """
        cdef Py_ssize_t count = 0
        cdef tuple item
        while count < limit and queue:
            item = <tuple?>queue[0]
            readings = item[0]
            if type(readings) is not dict:
                break
            self._append(readings, item[1], item[2])
            queue.popleft()
            count += 1
        return count

    def acquire(self, bint blocking=True):
        """Take the stream's lock; with ``blocking=False`` only if it is free (True if taken)."""
        if blocking:
            self._acquire()
            return True
        return bool(PyThread_acquire_lock(self._lock, NOWAIT_LOCK))

    def release(self):
        """Release the stream's lock."""
        PyThread_release_lock(self._lock)

    def __enter__(self):
        self._acquire()
        return self

    def __exit__(self, *exc_info):
        PyThread_release_lock(self._lock)
