# Readings laid out alike, for _export.pyx (included there after _value, which notes the
# numbers it writes into a Template while one is being recorded).
#
# A capture file's readings are mostly the same struct with other numbers: the same keys,
# the same wire bytes but for each number's 8. The JSON of such a reading is the previous
# one's with those numbers' text rewritten: _struct_json checks that every wire byte but
# those 8s is the template's (the last reading encoded the long way) and if so copies the
# template's text between the numbers; if not, it encodes the struct the long way and
# records it as the new template. Both ways give the same text: the encoder reads a
# number's 8 bytes only to write its text, and the rest of its output is a function of
# the other bytes alone, which are the template's.


cdef inline void _note_number(Template* tpl, Py_ssize_t wire_at,
                              Py_ssize_t json_at) noexcept nogil:
    if tpl.slots < TEMPLATE_SLOTS:
        tpl.wire_at[tpl.slots] = wire_at - tpl.wire_base
        tpl.json_at[tpl.slots] = json_at - tpl.json_base
    tpl.slots += 1


cdef inline bint _matches(const Template* tpl, const uint8_t* wire,
                          Py_ssize_t wire_len) noexcept nogil:
    cdef Py_ssize_t prev = 0
    cdef int k
    if not tpl.usable or wire_len != tpl.wire_len:
        return False
    for k in range(tpl.slots):
        if memcmp(wire + prev, tpl.wire + prev, tpl.wire_at[k] - prev) != 0:
            return False
        prev = tpl.wire_at[k] + 8
    return memcmp(wire + prev, tpl.wire + prev, wire_len - prev) == 0


cdef int _from_template(const Template* tpl, const uint8_t* wire, Out* out) except -1 nogil:
    cdef Py_ssize_t prev = 0
    cdef int k
    cdef double number
    for k in range(tpl.slots):
        _put(out, tpl.json + prev, tpl.json_at[k] - prev)
        memcpy(&number, wire + tpl.wire_at[k], 8)
        if number - number == 0:
            _double(number, out)
        else:
            _put(out, b"null", 4)
        prev = tpl.json_stop[k]
    return _put(out, tpl.json + prev, tpl.json_len - prev)


cdef int _struct_json(const uint8_t* buf, Py_ssize_t start, Py_ssize_t stop,
                      Out* out) except -1 nogil:
    """The reading's struct at ``buf[start:stop]`` as JSON, from the template when it
    matches, else the long way (then the new template)."""
    cdef Template* tpl = out.tpl
    if _matches(tpl, buf + start, stop - start):
        return _from_template(tpl, buf + start, out)
    tpl.usable = False
    tpl.recording = True
    tpl.slots = 0
    tpl.wire_base = start
    tpl.json_base = out.size
    _struct(buf, start, stop, 0, out)
    tpl.recording = False
    tpl.wire_len = stop - start
    tpl.json_len = out.size - tpl.json_base
    if (tpl.slots <= TEMPLATE_SLOTS and tpl.wire_len <= TEMPLATE_WIRE_BYTES
            and tpl.json_len <= TEMPLATE_JSON_BYTES):
        memcpy(tpl.wire, buf + start, tpl.wire_len)
        memcpy(tpl.json, out.data + tpl.json_base, tpl.json_len)
        tpl.usable = True
    return 0
