"""Reductions: sums and maxima along the last axis, softmax, and sums over the first axis.

Along the last axis one block reduces one row: its threads stride over the row, then combine
their partial results in shared memory (`block_sum`, `block_max`, also used by the
convolution weight gradients). Over the first axis (a bias gradient: the sum over a batch)
each thread sums one column, so that neighbouring threads read neighbouring addresses.
"""

import math

from numba import cuda

from nanoml.kernels.cuda.elementwise import DEVICE, JIT
from nanoml.kernels.cuda.launch import REDUCE_THREADS, launch_1d, reduce_threads


@cuda.jit(**DEVICE)
def block_sum(buf, value):
    """The sum of `value` over a 1-D block whose size is a power of two, in every thread.

    `buf` is a shared array at least as long as the block. Every thread of the block must
    call this, since it synchronises the block.
    """
    t = cuda.threadIdx.x
    buf[t] = value
    cuda.syncthreads()
    step = cuda.blockDim.x // 2
    while step > 0:
        if t < step:
            buf[t] += buf[t + step]
        cuda.syncthreads()
        step //= 2
    total = buf[0]
    cuda.syncthreads()  # so that the caller may reuse `buf` at once
    return total


@cuda.jit(**DEVICE)
def _max(a, b):
    """The larger of a and b, NaN if either is NaN (as NumPy's max)."""
    return b if b > a or b != b else a


@cuda.jit(**DEVICE)
def block_max(buf, value):
    """The maximum of `value` over the block, as `block_sum` (NaN wins)."""
    t = cuda.threadIdx.x
    buf[t] = value
    cuda.syncthreads()
    step = cuda.blockDim.x // 2
    while step > 0:
        if t < step:
            buf[t] = _max(buf[t], buf[t + step])
        cuda.syncthreads()
        step //= 2
    peak = buf[0]
    cuda.syncthreads()
    return peak


@cuda.jit(**JIT)
def row_sum_kernel(x, out):
    """``out[r] = x[r].sum()`` for (rows, cols) `x`, one block per row."""
    buf = cuda.shared.array(REDUCE_THREADS, dtype=x.dtype)
    r = cuda.blockIdx.x
    acc = x.dtype.type(0)
    for j in range(cuda.threadIdx.x, x.shape[1], cuda.blockDim.x):
        acc += x[r, j]
    total = block_sum(buf, acc)
    if cuda.threadIdx.x == 0:
        out[r] = total


@cuda.jit(**DEVICE)
def _row_max(buf, x, r):
    """The maximum of row r of `x` (cols >= 1), in every thread of the block (NaN wins)."""
    acc = x[r, 0]
    for j in range(cuda.threadIdx.x, x.shape[1], cuda.blockDim.x):
        acc = _max(acc, x[r, j])
    return block_max(buf, acc)


@cuda.jit(**JIT)
def row_max_kernel(x, out):
    """``out[r] = x[r].max()`` for (rows, cols) `x` with cols >= 1, one block per row."""
    buf = cuda.shared.array(REDUCE_THREADS, dtype=x.dtype)
    peak = _row_max(buf, x, cuda.blockIdx.x)
    if cuda.threadIdx.x == 0:
        out[cuda.blockIdx.x] = peak


@cuda.jit(**JIT)
def softmax_kernel(x, out):
    """``out[r] = exp(x[r] - max) / sum(exp(x[r] - max))``, one block per row."""
    buf = cuda.shared.array(REDUCE_THREADS, dtype=x.dtype)
    r = cuda.blockIdx.x
    peak = _row_max(buf, x, r)
    acc = x.dtype.type(0)
    for j in range(cuda.threadIdx.x, x.shape[1], cuda.blockDim.x):
        e = math.exp(x[r, j] - peak)
        out[r, j] = e
        acc += e
    scale = x.dtype.type(1) / block_sum(buf, acc)
    # Each thread rescales the entries it wrote itself, so no further synchronisation.
    for j in range(cuda.threadIdx.x, x.shape[1], cuda.blockDim.x):
        out[r, j] *= scale


@cuda.jit(**JIT)
def col_sum_kernel(x, out):
    """``out[c] = x[:, c].sum()`` for (rows, cols) `x`, one thread per column."""
    c = cuda.grid(1)
    if c < x.shape[1]:
        acc = x.dtype.type(0)
        for r in range(x.shape[0]):
            acc += x[r, c]
        out[c] = acc


def _by_rows(kernel, x, out, keep_last):
    """Launch `kernel` with one block per row of `x` viewed as (rows, last axis)."""
    x_shape = tuple(x.shape)  # a plain tuple: the simulator's shapes refuse negative indices
    shape = x_shape if keep_last else x_shape[:-1]
    if tuple(out.shape) != shape:
        raise ValueError(f"out must have shape {shape}, got {tuple(out.shape)}")
    cols = x_shape[-1]
    rows = math.prod(x_shape[:-1])
    if rows:
        x2 = x.reshape(rows, cols)
        kernel[rows, reduce_threads(cols)](x2, out.reshape(rows, cols) if keep_last else
                                           out.reshape(rows))


def _nonempty_rows(x, name):
    if x.shape[x.ndim - 1] == 0:
        raise ValueError(f"{name} needs a non-empty last axis, got x of shape {tuple(x.shape)}")


def row_sum(x, out):
    """``out = x.sum(axis=-1)``; `out` has shape ``x.shape[:-1]``."""
    _by_rows(row_sum_kernel, x, out, keep_last=False)


def row_max(x, out):
    """``out = x.max(axis=-1)``, NaN where a row holds one; `out` has shape ``x.shape[:-1]``."""
    _nonempty_rows(x, "row_max")
    _by_rows(row_max_kernel, x, out, keep_last=False)


def softmax(x, out):
    """Softmax along the last axis, shifted by each row's maximum so that exp never overflows."""
    _nonempty_rows(x, "softmax")
    _by_rows(softmax_kernel, x, out, keep_last=True)


def col_sum(x, out):
    """``out = x.sum(axis=0)`` of 2-D `x`: the bias gradient of a (batch, features) output."""
    if tuple(out.shape) != (x.shape[1],):
        raise ValueError(f"out must have shape ({x.shape[1]},), got {tuple(out.shape)}")
    launch_1d(col_sum_kernel, x.shape[1], x, out)
