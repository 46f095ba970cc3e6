"""Numba kernels of the decision trees: grow one CART tree on presorted columns, walk trees.

A tree is five flat arrays indexed by node: ``feature`` (LEAF at a leaf), ``threshold``
(samples with ``x[feature] <= threshold`` go left), ``left``, ``right`` (child node ids)
and ``value`` (nodes x outputs: class proportions, or the mean target). Several trees
concatenated with absolute child ids and a list of roots make a forest.

The builder sorts every feature once, before the first split, and keeps each node's samples
as one contiguous segment of every feature's sorted order; a split partitions those segments
stably into left and right, so no node ever sorts again.
"""

import numba
import numpy as np

GINI, ENTROPY, SQUARED_ERROR = 0, 1, 2
LEAF = -1
UNDEFINED = -2.0  # threshold stored at leaves, as scikit-learn does
# A node whose impurity is at most this is not split (scikit-learn's EPSILON).
EPSILON = np.finfo(np.float64).eps


@numba.njit(cache=True, nogil=True, fastmath=False)
def _rand_below(state, bound):
    """xorshift64* step on state[0]; returns an integer uniform in [0, bound).

    An explicit state keeps tree building free of any global random generator, so trees
    grown on several threads at once stay reproducible from their seeds.
    """
    x = state[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    state[0] = x
    return np.int64((x * np.uint64(2685821657736338717)) >> np.uint64(33)) % bound


@numba.njit(cache=True, nogil=True, fastmath=False)
def _scan_classes(xf, order, start, end, y, weight, total, total_w, min_leaf, entropy, xlogx,
                  left, right):
    """Best threshold position of one feature for Gini or entropy; (proxy, position).

    Scans the node's samples in increasing feature value; a split at position p sends
    order[start:p] left. The proxy (larger is better) is Σ_k c_k²/w per side for Gini and
    Σ_k c_k log c_k - w log w per side for entropy, both updated in O(1) per sample from
    integer counts, so equal splits score exactly equal. Returns position -1 when no
    split leaves `min_leaf` samples on both sides.
    """
    n_classes = total.shape[0]
    left_sq = 0
    right_sq = 0
    left_xlx = 0.0
    right_xlx = 0.0
    for k in range(n_classes):
        left[k] = 0
        right[k] = total[k]
        right_sq += total[k] * total[k]
        if entropy:  # xlogx has one entry only for Gini
            right_xlx += xlogx[total[k]]
    left_w = 0
    right_w = total_w
    best = -np.inf
    best_pos = -1
    for p in range(start, end - 1):
        i = order[p]
        c = np.int64(y[i])
        w = weight[i]
        if entropy:
            left_xlx += xlogx[left[c] + w] - xlogx[left[c]]
            right_xlx += xlogx[right[c] - w] - xlogx[right[c]]
        else:
            left_sq += w * (2 * left[c] + w)
            right_sq -= w * (2 * right[c] - w)
        left[c] += w
        right[c] -= w
        left_w += w
        right_w -= w
        if p + 1 - start < min_leaf:
            continue
        if end - (p + 1) < min_leaf:
            break
        if xf[order[p + 1]] <= xf[i]:
            continue  # equal values cannot be separated
        if entropy:
            proxy = left_xlx - xlogx[left_w] + right_xlx - xlogx[right_w]
        else:
            proxy = left_sq / left_w + right_sq / right_w
        if proxy > best:
            best = proxy
            best_pos = p + 1
    return best, best_pos


@numba.njit(cache=True, nogil=True, fastmath=False)
def _scan_squared_error(xf, order, start, end, y, weight, total_sum, total_w, min_leaf):
    """Best threshold position of one feature for squared error; (proxy, position).

    The proxy, Σ_side (Σ w y)² / Σ w, is the variance reduction up to a constant.
    """
    left_sum = 0.0
    left_w = 0
    best = -np.inf
    best_pos = -1
    for p in range(start, end - 1):
        i = order[p]
        left_sum += weight[i] * y[i]
        left_w += weight[i]
        if p + 1 - start < min_leaf:
            continue
        if end - (p + 1) < min_leaf:
            break
        if xf[order[p + 1]] <= xf[i]:
            continue
        right_sum = total_sum - left_sum
        proxy = left_sum * left_sum / left_w + right_sum * right_sum / (total_w - left_w)
        if proxy > best:
            best = proxy
            best_pos = p + 1
    return best, best_pos


@numba.njit(cache=True, nogil=True, fastmath=False)
def _push(stack, top, start, end, depth, parent, is_left):
    stack[top, 0] = start
    stack[top, 1] = end
    stack[top, 2] = depth
    stack[top, 3] = parent
    stack[top, 4] = is_left


@numba.njit(cache=True, nogil=True, fastmath=False)
def build_tree(Xt, presorted, y, weight, n_outputs, criterion, max_depth, min_samples_split,
               min_samples_leaf, max_features, seed):
    """Grow one CART tree depth first; returns (feature, threshold, left, right, value).

    Xt: features x samples. presorted[f]: every sample index, ordered by Xt[f]. y: class
    code (criterion GINI or ENTROPY, n_outputs classes) or target (SQUARED_ERROR,
    n_outputs 1). weight: integer multiplicity of each sample, 0 leaving it out (a
    bootstrap sample). max_depth < 0 means unlimited. Each node draws `max_features`
    features at random (all of them, in order, when max_features >= n_features), going
    on past that number while every drawn feature is constant, as scikit-learn does.
    The stopping rules and the midpoint thresholds are scikit-learn's as well.
    """
    d, n = Xt.shape
    m = 0
    total_weight = 0
    for i in range(n):
        if weight[i] > 0:
            m += 1
            total_weight += weight[i]
    order = np.empty((d, m), np.int32)
    for f in range(d):
        k = 0
        for p in range(n):
            i = presorted[f, p]
            if weight[i] > 0:
                order[f, k] = i
                k += 1

    classify = criterion != SQUARED_ERROR
    xlogx = np.zeros(total_weight + 1 if criterion == ENTROPY else 1)
    for c in range(1, xlogx.shape[0]):
        xlogx[c] = c * np.log(c)
    counts = np.zeros(n_outputs, np.int64)
    left_counts = np.empty(n_outputs, np.int64)
    right_counts = np.empty(n_outputs, np.int64)
    features = np.arange(d)
    goes_left = np.zeros(n, np.bool_)
    buffer = np.empty(m, np.int32)
    state = np.full(1, np.uint64(seed) | np.uint64(1))  # xorshift needs a nonzero state

    capacity = 2 * m - 1  # a binary tree with at most m leaves
    feature = np.full(capacity, LEAF, np.int64)
    threshold = np.full(capacity, UNDEFINED)
    left = np.full(capacity, LEAF, np.int64)
    right = np.full(capacity, LEAF, np.int64)
    value = np.zeros((capacity, n_outputs))
    n_nodes = 0

    # stack of (start, end, depth, parent, is_left); parent -1 marks the root. It holds
    # at most one pending right child per level below the node being split.
    stack = np.empty((m + 1, 5), np.int64)
    _push(stack, 0, 0, m, 0, -1, 0)
    top = 1
    while top > 0:
        top -= 1
        start = stack[top, 0]
        end = stack[top, 1]
        depth = stack[top, 2]
        parent = stack[top, 3]
        is_left = stack[top, 4]
        node = n_nodes
        n_nodes += 1
        if parent >= 0:
            if is_left:
                left[parent] = node
            else:
                right[parent] = node

        node_w = 0
        node_sum = 0.0
        node_sq = 0.0
        counts[:] = 0
        for p in range(start, end):
            i = order[0, p]
            node_w += weight[i]
            if classify:
                counts[np.int64(y[i])] += weight[i]
            else:
                node_sum += weight[i] * y[i]
                node_sq += weight[i] * y[i] * y[i]
        if classify:
            pure = False
            for k in range(n_outputs):
                value[node, k] = counts[k] / node_w
                pure = pure or counts[k] == node_w
        else:
            mean = node_sum / node_w
            value[node, 0] = mean
            pure = node_sq / node_w - mean * mean <= EPSILON

        n_node = end - start
        if (pure or depth == max_depth or n_node < min_samples_split
                or n_node < 2 * min_samples_leaf):
            continue

        best = -np.inf
        best_f = -1
        best_pos = -1
        visited = 0
        informative = False
        for t in range(d):
            if visited >= max_features and informative:
                break
            if max_features < d:
                j = t + _rand_below(state, d - t)  # Fisher-Yates draw without replacement
                features[t], features[j] = features[j], features[t]
            f = features[t]
            visited += 1
            xf = Xt[f]
            of = order[f]
            if xf[of[end - 1]] <= xf[of[start]]:
                continue  # constant in this node
            informative = True
            if classify:
                proxy, pos = _scan_classes(
                    xf, of, start, end, y, weight, counts, node_w, min_samples_leaf,
                    criterion == ENTROPY, xlogx, left_counts, right_counts,
                )
            else:
                proxy, pos = _scan_squared_error(
                    xf, of, start, end, y, weight, node_sum, node_w, min_samples_leaf
                )
            if pos >= 0 and proxy > best:
                best = proxy
                best_f = f
                best_pos = pos
        if best_f < 0:
            continue

        xf = Xt[best_f]
        low = xf[order[best_f, best_pos - 1]]
        high = xf[order[best_f, best_pos]]
        cut = low / 2.0 + high / 2.0
        if cut == high or cut == np.inf or cut == -np.inf:
            cut = low
        feature[node] = best_f
        threshold[node] = cut

        for p in range(start, end):
            goes_left[order[best_f, p]] = p < best_pos
        for f in range(d):
            if f == best_f:
                continue
            of = order[f]
            n_left = start
            n_right = 0
            for p in range(start, end):
                # branch-free: which side a sample goes is a coin flip to the CPU
                i = of[p]
                side = np.int64(goes_left[i])
                of[n_left] = i
                buffer[n_right] = i
                n_left += side
                n_right += 1 - side
            of[n_left:end] = buffer[:n_right]

        _push(stack, top, best_pos, end, depth + 1, node, 0)
        _push(stack, top + 1, start, best_pos, depth + 1, node, 1)  # popped first
        top += 2

    return (feature[:n_nodes].copy(), threshold[:n_nodes].copy(), left[:n_nodes].copy(),
            right[:n_nodes].copy(), value[:n_nodes].copy())


@numba.njit(cache=True, nogil=True, fastmath=False, parallel=True)
def sum_tree_values(X, feature, threshold, left, right, value, roots, out):
    """out[i] = Σ over trees of the value of the leaf sample X[i] falls in; rows in parallel."""
    for i in numba.prange(X.shape[0]):
        for t in range(roots.shape[0]):
            node = roots[t]
            while feature[node] != LEAF:
                if X[i, feature[node]] <= threshold[node]:
                    node = left[node]
                else:
                    node = right[node]
            for k in range(value.shape[1]):
                out[i, k] += value[node, k]
