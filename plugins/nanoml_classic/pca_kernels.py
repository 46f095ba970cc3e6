"""Numba kernel of PCA: the column statistics taken in one pass before the covariance."""

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, fastmath=False)
def column_sums_and_extents(X, sums, extents):
    """sums[j] += Σᵢ X[i, j] in float64 (float32 X included, whose own running sum would
    lose digits over many rows) and extents[j] = max(extents[j], maxᵢ |X[i, j]|), in one
    pass over the rows."""
    n, d = X.shape
    for i in range(n):
        row = X[i]
        for j in range(d):
            v = np.float64(row[j])
            sums[j] += v
            extents[j] = max(extents[j], abs(v))
