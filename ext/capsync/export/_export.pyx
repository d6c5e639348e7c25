# cython: language_level=3
"""Tabular capture frames as MCAP Message records with JSON data (compiled).

The twin of :func:`capsync.export.frames.tabular_message_records`, with the
same output byte for byte and the same errors: see that module for the JSON
and time rules. Strings that are not plain ASCII go through the shared
``_json_text.json_string`` (so both escape and replace invalid UTF-8 alike). Numbers are
written from Ryu's shortest round-trip digits (vendored in ``ryu/``) laid out
as ``repr(float)`` lays them out: the twin's ``float.__repr__`` costs several
times the rest of a reading's encoding (tests/test_export_mcap.py compares the
two on tens of thousands of doubles, random bit patterns and edge cases). The string
and number writers live in ``_json_text.pxi`` (included at module level), the frame
walk and the Message records here.
"""

import numpy as np

from capsync.export._json_text import json_string as _py_json_string

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.object cimport PyObject
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy, memset


DEF MAX_DEPTH = 100
DEF HEAD_BYTES = 31
cdef int64_t MAX_NS = 9223372036854775807
cdef int64_t MAX_SECONDS = 9223372036


DEF TEMPLATE_SLOTS = 64
DEF TEMPLATE_WIRE_BYTES = 1024
DEF TEMPLATE_JSON_BYTES = 4096


# A reading's struct as wire bytes and JSON text, and where each number that was
# written sits in both (see _template.pxi).
cdef struct Template:
    bint recording         # _value notes the numbers it writes
    bint usable            # holds a reading (not too large, not too many numbers)
    Py_ssize_t wire_base   # while recording: where the struct's wire bytes start
    Py_ssize_t json_base   # while recording: where its JSON text starts in the output
    Py_ssize_t wire_len
    Py_ssize_t json_len
    int slots              # numbers noted (more than TEMPLATE_SLOTS: not usable)
    Py_ssize_t wire_at[TEMPLATE_SLOTS]    # a number's 8 bytes in the wire bytes
    Py_ssize_t json_at[TEMPLATE_SLOTS]    # where its text starts in the JSON
    Py_ssize_t json_stop[TEMPLATE_SLOTS]  # and ends
    uint8_t wire[TEMPLATE_WIRE_BYTES]
    char json[TEMPLATE_JSON_BYTES]


cdef struct Out:
    char* data        # the buffer of `owner`
    Py_ssize_t size   # bytes in use
    Py_ssize_t cap    # bytes allocated
    PyObject* owner   # the bytearray written into (its size is `cap`)
    Template* tpl     # the template being recorded into, or NULL


cdef inline int _reserve(Out* out, Py_ssize_t extra) except -1 nogil:
    if out.size + extra <= out.cap:
        return 0
    return _grow(out, extra)


cdef int _grow(Out* out, Py_ssize_t extra) except -1 nogil:
    """An eighth to spare, not double: a chunk's buffer is reused whole."""
    cdef Py_ssize_t need = out.size + extra
    cdef Py_ssize_t cap = max(need + (need >> 3), 65536)
    with gil:
        PyByteArray_Resize(<object>out.owner, cap)
        out.data = PyByteArray_AS_STRING(<object>out.owner)
    out.cap = cap
    return 0


cdef inline int _put(Out* out, const char* data, Py_ssize_t n) except -1 nogil:
    _reserve(out, n)
    memcpy(out.data + out.size, data, n)
    out.size += n
    return 0


cdef inline int _put_byte(Out* out, char c) except -1 nogil:
    _reserve(out, 1)
    out.data[out.size] = c
    out.size += 1
    return 0


cdef inline int _varint(const uint8_t* buf, Py_ssize_t* pos, Py_ssize_t end,
                        uint64_t* value) except -1 nogil:
    if pos[0] < end and buf[pos[0]] < 0x80:  # keys and short lengths: one byte
        value[0] = buf[pos[0]]
        pos[0] += 1
        return 0
    return _varint_long(buf, pos, end, value)


cdef int _varint_long(const uint8_t* buf, Py_ssize_t* pos, Py_ssize_t end,
                      uint64_t* value) except -1 nogil:
    cdef uint64_t result = 0
    cdef int shift = 0
    cdef uint8_t byte
    while True:
        if pos[0] >= end:
            raise ValueError("truncated varint")
        byte = buf[pos[0]]
        pos[0] += 1
        if shift < 64:
            result |= (<uint64_t>(byte & 0x7F)) << shift
        if byte < 0x80:
            value[0] = result
            return 0
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


cdef int _skip(const uint8_t* buf, Py_ssize_t* pos, Py_ssize_t end,
               uint64_t wire_type) except -1 nogil:
    cdef uint64_t length
    if wire_type == 0:
        _varint(buf, pos, end, &length)
        return 0
    if wire_type == 1:
        pos[0] += 8
    elif wire_type == 2:
        _varint(buf, pos, end, &length)
        if length > <uint64_t>(end - pos[0]) + 0:
            pos[0] = end + 1
        else:
            pos[0] += <Py_ssize_t>length
    elif wire_type == 5:
        pos[0] += 4
    else:
        raise ValueError(f"unsupported wire type {wire_type}")
    if pos[0] > end:
        raise ValueError("field runs past the end of its message")
    return 0


cdef inline int _field(const uint8_t* buf, Py_ssize_t* pos, Py_ssize_t end,
                       Py_ssize_t* start, Py_ssize_t* stop) except -1 nogil:
    cdef uint64_t length
    _varint(buf, pos, end, &length)
    if length > <uint64_t>(end - pos[0]):
        raise ValueError("field runs past the end of its message")
    start[0] = pos[0]
    stop[0] = pos[0] + <Py_ssize_t>length
    return 0


cdef int64_t _timestamp(const uint8_t* buf, Py_ssize_t pos,
                        Py_ssize_t end) except? -1 nogil:
    cdef int64_t seconds = 0, nanos = 0, base
    cdef uint64_t key, value
    while pos < end:
        _varint(buf, &pos, end, &key)
        if key == 0x08:
            _varint(buf, &pos, end, &value)
            seconds = <int64_t>value
        elif key == 0x10:
            _varint(buf, &pos, end, &value)
            nanos = <int64_t>value
        else:
            _skip(buf, &pos, end, key & 7)
    if seconds > MAX_SECONDS:
        return MAX_NS
    if seconds < -MAX_SECONDS:
        return 0
    base = seconds * 1000000000
    if nanos > 0 and base > MAX_NS - nanos:
        return MAX_NS
    if nanos < 0 and base < (-MAX_NS - 1) - nanos:
        return 0
    base += nanos
    return base if base > 0 else 0


cdef int _metadata(const uint8_t* buf, Py_ssize_t pos, Py_ssize_t end,
                   int64_t* requested, int64_t* received) except -1 nogil:
    cdef uint64_t key
    cdef Py_ssize_t start, stop
    requested[0] = 0
    received[0] = 0
    while pos < end:
        _varint(buf, &pos, end, &key)
        if key == 0x0A or key == 0x12:
            _field(buf, &pos, end, &start, &stop)
            if key == 0x0A:
                requested[0] = _timestamp(buf, start, stop)
            else:
                received[0] = _timestamp(buf, start, stop)
            pos = stop
        else:
            _skip(buf, &pos, end, key & 7)
    return 0


# JSON text of one string or one double: _string and _double.
include "_json_text.pxi"


cdef int _struct(const uint8_t* buf, Py_ssize_t pos, Py_ssize_t end, int depth,
                 Out* out) except -1 nogil:
    cdef uint64_t key, entry_key
    cdef Py_ssize_t start, stop, name_start, name_stop, value_start, value_stop
    cdef bint first = True, has_name, has_value
    if depth > MAX_DEPTH:
        raise ValueError(f"struct nested deeper than {MAX_DEPTH}")
    _put_byte(out, b'{')
    while pos < end:
        _varint(buf, &pos, end, &key)
        if key != 0x0A:
            _skip(buf, &pos, end, key & 7)
            continue
        _field(buf, &pos, end, &start, &stop)
        pos = stop
        has_name = has_value = False
        while start < stop:
            _varint(buf, &start, stop, &entry_key)
            if entry_key == 0x0A:
                _field(buf, &start, stop, &name_start, &name_stop)
                has_name = True
                start = name_stop
            elif entry_key == 0x12:
                _field(buf, &start, stop, &value_start, &value_stop)
                has_value = True
                start = value_stop
            else:
                _skip(buf, &start, stop, entry_key & 7)
        if not first:
            _put_byte(out, b',')
        first = False
        if has_name:
            _string(buf, name_start, name_stop, out)
        else:
            _put(out, b'""', 2)
        _put_byte(out, b':')
        if has_value:
            _value(buf, value_start, value_stop, depth + 1, out)
        else:
            _put(out, b"null", 4)
    _put_byte(out, b'}')
    return 0


cdef int _list(const uint8_t* buf, Py_ssize_t pos, Py_ssize_t end, int depth,
               Out* out) except -1 nogil:
    cdef uint64_t key
    cdef Py_ssize_t start, stop
    cdef bint first = True
    if depth > MAX_DEPTH:
        raise ValueError(f"struct nested deeper than {MAX_DEPTH}")
    _put_byte(out, b'[')
    while pos < end:
        _varint(buf, &pos, end, &key)
        if key != 0x0A:
            _skip(buf, &pos, end, key & 7)
            continue
        _field(buf, &pos, end, &start, &stop)
        pos = stop
        if not first:
            _put_byte(out, b',')
        first = False
        _value(buf, start, stop, depth + 1, out)
    _put_byte(out, b']')
    return 0


cdef int _value(const uint8_t* buf, Py_ssize_t pos, Py_ssize_t end, int depth,
                Out* out) except -1 nogil:
    cdef uint64_t key, value, kind = 0, flag = 0
    cdef Py_ssize_t kind_start = 0, kind_stop = 0
    cdef double number
    cdef Template* tpl
    while pos < end:
        _varint(buf, &pos, end, &key)
        if key == 0x11:
            if end - pos < 8:
                raise ValueError("truncated double")
            kind = key
            kind_start = pos
            pos += 8
        elif key == 0x08 or key == 0x20:
            _varint(buf, &pos, end, &value)
            kind = key
            flag = value
        elif key == 0x1A or key == 0x2A or key == 0x32:
            _field(buf, &pos, end, &kind_start, &kind_stop)
            kind = key
            pos = kind_stop
        else:
            _skip(buf, &pos, end, key & 7)
    if kind == 0x11:
        memcpy(&number, buf + kind_start, 8)
        tpl = out.tpl
        if tpl != NULL and tpl.recording:
            _note_number(tpl, kind_start, out.size)
        if number - number == 0:
            _double(number, out)
        else:
            _put(out, b"null", 4)
        if tpl != NULL and tpl.recording and tpl.slots <= TEMPLATE_SLOTS:
            tpl.json_stop[tpl.slots - 1] = out.size - tpl.json_base
    elif kind == 0x20:
        if flag:
            _put(out, b"true", 4)
        else:
            _put(out, b"false", 5)
    elif kind == 0x1A:
        _string(buf, kind_start, kind_stop, out)
    elif kind == 0x2A:
        _struct(buf, kind_start, kind_stop, depth, out)
    elif kind == 0x32:
        _list(buf, kind_start, kind_stop, depth, out)
    else:
        _put(out, b"null", 4)
    return 0


# A reading laid out as the one before it: its JSON from that one's, numbers rewritten.
include "_template.pxi"


cdef inline void _le(char* at, uint64_t value, int nbytes) noexcept nogil:
    cdef int i
    for i in range(nbytes):
        at[i] = <char>((value >> (8 * i)) & 0xFF)


cdef Py_ssize_t _records(const uint8_t* buf, Py_ssize_t buf_len, const int64_t[::1] offsets,
                         const int64_t[::1] lengths, uint64_t channel_id, uint64_t sequence,
                         uint64_t[::1] log_times, uint64_t[::1] starts,
                         Out* out) except -1 nogil:
    """Writes the records."""
    cdef Py_ssize_t i, pos, end, start, stop, base, data_start = 0, data_stop = 0
    cdef uint64_t key, data_key
    cdef int64_t requested, received
    cdef char* head
    for i in range(offsets.shape[0]):
        pos = offsets[i]
        end = pos + lengths[i]
        if pos < 0 or end > buf_len or end < pos:
            raise ValueError(f"record at offset {pos} runs past the end of the file")
        requested = received = 0
        data_key = 0
        while pos < end:
            _varint(buf, &pos, end, &key)
            if key == 0x0A or key == 0x12 or key == 0x1A:
                _field(buf, &pos, end, &start, &stop)
                if key == 0x0A:
                    _metadata(buf, start, stop, &requested, &received)
                else:
                    data_key = key
                    data_start = start
                    data_stop = stop
                pos = stop
            else:
                _skip(buf, &pos, end, key & 7)
        if data_key == 0x1A:
            raise ValueError(
                f"record at offset {offsets[i]} holds binary data in a tabular file")
        base = out.size
        _reserve(out, HEAD_BYTES)
        out.size += HEAD_BYTES
        if data_key == 0x12:
            _struct_json(buf, data_start, data_stop, out)
        else:
            _put(out, b"{}", 2)
        head = out.data + base
        head[0] = 0x05
        _le(head + 1, <uint64_t>(out.size - base - 9), 8)
        _le(head + 9, channel_id, 2)
        _le(head + 11, (sequence + <uint64_t>i) & <uint64_t>0xFFFFFFFF, 4)
        _le(head + 15, <uint64_t>received, 8)
        _le(head + 23, <uint64_t>requested, 8)
        log_times[i] = <uint64_t>received
        starts[i] = <uint64_t>base
    return 0


def tabular_message_records(buf, offsets, lengths, channel_id, first_sequence):
    """MCAP Message records for the tabular frames at ``offsets``/``lengths`` of ``buf``:
    ``(records, log_times, record_offsets)`` (see the twin in capsync.export.frames)."""
    out = bytearray()
    size, log_times, starts = tabular_records_into(
        out, buf, offsets, lengths, channel_id, first_sequence
    )
    return bytes(out[:size]), log_times, starts


def tabular_records_into(bytearray out not None, buf, offsets, lengths, channel_id,
                         first_sequence):
    """The records of ``tabular_message_records`` written into ``out`` from its start (a
    reused buffer: it grows when they pass its end, and may be left longer than them):
    ``(size, log_times, record_offsets)`` (see the twin in capsync.export.frames)."""
    cdef const uint8_t[::1] view = buf
    cdef const int64_t[::1] offs = np.ascontiguousarray(offsets, dtype=np.int64)
    cdef const int64_t[::1] lens = np.ascontiguousarray(lengths, dtype=np.int64)
    if offs.shape[0] != lens.shape[0]:
        raise ValueError("offsets and lengths differ in length")
    n = offs.shape[0]
    log_array = np.empty(n, dtype=np.uint64)
    start_array = np.empty(n, dtype=np.uint64)
    cdef uint64_t[::1] log_times = log_array
    cdef uint64_t[::1] starts = start_array
    cdef Out target
    cdef Template template  # about 7 KB, on this call's stack: one per thread at a time
    template.usable = template.recording = False
    target.tpl = &template
    cdef Py_ssize_t i, guess = 0
    cdef const uint8_t* data = &view[0] if view.shape[0] else <const uint8_t*>b""
    target.size = 0
    target.cap = PyByteArray_GET_SIZE(out)
    target.data = PyByteArray_AS_STRING(out)
    target.owner = <PyObject*>out
    for i in range(n):  # JSON of numbers is about twice their wire size: grow once, if at all
        guess += HEAD_BYTES + 2 * lens[i]
    _reserve(&target, min(guess, 64 << 20))
    cdef uint64_t channel = channel_id, sequence = first_sequence
    with nogil:  # a pool of threads encodes a capture's batches side by side
        _records(data, view.shape[0], offs, lens, channel, sequence, log_times, starts,
                 &target)
    return target.size, log_array, start_array
