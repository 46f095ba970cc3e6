"""Kernels of the linear classifiers: the softmax loss and LIBLINEAR's dual solver."""

import numba
import numpy as np
from numba import types
from numba.extending import overload


def softmax_cross_entropy(logits, codes):
    """Summed cross-entropy of the rows' softmax; overwrites `logits` with its gradient.

    Row i's loss is logsumexp(z_i) - z_i[codes[i]]; its gradient with respect to the
    logits is softmax(z_i) - onehot(codes[i]), written in place so the caller's next
    GEMM gives the weights' gradient. The exponentials run in NumPy between two Numba
    passes: NumPy's SIMD exp was six times faster than Numba's scalar one here.
    """
    picked = np.empty(logits.shape[0])
    shift_rows_by_max(logits, codes, picked)
    np.exp(logits, out=logits)
    return normalise_rows(logits, codes, picked)


@numba.njit(cache=True, nogil=True, fastmath=False)
def shift_rows_by_max(logits, codes, picked):
    """Subtracts each row's maximum, so exp cannot overflow; picked[i] = shifted z_i[codes[i]]."""
    n, m = logits.shape
    for i in range(n):
        row = logits[i]
        top = row[0]
        for k in range(1, m):
            top = max(top, row[k])
        for k in range(m):
            row[k] -= top
        picked[i] = row[codes[i]]


@numba.njit(cache=True, nogil=True, fastmath=False)
def normalise_rows(probs, codes, picked):
    """Turns rows of exp(shifted logits) into softmax - onehot; returns Σ log(row sum) - picked."""
    n, m = probs.shape
    total = 0.0
    for i in range(n):
        row = probs[i]
        norm = 0.0
        for k in range(m):
            norm += row[k]
        total += np.log(norm) - picked[i]
        scale = 1.0 / norm
        for k in range(m):
            row[k] *= scale
        row[codes[i]] -= 1.0
    return total


def _sq_norm(rows, i, total):
    """total + x_i·x_i for row i of `rows`: a 2-D array or CSR arrays (indptr, indices,
    data); summed in column order, so both give the same bits."""


def _dot(rows, i, w, total):
    """total + x_i·w[:d] for row i of `rows`."""


def _add_scaled(rows, i, step, w):
    """w[:d] += step * x_i for row i of `rows`."""


@overload(_sq_norm)
def _sq_norm_of(rows, i, total):
    if isinstance(rows, types.Array):
        def dense(rows, i, total):
            for j in range(rows.shape[1]):
                total += rows[i, j] * rows[i, j]
            return total
        return dense

    def csr(rows, i, total):
        indptr, _, data = rows
        for k in range(indptr[i], indptr[i + 1]):
            total += data[k] * data[k]
        return total
    return csr


@overload(_dot)
def _dot_of(rows, i, w, total):
    if isinstance(rows, types.Array):
        def dense(rows, i, w, total):
            for j in range(rows.shape[1]):
                total += w[j] * rows[i, j]
            return total
        return dense

    def csr(rows, i, w, total):
        indptr, indices, data = rows
        for k in range(indptr[i], indptr[i + 1]):
            total += w[indices[k]] * data[k]
        return total
    return csr


@overload(_add_scaled)
def _add_scaled_of(rows, i, step, w):
    if isinstance(rows, types.Array):
        def dense(rows, i, step, w):
            for j in range(rows.shape[1]):
                w[j] += step * rows[i, j]
        return dense

    def csr(rows, i, step, w):
        indptr, indices, data = rows
        for k in range(indptr[i], indptr[i + 1]):
            w[indices[k]] += step * data[k]
    return csr


@numba.njit(cache=True, fastmath=False)
def hinge_dual_cd(X, y, C, max_iter, tol, rng, w):
    """LIBLINEAR's dual coordinate descent for the L2-regularised hinge-loss SVM, in place on w.

    Solves min ½||w||² + C Σ max(0, 1 - y_i (w·x_i + b)) for y in {-1, +1} through its
    dual, one bounded variable per row, visited in a fresh random order each epoch
    with shrinking of rows stuck at a bound. ``w`` has d + 1 entries: the last is the
    bias, the weight of a constant feature 1 and penalised with the rest, as LIBLINEAR
    does. Stops when the projected gradient's spread over an epoch is at most `tol`;
    returns the number of epochs.
    """
    return _hinge_dual_cd(X, X.shape[0], X.shape[1], y, C, max_iter, tol, rng, w)


@numba.njit(cache=True, fastmath=False)
def hinge_dual_cd_csr(indptr, indices, data, n_features, y, C, max_iter, tol, rng, w):
    """`hinge_dual_cd` on the CSR matrix (indptr, indices, data) with `n_features` columns:
    the same steps in the same order, touching only the stored entries."""
    rows = (indptr, indices, data)
    return _hinge_dual_cd(rows, indptr.shape[0] - 1, n_features, y, C, max_iter, tol, rng, w)


@numba.njit(cache=True, fastmath=False)
def _hinge_dual_cd(X, n, d, y, C, max_iter, tol, rng, w):
    """The solver of `hinge_dual_cd` over n rows of d features, dense or CSR."""
    alpha = np.zeros(n)
    diag = np.ones(n)  # Q_ii = x_i·x_i + 1 for the bias feature
    for i in range(n):
        diag[i] = _sq_norm(X, i, diag[i])
    index = np.arange(n)
    active = n
    # xorshift64 for the per-epoch shuffles: a Generator call per swap costs more than the
    # coordinate step itself once shrinking leaves few active rows; seeded from `rng`
    state = np.uint64(rng.integers(1, 2**62))
    pg_max_old = np.inf
    pg_min_old = -np.inf
    epochs = 0
    while epochs < max_iter:
        pg_max = -np.inf
        pg_min = np.inf
        for s in range(active - 1, 0, -1):  # Fisher-Yates shuffle of the active rows
            state ^= state << np.uint64(13)
            state ^= state >> np.uint64(7)
            state ^= state << np.uint64(17)
            t = np.int64(state % np.uint64(s + 1))
            index[s], index[t] = index[t], index[s]
        s = 0
        while s < active:
            i = index[s]
            g = _dot(X, i, w, w[d])
            g = y[i] * g - 1.0
            pg = 0.0
            if alpha[i] == 0.0:
                if g > pg_max_old:  # shrink: this row will stay at its bound
                    active -= 1
                    index[s], index[active] = index[active], index[s]
                    continue
                pg = min(g, 0.0)
            elif alpha[i] == C:
                if g < pg_min_old:
                    active -= 1
                    index[s], index[active] = index[active], index[s]
                    continue
                pg = max(g, 0.0)
            else:
                pg = g
            pg_max = max(pg_max, pg)
            pg_min = min(pg_min, pg)
            if abs(pg) > 1e-12:
                old = alpha[i]
                alpha[i] = min(max(old - g / diag[i], 0.0), C)
                step = (alpha[i] - old) * y[i]
                _add_scaled(X, i, step, w)
                w[d] += step
            s += 1
        epochs += 1
        if pg_max - pg_min <= tol:
            if active == n:
                break
            active = n  # converged on the shrunk set: check once more on every row
            pg_max_old = np.inf
            pg_min_old = -np.inf
            continue
        pg_max_old = pg_max if pg_max > 0.0 else np.inf
        pg_min_old = pg_min if pg_min < 0.0 else -np.inf
    return epochs
