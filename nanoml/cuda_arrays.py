"""NumPy-like helpers over numba device arrays: what the ops need on the "cuda" device.

A Tensor on the cuda device holds a numba device array (a ``DeviceNDArray``, or the CUDA
simulator's stand-in) as ``.data``, always C-contiguous. The ops compute on it with the
kernels of `nanoml.kernels.cuda`; these helpers allocate, move and reshape such arrays and
run the broadcasting arithmetic, reductions and views that NumPy does on the host, so no op
copies its data back to the host between steps.

numba.cuda is imported on first use: a CPU-only run never pays for it.
"""

import builtins
import functools
import operator

import numpy as np

from nanoml.errors import DeviceError


@functools.cache
def _cuda():
    from numba import cuda

    return cuda


@functools.cache
def kernels():
    """The `nanoml.kernels.cuda` package (after checking that CUDA can run here)."""
    from nanoml.device import require_cuda

    require_cuda()
    import nanoml.kernels.cuda as gpu

    return gpu


def is_device_array(a):
    """True for a numba device array (anything array-like that is not a NumPy array)."""
    return hasattr(a, "copy_to_host")


def to_device(array):
    """A device copy of host `array` (C-contiguous)."""
    kernels()
    return _cuda().to_device(np.require(array, requirements="C"))


def to_host(array):
    """A host copy of device `array`."""
    return array.copy_to_host()


def host_copy(array):
    """A host copy of a host or device array."""
    return to_host(array) if is_device_array(array) else np.array(array, copy=True)


def copy_into(array, value):
    """Copy host array `value` (of `array`'s shape) into host or device `array`, in place."""
    if is_device_array(array):
        array.copy_to_device(np.require(value, array.dtype, "C"))
    else:
        np.copyto(array, value, casting="same_kind")


def empty(shape, dtype):
    """An uninitialised device array; `shape` an int or a tuple, as for np.empty."""
    shape = tuple(shape) if isinstance(shape, (tuple, list)) else (operator.index(shape),)
    return _cuda().device_array(shape, np.dtype(dtype))


def empty_like(a):
    return empty(a.shape, a.dtype)


def full(shape, value, dtype):
    out = empty(shape, dtype)
    kernels().fill(out, value)
    return out


def zeros(shape, dtype):
    return full(shape, 0, dtype)


def zeros_like(a):
    return zeros(a.shape, a.dtype)


def copy(a):
    out = empty_like(a)
    kernels().copy(a, out)
    return out


@functools.lru_cache(maxsize=64)
def constant(value, dtype):
    """A cached one-element device array holding `value` (broadcasts like a scalar)."""
    return to_device(np.full((), value, dtype))


# -- elementwise ---------------------------------------------------------------------------
def binary(name, a, b):
    """``<name>(a, b)`` with broadcasting, for a binary kernel of `nanoml.kernels.cuda`
    (add, sub, mul, div, maximum, equal, relu_backward, binary_cross_entropy, ...)."""
    out = empty(np.broadcast_shapes(tuple(a.shape), tuple(b.shape)), a.dtype)
    getattr(kernels(), name)(a, b, out)
    return out


def unary(name, x):
    """``<name>(x)`` for a unary kernel of `nanoml.kernels.cuda` (relu, exp, log, ...)."""
    out = empty_like(x)
    getattr(kernels(), name)(x, out)
    return out


def scale(x, factor):
    """``x * factor`` for a Python number `factor`."""
    return binary("mul", x, constant(float(factor), x.dtype))


# -- reductions ----------------------------------------------------------------------------
def reduced_axes(axis, ndim):
    """The sorted non-negative axes a reduction over `axis` (None: all) covers."""
    if axis is None:
        return tuple(range(ndim))
    axes = [_axis(a, ndim) for a in (axis if isinstance(axis, tuple) else (axis,))]
    if len(set(axes)) != len(axes):
        raise ValueError("duplicate value in 'axis'")
    return tuple(sorted(axes))


def _axis(axis, ndim):
    """`axis` as a non-negative axis of an `ndim`-dimensional array; AxisError, as NumPy
    raises, when there is no such axis."""
    axis = operator.index(axis)
    if not -ndim <= axis < ndim:
        raise np.exceptions.AxisError(axis, ndim)
    return axis % ndim


def reduce_sum(x, axis=None, keepdims=False):
    """``x.sum(axis, keepdims)`` as NumPy computes it (a 0-d array for a full sum)."""
    axes = reduced_axes(axis, len(x.shape))
    kept = tuple(1 if d in axes else n for d, n in enumerate(x.shape))
    out = empty(kept, x.dtype)
    _sum_into(x, out)
    if keepdims:
        return out
    return out.reshape(tuple(n for d, n in enumerate(x.shape) if d not in axes))


def unbroadcast(grad, shape):
    """`grad` summed over the axes broadcasting stretched, giving an array of `shape`."""
    shape = tuple(shape)
    if tuple(grad.shape) == shape:
        return grad
    lead = len(grad.shape) - len(shape)
    padded = (1,) * lead + shape
    out = empty(padded, grad.dtype)
    _sum_into(grad, out)
    return out.reshape(shape)


def _sum_into(x, out):
    """``out`` (x's rank, 1 on the axes summed over) = the sum of `x` onto it.

    When the summed axes are trailing (a full sum among them), a block per output element
    reduces in a tree (`row_sum`), where `sum_to` would leave each output's whole sum to one
    thread."""
    if x.size == 0:
        kernels().fill(out, 0)
        return
    shape, kept = tuple(x.shape), tuple(out.shape)
    first = next((d for d in range(len(shape)) if kept[d] != shape[d]), len(shape))
    if all(n == 1 for n in kept[first:]):
        kernels().row_sum(x.reshape(out.size, x.size // out.size), out.reshape(out.size))
    else:
        kernels().sum_to(x, out)


# -- views ---------------------------------------------------------------------------------
def _contiguous_strides(shape):
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


def broadcast_to(a, shape):
    """A new array of `shape` holding `a` broadcast as NumPy would."""
    shape = tuple(shape)
    padded = (1,) * (len(shape) - len(a.shape)) + tuple(a.shape)
    strides = tuple(0 if n == 1 else s
                    for n, s in zip(padded, _contiguous_strides(padded), strict=True))
    out = empty(shape, a.dtype)
    kernels().strided_copy(a, shape, strides, 0, out)
    return out


def transpose(a, axes=None):
    """A contiguous copy of ``a.transpose(axes)``."""
    axes = tuple(reversed(range(len(a.shape)))) if axes is None else tuple(axes)
    strides = _contiguous_strides(tuple(a.shape))
    shape = tuple(a.shape[d] for d in axes)
    out = empty(shape, a.dtype)
    kernels().strided_copy(a, shape, tuple(strides[d] for d in axes), 0, out)
    return out


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


def getitem(a, index):
    """``a[index]`` for basic indices (ints, slices, None, Ellipsis), as a new array."""
    shape, strides, offset = _basic_view(tuple(a.shape), index)
    out = empty(shape, a.dtype)
    kernels().strided_copy(a, shape, strides, offset, out)
    return out


def take_rows(a, rows):
    """``a[rows]`` along the first axis for a device int64 array `rows`."""
    out = empty((rows.shape[0],) + tuple(a.shape[1:]), a.dtype)
    kernels().take_rows(a, rows, out)
    return out


def getitem_backward(grad, shape, index):
    """Zeros of `shape` with `grad` placed where ``[index]`` (basic) took it from."""
    view_shape, strides, offset = _basic_view(tuple(shape), index)
    out = zeros(shape, grad.dtype)
    kernels().strided_add(grad.reshape(view_shape), view_shape, strides, offset, out)
    return out


def concatenate(arrays, axis):
    """(the arrays joined along `axis`, the basic index of each part in the result)."""
    first = tuple(arrays[0].shape)
    axis = _axis(axis, len(first))
    total = builtins.sum(a.shape[axis] for a in arrays)
    shape = first[:axis] + (total,) + first[axis + 1:]
    out = zeros(shape, arrays[0].dtype)
    parts, start = [], 0
    for a in arrays:
        if tuple(a.shape[:axis]) + tuple(a.shape[axis + 1:]) != first[:axis] + first[axis + 1:]:
            raise ValueError(f"cannot join shapes {first} and {tuple(a.shape)} along axis {axis}")
        index = (slice(None),) * axis + (slice(start, start + a.shape[axis]),)
        view_shape, strides, offset = _basic_view(shape, index)
        kernels().strided_add(a, view_shape, strides, offset, out)
        parts.append(index)
        start += a.shape[axis]
    return out, parts


# -- products ------------------------------------------------------------------------------
def matmul(a, b, trans_a=False, trans_b=False):
    """``op(a) @ op(b)`` of 2-D arrays, op transposing where asked."""
    if trans_a and trans_b:
        raise ValueError("matmul with both operands transposed is not supported")
    m = a.shape[1] if trans_a else a.shape[0]
    n = b.shape[0] if trans_b else b.shape[1]
    out = empty((m, n), a.dtype)
    gpu = kernels()
    product = gpu.matmul_tn if trans_a else gpu.matmul_nt if trans_b else gpu.matmul
    product(a, b, out)
    return out


def unsupported(op):
    """The error for an op that has no device implementation yet."""
    return DeviceError(
        f"{op} is not implemented on the cuda device; move its input to the CPU with "
        f".to('cpu') first"
    )
