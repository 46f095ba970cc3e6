"""Numba kernels of the decision trees: grow one CART tree on ranked columns, walk trees.

A tree is five flat arrays indexed by node: ``feature`` (LEAF at a leaf), ``threshold``
(samples with ``x[feature] <= threshold`` go left), ``left``, ``right`` (child node ids)
and ``value`` (nodes x outputs: class proportions, or the mean target). Several trees
concatenated with absolute child ids and a list of roots make a forest.

Each feature is replaced once, before any tree grows, by the dense rank of its values
(`rank_columns`). A node keeps its samples as one contiguous segment, in increasing sample
index, and sorts only the features it draws: by counting sort on the ranks when they span a
short range (pixels, categories, small nodes of any data), else by a sort of
(rank, position) keys. Ties thus stay in sample order whichever sort runs, so a tree does
not depend on the sort. Features of many distinct values can instead be carried presorted:
each node's samples are then a segment of the feature's sorted order, split stably at each
split, so no node sorts them (see `build_tree`). A feature found constant in a node is
remembered for the node's descendants, which skip it without looking at their samples, as
scikit-learn does.
"""

import numba
import numpy as np

GINI, ENTROPY, SQUARED_ERROR = 0, 1, 2
LEAF = -1
UNDEFINED = -2.0  # threshold stored at leaves, as scikit-learn does
# A node whose impurity is at most this is not split (scikit-learn's EPSILON).
EPSILON = np.finfo(np.float64).eps
# Counting sort when the node's ranks span at most this many buckets per sample.
COUNTING_SPAN = 8


@numba.njit(cache=True, nogil=True, fastmath=False)
def rank_columns(Xt, order, ranks, n_distinct):
    """ranks[f, i]: how many distinct values of Xt[f] lie below Xt[f, i]; n_distinct[f].

    order[f] sorts Xt[f] (NumPy's argsort is faster than a kernel's).
    """
    for f in range(Xt.shape[0]):
        k = 0
        previous = Xt[f, order[f, 0]]
        for i in order[f]:
            k += Xt[f, i] != previous
            previous = Xt[f, i]
            ranks[f, i] = k
        n_distinct[f] = k + 1


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
def _sort_node(rank_f, samples, start, end, ids, raw, keys, counts):
    """Sort the node's samples by rank_f into ids, ties in their order in `samples`.

    Returns False, sorting nothing, when the feature is constant in the node.
    """
    n = end - start
    lo = rank_f[samples[start]]
    hi = lo
    for q in range(n):
        r = rank_f[samples[start + q]]
        raw[q] = r
        lo = min(lo, r)
        hi = max(hi, r)
    if hi == lo:
        return False
    span = hi - lo + 1
    if span <= COUNTING_SPAN * n:
        for q in range(n):
            counts[raw[q] - lo] += 1
        total = 0
        for b in range(span):
            c = counts[b]
            counts[b] = total
            total += c
        for q in range(n):
            b = raw[q] - lo
            pos = counts[b]
            counts[b] = pos + 1
            ids[pos] = samples[start + q]
        counts[:span] = 0
    else:
        for q in range(n):
            keys[q] = (np.int64(raw[q] - lo) << 32) | q
        keys[:n].sort()
        for q in range(n):
            ids[q] = samples[start + (keys[q] & 0xFFFFFFFF)]
    return True


@numba.njit(cache=True, nogil=True, fastmath=False)
def _scan_classes(ids, offset, n, rank_f, y, weight, total, total_w, min_leaf, entropy, xlogx,
                  left, right):
    """Best threshold position of one sorted feature for Gini or entropy; (proxy, position).

    The node's samples are ids[offset:offset + n], in increasing rank_f; a split at
    position p sends the first p left. The proxy (larger is better) is Σ_k c_k²/w
    per side for Gini and Σ_k c_k log c_k - w log w per side for entropy, both updated in
    O(1) per sample from integer counts, so equal splits score exactly equal. Returns
    position -1 when no split leaves `min_leaf` samples on both sides.
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
    rank_next = rank_f[ids[offset]]
    for p in range(n - 1):
        i = ids[offset + p]
        rank = rank_next
        rank_next = rank_f[ids[offset + p + 1]]
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
        if p + 1 < min_leaf:
            continue
        if n - (p + 1) < min_leaf:
            break
        if rank_next == rank:
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
def _scan_squared_error(ids, offset, n, rank_f, y, weight, total_sum, total_w, min_leaf):
    """Best threshold position of one sorted feature for squared error; (proxy, position).

    Samples as for `_scan_classes`.
    The proxy, Σ_side (Σ w y)² / Σ w, is the variance reduction up to a constant.
    """
    left_sum = 0.0
    left_w = 0
    best = -np.inf
    best_pos = -1
    rank_next = rank_f[ids[offset]]
    for p in range(n - 1):
        i = ids[offset + p]
        rank = rank_next
        rank_next = rank_f[ids[offset + p + 1]]
        left_sum += weight[i] * y[i]
        left_w += weight[i]
        if p + 1 < min_leaf:
            continue
        if n - (p + 1) < min_leaf:
            break
        if rank_next == rank:
            continue
        right_sum = total_sum - left_sum
        proxy = left_sum * left_sum / left_w + right_sum * right_sum / (total_w - left_w)
        if proxy > best:
            best = proxy
            best_pos = p + 1
    return best, best_pos


@numba.njit(cache=True, nogil=True, fastmath=False)
def _evaluate(f, ranks, order, carried, samples, start, end, y, weight, criterion, node_counts,
              node_w, node_sum, min_leaf, xlogx, scratch, left_counts, right_counts):
    """Best split of the node samples[start:end] on feature f.

    Returns (constant, proxy, position, low, high): whether f is constant in the node,
    else the scan's proxy and position (-1: no split), and the samples on either side
    of the split (low goes left). scratch holds the ids, raw and keys buffers of
    `_sort_node`, then its counts (zeros, at least n long).
    """
    rank_f = ranks[f]
    n_node = end - start
    if carried[f] >= 0:
        sorted_ids = order[carried[f]]
        offset = start
        if rank_f[sorted_ids[end - 1]] == rank_f[sorted_ids[start]]:
            return True, -np.inf, -1, -1, -1
    else:
        sorted_ids = scratch[0]
        offset = 0
        if not _sort_node(rank_f, samples, start, end, scratch[0], scratch[1], scratch[2],
                          scratch[3]):
            return True, -np.inf, -1, -1, -1
    if criterion != SQUARED_ERROR:
        proxy, pos = _scan_classes(
            sorted_ids, offset, n_node, rank_f, y, weight, node_counts, node_w, min_leaf,
            criterion == ENTROPY, xlogx, left_counts, right_counts,
        )
    else:
        proxy, pos = _scan_squared_error(
            sorted_ids, offset, n_node, rank_f, y, weight, node_sum, node_w, min_leaf,
        )
    if pos < 0:
        return False, proxy, pos, -1, -1
    return False, proxy, pos, sorted_ids[offset + pos - 1], sorted_ids[offset + pos]


@numba.njit(cache=True, nogil=True, fastmath=False)
def _partition(segment, start, end, goes_left, buffer):
    """Stable partition of segment[start:end] by goes_left; returns where the right begins."""
    n_left = start
    n_right = 0
    for p in range(start, end):
        # branch-free: which side a sample goes is a coin flip to the CPU
        i = segment[p]
        side = np.int64(goes_left[i])
        segment[n_left] = i
        buffer[n_right] = i
        n_left += side
        n_right += 1 - side
    segment[n_left:end] = buffer[:n_right]
    return n_left


@numba.njit(cache=True, nogil=True, fastmath=False)
def _push(stack, top, start, end, depth, parent, is_left):
    stack[top, 0] = start
    stack[top, 1] = end
    stack[top, 2] = depth
    stack[top, 3] = parent
    stack[top, 4] = is_left


@numba.njit(cache=True, nogil=True, fastmath=False)
def build_tree(X, ranks, presorted, carried, y, weight, n_outputs, criterion, max_depth,
               min_samples_split, min_samples_leaf, max_features, seed):
    """Grow one CART tree depth first; returns (feature, threshold, left, right, value).

    X: samples x features, for the thresholds. ranks: features x samples, from
    `rank_columns`. Feature f with carried[f] = c >= 0 is not sorted per node: the tree
    filters presorted[c] (every sample, by increasing ranks[f]) and keeps each node's
    samples as one segment of it, split stably into left and right at every split; worth
    it for features of many distinct values when most features take part in each split.
    y: class code (criterion GINI or ENTROPY, n_outputs classes) or target
    (SQUARED_ERROR, n_outputs 1). weight: integer multiplicity of each sample, 0
    leaving it out (a bootstrap sample). max_depth < 0 means unlimited. Each node draws
    `max_features` features at random (all of them, in order, when max_features >=
    n_features), going on past that number while every drawn feature is constant, as
    scikit-learn does. The stopping rules and the midpoint thresholds are scikit-learn's
    as well.
    """
    d, n = ranks.shape
    m = 0
    total_weight = 0
    for i in range(n):
        if weight[i] > 0:
            m += 1
            total_weight += weight[i]
    samples = np.empty(m, np.int64)  # each node's segment stays in increasing index
    k = 0
    for i in range(n):
        if weight[i] > 0:
            samples[k] = i
            k += 1
    order = np.empty((presorted.shape[0], m), np.int64)
    for c in range(presorted.shape[0]):
        k = 0
        for i in presorted[c]:
            if weight[i] > 0:
                order[c, k] = i
                k += 1
    # No node sorts when every feature is carried: the first order, split at every node
    # (constant or not), then serves as the node's samples, one partition fewer per node.
    first_split = 0
    if presorted.shape[0] == d:
        samples = order[0]
        first_split = 1
    goes_left = np.zeros(n, np.bool_)

    classify = criterion != SQUARED_ERROR
    xlogx = np.zeros(total_weight + 1 if criterion == ENTROPY else 1)
    for c in range(1, xlogx.shape[0]):
        xlogx[c] = c * np.log(c)
    node_counts = np.zeros(n_outputs, np.int64)
    left_counts = np.empty(n_outputs, np.int64)
    right_counts = np.empty(n_outputs, np.int64)
    features = np.arange(d)
    scratch = np.empty((4, n), np.int64)  # ids, raw and keys of _sort_node, its counts
    scratch[3] = 0
    buffer = np.empty(m, np.int64)
    state = np.full(1, np.uint64(seed) | np.uint64(1))  # xorshift needs a nonzero state
    # Features constant in the current node's ancestors: const_list[:path_len[depth - 1]]
    # (each found at most once along a path), flagged in is_const.
    is_const = np.zeros(d, np.bool_)
    const_list = np.empty(d, np.int64)
    n_const = 0
    path_len = np.zeros(m + 1, np.int64)

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
        inherited = path_len[depth - 1] if depth > 0 else 0
        while n_const > inherited:  # forget what a finished subtree found
            n_const -= 1
            is_const[const_list[n_const]] = False

        node_w = 0
        node_sum = 0.0
        node_sq = 0.0
        node_counts[:] = 0
        for p in range(start, end):
            i = samples[p]
            node_w += weight[i]
            if classify:
                node_counts[np.int64(y[i])] += weight[i]
            else:
                node_sum += weight[i] * y[i]
                node_sq += weight[i] * y[i] * y[i]
        if classify:
            pure = False
            for c in range(n_outputs):
                value[node, c] = node_counts[c] / node_w
                pure = pure or node_counts[c] == node_w
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
        best_low = -1
        best_high = -1
        best_rank = -1
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
            if is_const[f]:
                continue
            constant, proxy, pos, low, high = _evaluate(
                f, ranks, order, carried, samples, start, end, y, weight, criterion,
                node_counts, node_w, node_sum, min_samples_leaf, xlogx, scratch, left_counts,
                right_counts,
            )
            if constant:
                is_const[f] = True
                const_list[n_const] = f
                n_const += 1
                continue
            informative = True
            if pos >= 0 and proxy > best:
                best = proxy
                best_f = f
                best_low = low
                best_high = high
                best_rank = ranks[f, low]
        path_len[depth] = n_const
        if best_f < 0:
            continue

        low = X[best_low, best_f]
        high = X[best_high, best_f]
        cut = low / 2.0 + high / 2.0
        if cut == high or cut == np.inf or cut == -np.inf:
            cut = low
        feature[node] = best_f
        threshold[node] = cut

        rank_f = ranks[best_f]
        for p in range(start, end):
            i = samples[p]
            goes_left[i] = rank_f[i] <= best_rank
        n_left = _partition(samples, start, end, goes_left, buffer)
        for f in range(d):
            # a constant feature's segment is never read again; the best one is split
            if carried[f] >= first_split and not is_const[f] and f != best_f:
                _partition(order[carried[f]], start, end, goes_left, buffer)

        _push(stack, top, n_left, end, depth + 1, node, 0)
        _push(stack, top + 1, start, n_left, depth + 1, node, 1)  # popped first
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
