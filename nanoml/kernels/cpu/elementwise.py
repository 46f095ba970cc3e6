"""ReLU and its gradient over large arrays, on every thread: the CPU twins of
`nanoml.kernels.cuda.elementwise`'s ``relu`` and ``relu_backward``.

NumPy's ufuncs run on one thread; a convolution's activations (millions of values) are
worth spreading. `nanoml.backend.cpu` calls these from `PARALLEL_MIN` values on and NumPy
below, where waking the threads would cost more than the pass. The arrays are C-contiguous
and of one float dtype; `out` may be the input itself.
"""

import numba
from numba import prange

PARALLEL_MIN = 1 << 17
_CHUNK = 1 << 14


@numba.njit(cache=True, parallel=True)
def relu(x, out):
    """``out = max(x, 0)``, NaN kept (as ``np.maximum``)."""
    xf, of = x.ravel(), out.ravel()
    n = xf.shape[0]
    zero = of.dtype.type(0)
    for c in prange((n + _CHUNK - 1) // _CHUNK):
        for i in range(c * _CHUNK, min(n, c * _CHUNK + _CHUNK)):
            v = xf[i]
            of[i] = v if (v > zero) | (v != v) else zero


@numba.njit(cache=True, parallel=True)
def relu_backward(a, b, out):
    """``out = b * (a > 0)``: ReLU's gradient `b` masked by its input `a`."""
    af, bf, of = a.ravel(), b.ravel(), out.ravel()
    n = af.shape[0]
    zero = of.dtype.type(0)
    for c in prange((n + _CHUNK - 1) // _CHUNK):
        for i in range(c * _CHUNK, min(n, c * _CHUNK + _CHUNK)):
            of[i] = bf[i] * (of.dtype.type(1) if af[i] > zero else zero)
