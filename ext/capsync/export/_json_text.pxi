# JSON text of a protobuf string and of a finite double, for _export.pyx (included
# there, at module level, after the Out buffer helpers it writes through). The twin's
# counterparts are capsync.export._json_text.json_string and float.__repr__.

cdef const char* HEX = b"0123456789abcdef"


# Ryu (vendored in ryu/, see its README): the shortest digits that read back as the same
# double, which are the digits repr() writes, at a few percent of repr()'s cost.
cdef extern from "ryu/d2s_impl.h":
    ctypedef struct floating_decimal_64:
        uint64_t mantissa
        int32_t exponent
    floating_decimal_64 d2d(uint64_t ieee_mantissa, uint32_t ieee_exponent) nogil
    bint d2d_small_int(uint64_t ieee_mantissa, uint32_t ieee_exponent,
                       floating_decimal_64* v) nogil
    const char DIGIT_TABLE[200]


cdef extern from *:
    """
    static const uint64_t CAPSYNC_POW10[18] = {
        1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
        100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL,
        10000000000000ULL, 100000000000000ULL, 1000000000000000ULL,
        10000000000000000ULL, 100000000000000000ULL};
    /* digits of 0 < v < 10**17 without a branch per length: log10 from the bit length
       (1233 / 4096 ~ log10(2)), one off at most, then one comparison */
    static inline int capsync_digit_count(uint64_t v) {
        int guess = ((64 - __builtin_clzll(v | 1)) * 1233) >> 12;
        return guess + (v >= CAPSYNC_POW10[guess]);
    }
    """
    int _digit_count "capsync_digit_count"(uint64_t v) nogil


cdef inline void _eight_digits(uint32_t value, char* at) noexcept nogil:
    """``value`` (< 10**8) as eight digits, leading zeros kept, two at a time."""
    cdef uint32_t high = value // 10000, low = value % 10000
    memcpy(at, DIGIT_TABLE + 2 * (high // 100), 2)
    memcpy(at + 2, DIGIT_TABLE + 2 * (high % 100), 2)
    memcpy(at + 4, DIGIT_TABLE + 2 * (low // 100), 2)
    memcpy(at + 6, DIGIT_TABLE + 2 * (low % 100), 2)


cdef inline void _seventeen_digits(uint64_t value, char* at) noexcept nogil:
    """``value`` (< 10**17) as seventeen digits, leading zeros kept: no loop, no branch
    (a digit at a time cost more than Ryu itself)."""
    cdef uint64_t upper = value // 100000000
    _eight_digits(<uint32_t>(value - upper * 100000000), at + 9)
    _eight_digits(<uint32_t>(upper % 100000000), at + 1)
    at[0] = <char>(48 + upper // 100000000)


cdef int _string_utf8(const uint8_t* buf, Py_ssize_t start, Py_ssize_t stop,
                      Out* out) except -1 with gil:
    """A string with non-ASCII bytes, through the twin's ``json_string`` (rare: the GIL)."""
    cdef bytes text = _py_json_string((<const char*>buf)[start:stop], 0, stop - start)
    return _put(out, PyBytes_AS_STRING(text), PyBytes_GET_SIZE(text))


cdef int _string(const uint8_t* buf, Py_ssize_t start, Py_ssize_t stop,
                 Out* out) except -1 nogil:
    cdef Py_ssize_t i
    cdef uint8_t c
    for i in range(start, stop):
        if buf[i] >= 0x80:
            return _string_utf8(buf, start, stop, out)
    _reserve(out, 2 + 6 * (stop - start))
    out.data[out.size] = b'"'
    out.size += 1
    for i in range(start, stop):
        c = buf[i]
        if c == b'"' or c == b'\\':
            out.data[out.size] = b'\\'
            out.data[out.size + 1] = c
            out.size += 2
        elif c >= 0x20:
            out.data[out.size] = c
            out.size += 1
        elif c == b'\n':
            out.data[out.size] = b'\\'
            out.data[out.size + 1] = b'n'
            out.size += 2
        elif c == b'\r':
            out.data[out.size] = b'\\'
            out.data[out.size + 1] = b'r'
            out.size += 2
        elif c == b'\t':
            out.data[out.size] = b'\\'
            out.data[out.size + 1] = b't'
            out.size += 2
        elif c == 0x08:
            out.data[out.size] = b'\\'
            out.data[out.size + 1] = b'b'
            out.size += 2
        elif c == 0x0C:
            out.data[out.size] = b'\\'
            out.data[out.size + 1] = b'f'
            out.size += 2
        else:
            memcpy(out.data + out.size, b"\\u00", 4)
            out.data[out.size + 4] = HEX[c >> 4]
            out.data[out.size + 5] = HEX[c & 15]
            out.size += 6
    out.data[out.size] = b'"'
    out.size += 1
    return 0


cdef int _double(double number, Out* out) except -1 nogil:
    """``repr(number)`` (a finite double), from Ryu's shortest digits laid out as CPython's
    ``format_float_short`` does for repr: exponent form when the decimal point falls more
    than 16 places right or 4 left of the first digit, else fixed with at least ``.0``."""
    cdef uint64_t bits, mantissa, exponent
    cdef floating_decimal_64 v
    cdef char digits[40]  # 17 digits at [3, 20), then room for 17-byte copies to read
    cdef int n = 0, point, e
    cdef char* p
    cdef const char* first
    memcpy(&bits, &number, 8)
    mantissa = bits & ((<uint64_t>1 << 52) - 1)
    exponent = (bits >> 52) & 0x7FF
    # sign, "0.000" or 16 zeros and ".0" around 17 digits, "e-308": all fit in 48 bytes,
    # so every copy below is of a fixed 17 or 16 bytes (a variable one costs more than
    # the digits) and only the pointer moves by the real length
    _reserve(out, 48)
    p = out.data + out.size
    p[0] = b'-'  # kept only when negative: no branch on a sign that is random
    p += bits >> 63
    if exponent == 0 and mantissa == 0:
        memcpy(p, b"0.0", 3)
        out.size = p + 3 - out.data
        return 0
    if not d2d_small_int(mantissa, <uint32_t>exponent, &v):
        v = d2d(mantissa, <uint32_t>exponent)
    while v.mantissa % 10 == 0:  # small integers keep their trailing zeros in the digits
        v.mantissa //= 10
        v.exponent += 1
    _seventeen_digits(v.mantissa, &digits[3])  # the n digits end at digits[19]
    memset(&digits[20], 0, 20)
    n = _digit_count(v.mantissa)
    first = &digits[20 - n]
    point = n + v.exponent  # digits d1..dn mean 0.d1..dn * 10**point
    if point <= -4 or point > 16:
        p[0] = first[0]
        p += 1
        if n > 1:
            p[0] = b'.'
            memcpy(p + 1, first + 1, 16)
            p += n
        p[0] = b'e'
        e = point - 1
        p[1] = b'-' if e < 0 else b'+'
        e = -e if e < 0 else e
        p += 2
        if e >= 100:
            p[0] = <char>(48 + e // 100)
            p += 1
        p[0] = <char>(48 + (e // 10) % 10)
        p[1] = <char>(48 + e % 10)
        p += 2
    elif point <= 0:
        memcpy(p, b"0.000", 5)
        p += 2 - point
        memcpy(p, first, 17)
        p += n
    elif point >= n:
        memcpy(p, first, 17)
        p += n
        memset(p, b'0', 16)
        p += point - n
        memcpy(p, b".0", 2)
        p += 2
    else:
        memcpy(p, first, 17)
        p[point] = b'.'
        memcpy(p + point + 1, first + point, 17)
        p += n + 1
    out.size = p - out.data
    return 0
