"""Numba kernels of histogram gradient boosting: binning, histograms, splits, partitions, walks.

Features are binned once into ``uint8`` codes stored feature-major, ``Xb[feature, row]``:
bins ``0 .. n_bins[f] - 1`` hold known values (bin ``b`` holds ``thresholds[f, b-1] < x <=
thresholds[f, b]``) and ``MISSING_BIN`` holds NaN. A histogram is ``hist[feature, bin]`` =
(sum of gradients, sum of hessians, count) over a node's rows. A node's rows are one
contiguous segment ``rows[start:end]`` of a row array that splits partition stably.

A tree is flat arrays indexed by node, as in tree_kernels: ``feature`` (LEAF at a leaf),
``threshold`` (``x <= threshold`` goes left), ``missing_left`` (where NaN goes), ``left``,
``right`` and ``value`` (the leaf's contribution to the raw prediction).
"""

import numba
import numpy as np

MISSING_BIN = 255
N_BINS = 256  # histogram length: up to 255 bins of known values and the missing one
LEAF = -1


@numba.njit(cache=True, nogil=True, parallel=True, fastmath=False)
def bin_features(X, thresholds, n_thresholds, out):
    """out[f, i] = bin of X[i, f]: how many of the feature's thresholds lie below it.

    Rows in parallel, so each thread reads X row by row; NaN gets MISSING_BIN.
    """
    n, d = X.shape
    for i in numba.prange(n):
        for f in range(d):
            x = X[i, f]
            if np.isnan(x):
                out[f, i] = MISSING_BIN
            else:
                out[f, i] = np.searchsorted(thresholds[f, : n_thresholds[f]], x)


@numba.njit(cache=True, nogil=True, parallel=True, fastmath=False)
def build_histogram(Xb, rows, start, end, gradient, hessian, hist, parent, counts):
    """hist[f, b] = (sum gradient, sum hessian, count) over rows[start:end], by feature.

    Features go two at a time, so that each row's index, gradient and hessian are loaded
    once for both. Where `counts` holds the rows' counts (features x bins; the root's
    are the same for every tree) they are copied rather than counted. Where `parent` is a
    histogram, parent -= hist too, feature by feature while both are in cache: the
    parent's histogram becomes the sibling's. An empty array stands for either's absence.
    """
    m = end - start
    node_rows = rows[start:end]
    g = np.empty(m)
    h = np.empty(m)
    for i in range(m):  # gathered once, read by every feature
        g[i] = gradient[node_rows[i]]
        h[i] = hessian[node_rows[i]]
    d = Xb.shape[0]
    subtract = parent.shape[0] == d
    counting = counts.shape[0] != d  # a loop invariant: compiled as two loops
    for pair in numba.prange((d + 1) // 2):
        first, second = 2 * pair, min(2 * pair + 1, d - 1)
        column_a, column_b = Xb[first], Xb[second]
        hist_a, hist_b = hist[first], hist[second]
        hist_a[:, :] = 0.0
        if second == first:  # d is odd: the last feature alone
            for i in range(m):
                a = column_a[node_rows[i]]
                hist_a[a, 0] += g[i]
                hist_a[a, 1] += h[i]
                if counting:
                    hist_a[a, 2] += 1.0
        else:
            hist_b[:, :] = 0.0
            for i in range(m):
                row, gi, hi = node_rows[i], g[i], h[i]
                a, b = column_a[row], column_b[row]
                hist_a[a, 0] += gi
                hist_a[a, 1] += hi
                hist_b[b, 0] += gi
                hist_b[b, 1] += hi
                if counting:
                    hist_a[a, 2] += 1.0
                    hist_b[b, 2] += 1.0
        for f in range(first, second + 1):
            if not counting:
                hist[f, :, 2] = counts[f]
            if subtract:
                for b in range(N_BINS):
                    for c in range(3):
                        parent[f, b, c] -= hist[f, b, c]


@numba.njit(cache=True, nogil=True, fastmath=False)
def split_gain(g_left, h_left, g_right, h_right, parent_score, l2):
    """Decrease of the second-order loss when a node with score parent_score splits."""
    return g_left * g_left / (h_left + l2) + g_right * g_right / (h_right + l2) - parent_score


@numba.njit(cache=True, nogil=True, parallel=True, fastmath=False)
def find_splits(hist, n_bins, sum_g, sum_h, count, l2, min_samples_leaf, min_hessian,
                gain, split_bin, missing_left):
    """Best split of each feature of one node into gain[f], split_bin[f], missing_left[f].

    Rows with bin <= split_bin go left. Every threshold is tried with the node's missing
    values on the right and, where it has some, on the left; with none, NaN met later
    follows the larger child. gain[f] is -inf where no split respects min_samples_leaf
    and min_hessian.
    """
    parent_score = sum_g * sum_g / (sum_h + l2)
    for f in numba.prange(hist.shape[0]):
        hf = hist[f]
        g_missing = hf[MISSING_BIN, 0]
        h_missing = hf[MISSING_BIN, 1]
        c_missing = hf[MISSING_BIN, 2]
        best, best_bin, best_left = -np.inf, -1, False
        gl = hl = cl = 0.0
        # with missing values, the last known bin is a threshold too: known left, NaN right
        last = n_bins[f] - 1 + (1 if c_missing > 0 else 0)
        for b in range(last):
            if hf[b, 2] == 0.0:
                continue  # same partition as the previous threshold
            gl += hf[b, 0]
            hl += hf[b, 1]
            cl += hf[b, 2]
            if count - cl < min_samples_leaf or sum_h - hl < min_hessian:
                # the right side only shrinks (hessians are >= 0), and is largest with
                # the missing values on it: no later threshold can qualify
                break
            for side in range(2 if c_missing > 0 else 1):
                g_left = gl + side * g_missing
                h_left = hl + side * h_missing
                c_left = cl + side * c_missing
                c_right = count - c_left
                h_right = sum_h - h_left
                if c_left < min_samples_leaf or c_right < min_samples_leaf:
                    continue
                if h_left < min_hessian or h_right < min_hessian:
                    continue
                value = split_gain(g_left, h_left, sum_g - g_left, h_right, parent_score, l2)
                if value > best:
                    best, best_bin = value, b
                    best_left = side == 1 if c_missing > 0 else c_left >= c_right
        gain[f] = best
        split_bin[f] = best_bin
        missing_left[f] = best_left


@numba.njit(cache=True, nogil=True, fastmath=False)
def partition(column, rows, start, end, split_bin, missing_left, buffer):
    """Reorder rows[start:end] stably into left then right; returns how many went left."""
    n_left = 0
    n_right = 0
    for i in range(start, end):
        b = column[rows[i]]
        if b == MISSING_BIN:
            go_left = missing_left
        else:
            go_left = b <= split_bin
        if go_left:
            rows[start + n_left] = rows[i]
            n_left += 1
        else:
            buffer[n_right] = rows[i]
            n_right += 1
    for i in range(n_right):
        rows[start + n_left + i] = buffer[i]
    return n_left


@numba.njit(cache=True, nogil=True, fastmath=False)
def add_leaf_values(rows, starts, ends, values, raw):
    """raw[rows[starts[k]:ends[k]]] += values[k] for each leaf k."""
    for k in range(starts.shape[0]):
        for i in range(starts[k], ends[k]):
            raw[rows[i]] += values[k]


@numba.njit(cache=True, nogil=True, parallel=True, fastmath=False)
def add_tree_values(X, feature, threshold, missing_left, left, right, value, roots,
                    n_outputs, raw):
    """raw[i, t % n_outputs] += the leaf value tree t gives row i, for every tree t.

    Trees are listed class by class within an iteration, hence the output t % n_outputs.
    """
    for i in numba.prange(X.shape[0]):
        for t in range(roots.shape[0]):
            node = roots[t]
            while left[node] != LEAF:
                x = X[i, feature[node]]
                if np.isnan(x):
                    go_left = missing_left[node] != 0
                else:
                    go_left = x <= threshold[node]
                node = left[node] if go_left else right[node]
            raw[i, t % n_outputs] += value[node]
