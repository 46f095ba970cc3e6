"""Helpers the CPU kernels share: a plain copy loop, zeroed scratch for parallel kernels, and
a scatter-add of rows (an embedding's gradient)."""

import numba
import numpy as np


@numba.njit(cache=True)
def copy(dst, src):
    """``dst[:] = src`` for 1-D views as a plain loop (numba's slice assignment copies twice)."""
    for i in range(dst.shape[0]):
        dst[i] = src[i]


@numba.njit(cache=True)
def zeros(shape, dtype):
    """``np.zeros(shape, dtype)`` for a parallel kernel to call: written inline there, the
    NumPy call would become a parallel region of its own (one more wake-up of every thread)."""
    return np.zeros(shape, dtype)


@numba.njit(cache=True)
def add_rows(out, rows, values):
    """``out[rows[i]] += values[i]`` for every i, repeated rows adding up: ``np.add.at`` on
    the first axis of 2-D arrays, without its per-element dispatch (15x slower here)."""
    for i in range(rows.shape[0]):
        dst, src = out[rows[i]], values[i]
        for j in range(src.shape[0]):
            dst[j] += src[j]
