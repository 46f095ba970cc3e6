"""Matrix products on the GPU: 16x16 output tiles, the operands staged through shared memory.

Each block computes one 16x16 tile of the output. It walks the shared dimension 16 at a
time: the block loads a 16x16 tile of each operand into shared memory (each element read
from global memory once per block instead of 16 times), synchronises, and every thread adds
16 products to its output element. Transposed operands (``a.T @ b`` and ``a @ b.T``, which
Linear and the recurrent layers' backwards need) are read in their stored layout, so
neighbouring threads still read neighbouring addresses, and written transposed into the
shared tile; a padding column keeps those writes free of bank conflicts.
"""

from numba import cuda

from nanoml.kernels.cuda.elementwise import JIT

TILE = 16
TILE_PAD = TILE + 1  # a shared tile row: one padding column (a literal, as shapes must be)


@cuda.jit(**JIT)
def matmul_kernel(a, b, out, trans_a, trans_b):
    """``out = op(a) @ op(b)`` where op transposes its operand when the flag is set.

    Launched with (16, 16) threads and one block per output tile, blockIdx.x over columns.
    """
    ta = cuda.shared.array((TILE, TILE_PAD), dtype=out.dtype)  # ta[i, k] = op(a)[m0 + i, k0 + k]
    tb = cuda.shared.array((TILE, TILE_PAD), dtype=out.dtype)  # tb[k, j] = op(b)[k0 + k, n0 + j]
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    m0 = cuda.blockIdx.y * TILE
    n0 = cuda.blockIdx.x * TILE
    M, N = out.shape
    K = a.shape[0] if trans_a else a.shape[1]
    zero = out.dtype.type(0)
    acc = zero
    for k0 in range(0, K, TILE):
        if trans_a:  # a is (K, M)
            k, m = k0 + ty, m0 + tx
            ta[tx, ty] = a[k, m] if k < K and m < M else zero
        else:  # a is (M, K)
            m, k = m0 + ty, k0 + tx
            ta[ty, tx] = a[m, k] if m < M and k < K else zero
        if trans_b:  # b is (N, K)
            n, k = n0 + ty, k0 + tx
            tb[tx, ty] = b[n, k] if n < N and k < K else zero
        else:  # b is (K, N)
            k, n = k0 + ty, n0 + tx
            tb[ty, tx] = b[k, n] if k < K and n < N else zero
        cuda.syncthreads()
        for k in range(TILE):
            acc += ta[ty, k] * tb[k, tx]
        cuda.syncthreads()  # before the next tiles overwrite these
    if m0 + ty < M and n0 + tx < N:
        out[m0 + ty, n0 + tx] = acc


def _matmul(a, b, out, trans_a, trans_b):
    m, ka = a.shape[::-1] if trans_a else a.shape
    kb, n = b.shape[::-1] if trans_b else b.shape
    if ka != kb or tuple(out.shape) != (m, n):
        names = ("a.T" if trans_a else "a", "b.T" if trans_b else "b")
        raise ValueError(
            f"{names[0]} @ {names[1]} multiplies ({m}, {ka}) by ({kb}, {n}); out has shape "
            f"{tuple(out.shape)}"
        )
    if m and n:
        grid = (-(-n // TILE), -(-m // TILE))
        matmul_kernel[grid, (TILE, TILE)](a, b, out, trans_a, trans_b)


def matmul(a, b, out):
    """``out = a @ b`` for a (M, K), b (K, N), out (M, N)."""
    _matmul(a, b, out, False, False)


def matmul_nt(a, b, out):
    """``out = a @ b.T`` for a (M, K), b (N, K): Linear's forward, ``x @ weight.T``."""
    _matmul(a, b, out, False, True)


def matmul_tn(a, b, out):
    """``out = a.T @ b`` for a (K, M), b (K, N): a weight gradient, ``grad.T @ x``."""
    _matmul(a, b, out, True, False)
