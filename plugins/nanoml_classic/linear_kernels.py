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


@numba.njit(cache=True, fastmath=False)
def _enet_gap(w, xtr, r_norm2, ry, l1, l2):
    """Duality gap of ½||r||² + l1||w||₁ + l2/2 ||w||² at `w`, with r = y - Xw.

    Takes xtr = Xᵀr, r_norm2 = rᵀr and ry = rᵀy, and rescales the residual into a dual
    feasible point (formulation A of scikit-learn's coordinate descent; formulation B
    when there is no L1 term). Overwrites `xtr`.
    """
    w_l1 = 0.0
    w_l2 = 0.0
    for j in range(w.shape[0]):
        w_l1 += abs(w[j])
        w_l2 += w[j] * w[j]
    if l1 == 0.0:
        xtr_norm2 = 0.0
        for j in range(w.shape[0]):
            xtr_norm2 += xtr[j] * xtr[j]
        return r_norm2 + 0.5 * l2 * w_l2 - ry + xtr_norm2 / (2.0 * l2)
    dual_norm = 0.0
    for j in range(w.shape[0]):
        xtr[j] -= l2 * w[j]
        dual_norm = max(dual_norm, abs(xtr[j]))
    scale = l1 / dual_norm if dual_norm > l1 else 1.0
    primal = 0.5 * (r_norm2 + l2 * w_l2) + l1 * w_l1
    dual = -0.5 * scale * scale * (r_norm2 + l2 * w_l2) + scale * ry
    return primal - dual


@numba.njit(cache=True, fastmath=False)
def enet_gram_cd(gram, xty, yty, w, l1, l2, max_iter, tol):
    """Cyclic coordinate descent for the elastic net on sufficient statistics, in place on `w`.

    Minimises ½||y - Xw||² + l1||w||₁ + l2/2 ||w||² given gram = XᵀX, xty = Xᵀy and
    yty = yᵀy, so a sweep costs O(d²) however many rows X has. Once a sweep's largest
    coefficient change falls to `tol` times the largest coefficient, the duality gap is
    computed; it stops when the gap is at most tol * yty. Returns (sweeps, gap).
    """
    d = w.shape[0]
    gw = np.zeros(d)  # kept equal to gram @ w through every update
    for j in range(d):
        for k in range(d):
            gw[k] += gram[j, k] * w[j]
    xtr = np.empty(d)
    tol_gap = tol * yty
    gap = np.inf
    sweeps = 0
    for sweeps in range(1, max_iter + 1):
        w_max = 0.0
        d_w_max = 0.0
        for j in range(d):
            if gram[j, j] == 0.0:
                continue
            w_j = w[j]
            rho = xty[j] - gw[j] + w_j * gram[j, j]
            w_new = np.sign(rho) * max(abs(rho) - l1, 0.0) / (gram[j, j] + l2)
            if w_new != w_j:
                step = w_new - w_j
                for k in range(d):
                    gw[k] += step * gram[j, k]
                w[j] = w_new
            d_w_max = max(d_w_max, abs(w_new - w_j))
            w_max = max(w_max, abs(w_new))
        if w_max == 0.0 or d_w_max <= tol * w_max or sweeps == max_iter:
            w_xty = 0.0
            w_gw = 0.0
            for k in range(d):
                w_xty += w[k] * xty[k]
                w_gw += w[k] * gw[k]
                xtr[k] = xty[k] - gw[k]
            gap = _enet_gap(w, xtr, yty - 2.0 * w_xty + w_gw, yty - w_xty, l1, l2)
            if gap <= tol_gap:
                break
    return sweeps, gap


@numba.njit(cache=True, fastmath=True)
def enet_dense_cd(X, y, w, l1, l2, max_iter, tol):
    """Cyclic coordinate descent for the elastic net on the rows themselves, in place on `w`.

    The same problem and stopping rule as `enet_gram_cd`, for data too wide for a Gram
    matrix. X must be Fortran-ordered (a column is one contiguous run); the residual
    y - Xw is kept up to date, so a sweep costs O(nd). fastmath lets the column dot
    products vectorise; inputs are validated finite before they get here.
    """
    n, d = X.shape
    r = y.copy()  # kept equal to y - X @ w through every update
    col_norm2 = np.zeros(d)
    for j in range(d):
        for i in range(n):
            col_norm2[j] += X[i, j] * X[i, j]
        if w[j] != 0.0:
            for i in range(n):
                r[i] -= X[i, j] * w[j]
    xtr = np.zeros(d)
    yty = 0.0
    for i in range(n):
        yty += y[i] * y[i]
    tol_gap = tol * yty
    gap = np.inf
    sweeps = 0
    for sweeps in range(1, max_iter + 1):
        w_max = 0.0
        d_w_max = 0.0
        for j in range(d):
            if col_norm2[j] == 0.0:
                continue
            w_j = w[j]
            rho = w_j * col_norm2[j]
            for i in range(n):
                rho += X[i, j] * r[i]
            w_new = np.sign(rho) * max(abs(rho) - l1, 0.0) / (col_norm2[j] + l2)
            if w_new != w_j:
                step = w_new - w_j
                for i in range(n):
                    r[i] -= step * X[i, j]
                w[j] = w_new
            d_w_max = max(d_w_max, abs(w_new - w_j))
            w_max = max(w_max, abs(w_new))
        if w_max == 0.0 or d_w_max <= tol * w_max or sweeps == max_iter:
            r_norm2 = 0.0
            ry = 0.0
            for i in range(n):
                r_norm2 += r[i] * r[i]
                ry += r[i] * y[i]
            for j in range(d):
                xtr[j] = 0.0
                for i in range(n):
                    xtr[j] += X[i, j] * r[i]
            gap = _enet_gap(w, xtr, r_norm2, ry, l1, l2)
            if gap <= tol_gap:
                break
    return sweeps, gap
