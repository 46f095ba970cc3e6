"""Dropout masks from a counter-based generator, on every thread.

NumPy's Generator draws one uniform at a time through its bit generator: about 3 ns a
value here, 0.7 ms for one dropout mask of a batch of 128 x 1600 features, more than the
layer it feeds. Here uniform i of a mask is a hash of (seed, i), splitmix64's finaliser
(Steele, Lea and Flood, "Fast splittable pseudorandom number generators", 2014), so the
values are independent of each other and of the thread that computes them: vectorised,
parallel, and the same for any thread count. The caller draws the seed from the user's
Generator, so a seeded Generator still gives the same masks, call after call.
"""

import numba
import numpy as np
from numba import prange

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_SHIFTS = (np.uint64(30), np.uint64(27), np.uint64(31))
_TOP_53 = np.uint64(11)
_UNIT = 2.0 ** -53
_CHUNK = 1 << 14


@numba.njit(cache=True)
def _uniform(seed, i):
    """Uniform i in [0, 1) of the stream `seed` (53 random bits)."""
    z = seed + (np.uint64(i) + np.uint64(1)) * _GAMMA
    z = (z ^ (z >> _SHIFTS[0])) * _MIX1
    z = (z ^ (z >> _SHIFTS[1])) * _MIX2
    z = z ^ (z >> _SHIFTS[2])
    return np.float64(z >> _TOP_53) * _UNIT


@numba.njit(cache=True, parallel=True)
def dropout_mask(seed, p, out):
    """``out[i] = 1 / (1 - p)`` where uniform i of the stream `seed` is at least `p`, else 0:
    inverted dropout's mask, in `out`'s float dtype (any shape, C-contiguous)."""
    flat = out.ravel()
    n = flat.shape[0]
    kept = flat.dtype.type(1.0 / (1.0 - p))
    zero = flat.dtype.type(0)
    s = np.uint64(seed)
    for c in prange((n + _CHUNK - 1) // _CHUNK):
        for i in range(c * _CHUNK, min(n, c * _CHUNK + _CHUNK)):
            flat[i] = kept if _uniform(s, i) >= p else zero
