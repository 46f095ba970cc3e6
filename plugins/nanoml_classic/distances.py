"""Pairwise distances shared by k-means, nearest neighbours, RBF kernels and label spreading."""

import numpy as np


def row_norms_squared(X):
    """||x||² of each row, summed in float64 whatever X's dtype."""
    return np.einsum("ij,ij->i", X, X, dtype=np.float64)


def squared_distances(X, Y, X_sq=None, Y_sq=None):
    """||x_i - y_j||² for every pair, as ||x||² + ||y||² - 2 x·y.

    The cross term is one GEMM on NumPy's BLAS, far faster than a loop over pairs; the
    rounding it can cause is clamped so no distance comes out negative.
    """
    X_sq = row_norms_squared(X) if X_sq is None else X_sq
    Y_sq = row_norms_squared(Y) if Y_sq is None else Y_sq
    out = X @ Y.T
    out *= -2.0
    out += X_sq[:, None]
    out += Y_sq[None, :]
    np.maximum(out, 0.0, out=out)
    return out
