"""The IDX format of MNIST and Fashion-MNIST: a magic number, dimensions, then raw data.

Every defect — wrong magic, unknown type code, a size that does not match the header,
a broken gzip stream — raises DatasetUnavailableError, never a silently wrong array.
"""

import gzip
import os
import zlib

import numpy as np

from nanoml.errors import DatasetUnavailableError

_TYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path):
    """The array stored in an IDX file (optionally gzip-compressed)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetUnavailableError(
            f"cannot read {path}: {exc}; delete it and fetch it again"
        ) from None
    return parse_idx(raw, path)


def parse_idx(raw, source="IDX data"):
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise DatasetUnavailableError(f"{source} is not an IDX file (bad magic number)")
    dtype = np.dtype(_TYPES[raw[2]])
    ndim = raw[3]
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise DatasetUnavailableError(f"{source} is truncated inside its header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape)) * dtype.itemsize
    found = len(raw) - start
    if found != expected:
        problem = "truncated" if found < expected else "longer than its header says"
        raise DatasetUnavailableError(
            f"{source} is {problem}: header promises {expected} bytes of data, found {found}; "
            "delete it and fetch it again"
        )
    return (
        np.frombuffer(raw, dtype=dtype, offset=start).reshape(shape).astype(dtype.newbyteorder("="))
    )


def write_idx(path, array):
    """Write `array` (uint8 or int8) as an uncompressed IDX file."""
    array = np.ascontiguousarray(array)
    code = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09}[array.dtype]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    with open(path, "wb") as fh:
        fh.write(header + array.tobytes())
