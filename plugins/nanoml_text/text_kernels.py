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


@numba.njit(cache=True, fastmath=False)
def hash_separated(codes, hashes, starts):
    """hashes[t], starts[t]: FNV-1a hash (as `hash_codepoints`) and first index of the t-th
    string in `codes`, code points of strings each ended by a 0."""
    t = 0
    start = 0
    h = np.uint64(14695981039346656037)
    for i in range(codes.shape[0]):
        c = codes[i]
        if c == 0:
            hashes[t] = h
            starts[t] = start
            t += 1
            start = i + 1
            h = np.uint64(14695981039346656037)
        else:
            h ^= np.uint64(c)
            h *= np.uint64(1099511628211)


@numba.njit(cache=True, fastmath=False)
def word_runs(codes, is_word, hashes, starts, ends):
    """The maximal runs of two or more word characters in `codes` (``is_word[c]``: whether
    code point c is one), which is what the pattern ``\\b\\w\\w+\\b`` finds: each run's
    FNV-1a hash (as `hash_codepoints`), first index and end (exclusive) go into hashes,
    starts, ends; returns how many runs there are."""
    t = 0
    i = 0
    n = codes.shape[0]
    while i < n:
        if not is_word[codes[i]]:
            i += 1
            continue
        start = i
        h = np.uint64(14695981039346656037)
        while i < n and is_word[codes[i]]:
            h ^= np.uint64(codes[i])
            h *= np.uint64(1099511628211)
            i += 1
        if i - start >= 2:
            hashes[t] = h
            starts[t] = start
            ends[t] = i
            t += 1
    return t
