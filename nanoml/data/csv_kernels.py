"""Numba kernels of the numeric CSV reader: rows counted and numbers parsed in parallel over
row-aligned chunks of the file's bytes, each number rounded exactly as Python's float() does.

A field is ``[+-]digits[.digits][(e|E)[+-]digits]`` (digits on at least one side of the
point); anything else (quotes, text, empty fields, blanks, a ragged row) stops the kernel
with a nonzero status, and the caller reads the file with pyarrow instead. A number becomes
a double by Clinger's fast path (mantissa <= 2**53 and |exponent| <= 22: one exact IEEE
product or quotient) or else by the Eisel-Lemire algorithm (D. Lemire, "Number Parsing at a
Gigabyte per Second", 2021) on a 128-bit table of powers of five, its 64x64-bit products
done in 32-bit halves. The few numbers neither settles (more than 19 significant digits, or
a product too close to a halfway point) are listed for the caller to parse with float().

These kernels live beside their only user, not in `nanoml.kernels.cpu`: they have no CUDA
twin, and editing that package invalidates the cache of every device kernel.
"""

import sys

import numba
import numpy as np
from llvmlite import ir
from numba import prange
from numba.core import types
from numba.extending import intrinsic

OK, BAD, TOO_MANY_SLOW = 0, 1, 2
NOT_INTEGER, LONG_INTEGER = 1, 2  # column flags: a literal with . e + ; one of > 15 digits
SLOW_PER_CHUNK = 64  # numbers left to float() a chunk may list before it gives up
SMALLEST_POWER, LARGEST_POWER = -342, 308
MAX_DIGITS = 19  # significant digits that fit a uint64

_U1, _U32, _U52, _U63 = np.uint64(1), np.uint64(32), np.uint64(52), np.uint64(63)
_LOW32 = np.uint64(0xFFFFFFFF)
_ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)
_PRECISION_MASK = np.uint64(0xFFFFFFFFFFFFFFFF >> 55)  # 52 explicit bits + 3
_TWO53 = np.uint64(1 << 53)
_HIDDEN = np.uint64(1 << 52)
_SIGN = np.uint64(1 << 63)
_INFINITY = np.uint64(0x7FF << 52)
_UNDECIDED = np.uint64(0xFFFFFFFFFFFFFFFF)  # no double has these bits: a NaN
_EXACT_POWERS = np.array([10.0 ** k for k in range(23)])
# eight bytes read as one little-endian word: SWAR tests and sums of eight digits at once
LITTLE_ENDIAN = sys.byteorder == "little"
_ONES = np.uint64(0x0101010101010101)
_SEVENS = np.uint64(0x7F7F7F7F7F7F7F7F)
_HIGHS = np.uint64(0x8080808080808080)
_ZEROS = np.uint64(0x3030303030303030)
_PAST_NINE = np.uint64(0x4646464646464646)
_LOW_NIBBLES = np.uint64(0x0F0F0F0F0F0F0F0F)
_PAIR_MASK = np.uint64(0x00FF00FF00FF00FF)
_QUAD_MASK = np.uint64(0x0000FFFF0000FFFF)
_U7, _U8, _U16, _U56 = np.uint64(7), np.uint64(8), np.uint64(16), np.uint64(56)
_TEN8 = np.uint64(100_000_000)


@intrinsic
def _word(typingctx, array, index):
    """The eight bytes array[index:index + 8] of a uint8 array as one uint64 (in memory
    order), read unaligned; the caller keeps index + 8 within the array."""
    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        pointer = builder.bitcast(builder.gep(data, [args[1]]), ir.IntType(64).as_pointer())
        return builder.load(pointer, align=1)

    return types.uint64(array, index), codegen


@numba.njit(cache=True, nogil=True, fastmath=False)
def _eight_digits(word):
    """Whether the eight bytes of `word` are all ASCII digits."""
    return (((word + _PAST_NINE) | (word - _ZEROS)) & _HIGHS) == 0


@numba.njit(cache=True, nogil=True, fastmath=False)
def _eight_digits_value(word):
    """The number the eight ASCII digits of `word` (first digit in the low byte) write."""
    word = ((word & _LOW_NIBBLES) * np.uint64(2561)) >> _U8
    word = ((word & _PAIR_MASK) * np.uint64(6553601)) >> _U16
    return ((word & _QUAD_MASK) * np.uint64(42949672960001)) >> _U32


def _powers_of_five():
    """5**q for q in [-342, 308] as 128-bit numbers with their top bit set (high word,
    low word): truncated for q >= 0, from a quotient rounded up for q < 0."""
    table = []
    for q in range(SMALLEST_POWER, LARGEST_POWER + 1):
        if q >= 0:
            power = 5 ** q
            value = power << max(0, 128 - power.bit_length())
            value >>= max(0, value.bit_length() - 128)
        else:  # as fast_float's table: exact to 128 bits where 5**-q < 2**64
            power = 5 ** -q
            z = (power - 1).bit_length()  # the least z with 2**z >= power
            value = (1 << (z + 127 if q >= -27 else 2 * z + 128)) // power + 1
            value >>= max(0, value.bit_length() - 128)
        table.append((value >> 64, value & ((1 << 64) - 1)))
    return np.array(table, dtype=np.uint64)


_POWERS_OF_FIVE = _powers_of_five()


@numba.njit(cache=True, nogil=True, fastmath=False)
def _product(a, b):
    """The 128-bit product of two uint64 as (high, low) words."""
    a0, a1 = a & _LOW32, a >> _U32
    b0, b1 = b & _LOW32, b >> _U32
    p00, p01, p10, p11 = a0 * b0, a0 * b1, a1 * b0, a1 * b1
    middle = (p00 >> _U32) + (p01 & _LOW32) + (p10 & _LOW32)
    low = (p00 & _LOW32) | (middle << _U32)
    high = p11 + (p01 >> _U32) + (p10 >> _U32) + (middle >> _U32)
    return high, low


@numba.njit(cache=True, nogil=True, fastmath=False)
def _leading_zeros(w):
    n = 0
    for bits in (32, 16, 8, 4, 2, 1):
        if w >> np.uint64(64 - bits) == 0:
            w <<= np.uint64(bits)
            n += bits
    return n


@numba.njit(cache=True, nogil=True, fastmath=False)
def eisel_lemire(w, q):
    """The bits of the double nearest w * 10**q (w > 0, q in [-342, 308]) without its sign,
    and False where the 128-bit product cannot decide the rounding."""
    lz = _leading_zeros(w)
    w <<= np.uint64(lz)
    index = q - SMALLEST_POWER
    high, low = _product(w, _POWERS_OF_FIVE[index, 0])
    if high & _PRECISION_MASK == _PRECISION_MASK:
        second_high, _ = _product(w, _POWERS_OF_FIVE[index, 1])
        low += second_high
        if second_high > low:
            high += _U1
    if low == _ALL_ONES and not (-27 <= q <= 55):
        return np.uint64(0), False
    upper = np.int64(high >> _U63)
    shift = np.uint64(upper + 9)  # 64 - (52 + 3) + the top bit
    mantissa = high >> shift
    power2 = (((152170 + 65536) * q) >> 16) + 63 + upper - lz + 1023
    if power2 <= 0:  # subnormal
        if -power2 + 1 >= 64:
            return np.uint64(0), True
        mantissa >>= np.uint64(-power2 + 1)
        mantissa += mantissa & _U1
        mantissa >>= _U1
        power2 = 0 if mantissa < _HIDDEN else 1
        return mantissa | (np.uint64(power2) << _U52), True
    if low <= _U1 and -4 <= q <= 23 and mantissa & np.uint64(3) == _U1 \
            and (mantissa << shift) == high:
        mantissa &= ~_U1  # exactly halfway: round to even, down
    mantissa += mantissa & _U1
    mantissa >>= _U1
    if mantissa >= _TWO53:
        mantissa = _HIDDEN
        power2 += 1
    mantissa &= ~_HIDDEN
    if power2 >= 0x7FF:
        return np.uint64(0x7FF) << _U52, True
    return mantissa | (np.uint64(power2) << _U52), True


@numba.njit(cache=True, nogil=True, fastmath=False)
def _double(w, exponent):
    """The double nearest w * 10**exponent: (value, 0) from Clinger's fast path, (0.0,
    its bits) from Eisel-Lemire, or (0.0, _UNDECIDED) when it takes float()."""
    if w == 0 or exponent < SMALLEST_POWER:
        return 0.0, np.uint64(0)
    if exponent > LARGEST_POWER:
        return 0.0, _INFINITY
    if w <= _TWO53 and -22 <= exponent <= 22:
        value = np.float64(w)
        if exponent >= 0:
            return value * _EXACT_POWERS[exponent], np.uint64(0)
        return value / _EXACT_POWERS[-exponent], np.uint64(0)
    magnitude, decided = eisel_lemire(w, exponent)
    return 0.0, magnitude if decided else _UNDECIDED


@numba.njit(cache=True, nogil=True, fastmath=False)
def _long_mantissa(buf, i, stop):
    """(w, exponent, exact) of the digits in buf[i:stop] (a point allowed) that are more
    than 19: leading zeros skipped, w their first 19 significant digits, exact False when
    a dropped digit is not zero."""
    w = np.uint64(0)
    digits = 0
    exponent = 0
    exact = True
    point = False
    for k in range(i, stop):
        if buf[k] == 46:
            point = True
            continue
        d = np.uint64(buf[k] - 48)
        if digits < MAX_DIGITS:
            if digits > 0 or d != 0:
                w = w * np.uint64(10) + d
                digits += 1
            exponent -= 1 if point else 0
        else:
            exponent += 0 if point else 1
            exact = exact and d == 0
    return w, exponent, exact


@numba.njit(cache=True, nogil=True, fastmath=False, parallel=True)
def count_byte(buf, starts, ends, byte, counts):
    """How often `byte` occurs in each chunk buf[starts[k]:ends[k]], into counts[k]."""
    pattern = np.uint64(byte) * _ONES
    for k in prange(starts.shape[0]):
        c = 0
        i = starts[k]
        if LITTLE_ENDIAN:
            while i + 8 <= ends[k]:  # a byte of x is zero where the byte was `byte`
                x = _word(buf, i) ^ pattern
                zero = ~(((x & _SEVENS) + _SEVENS) | x | _SEVENS)
                c += np.int64(((zero >> _U7) * _ONES) >> _U56)
                i += 8
        for j in range(i, ends[k]):
            c += buf[j] == byte
        counts[k] = c


@numba.njit(cache=True, nogil=True, fastmath=False)
def chunk_starts(buf, begin, starts):
    """Fill `starts` with row-aligned offsets spread evenly over buf[begin:]: each is
    `begin` or the byte after a line end."""
    n = buf.shape[0]
    size = (n - begin) // starts.shape[0]
    starts[0] = begin
    for k in range(1, starts.shape[0]):
        i = max(begin + k * size, starts[k - 1])
        while i < n and buf[i - 1] != 10:
            i += 1
        starts[k] = i


@numba.njit(cache=True, nogil=True, fastmath=False)
def _parse_chunk(buf, start, end, row, delimiter, out, bits, flags, slow):
    """Parse the rows of buf[start:end] into out[row:], raising `flags` per column and
    listing in `slow` (start, end, row, column; first row: how many) the numbers left to
    float(); -> a status. One loop, no calls taking arrays: these cost a reference count
    each, more than the parsing."""
    n_columns = out.shape[1]
    n = buf.shape[0]
    i = start
    n_slow = 0
    column = 0
    while i < end:
        first = i
        negative = False
        raised = 0
        if buf[i] == 45 or buf[i] == 43:  # - +
            negative = buf[i] == 45
            raised = 0 if negative else NOT_INTEGER
            i += 1
        w = np.uint64(0)
        digits_start = i
        if LITTLE_ENDIAN:
            while i + 8 <= n and _eight_digits(_word(buf, i)):
                w = w * _TEN8 + _eight_digits_value(_word(buf, i))
                i += 8
        while i < n and 48 <= buf[i] <= 57:
            w = w * np.uint64(10) + np.uint64(buf[i] - 48)
            i += 1
        integer_digits = i - digits_start
        fraction_digits = 0
        if i < n and buf[i] == 46:  # .
            raised = NOT_INTEGER
            i += 1
            fraction_start = i
            if LITTLE_ENDIAN:
                while i + 8 <= n and _eight_digits(_word(buf, i)):
                    w = w * _TEN8 + _eight_digits_value(_word(buf, i))
                    i += 8
            while i < n and 48 <= buf[i] <= 57:
                w = w * np.uint64(10) + np.uint64(buf[i] - 48)
                i += 1
            fraction_digits = i - fraction_start
        if integer_digits + fraction_digits == 0:
            return BAD
        exponent = -fraction_digits
        if i < n and (buf[i] == 101 or buf[i] == 69):  # e E
            raised = NOT_INTEGER
            i += 1
            sign = 1
            if i < n and (buf[i] == 45 or buf[i] == 43):
                sign = -1 if buf[i] == 45 else 1
                i += 1
            if i >= n or not 48 <= buf[i] <= 57:
                return BAD
            e = 0
            while i < n and 48 <= buf[i] <= 57:
                e = min(e * 10 + (buf[i] - 48), 100000)
                i += 1
            exponent += sign * e
        exact = True
        if integer_digits + fraction_digits > MAX_DIGITS:  # w overflowed: count again
            w, shift, exact = _long_mantissa(buf, digits_start, digits_start + integer_digits
                                             + (fraction_digits + 1 if fraction_digits else 0))
            exponent += fraction_digits + shift
            if raised == 0 and integer_digits > 15:
                raised = LONG_INTEGER
        elif raised == 0 and integer_digits > 15:
            raised = LONG_INTEGER
        value, magnitude = _double(w, exponent)
        if not exact or magnitude == _UNDECIDED:
            if n_slow == SLOW_PER_CHUNK:
                return TOO_MANY_SLOW
            n_slow += 1
            slow[n_slow, 0] = first
            slow[n_slow, 1] = i
            slow[n_slow, 2] = row
            slow[n_slow, 3] = column
        elif magnitude == 0:
            out[row, column] = -value if negative else value
        else:
            bits[row, column] = magnitude | _SIGN if negative else magnitude
        flags[column] |= raised
        column += 1
        if column < n_columns:
            if i >= n or buf[i] != delimiter:
                return BAD
            i += 1
            continue
        if i < n and buf[i] == 13:  # \r\n
            i += 1
            if i >= n or buf[i] != 10:
                return BAD
        if i < n:
            if buf[i] != 10:
                return BAD
            i += 1
        column = 0
        row += 1
    slow[0, 0] = n_slow
    return OK


@numba.njit(cache=True, nogil=True, fastmath=False, parallel=True)
def parse_chunks(buf, starts, ends, first_rows, delimiter, out, bits, flags, slow, status):
    """Parse each chunk buf[starts[k]:ends[k]], whose rows begin at out[first_rows[k]], in
    parallel; per chunk its column flags (flags[k]), the numbers left to float() (slow[k])
    and a status (status[k]). `bits` is `out` viewed as uint64."""
    for k in prange(starts.shape[0]):
        status[k] = _parse_chunk(buf, starts[k], ends[k], first_rows[k], delimiter, out, bits,
                                 flags[k], slow[k])
