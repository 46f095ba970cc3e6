"""Numba kernels of nearest-neighbour search."""

import numba


@numba.njit(cache=True, nogil=True, fastmath=False)
def merge_smallest(cross, query_sq, ref_sq, offset, best_dist, best_index):
    """Fold a block of candidates into each query's running k smallest squared distances.

    The distance of query r to candidate ``offset + j`` is ``-2 cross[r, j] + query_sq[r] +
    ref_sq[j]`` (clamped at 0 against rounding), formed here rather than in separate
    array passes. best_dist and best_index (queries x k, ascending, initialised to inf and
    -1) are updated in place. A candidate must be strictly closer than the current k-th to
    enter, so among equal distances the one seen first (the lower index) stays, whatever
    the block size.
    """
    k = best_dist.shape[1]
    for r in range(cross.shape[0]):
        row = cross[r]
        q = query_sq[r]
        kth = best_dist[r, k - 1]
        for j in range(row.shape[0]):
            v = max(-2.0 * row[j] + q + ref_sq[j], 0.0)  # summed in scikit-learn's order
            if v < kth:
                pos = k - 1
                while pos > 0 and best_dist[r, pos - 1] > v:
                    best_dist[r, pos] = best_dist[r, pos - 1]
                    best_index[r, pos] = best_index[r, pos - 1]
                    pos -= 1
                best_dist[r, pos] = v
                best_index[r, pos] = offset + j
                kth = best_dist[r, k - 1]
