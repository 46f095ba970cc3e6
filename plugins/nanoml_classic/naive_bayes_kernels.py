"""Numba kernels of the naive Bayes classifiers: per-class moments and Gaussian likelihoods."""

import numba


@numba.njit(cache=True, fastmath=False)
def class_sums(X, codes, sums, counts):
    """Adds each row of X into sums[codes[i]] and counts it in counts[codes[i]].

    One pass over the rows in memory order; a row's addition is a contiguous run, so it
    vectorises.
    """
    n, d = X.shape
    for i in range(n):
        c = codes[i]
        counts[c] += 1.0
        for j in range(d):
            sums[c, j] += X[i, j]


@numba.njit(cache=True, fastmath=False)
def class_scatter(X, codes, means, out):
    """Adds (X[i] - means[codes[i]])² into out[codes[i]]: the per-class sums of squares.

    Taken about the class means found in a first pass, so no digits cancel the way
    E[x²] - E[x]² does when a feature's mean dwarfs its spread.
    """
    n, d = X.shape
    for i in range(n):
        c = codes[i]
        for j in range(d):
            diff = X[i, j] - means[c, j]
            out[c, j] += diff * diff


@numba.njit(cache=True, fastmath=False, parallel=False)
def gaussian_log_likelihood(X, means, inv_var, offset, out):
    """out[i, c] = offset[c] - ½ Σⱼ (X[i, j] - means[c, j])² · inv_var[c, j].

    Computed from the differences rather than by expanding the square into GEMMs, so
    rows far from the means lose no digits.
    """
    n, d = X.shape
    k = means.shape[0]
    for i in range(n):
        for c in range(k):
            acc = 0.0
            for j in range(d):
                diff = X[i, j] - means[c, j]
                acc += diff * diff * inv_var[c, j]
            out[i, c] = offset[c] - 0.5 * acc


@numba.njit(cache=True, fastmath=False)
def class_sums_csr(indptr, indices, data, codes, sums, counts):
    """`class_sums` over a CSR matrix's arrays: adds each row's stored entries into
    sums[codes[i]] and counts the row in counts[codes[i]]."""
    for i in range(indptr.shape[0] - 1):
        c = codes[i]
        counts[c] += 1.0
        for k in range(indptr[i], indptr[i + 1]):
            sums[c, indices[k]] += data[k]
