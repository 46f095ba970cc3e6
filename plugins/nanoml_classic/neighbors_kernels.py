"""Numba kernels of nearest-neighbour search."""

import numba


@numba.njit(cache=True, nogil=True, fastmath=False)
def merge_smallest(dist, offset, best_dist, best_index):
    """Fold a block of distances into each row's running k smallest, kept sorted.

    dist[r, j] is the distance of query r to candidate ``offset + j``; best_dist and
    best_index (queries x k, ascending, initialised to inf and -1) are updated in place.
    A candidate must be strictly closer than the current k-th to enter, so among equal
    distances the one seen first (the lower index) stays, whatever the block size.
    """
    k = best_dist.shape[1]
    for r in range(dist.shape[0]):
        row = dist[r]
        kth = best_dist[r, k - 1]
        for j in range(row.shape[0]):
            v = row[j]
            if v < kth:
                pos = k - 1
                while pos > 0 and best_dist[r, pos - 1] > v:
                    best_dist[r, pos] = best_dist[r, pos - 1]
                    best_index[r, pos] = best_index[r, pos - 1]
                    pos -= 1
                best_dist[r, pos] = v
                best_index[r, pos] = offset + j
                kth = best_dist[r, k - 1]
