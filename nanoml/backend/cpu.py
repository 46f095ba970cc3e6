"""The CPU backend: NumPy arrays, NumPy's vectorised math, the kernels of `nanoml.kernels.cpu`.

Elementwise math and reductions stay NumPy: it already vectorises them, and a kernel would
only add dispatch cost. Python scalars meet arrays as NumPy "weak" scalars, so float32
stays float32. The arrays are the host's own, so moving to or from the host is free.
"""

import collections
import threading
import weakref

import numpy as np
from scipy import special

import nanoml.kernels.cpu
from nanoml.backend.base import Backend
from nanoml.errors import InputError
from nanoml.kernels.cpu.buffers import add_rows
from nanoml.kernels.cpu.elementwise import PARALLEL_MIN
from nanoml.kernels.cpu.masks import dropout_mask

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class _Pool:
    """Arrays for saved activations and scratch, reused across calls of the recurrent ops.

    A training loop asks for the same few MB every step. Fresh memory costs a page fault per
    4 KB on first touch, and glibc hands the freed top of its heap back to the system between
    steps, so without reuse an LSTM step at the benchmark shape spends about as long in page
    faults (some 1800, ~3 ms) as in arithmetic. The saved arrays return here when the graph
    that holds them is released, scratch as soon as the backward kernel is done. At most
    `per_shape` free arrays of each of the `shapes` most recent (shape, dtype) keys are kept.
    """

    def __init__(self, shapes=8, per_shape=2):
        self._free = collections.OrderedDict()
        self._lock = threading.Lock()
        self._shapes = shapes
        self._per_shape = per_shape

    def take(self, shape, dtype):
        key = (shape, np.dtype(dtype).str)
        with self._lock:
            arrays = self._free.get(key)
            if arrays:
                self._free.move_to_end(key)
                return arrays.pop()
        return np.empty(shape, dtype)

    def give(self, *arrays):
        with self._lock:
            for a in arrays:
                key = (a.shape, a.dtype.str)
                free = self._free.setdefault(key, [])
                self._free.move_to_end(key)
                if len(free) < self._per_shape:
                    free.append(a)
            while len(self._free) > self._shapes:
                self._free.popitem(last=False)

    def keep_until_released(self, backward, *arrays):
        """Return `arrays` to the pool once `backward` (the graph's hold on them) is freed."""
        weakref.finalize(backward, self.give, *arrays)


def _parallel_pass(*arrays):
    """Whether an elementwise pass over `arrays` (same shape, C-contiguous floats of one
    dtype) is large enough for the threaded kernels."""
    first = arrays[0]
    return (first.size >= PARALLEL_MIN and first.dtype.kind == "f"
            and all(a.shape == first.shape and a.dtype == first.dtype
                    and a.flags.c_contiguous for a in arrays))


class Cpu(Backend):
    """NumPy arrays on the host. Subclass it for a device whose arrays are NumPy arrays
    (an ndarray subclass) and that runs the CPU kernels (see tests/core/test_backend.py)."""

    name = "cpu"
    array_types = (np.ndarray,)
    host = True
    numpy_arrays = True
    kernels = nanoml.kernels.cpu
    pool = _Pool()

    # -- arrays and copies -------------------------------------------------------------
    empty = staticmethod(np.empty)
    zeros = staticmethod(np.zeros)
    full = staticmethod(np.full)
    empty_like = staticmethod(np.empty_like)
    zeros_like = staticmethod(np.zeros_like)

    def copy(self, a, dtype=None):
        return np.array(a, dtype=dtype, order="C", subok=True)

    def from_host(self, array):
        return array

    def to_host(self, a):
        return a

    def copy_into(self, a, value):
        np.copyto(a, value, casting="same_kind")

    def contiguous(self, a, dtype=None):
        if a.flags.c_contiguous and (dtype is None or a.dtype == dtype):
            return a
        return np.array(a, dtype, order="C", subok=True)

    def tensor_data(self, data, dtype):
        dtype = np.dtype(np.float32 if dtype is None else dtype)
        if dtype not in _FLOATS:
            raise InputError(f"dtype must be float32 or float64, got {dtype}")
        try:
            return np.asarray(data, dtype=dtype)
        except (TypeError, ValueError) as exc:
            raise InputError(f"data could not be read as a {dtype} array: {exc}") from None

    # -- elementwise -------------------------------------------------------------------
    add = staticmethod(np.add)
    sub = staticmethod(np.subtract)
    mul = staticmethod(np.multiply)
    div = staticmethod(np.true_divide)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)
    equal = staticmethod(np.equal)
    neg = staticmethod(np.negative)
    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    sqrt = staticmethod(np.sqrt)
    tanh = staticmethod(np.tanh)
    sigmoid = staticmethod(special.expit)  # without overflow for large |x|
    abs = staticmethod(np.abs)
    sign = staticmethod(np.sign)

    def scale(self, x, factor, out=None):
        return np.multiply(x, factor, out=out)

    def divide_by(self, x, n):
        return x / n

    def clip(self, x, low, high):
        return np.clip(x, low, high)

    def dropout_mask(self, seed, p, shape, dtype):
        """Inverted dropout's mask for stream `seed` (see `nanoml.kernels.cpu.masks`): the
        host makes every device's masks, so a seed gives the same ones everywhere."""
        mask = np.empty(shape, dtype)
        dropout_mask(seed, p, mask)
        return mask

    def relu(self, x, out=None):
        if _parallel_pass(x, *(() if out is None else (out,))):
            out = np.empty_like(x) if out is None else out
            self.kernels.relu(x, out)
            return out
        return np.maximum(x, 0, out=out)

    def relu_backward(self, x, g):
        if _parallel_pass(x, g):
            out = np.empty_like(g)
            self.kernels.relu_backward(x, g, out)
            return out
        return g * (x > 0)

    def tanh_backward(self, y, g):
        return g * (1 - y * y)

    def sigmoid_backward(self, y, g):
        return g * y * (1 - y)

    def leaky_relu(self, x, slope):
        return np.where(x > 0, x, x * slope)

    def leaky_relu_backward(self, x, g, slope):
        return np.where(x > 0, g, g * slope)

    def binary_cross_entropy(self, z, y):
        return np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))

    def binary_cross_entropy_backward(self, z, y):
        return special.expit(z) - y

    # -- reductions and broadcasting ---------------------------------------------------
    def sum(self, x, axis=None, keepdims=False):
        return x.sum(axis=axis, keepdims=keepdims)

    def mean(self, x, axis=None, keepdims=False):
        return x.mean(axis=axis, keepdims=keepdims)

    def unbroadcast(self, g, shape):
        if g.shape == shape:
            return g
        lead = g.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1
        )
        return g.sum(axis=axes, keepdims=True).reshape(shape)

    def broadcast_to(self, a, shape):
        return np.broadcast_to(a, shape, subok=True)

    def vdot(self, a, b):
        return float(np.vdot(a, b))

    # -- shapes and indexing -----------------------------------------------------------
    def transpose(self, a, axes=None):
        return a.transpose(axes)

    def getitem(self, a, index, basic=True):
        return a[index]

    def getitem_backward(self, g, shape, index, basic=True):
        grad = self.zeros(shape, g.dtype)
        if basic:
            grad[index] = g
        elif isinstance(index, np.ndarray) and index.dtype.kind in "iu" and grad.size:
            # rows picked by one integer array (an embedding): the compiled scatter-add
            rows = index.reshape(-1).astype(np.intp, copy=False)
            add_rows(grad.reshape(shape[0], -1), rows, g.reshape(rows.size, -1))
        else:  # fancy indices may repeat an element: scatter with add
            np.add.at(grad, index, g)
        return grad

    def concatenate(self, arrays, axis):
        return np.concatenate(arrays, axis=axis)

    def take_rows(self, a, rows):
        return a[rows]

    # -- products and losses -----------------------------------------------------------
    def matmul(self, a, b, trans_a=False, trans_b=False):
        # NumPy's BLAS, batched over leading axes.
        if trans_a:
            a = np.swapaxes(a, -1, -2)
        if trans_b:
            b = np.swapaxes(b, -1, -2)
        return a @ b

    def host_scale(self, g, n):
        return float(g) / n, None


CPU = Cpu()
