"""Helpers the CPU kernels share: a plain copy loop, and zeroed scratch for parallel kernels."""

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
