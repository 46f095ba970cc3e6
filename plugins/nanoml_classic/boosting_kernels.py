"""Numba kernels of histogram gradient boosting: binning, histograms, splits, partitions, walks.

Features are binned once into ``uint8`` codes, ``Xb[feature, row]``, stored feature-major
for large nodes and row-major (the same indexing, a transposed copy) for small ones:
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
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

MISSING_BIN = 255
N_BINS = 256  # histogram length: up to 255 bins of known values and the missing one
LEAF = -1
HISTOGRAM_GROUP = 8  # features histogrammed together: 8 x 256 bins x 32 bytes of scratch


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


@intrinsic
def add_to_bin(typingctx, totals, offset, g, h):
    """``totals[offset : offset + 4] += (g, h, 1, 0)`` as one 4-wide vector add.

    A bin updated as three separate scalars costs three loads and three stores; as one
    vector, one of each, which makes the histogram about 1.8x faster. `totals` is a
    float64 array (Numba aligns its own to 32 bytes); `offset`, a multiple of 4, keeps
    the four lanes in one 32-byte block.
    """
    def codegen(context, builder, signature, args):
        array, start, g_value, h_value = args
        data = context.make_array(signature.args[0])(context, builder, array).data
        vector = ir.VectorType(ir.DoubleType(), 4)
        address = builder.bitcast(builder.gep(data, [start]), vector.as_pointer())
        step = ir.Constant(vector, [ir.Undefined, ir.Undefined, 1.0, 0.0])
        step = builder.insert_element(step, g_value, ir.Constant(ir.IntType(32), 0))
        step = builder.insert_element(step, h_value, ir.Constant(ir.IntType(32), 1))
        builder.store(builder.fadd(builder.load(address, align=8), step), address, align=8)
        return context.get_dummy_value()

    return types.void(totals, offset, types.float64, types.float64), codegen


@numba.njit(cache=True, nogil=True, fastmath=False)
def _node_gradients(rows, start, end, gradient, hessian):
    """(rows[start:end], their gradients, their hessians): gathered once, read by every
    feature."""
    node_rows = rows[start:end]
    g = np.empty(end - start)
    h = np.empty(end - start)
    for i in range(end - start):
        g[i] = gradient[node_rows[i]]
        h[i] = hessian[node_rows[i]]
    return node_rows, g, h


@numba.njit(cache=True, nogil=True, fastmath=False)
def _group_totals(Xb, first, width, node_rows, g, h):
    """Histograms of features first .. first + width - 1 (at most HISTOGRAM_GROUP) in one
    pass over the rows: (width x N_BINS x 4) lanes, see add_to_bin. Each row's index,
    gradient and hessian are loaded once for the whole group, and the scratch fits in the
    L1 cache."""
    lanes = 4 * N_BINS
    totals = np.zeros(HISTOGRAM_GROUP * lanes)
    if width == HISTOGRAM_GROUP:  # a literal trip count, unrolled
        for i in range(node_rows.shape[0]):
            row, gi, hi = node_rows[i], g[i], h[i]
            for k in range(HISTOGRAM_GROUP):
                add_to_bin(totals, k * lanes + 4 * np.intp(Xb[first + k, row]), gi, hi)
    else:
        for i in range(node_rows.shape[0]):
            row, gi, hi = node_rows[i], g[i], h[i]
            for k in range(width):
                add_to_bin(totals, k * lanes + 4 * np.intp(Xb[first + k, row]), gi, hi)
    return totals.reshape((HISTOGRAM_GROUP, N_BINS, 4))


@numba.njit(cache=True, nogil=True, parallel=True, fastmath=False)
def build_histogram(Xb, rows, start, end, gradient, hessian, hist, parent):
    """hist[f, b] = (sum gradient, sum hessian, count) over rows[start:end], by feature.

    Where `parent` is a histogram, parent -= hist too, feature by feature while both are
    in cache: the parent's histogram becomes the sibling's. An empty `parent` stands for
    its absence.
    """
    node_rows, g, h = _node_gradients(rows, start, end, gradient, hessian)
    d = Xb.shape[0]
    subtract = parent.shape[0] == d
    for group in numba.prange((d + HISTOGRAM_GROUP - 1) // HISTOGRAM_GROUP):
        first = group * HISTOGRAM_GROUP
        width = min(HISTOGRAM_GROUP, d - first)
        totals = _group_totals(Xb, first, width, node_rows, g, h)
        for k in range(width):
            for b in range(N_BINS):
                for c in range(3):
                    hist[first + k, b, c] = totals[k, b, c]
                    if subtract:
                        parent[first + k, b, c] -= totals[k, b, c]


@numba.njit(cache=True, nogil=True, fastmath=False)
def split_gain(g_left, h_left, g_right, h_right, parent_score, l2):
    """Decrease of the second-order loss when a node with score parent_score splits."""
    return g_left * g_left / (h_left + l2) + g_right * g_right / (h_right + l2) - parent_score


@numba.njit(cache=True, nogil=True, fastmath=False)
def best_split(hf, n_bins, sum_g, sum_h, count, l2, min_samples_leaf, min_hessian):
    """The best split of one feature from its histogram hf[bin, channel]: (gain, bin,
    missing_left, (gradient, hessian, count) of the rows going left).

    Rows with bin <= the split bin go left. Every threshold is tried with the node's
    missing values on the right and, where it has some, on the left; with none, NaN met
    later follows the larger child. The gain is -inf where no split respects
    min_samples_leaf and min_hessian.
    """
    parent_score = sum_g * sum_g / (sum_h + l2)
    g_missing = hf[MISSING_BIN, 0]
    h_missing = hf[MISSING_BIN, 1]
    c_missing = hf[MISSING_BIN, 2]
    best, best_bin, best_left = -np.inf, -1, False
    best_totals = (0.0, 0.0, 0.0)
    gl = hl = cl = 0.0
    # with missing values, the last known bin is a threshold too: known left, NaN right
    last = n_bins - 1 + (1 if c_missing > 0 else 0)
    for b in range(last):
        if hf[b, 2] == 0.0:
            continue  # same partition as the previous threshold
        gl += hf[b, 0]
        hl += hf[b, 1]
        cl += hf[b, 2]
        if count - cl < min_samples_leaf or sum_h - hl < min_hessian:
            # the right side only shrinks (hessians are >= 0), and is largest with the
            # missing values on it: no later threshold can qualify
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
                best_totals = (g_left, h_left, c_left)
    return best, best_bin, best_left, best_totals


@numba.njit(cache=True, nogil=True, parallel=True, fastmath=False)
def find_splits(hist, n_bins, sum_g, sum_h, count, l2, min_samples_leaf, min_hessian,
                gain, split_bin, missing_left, left):
    """best_split of every feature of one node's histogram, into gain[f], split_bin[f],
    missing_left[f] and left[f] (the left side's gradient, hessian and count)."""
    for f in numba.prange(hist.shape[0]):
        gain[f], split_bin[f], missing_left[f], totals = best_split(
            hist[f], n_bins[f], sum_g, sum_h, count, l2, min_samples_leaf, min_hessian)
        left[f, 0], left[f, 1], left[f, 2] = totals


@numba.njit(cache=True, nogil=True, parallel=True, fastmath=False)
def find_splits_of_rows(Xb, rows, start, end, gradient, hessian, n_bins, sum_g, sum_h,
                        count, l2, min_samples_leaf, min_hessian, gain, split_bin,
                        missing_left, left):
    """find_splits for rows[start:end], from histograms that live only in each group's
    scratch: nothing of the node's size is zeroed, written or subtracted, which is most
    of the cost of a node of a few thousand rows."""
    node_rows, g, h = _node_gradients(rows, start, end, gradient, hessian)
    d = Xb.shape[0]
    for group in numba.prange((d + HISTOGRAM_GROUP - 1) // HISTOGRAM_GROUP):
        first = group * HISTOGRAM_GROUP
        width = min(HISTOGRAM_GROUP, d - first)
        totals = _group_totals(Xb, first, width, node_rows, g, h)
        for k in range(width):
            f = first + k
            gain[f], split_bin[f], missing_left[f], side = best_split(
                totals[k], n_bins[f], sum_g, sum_h, count, l2, min_samples_leaf,
                min_hessian)
            left[f, 0], left[f, 1], left[f, 2] = side


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
