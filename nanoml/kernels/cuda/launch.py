"""Launch geometry shared by the CUDA kernels, picked on the host from array sizes."""

# Threads per block of the one-thread-per-element kernels: 8 warps, enough to hide memory
# latency on every architecture numba-cuda supports.
THREADS = 256
WARP = 32
# Largest block of the shared-memory reductions; their `cuda.shared.array` is this long.
# The tree reduction halves the active threads each round, so block sizes are powers of two.
REDUCE_THREADS = 256


def grid_1d(n):
    """(blocks, threads) with one thread for each of `n` items.

    Blocks are whole warps and at most THREADS long, so a small launch does not start
    hundreds of idle threads (which the CUDA simulator would run one by one).
    """
    threads = min(THREADS, WARP * max(1, -(-n // WARP)))
    return max(1, -(-n // threads)), threads


def reduce_threads(n):
    """Threads of a block that reduces `n` values: a power of two, at most REDUCE_THREADS."""
    return min(REDUCE_THREADS, 1 << max(0, n - 1).bit_length())


def flat(a):
    """1-D view of a C-contiguous host or device array (both support ``reshape(size)``)."""
    return a.reshape(a.size)


def launch_1d(kernel, n, *args):
    """Run `kernel` with one thread for each of `n` items (nothing when `n` is 0)."""
    if n:
        blocks, threads = grid_1d(n)
        kernel[blocks, threads](*args)
