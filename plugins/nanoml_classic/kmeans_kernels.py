"""Numba kernels of k-means: nearest-centre assignment and Lloyd's step.

The nearest centre of x minimises ||c||²/2 - x·c, which costs one multiply-add per feature
and centre instead of a subtract and a multiply-add for ||x - c||². Rows go four at a
time, so each centre entry loaded serves four rows. To keep the dot products accurate on
data far from the origin, everything is measured from a point o near the data (the
caller's choice): the kernels take the centres as `shifted` = c - o and
`offsets` = ||c - o||²/2 + o·(c - o), so that ``key = offset - x·(c - o)`` orders the
centres as ||x - c||² does, ||x - c||² = ||x - o||² + 2·key, and every term stays the
size of the data's spread. `fastmath` is safe: the learner rejects NaN and infinity
before any kernel runs. X and `shifted` may both be float32: the dot products then run in
float32 (as scikit-learn's do on float32 data), twice the lanes per instruction and half
the memory traffic; norms, distances and the centres' sums stay float64.
"""

import numba
import numpy as np


@numba.njit(cache=True, fastmath=True)
def _nearest4(X, i, last, shifted, offsets):
    """(centres, keys) of rows i..i+3 (see above); row indices past `last` are clamped."""
    r0, r1, r2, r3 = i, min(i + 1, last), min(i + 2, last), min(i + 3, last)
    b0 = b1 = b2 = b3 = np.inf
    j0 = j1 = j2 = j3 = 0
    zero = shifted[0, 0] - shifted[0, 0]  # 0 in the centres' dtype: float32 sums stay float32
    for j in range(shifted.shape[0]):
        a0 = a1 = a2 = a3 = zero
        for f in range(X.shape[1]):
            c = shifted[j, f]
            a0 += X[r0, f] * c
            a1 += X[r1, f] * c
            a2 += X[r2, f] * c
            a3 += X[r3, f] * c
        o = offsets[j]
        k0, k1, k2, k3 = o - float(a0), o - float(a1), o - float(a2), o - float(a3)
        if k0 < b0:
            b0, j0 = k0, j
        if k1 < b1:
            b1, j1 = k1, j
        if k2 < b2:
            b2, j2 = k2, j
        if k3 < b3:
            b3, j3 = k3, j
    return (j0, j1, j2, j3), (b0, b1, b2, b3)


@numba.njit(cache=True, fastmath=True, inline="always")
def _squared_distance(X, row, centres, j):
    dist = 0.0
    for f in range(X.shape[1]):
        diff = X[row, f] - centres[j, f]
        dist += diff * diff
    return dist


@numba.njit(cache=True, fastmath=True, parallel=True)
def assign(X, centres, shifted, offsets, labels, distances):
    """labels[i] <- nearest centre of X[i], distances[i] <- its squared distance."""
    n = X.shape[0]
    for block in numba.prange((n + 3) // 4):
        i = 4 * block
        near, _ = _nearest4(X, i, n - 1, shifted, offsets)
        for r in range(min(4, n - i)):
            labels[i + r] = near[r]
            distances[i + r] = _squared_distance(X, i + r, centres, near[r])


@numba.njit(cache=True, fastmath=True, parallel=True)
def centred_norms(X, origin, out):
    """out[i] <- ||X[i] - origin||², without a centred copy of X."""
    for i in numba.prange(X.shape[0]):
        total = 0.0
        for f in range(X.shape[1]):
            diff = X[i, f] - origin[f]
            total += diff * diff
        out[i] = total


@numba.njit(cache=True, fastmath=True, parallel=True)
def lloyd_step(X, x_sq, shifted, offsets, labels, distances, sums, counts):
    """One pass of Lloyd's algorithm: assign every row and accumulate the new centres' sums.

    `x_sq` holds ||x - o||² for the origin o the centres were shifted by, so each row's
    squared distance comes from its key at the cost of one addition. Rows are split into
    ``sums.shape[0]`` fixed chunks, each accumulating its own partial sums[c] (k x d) and
    counts[c] (k), so threads never write to shared memory and the result does not
    depend on the number of threads; the caller adds the chunks up. `labels` holds the
    previous assignment on entry and the new one on exit. Returns how many labels
    changed, so the caller can detect convergence without a copy.
    """
    n = X.shape[0]
    n_chunks = sums.shape[0]
    size = (n + n_chunks - 1) // n_chunks
    changed = np.zeros(n_chunks, dtype=np.int64)
    for c in numba.prange(n_chunks):
        part = sums[c]
        part[:] = 0.0
        counts[c, :] = 0
        end = min(n, (c + 1) * size)
        for i in range(c * size, end, 4):
            near, keys = _nearest4(X, i, end - 1, shifted, offsets)
            for r in range(min(4, end - i)):
                row, j = i + r, near[r]
                if labels[row] != j:
                    changed[c] += 1
                    labels[row] = j
                distances[row] = max(x_sq[row] + 2.0 * keys[r], 0.0)  # rounding can dip below 0
                counts[c, j] += 1
                for f in range(X.shape[1]):
                    part[j, f] += X[row, f]
    return changed.sum()
