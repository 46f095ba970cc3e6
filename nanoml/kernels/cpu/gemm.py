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
dimension is cut into blocks of 512 so that a block of `b` stays in L2 while every row tile
passes over it (blocks after the first add to `c`).

Policy: ``cache=True`` (the cache is keyed by the host CPU, so the vector width chosen at
compile time stays right); `matmul` and `matmul_rows` are serial, for callers that
parallelise over their own work (disjoint row ranges) inside one ``prange``;
`nanoml.kernels.cpu.matmul.matmul` spreads bands of rows over the threads.
"""

import warnings

import llvmlite.binding as llvm
import numba

_JIT = {"cache": True}
# Rows per tile: 8 rows x 2 vectors of accumulators plus the operands fill AVX-512's 32
# registers without spilling; AVX2 has 16.
ROWS = 8 if llvm.get_host_cpu_features().get("avx512f", False) else 4
# Inner-dimension block: 512 rows of b (up to 256 KB in float32 at N = 128) stay in L2.
_K_BLOCK = 512


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


_tile, TILE, _COLUMN_BYTES = _select_tile()


@numba.njit(**_JIT)
def _rows(a, b, c, i0, n, accumulate):
    """Rows i0 to i0+n of ``c (+)= a @ b``, n <= ROWS, in tiles of literal height."""
    N = b.shape[1]
    step = _COLUMN_BYTES // a.itemsize
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
def matmul_rows(a, b, c, r0, r1):
    """Rows r0 to r1 of ``c = a @ b`` (2-D float arrays of one dtype, see module doc).

    The inner dimension is blocked so that a block of b stays in cache while every row tile
    passes over it. Disjoint row ranges may run on different threads.
    """
    K = a.shape[1]
    for k0 in range(0, max(K, 1), _K_BLOCK):
        k1 = min(K, k0 + _K_BLOCK)
        for i0 in range(r0, r1, ROWS):
            _rows(a[:, k0:k1], b[k0:k1], c, i0, min(ROWS, r1 - i0), k0 > 0)


@numba.njit(**_JIT)
def matmul(a, b, c):
    """``c = a @ b`` on the calling thread."""
    matmul_rows(a, b, c, 0, a.shape[0])
