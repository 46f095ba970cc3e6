"""A fast reader for the common CSV of numbers only: a header line, then rows of numbers.

The bytes are split into row-aligned chunks that Numba kernels count and parse in parallel
(`nanoml.data.csv_kernels`), each number rounded exactly as float() rounds it. Anything
else (quotes, text, missing values, ragged rows, a byte-order mark) returns None, and the
caller reads the file with pyarrow, whose messages name the defect.
"""

import os

import numpy as np

from nanoml.data import csv_kernels

CHUNK_BYTES = 1 << 20  # chunks of about this size, at least a few a thread


def read_numeric_csv(path, delimiter):
    """(column names, values, integer) of the numeric CSV at `path`, or None (see module
    doc); values is float64, one row a line; integer[j] is True where column j holds only
    integer literals (pyarrow would read it as int64)."""
    buf = mapped(path)
    return None if buf is None else parse_numeric(buf, delimiter)


def mapped(path):
    """The bytes of the file at `path` as a uint8 array mapped into memory (None for an
    empty file); unmapped once no array holds them."""
    import mmap

    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return None
        # mapped, not read: no copy; its pages come in at once where the OS can
        how = {"flags": mmap.MAP_SHARED | mmap.MAP_POPULATE, "prot": mmap.PROT_READ} \
            if hasattr(mmap, "MAP_POPULATE") else {"access": mmap.ACCESS_READ}
        return np.frombuffer(mmap.mmap(fh.fileno(), 0, **how), dtype=np.uint8)


def parse_numeric(buf, delimiter, names=None):
    """`read_numeric_csv` of the bytes `buf` (a uint8 array) with the header line first, or
    without one when its column `names` are given."""
    if names is None:
        names, begin = header(buf, delimiter)
        if names is None:
            return None
    else:
        begin = 0
    if begin >= buf.shape[0]:
        return None
    import numba

    n_chunks = max(1, min((buf.shape[0] - begin) // CHUNK_BYTES,
                          64 * numba.get_num_threads()))
    starts = np.empty(n_chunks, dtype=np.int64)
    csv_kernels.chunk_starts(buf, begin, starts)
    ends = np.append(starts[1:], buf.shape[0])
    counts = np.empty(n_chunks, dtype=np.int64)
    csv_kernels.count_byte(buf, starts, ends, 10, counts)
    if buf[-1] != 10:  # the last line has no line end
        counts[np.flatnonzero(starts < buf.shape[0])[-1]] += 1
    first_rows = np.concatenate([[0], np.cumsum(counts)[:-1]])
    values = np.empty((int(counts.sum()), len(names)))
    flags = np.zeros((n_chunks, len(names)), dtype=np.uint8)
    slow = np.zeros((n_chunks, csv_kernels.SLOW_PER_CHUNK + 1, 4), dtype=np.int64)
    status = np.empty(n_chunks, dtype=np.int64)
    csv_kernels.parse_chunks(buf, starts, ends, first_rows, ord(delimiter), values,
                             values.view(np.uint64), flags, slow, status)
    if status.any():
        return None
    for chunk in slow:
        for start, end, row, column in chunk[1:chunk[0, 0] + 1]:
            values[row, column] = float(buf[start:end].tobytes())
    flags = np.bitwise_or.reduce(flags, axis=0)
    integer = flags & csv_kernels.NOT_INTEGER == 0
    if (integer & (flags & csv_kernels.LONG_INTEGER != 0)).any():
        return None  # int64 values a double cannot hold exactly
    return names, values, integer


def header(buf, delimiter):
    """(column names, offset of the first data row) of the header line, or (None, 0) when
    it is one the fast path leaves to pyarrow."""
    ends = np.flatnonzero(buf[:1 << 20] == 10)
    if ends.shape[0] == 0:
        return None, 0
    line = buf[:ends[0]].tobytes()
    line = line[:-1] if line.endswith(b"\r") else line
    try:
        names = line.decode("utf-8").split(delimiter)
    except UnicodeDecodeError:
        return None, 0
    # names quoted whole, as pyarrow writes them, are unquoted; any other quote is not ours
    names = [n[1:-1] if len(n) > 1 and n[0] == n[-1] == '"' else n for n in names]
    if line.startswith(b"\xef\xbb\xbf") or any('"' in n for n in names) or "" in names \
            or len(set(names)) != len(names):
        return None, 0
    return names, int(ends[0]) + 1
