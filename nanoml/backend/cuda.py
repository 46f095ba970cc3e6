"""The CUDA backend: numba device arrays, the kernels of `nanoml.kernels.cuda`, and whether
this machine can run them (and if not, why, in one line).

A Tensor on the cuda device holds a numba device array (a ``DeviceNDArray``, or the CUDA
simulator's stand-in) as ``.data``, always C-contiguous. The primitives here run the
broadcasting arithmetic, reductions and views that NumPy does on the host as launches of
the CUDA kernels, so no op copies its data back to the host between steps.

numba.cuda is imported on first use: a CPU-only run never pays for it.
"""

import builtins
import functools
import importlib.util
import operator

import numpy as np

from nanoml.backend.base import Backend
from nanoml.errors import DeviceError, InputError

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# -- can CUDA run here? ----------------------------------------------------------------
def _driver_problem(error):
    """One line for numba's driver initialisation error `error` (None: the driver started)."""
    if error is None:
        # The driver started, so what numba.cuda.is_available() missed is its compiler.
        return ("NVVM, the CUDA compiler library, was not found (install the CUDA toolkit, or "
                "pip install 'numba-cuda[cu12]', or [cu13] for a CUDA 13 driver)")
    if "NUMBA_DISABLE_CUDA" in error:
        return "CUDA is disabled by NUMBA_DISABLE_CUDA=1"
    if "NO_DEVICE" in error:
        return "the NVIDIA driver found no CUDA GPU"
    if "driver librar" in error:  # "... library cannot be found" / "... libraries are found but"
        return "no NVIDIA driver: the CUDA driver library (libcuda) cannot be found or loaded"
    first = next(line for line in error.splitlines() if line.strip())
    return f"the CUDA driver failed to start: {first.strip()}"


def _cuda_problem():
    """None when CUDA kernels can run here, else why not."""
    if importlib.util.find_spec("numba_cuda") is None:
        return "numba-cuda is not installed (pip install numba-cuda)"
    from numba import cuda

    if cuda.is_available():
        return None
    return _driver_problem(cuda.cuda_error())


def cuda_available():
    """True when CUDA kernels can run: a GPU with its driver, or the CUDA simulator.

    The simulator (``NUMBA_ENABLE_CUDASIM=1`` when numba is first imported) runs every
    thread in Python on the CPU: correct and very slow, meant for tests.
    """
    return _cuda_problem() is None


def require_cuda():
    """Raise DeviceError saying why, unless CUDA kernels can run here."""
    problem = _cuda_problem()
    if problem is not None:
        raise DeviceError(f"device 'cuda' is not available: {problem}")


@functools.cache
def _numba_cuda():
    from numba import cuda

    return cuda


@functools.cache
def _kernels():
    """The `nanoml.kernels.cuda` package (after checking that CUDA can run here)."""
    require_cuda()
    import nanoml.kernels.cuda as gpu

    return gpu


@functools.lru_cache(maxsize=64)
def _scalar(value, dtype):
    """A cached 0-d device array holding `value` (broadcasts like a scalar)."""
    return CUDA.from_host(np.full((), value, dtype))


# -- shape arithmetic of views, worked out on the host ---------------------------------
def _axis(axis, ndim):
    """`axis` as a non-negative axis of an `ndim`-dimensional array; AxisError, as NumPy
    raises, when there is no such axis."""
    axis = operator.index(axis)
    if not -ndim <= axis < ndim:
        raise np.exceptions.AxisError(axis, ndim)
    return axis % ndim


def _reduced_axes(axis, ndim):
    """The sorted non-negative axes a reduction over `axis` (None: all) covers."""
    if axis is None:
        return tuple(range(ndim))
    axes = [_axis(a, ndim) for a in (axis if isinstance(axis, tuple) else (axis,))]
    if len(set(axes)) != len(axes):
        raise ValueError("duplicate value in 'axis'")
    return tuple(sorted(axes))


def _contiguous_strides(shape):
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


def _basic_view(shape, index):
    """(shape, element strides, offset) of ``array[index]`` for basic indexing.

    NumPy works the view out on a one-byte dummy with zero-copy strides; only its geometry
    is read, never its memory.
    """
    dummy = np.lib.stride_tricks.as_strided(
        np.zeros(1, np.uint8), shape=shape, strides=_contiguous_strides(shape)
    )
    view = dummy[index]
    if not isinstance(view, np.ndarray):  # all integers: NumPy gave a scalar, not a view
        view = dummy[(index if isinstance(index, tuple) else (index,)) + (Ellipsis,)]
    offset = view.__array_interface__["data"][0] - dummy.__array_interface__["data"][0]
    return view.shape, view.strides, offset


class Cuda(Backend):
    """Numba device arrays on an NVIDIA GPU (or in numba's CUDA simulator)."""

    name = "cuda"

    def claims(self, cls):
        # Device arrays of numba (and of its simulator) are whatever has copy_to_host.
        return hasattr(cls, "copy_to_host")

    def require(self):
        require_cuda()

    @property
    def kernels(self):
        return _kernels()

    # -- arrays and copies -------------------------------------------------------------
    def empty(self, shape, dtype):
        shape = tuple(shape) if isinstance(shape, (tuple, list)) else (operator.index(shape),)
        return _numba_cuda().device_array(shape, np.dtype(dtype))

    def empty_like(self, a):
        return self.empty(a.shape, a.dtype)

    def full(self, shape, value, dtype):
        out = self.empty(shape, dtype)
        self.kernels.fill(out, value)
        return out

    def zeros(self, shape, dtype):
        return self.full(shape, 0, dtype)

    def zeros_like(self, a):
        return self.zeros(a.shape, a.dtype)

    def copy(self, a, dtype=None):
        if dtype is not None and np.dtype(dtype) != a.dtype:  # no cast kernel: via the host
            return self.from_host(self.to_host(a).astype(dtype))
        out = self.empty_like(a)
        self.kernels.copy(a, out)
        return out

    def from_host(self, array):
        self.kernels  # noqa: B018  (checks once that CUDA can run here)
        return _numba_cuda().to_device(np.require(array, requirements="C"))

    def to_host(self, a):
        return a.copy_to_host()

    def host_copy(self, a):
        return a.copy_to_host()

    def copy_into(self, a, value):
        a.copy_to_device(np.require(value, a.dtype, "C"))

    def contiguous(self, a, dtype=None):
        # Device arrays are always C-contiguous.
        return a if dtype is None or np.dtype(dtype) == a.dtype else self.copy(a, dtype)

    def constant(self, array):
        array = np.asarray(array)
        if array.ndim == 0:
            return _scalar(array.item(), array.dtype)
        return self.from_host(array)

    def tensor_data(self, data, dtype):
        if data.dtype not in _FLOATS or (dtype is not None and np.dtype(dtype) != data.dtype):
            raise InputError(f"a {data.dtype} device array cannot become a "
                             f"{'float tensor' if dtype is None else np.dtype(dtype)} tensor; "
                             f"cast it on the host first")
        return data

    # -- elementwise: one kernel launch each -------------------------------------------
    def _binary(self, name, a, b, out=None):
        if out is None:
            out = self.empty(np.broadcast_shapes(tuple(a.shape), tuple(b.shape)), a.dtype)
        getattr(self.kernels, name)(a, b, out)
        return out

    def _unary(self, name, x, out=None):
        out = self.empty_like(x) if out is None else out
        getattr(self.kernels, name)(x, out)
        return out

    def add(self, a, b, out=None):
        return self._binary("add", a, b, out)

    def sub(self, a, b, out=None):
        return self._binary("sub", a, b, out)

    def mul(self, a, b, out=None):
        return self._binary("mul", a, b, out)

    def div(self, a, b, out=None):
        return self._binary("div", a, b, out)

    def maximum(self, a, b):
        return self._binary("maximum", a, b)

    def minimum(self, a, b):
        return self._binary("minimum", a, b)

    def equal(self, a, b):
        return self._binary("equal", a, b)

    def scale(self, x, factor, out=None):
        return self._binary("mul", x, _scalar(float(factor), x.dtype), out)

    def neg(self, x):
        return self.scale(x, -1)

    def divide_by(self, x, n):
        # A product with the reciprocal: one kernel, as for every scale on the device.
        return self.scale(x, 1.0 / n)

    def exp(self, x):
        return self._unary("exp", x)

    def log(self, x):
        return self._unary("log", x)

    def sqrt(self, x):
        return self._unary("sqrt", x)

    def tanh(self, x):
        return self._unary("tanh", x)

    def sigmoid(self, x):
        return self._unary("sigmoid", x)

    def relu(self, x, out=None):
        return self._unary("relu", x, out)

    def abs(self, x):
        return self._unary("absolute", x)

    def sign(self, x):
        return self._unary("sign", x)

    def clip(self, x, low, high):
        out = x
        if low is not None:
            out = self.maximum(out, _scalar(float(low), x.dtype))
        if high is not None:
            out = self.minimum(out, _scalar(float(high), x.dtype))
        return self.copy(x) if out is x else out

    def relu_backward(self, x, g):
        return self._binary("relu_backward", x, g)

    def tanh_backward(self, y, g):
        return self._binary("tanh_backward", y, g)

    def sigmoid_backward(self, y, g):
        return self._binary("sigmoid_backward", y, g)

    def leaky_relu(self, x, slope):
        return self._binary("leaky_relu", x, _scalar(float(slope), x.dtype))

    def leaky_relu_backward(self, x, g, slope):
        slopes = self._binary("leaky_relu_slope", x, _scalar(float(slope), x.dtype))
        return self.mul(g, slopes)

    def binary_cross_entropy(self, z, y):
        return self._binary("binary_cross_entropy", z, y)

    def binary_cross_entropy_backward(self, z, y):
        return self._binary("binary_cross_entropy_backward", z, y)

    # -- reductions and broadcasting ---------------------------------------------------
    def sum(self, x, axis=None, keepdims=False):
        """As NumPy: a 0-d array for a full sum."""
        axes = _reduced_axes(axis, len(x.shape))
        out = self.empty(tuple(1 if d in axes else n for d, n in enumerate(x.shape)), x.dtype)
        self._sum_into(x, out)
        if keepdims:
            return out
        return out.reshape(tuple(n for d, n in enumerate(x.shape) if d not in axes))

    def mean(self, x, axis=None, keepdims=False):
        axes = _reduced_axes(axis, len(x.shape))
        total = self.sum(x, axis, keepdims=True)
        n = 1
        for d in axes:
            n *= x.shape[d]
        out = total if n == 1 else self.divide_by(total, n)
        if keepdims:
            return out
        return out.reshape(tuple(k for d, k in enumerate(x.shape) if d not in axes))

    def unbroadcast(self, g, shape):
        shape = tuple(shape)
        if tuple(g.shape) == shape:
            return g
        lead = len(g.shape) - len(shape)
        out = self.empty((1,) * lead + shape, g.dtype)
        self._sum_into(g, out)
        return out.reshape(shape)

    def _sum_into(self, x, out):
        """``out`` (x's rank, 1 on the axes summed over) = the sum of `x` onto it.

        When the summed axes are trailing (a full sum among them), a block per output element
        reduces in a tree (`row_sum`), where `sum_to` would leave each output's whole sum to
        one thread."""
        kernels = self.kernels
        if x.size == 0:
            kernels.fill(out, 0)
            return
        shape, kept = tuple(x.shape), tuple(out.shape)
        first = next((d for d in range(len(shape)) if kept[d] != shape[d]), len(shape))
        if all(n == 1 for n in kept[first:]):
            kernels.row_sum(x.reshape(out.size, x.size // out.size), out.reshape(out.size))
        else:
            kernels.sum_to(x, out)

    def broadcast_to(self, a, shape):
        """A new array of `shape` holding `a` broadcast as NumPy would."""
        shape = tuple(shape)
        padded = (1,) * (len(shape) - len(a.shape)) + tuple(a.shape)
        strides = tuple(0 if n == 1 else s
                        for n, s in zip(padded, _contiguous_strides(padded), strict=True))
        out = self.empty(shape, a.dtype)
        self.kernels.strided_copy(a, shape, strides, 0, out)
        return out

    def vdot(self, a, b):
        return float(self.to_host(self.sum(self.mul(a, b))))

    # -- shapes and indexing -----------------------------------------------------------
    def transpose(self, a, axes=None):
        """A contiguous copy of ``a.transpose(axes)``."""
        axes = tuple(reversed(range(len(a.shape)))) if axes is None else tuple(axes)
        strides = _contiguous_strides(tuple(a.shape))
        shape = tuple(a.shape[d] for d in axes)
        out = self.empty(shape, a.dtype)
        self.kernels.strided_copy(a, shape, tuple(strides[d] for d in axes), 0, out)
        return out

    def getitem(self, a, index, basic=True):
        """Basic indexing only: gathering repeated elements back would need atomics."""
        if not basic:
            raise self.unsupported("indexing with integer or boolean arrays")
        shape, strides, offset = _basic_view(tuple(a.shape), index)
        out = self.empty(shape, a.dtype)
        self.kernels.strided_copy(a, shape, strides, offset, out)
        return out

    def getitem_backward(self, g, shape, index, basic=True):
        if not basic:
            raise self.unsupported("indexing with integer or boolean arrays")
        view_shape, strides, offset = _basic_view(tuple(shape), index)
        out = self.zeros(shape, g.dtype)
        self.kernels.strided_add(g.reshape(view_shape), view_shape, strides, offset, out)
        return out

    def concatenate(self, arrays, axis):
        first = tuple(arrays[0].shape)
        axis = _axis(axis, len(first))
        total = builtins.sum(a.shape[axis] for a in arrays)
        shape = first[:axis] + (total,) + first[axis + 1:]
        out = self.zeros(shape, arrays[0].dtype)
        start = 0
        for a in arrays:
            if tuple(a.shape[:axis]) + tuple(a.shape[axis + 1:]) != first[:axis] + first[axis + 1:]:
                raise ValueError(
                    f"cannot join shapes {first} and {tuple(a.shape)} along axis {axis}")
            index = (slice(None),) * axis + (slice(start, start + a.shape[axis]),)
            view_shape, strides, offset = _basic_view(shape, index)
            self.kernels.strided_add(a, view_shape, strides, offset, out)
            start += a.shape[axis]
        return out

    def take_rows(self, a, rows):
        out = self.empty((rows.shape[0],) + tuple(a.shape[1:]), a.dtype)
        self.kernels.take_rows(a, rows, out)
        return out

    # -- products and losses -----------------------------------------------------------
    def matmul(self, a, b, trans_a=False, trans_b=False):
        """The tiled kernel, for 2-D operands (at most one of them transposed)."""
        if len(a.shape) != 2 or len(b.shape) != 2:
            raise self.unsupported("batched matmul (operands of more than 2 dimensions)")
        if trans_a and trans_b:
            raise ValueError("matmul with both operands transposed is not supported")
        m, k = a.shape[::-1] if trans_a else a.shape
        kb, n = b.shape[::-1] if trans_b else b.shape
        if k != kb:
            raise ValueError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not align")
        out = self.empty((m, n), a.dtype)
        kernels = self.kernels
        product = kernels.matmul_tn if trans_a else kernels.matmul_nt if trans_b else kernels.matmul
        product(a, b, out)
        return out

    def host_scale(self, g, n):
        return 1.0 / n, g


CUDA = Cuda()
