"""Numba kernels of the linear models."""

import numba
import numpy as np


@numba.njit(cache=True, fastmath=False)
def gradient_descent_normal(gram, xty, yty, w, lr, l2, n_iter, tol, losses):
    """Full-batch gradient descent on 1/2 mean squared error + l2/2 ||w||², in place on `w`.

    Works on the sufficient statistics gram = XᵀX/n, xty = Xᵀy/n, yty = yᵀy/n, so each
    step costs O(d²) instead of O(nd) while following exactly the same iterates as
    descending on the rows. losses[i] receives the objective before step i. Returns the
    number of steps taken: it stops early once the gradient's norm falls below `tol`.
    """
    d = w.shape[0]
    grad = np.empty(d)
    for it in range(n_iter):
        quad = 0.0
        lin = 0.0
        norm2 = 0.0
        for i in range(d):
            gw = 0.0
            for j in range(d):
                gw += gram[i, j] * w[j]
            quad += w[i] * gw
            lin += w[i] * xty[i]
            grad[i] = gw - xty[i] + l2 * w[i]
            norm2 += grad[i] * grad[i]
        penalty = 0.0
        for i in range(d):
            penalty += w[i] * w[i]
        losses[it] = 0.5 * (quad - 2.0 * lin + yty) + 0.5 * l2 * penalty
        if np.sqrt(norm2) < tol:
            return it + 1
        for i in range(d):
            w[i] -= lr * grad[i]
    return n_iter
