"""Numba kernels of exact TreeSHAP (Lundberg et al. 2020, Algorithm 2) over flat node arrays.

A forest is the arrays of `nanoml_classic.tree_kernels`: ``feature`` (LEAF = -1 at a
leaf), ``threshold`` (``x[feature] <= threshold`` goes left), ``left``, ``right``,
``value`` (nodes x outputs) and the first node of each tree in ``roots``; ``cover`` is the
share of the background rows that reach each node (see `node_cover`).

The path of unique features from the root to the current node is kept as four arrays
(feature, zero fraction, one fraction, permutation weight). Each level of the walk works on
its own copy of the path, placed right after its parent's, in one buffer of
(max_depth + 1)(max_depth + 2) / 2 entries per row.
"""

import numba
import numpy as np

LEAF = -1


@numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
def _extend(pf, pz, po, pw, at, depth, zero, one, feature, inv):
    """Add a feature to the path at `at` of length depth, updating the permutation weights."""
    pf[at + depth] = feature
    pz[at + depth] = zero
    po[at + depth] = one
    pw[at + depth] = 1.0 if depth == 0 else 0.0
    scale = inv[depth + 1]
    for i in range(depth - 1, -1, -1):
        pw[at + i + 1] += one * pw[at + i] * (i + 1) * scale
        pw[at + i] = zero * pw[at + i] * (depth - i) * scale


@numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
def _unwind(pf, pz, po, pw, at, depth, index, inv):
    """Undo `_extend` of the path element `index` (a feature seen again deeper down)."""
    one = po[at + index]
    zero = pz[at + index]
    next_one = pw[at + depth]
    for i in range(depth - 1, -1, -1):
        if one != 0.0:
            kept = pw[at + i]
            pw[at + i] = next_one * (depth + 1) * inv[i + 1] / one
            next_one = kept - pw[at + i] * zero * (depth - i) * inv[depth + 1]
        else:
            pw[at + i] = pw[at + i] * (depth + 1) * inv[depth - i] / zero
    for i in range(index, depth):
        pf[at + i] = pf[at + i + 1]
        pz[at + i] = pz[at + i + 1]
        po[at + i] = po[at + i + 1]


@numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
def _unwound_sum(pz, po, pw, at, depth, index, inv):
    """The total permutation weight of the path with element `index` unwound (not stored).

    The hot loop of TreeSHAP (every leaf, every path element): divisions by small
    integers are multiplications by their reciprocals, `inv[k]` = 1 / k.
    """
    one = po[at + index]
    zero = pz[at + index]
    next_one = pw[at + depth]
    total = 0.0
    if one != 0.0:
        grow = (depth + 1) / one
        shrink = zero * inv[depth + 1]
        for i in range(depth - 1, -1, -1):
            part = next_one * grow * inv[i + 1]
            total += part
            next_one = pw[at + i] - part * shrink * (depth - i)
    else:
        grow = (depth + 1) / zero
        for i in range(depth - 1, -1, -1):
            total += pw[at + i] * grow * inv[depth - i]
    return total


@numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
def _tree_row(x, feature, threshold, left, right, value, cover, root, pf, pz, po, pw,
              frames, fractions, inv, phi):
    """Add one tree's contributions at row x to phi (features x outputs).

    Lundberg's recursion, walked with an explicit stack (Numba cannot cache recursive
    functions): a frame is (node, unique depth, parent's path offset, split feature) in
    `frames` and (zero fraction, one fraction) in `fractions`. A node's path lives at the
    parent's offset + depth; its subtrees write past it, so the cold child, visited after
    the hot one's whole subtree, still finds its parent's path intact.
    """
    frames[0, 0] = root
    frames[0, 1] = 0
    frames[0, 2] = 0
    frames[0, 3] = -1
    fractions[0, 0] = 1.0
    fractions[0, 1] = 1.0
    top = 1
    while top > 0:
        top -= 1
        node = frames[top, 0]
        depth = frames[top, 1]
        parent_at = frames[top, 2]
        at = parent_at + depth
        for i in range(depth):  # copy the parent's path into this level's
            pf[at + i] = pf[parent_at + i]
            pz[at + i] = pz[parent_at + i]
            po[at + i] = po[parent_at + i]
            pw[at + i] = pw[parent_at + i]
        _extend(pf, pz, po, pw, at, depth, fractions[top, 0], fractions[top, 1],
                frames[top, 3], inv)
        f = feature[node]
        if f == LEAF:
            for i in range(1, depth + 1):
                w = _unwound_sum(pz, po, pw, at, depth, i, inv) * (po[at + i] - pz[at + i])
                for k in range(value.shape[1]):
                    phi[pf[at + i], k] += w * value[node, k]
            continue
        if x[f] <= threshold[node]:
            hot = left[node]
            cold = right[node]
        else:
            hot = right[node]
            cold = left[node]
        incoming_zero = 1.0
        incoming_one = 1.0
        for index in range(1, depth + 1):
            if pf[at + index] == f:  # split on this feature above: undo that split first
                incoming_zero = pz[at + index]
                incoming_one = po[at + index]
                _unwind(pf, pz, po, pw, at, depth, index, inv)
                depth -= 1
                break
        for child, one in ((cold, 0.0), (hot, incoming_one)):  # hot is popped first
            frames[top, 0] = child
            frames[top, 1] = depth + 1
            frames[top, 2] = at
            frames[top, 3] = f
            fractions[top, 0] = cover[child] / cover[node] * incoming_zero
            fractions[top, 1] = one
            top += 1


@numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy", parallel=True)
def tree_shap(X, feature, threshold, left, right, value, cover, roots, max_depth, phi):
    """phi[i, j, k] += Σ over trees of feature j's SHAP value for output k at row X[i].

    Path-dependent TreeSHAP: a feature missing from a coalition follows both children in
    proportion to their cover. Rows in parallel; phi is zeroed by the caller.
    """
    size = (max_depth + 1) * (max_depth + 2) // 2
    inv = np.zeros(max_depth + 3)
    inv[1:] = 1.0 / np.arange(1, max_depth + 3)
    for i in numba.prange(X.shape[0]):
        pf = np.empty(size, np.int64)
        pz = np.empty(size)
        po = np.empty(size)
        pw = np.empty(size)
        frames = np.empty((max_depth + 2, 4), np.int64)
        fractions = np.empty((max_depth + 2, 2))
        for t in range(roots.shape[0]):
            _tree_row(X[i], feature, threshold, left, right, value, cover, roots[t],
                      pf, pz, po, pw, frames, fractions, inv, phi[i])


@numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
def node_cover(X, feature, threshold, left, right, roots, count, cover):
    """cover[node]: the share of the rows of X that reach each node of its tree (1 at
    each root), from the counts of rows reaching each node (`count`, filled here).

    A split where a child is reached by no row takes the shares (count + 1/2) / (n + 1),
    so that every path keeps a nonzero weight and the shares of two children still add
    up to their parent's.
    """
    count[:] = 0.0
    for t in range(roots.shape[0]):
        for i in range(X.shape[0]):
            node = roots[t]
            count[node] += 1.0
            while feature[node] != LEAF:
                if X[i, feature[node]] <= threshold[node]:
                    node = left[node]
                else:
                    node = right[node]
                count[node] += 1.0
        cover[roots[t]] = 1.0
    # nodes are numbered parents first (depth-first), so one forward pass suffices
    for node in range(feature.shape[0]):
        if feature[node] == LEAF:
            continue
        a = count[left[node]]
        b = count[right[node]]
        if a == 0.0 or b == 0.0:
            a += 0.5
            b += 0.5
        cover[left[node]] = cover[node] * (a / (a + b))
        cover[right[node]] = cover[node] * (b / (a + b))


@numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
def tree_depths(feature, left, right, roots, depth):
    """depth[node] = number of splits above the node; returns the deepest leaf's depth."""
    deepest = 0
    for t in range(roots.shape[0]):
        depth[roots[t]] = 0
    for node in range(feature.shape[0]):  # parents before children
        if feature[node] != LEAF:
            depth[left[node]] = depth[node] + 1
            depth[right[node]] = depth[node] + 1
        elif depth[node] > deepest:
            deepest = depth[node]
    return deepest
