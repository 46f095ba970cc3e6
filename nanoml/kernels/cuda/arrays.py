"""Array plumbing on the device: strided views, sums over axes, row gathers and fills.

What NumPy does for the CPU ops without a kernel of ours (``a.T``, ``a[1:, ::2]``,
``np.broadcast_to``, ``g.sum(axis=...)``, ``X[batch]``) these kernels do for device arrays.
A strided view is described, as NumPy describes one, by an offset and one signed element
stride per output axis into the flat base array; a small device table carries the output
shape and those strides (cached per geometry, as the broadcasting table of `elementwise`).
"""

import functools

import numpy as np
from numba import cuda

from nanoml.kernels.cuda.elementwise import DEVICE, JIT
from nanoml.kernels.cuda.launch import flat, launch_1d


@cuda.jit(**DEVICE)
def _view_offset(i, geometry, offset):
    """Flat position in the base array of element i of the view: ``offset + sum_d k_d *
    stride_d`` where k is i's index in the view. `geometry` rows: view shape, element
    strides (signed; 0 repeats an element)."""
    rest = i
    at = offset
    for d in range(geometry.shape[1] - 1, -1, -1):
        k = rest % geometry[0, d]
        rest //= geometry[0, d]
        at += k * geometry[1, d]
    return at


@cuda.jit(**JIT)
def strided_copy_kernel(src, out, geometry, offset):
    """``out[i] = src[position of view element i]`` (see `_view_offset`)."""
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] = src[_view_offset(i, geometry, offset)]


@cuda.jit(**JIT)
def strided_add_kernel(src, out, geometry, offset):
    """The adjoint of `strided_copy_kernel` for views with no repeated element:
    ``out[position of view element i] += src[i]``."""
    i = cuda.grid(1)
    if i < src.shape[0]:
        out[_view_offset(i, geometry, offset)] += src[i]


@cuda.jit(**JIT)
def sum_to_kernel(x, out, geometry):
    """``out[j]`` = the sum of the elements of `x` that reduce onto output element j.

    `geometry` rows: x's shape, x's element strides, the output shape (x's with 1 on every
    summed axis). One thread per output element walks its own box of summed elements.
    """
    j = cuda.grid(1)
    if j < out.shape[0]:
        ndim = geometry.shape[1]
        rest = j
        base = 0
        count = 1
        for d in range(ndim - 1, -1, -1):
            k = rest % geometry[2, d]
            rest //= geometry[2, d]
            base += k * geometry[1, d]
            if geometry[2, d] == 1:
                count *= geometry[0, d]
        acc = out.dtype.type(0)
        for r in range(count):
            rest = r
            at = base
            for d in range(ndim - 1, -1, -1):
                if geometry[2, d] == 1:
                    k = rest % geometry[0, d]
                    rest //= geometry[0, d]
                    at += k * geometry[1, d]
            acc += x[at]
        out[j] = acc


@cuda.jit(**JIT)
def take_rows_kernel(src, rows, out, width):
    """``out[i, :] = src[rows[i], :]`` over flat arrays whose rows are `width` long."""
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] = src[rows[i // width] * width + i % width]


@cuda.jit(**JIT)
def fill_kernel(out, value):
    """``out[i] = value`` over a flat array."""
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] = value


@functools.lru_cache(maxsize=256)
def _table(*rows):
    """A device int64 table of equally long rows (cached: one upload per geometry)."""
    return cuda.to_device(np.array(rows, np.int64).reshape(len(rows), -1))


def strided_copy(src, shape, strides, offset, out):
    """Copy the view (`shape`, element `strides`, `offset`) of contiguous `src` into `out`."""
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"out has shape {tuple(out.shape)}, the view has shape {tuple(shape)}")
    if out.size:
        table = _table(tuple(shape) or (1,), tuple(strides) or (0,))
        launch_1d(strided_copy_kernel, out.size, flat(src), flat(out), table, offset)


def strided_add(src, shape, strides, offset, out):
    """Add contiguous `src` onto the view (`shape`, `strides`, `offset`) of contiguous `out`.

    The view must not repeat an element (no zero strides, no overlap), as basic indexing.
    """
    if tuple(src.shape) != tuple(shape):
        raise ValueError(f"src has shape {tuple(src.shape)}, the view has shape {tuple(shape)}")
    if src.size:
        table = _table(tuple(shape) or (1,), tuple(strides) or (0,))
        launch_1d(strided_add_kernel, src.size, flat(src), flat(out), table, offset)


def sum_to(x, out):
    """``out = x.sum(over the axes where out has 1 and x more)``, `out` of x's rank."""
    if len(out.shape) != len(x.shape) or any(
        o not in (1, n) for o, n in zip(out.shape, x.shape, strict=True)
    ):
        raise ValueError(f"cannot sum shape {tuple(x.shape)} to {tuple(out.shape)}")
    if not out.size:
        return
    shape = tuple(x.shape) or (1,)
    strides = tuple(int(s) for s in np.cumprod((1,) + shape[:0:-1])[::-1])
    table = _table(shape, strides, tuple(out.shape) or (1,))
    launch_1d(sum_to_kernel, out.size, flat(x), flat(out), table)


def take_rows(src, rows, out):
    """``out = src[rows]`` along the first axis; `rows` is a device int64 array."""
    width = int(np.prod(src.shape[1:], dtype=np.int64))
    if tuple(out.shape) != (rows.shape[0],) + tuple(src.shape[1:]):
        raise ValueError(f"out has shape {tuple(out.shape)} for {rows.shape[0]} rows of "
                         f"{tuple(src.shape)}")
    launch_1d(take_rows_kernel, out.size, flat(src), rows, flat(out), width)


def fill(out, value):
    """``out[...] = value``."""
    launch_1d(fill_kernel, out.size, flat(out), out.dtype.type(value))
