# A readings dict as a protobuf ``Struct``, encoded into a RecordBuffer: the general walk
# (any JSON-like value). Included by _wire.pyx at module level, so these are plain C
# functions of that module (RecordBuffer is final: every buf._put_* call is direct).
# The type and depth checks only say "no": _checks.reading_error words the refusal.

cdef int encode_value(RecordBuffer buf, object value, int depth) except -1:
    cdef Py_ssize_t start
    cdef Py_ssize_t nbytes
    cdef const char* utf8
    cdef double number
    if type(value) is float:
        number = PyFloat_AS_DOUBLE(value)
    elif isinstance(value, bool):
        buf._put_byte(0x20)  # Value.bool_value
        buf._put_byte(1 if value else 0)
        return 0
    elif isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        utf8 = PyUnicode_AsUTF8AndSize(value, &nbytes)
        buf._put_byte(0x1A)  # Value.string_value
        buf._put_varint(<uint64_t>nbytes)
        buf._put_bytes(utf8, nbytes)
        return 0
    elif value is None:
        buf._put_byte(0x08)  # Value.null_value
        buf._put_byte(0x00)
        return 0
    elif isinstance(value, (dict, Mapping)):
        buf._put_byte(0x2A)  # Value.struct_value
        start = buf._open_len()
        encode_struct(buf, value, depth + 1)
        buf._close_len(start)
        return 0
    elif isinstance(value, (list, tuple)):
        buf._put_byte(0x32)  # Value.list_value
        start = buf._open_len()
        encode_list(buf, value, depth + 1)
        buf._close_len(start)
        return 0
    elif isinstance(value, _np_bool):
        buf._put_byte(0x20)
        buf._put_byte(1 if value else 0)
        return 0
    elif isinstance(value, _np_number):
        number = float(value)
    else:
        raise TypeError("no Struct representation")  # _checks.reading_error words it
    buf._reserve(9)
    buf._data[buf._size] = 0x11  # Value.number_value
    memcpy(buf._data + buf._size + 1, &number, 8)
    buf._size += 9
    return 0

cdef int encode_list(RecordBuffer buf, object values, int depth) except -1:
    cdef Py_ssize_t start
    if depth > MAX_NESTING_DEPTH:
        raise ValueError("nested too deep")
    for item in values:
        buf._put_byte(0x0A)  # ListValue.values
        start = buf._open_len()
        encode_value(buf, item, depth)
        buf._close_len(start)
    return 0

cdef int encode_struct(RecordBuffer buf, object fields, int depth) except -1:
    if depth > MAX_NESTING_DEPTH:
        raise ValueError("nested too deep")
    if type(fields) is dict:
        for key, item in (<dict>fields).items():
            encode_entry(buf, key, item, depth)
    else:
        for key, item in fields.items():
            encode_entry(buf, key, item, depth)
    return 0

cdef int encode_entry(RecordBuffer buf, object key, object item, int depth) except -1:
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
        buf._reserve(2 + FLOAT_ENTRY_OVERHEAD + nbytes)
        out = buf._data + buf._size
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
        buf._size += 2 + FLOAT_ENTRY_OVERHEAD + nbytes
        return 0
    buf._put_byte(0x0A)  # Struct.fields entry
    entry_start = buf._open_len()
    buf._put_byte(0x0A)  # entry key
    buf._put_varint(<uint64_t>nbytes)
    buf._put_bytes(utf8, nbytes)
    buf._put_byte(0x12)  # entry value
    value_start = buf._open_len()
    encode_value(buf, item, depth)
    buf._close_len(value_start)
    buf._close_len(entry_start)
    return 0

cdef int encode_wrapped_struct(RecordBuffer buf, object readings, object wrap_key) except -1:
    cdef Py_ssize_t entry_start, value_start, struct_start, nbytes
    cdef const char* utf8
    if not wrap_key:
        return encode_struct(buf, readings, 1)
    utf8 = PyUnicode_AsUTF8AndSize(wrap_key, &nbytes)
    buf._put_byte(0x0A)
    entry_start = buf._open_len()
    buf._put_byte(0x0A)
    buf._put_varint(<uint64_t>nbytes)
    buf._put_bytes(utf8, nbytes)
    buf._put_byte(0x12)
    value_start = buf._open_len()
    buf._put_byte(0x2A)
    struct_start = buf._open_len()
    encode_struct(buf, readings, 2)
    buf._close_len(struct_start)
    buf._close_len(value_start)
    buf._close_len(entry_start)
    return 0
