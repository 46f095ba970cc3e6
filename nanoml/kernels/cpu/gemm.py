"""Matrix products for kernels that run many small GEMMs, with a register-tiled micro-kernel.

`matmul(a, b, c)` computes ``c = a @ b`` inside an njit function without calling BLAS. The
recurrent kernels need it: their per-step products (64x128 @ 128x512) are too small for
BLAS threading to pay, and the OpenBLAS that NumPy and SciPy ship picks its AVX2 kernels on
AMD Zen 5, while the micro-kernel uses whatever vector width the host has (AVX-512 there:
about 2.2x OpenBLAS on one core). `a` may have any strides (a transposed view works without
a copy); `b` and `c` need unit stride along their rows.

The micro-kernel (`nanoml.kernels.cpu.tile_llvm`) is written in LLVM IR, which depends on
Numba and llvmlite internals that could change under a user; at import it must compile and
match NumPy (`tile_llvm.check`), else a plain Numba tile takes its place with a one-line
warning (`TILE` says which runs). Rows are processed in tiles of up to `ROWS`; the inner
dimension is cut into even blocks of at most 256, and each block of one tile's columns of
`b` stays in L1 while every row tile passes over it (blocks after the first add to `c`).
A wide `b` is packed first (`pack`, `matmul_packed`), and an `a` stored column by column
too (`pack_rows`, `matmul_packed_panels`); those products take the inner dimension whole,
since the tiles read packed operands as sequential streams.

Policy: ``cache=True`` (the cache is keyed by the host CPU, so the vector width chosen at
compile time stays right); `matmul` and `matmul_rows` are serial, for callers that
parallelise over their own work (disjoint row ranges) inside one ``prange``;
`nanoml.kernels.cpu.matmul.matmul` spreads bands of rows over the threads.
"""

import warnings

import llvmlite.binding as llvm
import numba
import numpy as np

_JIT = {"cache": True}
# Rows per tile: 8 rows x 2 vectors of accumulators plus the operands fill AVX-512's 32
# registers without spilling; AVX2 has 16.
ROWS = 8 if llvm.get_host_cpu_features().get("avx512f", False) else 4
# Inner-dimension block: at most 256 rows of b, so that one tile's columns of them (32 KB in
# float32) stay in L1.
_K_BLOCK = 256


@numba.njit(**_JIT)
def _tile_numba(a, b, c, i0, j0, rows, cols, accumulate):
    """``c[i0:i0+rows, j0:j0+cols] (+)= a[i0:i0+rows, :] @ b[:, j0:j0+cols]`` in plain
    Numba: the fallback for the LLVM-IR micro-kernel, correct on any Numba, and slower."""
    for i in range(i0, i0 + rows):
        if not accumulate:
            for j in range(j0, j0 + cols):
                c[i, j] = 0
        for k in range(a.shape[1]):
            x = a[i, k]
            for j in range(j0, j0 + cols):
                c[i, j] += x * b[k, j]


def _tile_numpy(a, b, c, i0, j0, rows, cols, accumulate):
    """The tile with NumPy, for NUMBA_DISABLE_JIT=1 (an intrinsic exists only compiled)."""
    block = a[i0:i0 + rows] @ b[:, j0:j0 + cols]
    target = c[i0:i0 + rows, j0:j0 + cols]
    target[...] = target + block if accumulate else block


def _select_tile():
    """(tile function, its name, bytes of columns per call): the LLVM-IR micro-kernel when
    it passes its check here, else the plain Numba tile, with a one-line warning."""
    if numba.config.DISABLE_JIT:
        return _tile_numpy, "numpy", 128
    try:
        from nanoml.kernels.cpu import tile_llvm

        problem = tile_llvm.check()
    except Exception as exc:  # anything a Numba or llvmlite we did not test may raise
        lines = str(exc).strip().splitlines()
        problem = type(exc).__name__ + (f": {lines[0]}" if lines else "")
    if problem is None:
        return tile_llvm.tile, "llvm", tile_llvm.COLUMN_BYTES
    warnings.warn(
        f"nanoml: the LLVM-IR GEMM micro-kernel failed its check ({problem}); using the "
        f"plain Numba tile instead (correct, slower)",
        RuntimeWarning,
        stacklevel=2,
    )
    return _tile_numba, "numba", 128


_tile, TILE, COLUMN_BYTES = _select_tile()


@numba.njit(**_JIT)
def _rows(a, b, c, i0, n, accumulate):
    """Rows i0 to i0+n of ``c (+)= a @ b``, n <= ROWS, in tiles of literal height."""
    N = b.shape[1]
    step = COLUMN_BYTES // a.itemsize
    i = i0
    # Literal tile heights (each its own unrolled code): ROWS, then the binary remainder.
    if n >= 8 and ROWS >= 8:
        for j0 in range(0, N, step):
            _tile(a, b, c, i, j0, 8, min(step, N - j0), accumulate)
        i += 8
    if i0 + n - i >= 4:
        for j0 in range(0, N, step):
            _tile(a, b, c, i, j0, 4, min(step, N - j0), accumulate)
        i += 4
    if i0 + n - i >= 2:
        for j0 in range(0, N, step):
            _tile(a, b, c, i, j0, 2, min(step, N - j0), accumulate)
        i += 2
    if i0 + n - i >= 1:
        for j0 in range(0, N, step):
            _tile(a, b, c, i, j0, 1, min(step, N - j0), accumulate)


@numba.njit(**_JIT)
def _product_rows(a, b, c, r0, r1, accumulate):
    """Rows r0 to r1 of ``c (+)= a @ b``, the inner dimension in blocks."""
    K, N = a.shape[1], b.shape[1]
    step = COLUMN_BYTES // a.itemsize
    kc = _even_block(K, _K_BLOCK)
    for k0 in range(0, max(K, 1), kc):
        k1 = min(K, k0 + kc)
        add = accumulate or k0 > 0
        for j0 in range(0, max(N, 1), step):
            # One tile's columns of this block of b (<= 32 KB) stay in L1 while every row
            # tile passes over them.
            panel, target = b[k0:k1, j0:j0 + step], c[:, j0:j0 + step]
            for i0 in range(r0, r1, ROWS):
                _rows(a[:, k0:k1], panel, target, i0, min(ROWS, r1 - i0), add)


@numba.njit(**_JIT)
def _even_block(K, most):
    """The block length that cuts K into the fewest blocks of at most `most`, all alike
    (no short last block), and at least 1."""
    blocks = max(1, (K + most - 1) // most)
    return max(1, (K + blocks - 1) // blocks)


@numba.njit(**_JIT)
def matmul_rows(a, b, c, r0, r1):
    """Rows r0 to r1 of ``c = a @ b`` (2-D float arrays of one dtype, see module doc).

    The inner dimension is blocked so that a block of b stays in cache while every row tile
    passes over it. Disjoint row ranges may run on different threads.
    """
    _product_rows(a, b, c, r0, r1, False)


@numba.njit(**_JIT)
def matmul(a, b, c):
    """``c = a @ b`` on the calling thread."""
    _product_rows(a, b, c, 0, a.shape[0], False)


@numba.njit(**_JIT)
def matmul_accumulate(a, b, c):
    """``c += a @ b`` on the calling thread."""
    _product_rows(a, b, c, 0, a.shape[0], True)


@numba.njit(**_JIT)
def pack_panel(b, m, packed):
    """``packed[m, k, :] = b[k, m*step : (m+1)*step]`` for every k (`step` the columns of one
    tile, the last panel partial): panel m of `b` as one contiguous block.

    A tile reads one row of its columns of `b` per step of the inner dimension; in a wide
    `b` those rows lie a whole row of `b` apart, and at power-of-two widths they share a few
    L1 sets and evict each other. Packed (as GotoBLAS does), they are adjacent.
    """
    step = packed.shape[2]
    j0 = m * step
    cols = min(step, b.shape[1] - j0)
    for k in range(b.shape[0]):
        src, dst = b[k], packed[m, k]
        for j in range(cols):
            dst[j] = src[j0 + j]


@numba.njit(**_JIT)
def matmul_panel(a, packed, m, c, r0, r1):
    """Rows r0 to r1 of the columns of panel m of ``c = a @ b``, from `b` packed by
    `pack_panel`."""
    step = packed.shape[2]
    j0 = m * step
    cols = min(step, c.shape[1] - j0)
    _product_rows(a, packed[m, :, :cols], c[:, j0:j0 + cols], r0, r1, False)


@numba.njit(**_JIT)
def pack_rows(a, k0, k1, packed):
    """``packed[p, k, r] = a[p*ROWS + r, k]`` for k in [k0, k1): an `a` stored column by
    column (`a.T` has unit-stride rows) as micro-panels of one tile's height, each
    contiguous (the last may be partial), as GotoBLAS packs.

    Such an `a` is a weight gradient's ``g.T``: read in place, each step of a tile reads its
    rows' values from a different row of `g`, a power of two apart in the gradients of
    wide layers, where they fall in one L1 set and past the prefetchers. Packed by ranges
    of k, each row of `g` is read whole, in order (0.6-0.7x the time of packing by groups
    of rows).
    """
    a_t = a.T
    M = a.shape[0]
    full = M // ROWS
    for k in range(k0, k1):
        src = a_t[k]
        for p in range(full):
            dst = packed[p, k]
            for r in range(ROWS):
                dst[r] = src[p * ROWS + r]
        for i in range(full * ROWS, M):
            packed[full, k, i - full * ROWS] = src[i]


@numba.njit(**_JIT)
def matmul_packed_panels(a_packed, b_packed, m0, m1, c, r0, r1):
    """Rows r0 to r1 (r0 a multiple of ROWS) of panels m0 to m1 of ``c = a @ b``, from `a`
    packed by `pack_rows` and `b` by `pack`; the same values as `matmul`.

    Both operands packed are sequential streams, which the prefetchers keep ahead of the
    tiles, so the inner dimension is not cut into blocks: each tile of c is read and written
    once. (1024 x 3200 x 288 from a transposed gradient on 2 threads of an AMD EPYC, packing
    included: 0.84x the time of blocks of 256; read in place, unpacked, 33 against 64
    GFLOP/s a core.)
    """
    step = b_packed.shape[2]
    for m in range(m0, m1):
        j0 = m * step
        cols = min(step, c.shape[1] - j0)
        panel = b_packed[m, :, :cols]
        for i0 in range(r0, r1, ROWS):
            rows = min(ROWS, r1 - i0)
            _rows(a_packed[i0 // ROWS, :, :rows].T, panel, c[i0:r1, j0:j0 + cols], 0, rows,
                  False)


@numba.njit(**_JIT)
def pack(b):
    """Every panel of `b` packed by `pack_panel`, as a (panels, K, step) array: for a `b`
    that many products share (a recurrent layer's weights, multiplied at every step)."""
    step = COLUMN_BYTES // b.itemsize
    packed = np.empty(((b.shape[1] + step - 1) // step, b.shape[0], step), b.dtype)
    for m in range(packed.shape[0]):
        pack_panel(b, m, packed)
    return packed


@numba.njit(**_JIT)
def matmul_packed(a, packed, c):
    """``c = a @ b`` on the calling thread, from `b` packed by `pack`, for an `a` of a few
    tiles of rows (a recurrent step's chunk).

    Each panel meets those few tiles once, so the inner dimension is not cut into blocks:
    a block would keep nothing in cache for later and only add passes over `c` (5-9% of
    an LSTM step of 256 units).
    """
    step = packed.shape[2]
    for m in range(packed.shape[0]):
        j0 = m * step
        cols = min(step, c.shape[1] - j0)
        for i0 in range(0, a.shape[0], ROWS):
            _rows(a, packed[m, :, :cols], c[:, j0:j0 + cols], i0, min(ROWS, a.shape[0] - i0),
                  False)
