# cython: language_level=3
"""Compiled upload-body scanner (server side); the twin is ``capsync.wire._upload_py``.

The rules are ``capsync.wire._upload_checks``'s, rule for rule, run here in C
without the GIL. On any refusal this module runs those Python rules on the same
body to raise their exact message (the C walk only says "no").
"""

import numpy as np

from capsync.wire._upload_checks import walk_upload

# The API, the same names as the twin's ``__all__`` (tests/test_wire_parity.py checks it).
__all__ = ["scan_upload"]

from libc.stdint cimport int8_t, int64_t, uint8_t, uint64_t

from capsync.wire._varint cimport NS_PER_S, get_varint

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


cdef bint valid_utf8(const uint8_t* s, Py_ssize_t n) noexcept nogil:
    """True when ``s[:n]`` is UTF-8 as protobuf (and Python's strict decoder) define it:
    shortest form only, no surrogates, nothing past U+10FFFF."""
    cdef Py_ssize_t i = 0
    cdef uint8_t c, lo, hi
    cdef int more, k
    while i < n:
        c = s[i]
        if c < 0x80:
            i += 1
            continue
        lo = 0x80
        hi = 0xBF
        if 0xC2 <= c <= 0xDF:
            more = 1
        elif 0xE0 <= c <= 0xEF:
            more = 2
            if c == 0xE0:
                lo = 0xA0
            elif c == 0xED:
                hi = 0x9F
        elif 0xF0 <= c <= 0xF4:
            more = 3
            if c == 0xF0:
                lo = 0x90
            elif c == 0xF4:
                hi = 0x8F
        else:
            return False
        if i + more >= n:  # the sequence is cut
            return False
        if not (lo <= s[i + 1] <= hi):
            return False
        for k in range(2, more + 1):
            if not (0x80 <= s[i + k] <= 0xBF):
                return False
        i += more + 1
    return True


cdef int check_metadata(const uint8_t* d, Py_ssize_t pos, Py_ssize_t end) noexcept nogil:
    """UploadMetadata's string fields (1, 2, 3, 5, 7, 9, 10, 12, 13) are valid UTF-8."""
    cdef uint64_t number
    cdef int wt
    cdef Py_ssize_t start, stop
    while pos < end:
        if read_field(d, pos, end, &number, &wt, &start, &stop) < 0:
            return -1
        if wt == WT_LEN and (number == 1 or number == 2 or number == 3 or number == 5
                             or number == 7 or number == 9 or number == 10 or number == 12
                             or number == 13):
            if not valid_utf8(d + start, stop - start):
                return -1
        pos = stop
    return 0


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
            if wt != WT_LEN or not valid_utf8(d + start, stop - start):
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
                if wt != WT_LEN or not valid_utf8(d + start, stop - start):
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
            if check_metadata(d, start, stop) < 0:
                return -1
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
        return _worded(body)
    return (meta[0], meta[1], records[0], records[1], bool(contiguous),
            offsets, lengths, kinds, requested, received)


def _worded(body):
    """Run the Python rules on a body the C walk refused: they raise the exact message."""
    with memoryview(body) as raw, raw.cast("B") as view:
        meta_offset, meta_length, start, end, contiguous, *arrays = walk_upload(view)
    offsets, lengths, kinds, requested, received = arrays
    return (meta_offset, meta_length, start, end, contiguous,
            np.array(offsets, dtype=np.int64), np.array(lengths, dtype=np.int64),
            np.array(kinds, dtype=np.int8), np.array(requested, dtype=np.int64),
            np.array(received, dtype=np.int64))
