"""Numba kernels of exact TreeSHAP with every leaf's coalition weights tabulated in advance
(Fast TreeSHAP v2, Yang 2021), over the flat node arrays of `treeshap_kernels`.

A leaf whose path splits on the unique features F (d of them) sees each feature j through
its zero fraction z_j (the share of the background that follows the path through j's
splits) and its interval (lo_j, hi_j] (where x_j must fall to follow it). A row x enters
only through A = {j in F : lo_j < x_j <= hi_j}, and with Z(C) = prod of z_j over C and
H(B) = sum over S in B of |S|! (d-1-|S|)! / d! * prod of z_j over B - S,
the leaf (value v) adds to the SHAP values

    phi_i += v Z(F - A) (1 - z_i) H(A - {i})    for i in A,
    phi_i -= v Z(F - A) H(A)                    for i not in A.

H is tabulated for all 2^d subsets of each leaf, once per forest; a row then costs
O(d) per leaf instead of Algorithm 2's O(d^2).
"""

import numba
import numpy as np

LEAF = -1
# Rows explained together, so that a leaf's path is read once for all of them.
ROW_BLOCK = 16


@numba.njit(cache=True, nogil=True)
def leaf_paths(feature, threshold, left, right, cover, leaves, path_feature, path_lo,
               path_hi, path_zero, path_size):
    """For each leaf node `leaves[l]`: the unique features split on above it, with the
    interval x must fall in and the zero fraction of each (`path_*[l, :path_size[l]]`)."""
    parent = np.full(feature.shape[0], -1, np.int64)
    for node in range(feature.shape[0]):
        if feature[node] != LEAF:
            parent[left[node]] = node
            parent[right[node]] = node
    for leaf in range(leaves.shape[0]):
        size = 0
        child = leaves[leaf]
        node = parent[child]
        while node != -1:
            f = feature[node]
            k = 0
            while k < size and path_feature[leaf, k] != f:
                k += 1
            if k == size:
                path_feature[leaf, k] = f
                path_lo[leaf, k] = -np.inf
                path_hi[leaf, k] = np.inf
                path_zero[leaf, k] = 1.0
                size += 1
            if child == left[node]:
                path_hi[leaf, k] = min(path_hi[leaf, k], threshold[node])
            else:
                path_lo[leaf, k] = max(path_lo[leaf, k], threshold[node])
            path_zero[leaf, k] *= cover[child] / cover[node]
            child = node
            node = parent[node]
        path_size[leaf] = size


@numba.njit(cache=True, nogil=True, parallel=True)
def coalition_tables(path_zero, path_size, offset, table):
    """table[offset[l] + B] = H(B) for every subset B (a bit mask over the leaf's path
    features) of leaf l, from the elementary symmetric polynomials of the z_j in B."""
    depth = path_zero.shape[1]
    for leaf in numba.prange(path_size.shape[0]):
        d = path_size[leaf]
        weight = np.empty(max(d, 1))
        for s in range(d):  # s! (d-1-s)! / d!, built up without large factorials
            w = 1.0 / d
            for k in range(1, s + 1):
                w *= k / (d - k)
            weight[s] = w
        poly = np.zeros((1 << d, depth + 1))  # poly[B, k] = e_k(z_j for j in B)
        count = np.zeros(1 << d, np.int64)
        poly[0, 0] = 1.0
        table[offset[leaf]] = weight[0] if d > 0 else 0.0
        for mask in range(1, 1 << d):
            low = 0
            while not (mask >> low) & 1:
                low += 1
            rest = mask & (mask - 1)
            z = path_zero[leaf, low]
            size = count[rest] + 1
            count[mask] = size
            poly[mask, 0] = 1.0
            for k in range(1, size + 1):
                poly[mask, k] = poly[rest, k] + z * poly[rest, k - 1]
            total = 0.0
            for s in range(size + 1):
                total += weight[s] * poly[mask, size - s]
            table[offset[leaf] + mask] = total


@numba.njit(cache=True, nogil=True, parallel=True)
def tree_shap_tabulated(X, leaf_value, path_feature, path_lo, path_hi, path_zero, path_size,
                        offset, table, phi):
    """phi[i, j, k] += the SHAP value of feature j for output k at row X[i], summed over the
    tabulated leaves (whose values are `leaf_value`, leaves x outputs). Blocks of rows in
    parallel."""
    n_rows = X.shape[0]
    n_blocks = (n_rows + ROW_BLOCK - 1) // ROW_BLOCK
    for block in numba.prange(n_blocks):
        start = block * ROW_BLOCK
        stop = min(start + ROW_BLOCK, n_rows)
        for leaf in range(path_size.shape[0]):
            d = path_size[leaf]
            base = offset[leaf]
            for i in range(start, stop):
                mask = 0
                outside = 1.0
                for k in range(d):
                    x = X[i, path_feature[leaf, k]]
                    if path_lo[leaf, k] < x and x <= path_hi[leaf, k]:
                        mask |= 1 << k
                    else:
                        outside *= path_zero[leaf, k]
                absent = -outside * table[base + mask]
                for k in range(d):
                    if (mask >> k) & 1:
                        without = table[base + (mask ^ (1 << k))]
                        share = outside * (1.0 - path_zero[leaf, k]) * without
                    else:
                        share = absent
                    f = path_feature[leaf, k]
                    for o in range(leaf_value.shape[1]):
                        phi[i, f, o] += share * leaf_value[leaf, o]
