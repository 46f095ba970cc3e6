"""Linear's matrix products: the CPU twins of `nanoml.kernels.cuda.matmul`.

For the shapes of a small-batch Linear layer (batch 32, 5408 -> 10 features in the tutorial
CNN) they beat the OpenBLAS that NumPy ships, run on one thread while training (see
`nanoml.runtime`). Measured on 2 threads against NumPy on 1: ``x @ W.T`` 0.026 vs 0.057 ms,
``g.T @ x`` 0.013 vs 0.044 ms, ``g @ W`` 0.015 vs 0.035 ms.

Policy: ``cache=True``, ``parallel=True`` with ``prange`` over rows of the output (each
iteration writes its own rows), except for products below `SERIAL_WORK`, which stay on the
calling thread; ``fastmath={"contract", "reassoc"}`` only in `matmul_nt`'s dot
products, so that they vectorise. All three take 2-D float arrays of one dtype; `out`
needs unit stride along its rows, and `a` too in `matmul_nt`.
"""

import numba
import numpy as np
from numba import prange

from nanoml.kernels.cpu.gemm import (
    COLUMN_BYTES,
    ROWS,
    matmul_packed_panels,
    matmul_panel,
    matmul_rows,
    pack_panel,
    pack_rows,
)

# Products of fewer multiply-adds than this run on the calling thread: waking the other
# threads would cost more (microseconds when idle, far more on a busy machine).
SERIAL_WORK = 1 << 16
# A `b` wider than this many columns is packed (see `gemm.pack_panel`); narrower rows are
# close enough together in memory to be read in place.
PACK_MIN_COLUMNS = 64
# `matmul_nt` multiplies as ``(b @ a.T).T`` while the rows of a are at most a quarter of
# the columns: at batch 32 (784 -> 256 and 256 -> 128 features) that beats packing b, at
# batch 128 (784 -> 256) it does not.
FLIP_MAX_ROWS_PER_COLUMN = 4
# Tasks to aim for when a wide product is split: enough to keep every core of a laptop busy.
_TASKS = 8
# Rows of `a` per task of a wide product.
_GROUP_ROWS = 64


@numba.njit(cache=True, parallel=True)
def matmul(a, b, out):
    """``out = a @ b`` for a (M, K), b (K, N), spread over threads.

    Narrow `b`: bands of rows of `out`. Wide `b`, or one whose rows are not unit-stride (a
    transposed view): packed into panels of one tile's columns first (`gemm.pack_panel`),
    then groups of rows times groups of panels. The tiles are `nanoml.kernels.cpu.gemm`'s;
    `a` may be a transposed view, which is then packed too (`gemm.pack_rows`), once.
    """
    M, K = a.shape
    N = b.shape[1]
    in_place = b.strides[1] == b.itemsize  # else only packed panels give the tiles unit rows
    if M * K * N < SERIAL_WORK and in_place:
        matmul_rows(a, b, out, 0, M)
        return
    bands = (M + ROWS - 1) // ROWS
    if N <= PACK_MIN_COLUMNS and in_place:
        for band in prange(bands):
            matmul_rows(a, b, out, band * ROWS, min(M, band * ROWS + ROWS))
        return
    step = COLUMN_BYTES // a.itemsize
    panels = (N + step - 1) // step
    packed = np.empty((panels, K, step), a.dtype)
    for m in prange(panels):
        pack_panel(b, m, packed)
    # Groups of at most _GROUP_ROWS rows (their block of a stays in L2 while it meets every
    # panel); panels split into groups too when there are fewer row groups than _TASKS.
    row_groups = max(1, (M + _GROUP_ROWS - 1) // _GROUP_ROWS)
    rows_per = (bands + row_groups - 1) // row_groups * ROWS
    panel_groups = min(panels, max(1, (_TASKS + row_groups - 1) // row_groups))
    panels_per = (panels + panel_groups - 1) // panel_groups
    column_major = a.strides[0] < a.strides[1]  # a transposed view: packed too, once
    a_packed = np.empty((bands if column_major else 0, K, ROWS), a.dtype)
    if column_major:
        for part in prange(_TASKS):
            pack_rows(a, part * K // _TASKS, (part + 1) * K // _TASKS, a_packed)
    for task in prange(row_groups * panel_groups):
        r0 = task // panel_groups * rows_per
        first = task % panel_groups * panels_per
        last = min(panels, first + panels_per)
        if column_major:
            matmul_packed_panels(a_packed, packed, first, last, out, r0, min(M, r0 + rows_per))
        else:
            for m in range(first, last):
                matmul_panel(a, packed, m, out, r0, min(M, r0 + rows_per))


@numba.njit(cache=True, fastmath={"contract", "reassoc"})
def _dot_rows(a, b, out, i):
    """``out[i, j] = a[i] . b[j]`` for every j: row i of ``a @ b.T``."""
    x = a[i]
    for j in range(b.shape[0]):
        y = b[j]
        s = out.dtype.type(0)
        for k in range(a.shape[1]):
            s += x[k] * y[k]
        out[i, j] = s


@numba.njit(cache=True)
def _transpose_into(src, dst):
    """``dst = src.T``, row by row of `dst` (serial: called for small operands)."""
    for i in range(dst.shape[0]):
        for j in range(dst.shape[1]):
            dst[i, j] = src[j, i]


@numba.njit(cache=True, parallel=True)
def _matmul_nt_flipped(a, b, out):
    """``out = a @ b.T`` as ``(b @ a.T).T``, in bands of rows of b: the tiles read b's rows
    in place and one panel of ``a.T``, so the copy made is of a (M x K), not of b."""
    M, K = a.shape
    N = b.shape[0]
    a_t = np.empty((K, M), a.dtype)
    _transpose_into(a, a_t)
    out_t = np.empty((N, M), a.dtype)
    band = 4 * ROWS
    for k in prange((N + band - 1) // band):
        matmul_rows(b, a_t, out_t, k * band, min(N, k * band + band))
    _transpose_into(out_t, out)


@numba.njit(cache=True, parallel=True)
def matmul_nt(a, b, out):
    """``out = a @ b.T`` for a (M, K), b (N, K): Linear's forward, ``x @ weight.T``.

    With few columns (N = 10) every output is one dot product of two contiguous rows,
    which beats tiling: that would need ``b.T`` copied to unit-stride rows first. From
    PACK_MIN_COLUMNS columns on the product is tiled: with few rows (at most a
    `FLIP_MAX_ROWS_PER_COLUMN` share of N) as ``(b @ a.T).T``, which copies only the small
    a (batch 32, 784 -> 256 features: 0.09 ms on 2 threads against 0.18 through panels
    packed from b); else by `matmul` on panels packed from ``b.T``.
    """
    M, K = a.shape
    N = b.shape[0]
    if M * K * N < SERIAL_WORK:
        for i in range(M):
            _dot_rows(a, b, out, i)
        return
    if N > PACK_MIN_COLUMNS:
        if M * FLIP_MAX_ROWS_PER_COLUMN <= N:
            _matmul_nt_flipped(a, b, out)
        else:
            matmul(a, b.T, out)
        return
    for i in prange(M):
        _dot_rows(a, b, out, i)


@numba.njit(cache=True)
def matmul_tn(a, b, out):
    """``out = a.T @ b`` for a (K, M), b (K, N): a weight gradient, ``grad.T @ x``."""
    matmul(a.T, b, out)
