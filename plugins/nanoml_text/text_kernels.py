"""Numba kernels of the text plugin."""

import numba
import numpy as np


@numba.njit(cache=True, fastmath=False)
def hash_codepoints(codes, out):
    """out[i] = 64-bit FNV-1a hash of row i of `codes` (a string's code points, zero-padded).

    Hashes each distinct feature once; the caller maps occurrences to their feature.
    """
    n, width = codes.shape
    for i in range(n):
        h = np.uint64(14695981039346656037)
        for j in range(width):
            c = codes[i, j]
            if c == 0:
                break
            h ^= np.uint64(c)
            h *= np.uint64(1099511628211)
        out[i] = h
