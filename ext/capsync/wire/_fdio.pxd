# cython: language_level=3
"""Handing bytes to a file descriptor without the GIL (inline, no module; cimported by _wire)."""

from libc.errno cimport EINTR, errno
from libc.stdint cimport uint8_t
from posix.uio cimport iovec, writev


cdef inline int write_all(int fd, const uint8_t* head, Py_ssize_t head_nbytes,
                          const uint8_t* tail, Py_ssize_t tail_nbytes) noexcept nogil:
    """Write ``head`` then ``tail`` to ``fd`` with ``writev``, retrying short writes and
    ``EINTR``; return 0, or the ``errno`` of the write that failed."""
    cdef Py_ssize_t total = head_nbytes + tail_nbytes
    cdef Py_ssize_t written = 0
    cdef Py_ssize_t n
    cdef iovec parts[2]
    cdef int count
    while written < total:
        if written < head_nbytes:
            parts[0].iov_base = <void*>(head + written)
            parts[0].iov_len = <size_t>(head_nbytes - written)
            count = 1
            if tail_nbytes:
                parts[1].iov_base = <void*>tail
                parts[1].iov_len = <size_t>tail_nbytes
                count = 2
        else:
            parts[0].iov_base = <void*>(tail + (written - head_nbytes))
            parts[0].iov_len = <size_t>(total - written)
            count = 1
        n = writev(fd, parts, count)
        if n < 0:
            if errno == EINTR:
                continue
            return errno
        written += n
    return 0
