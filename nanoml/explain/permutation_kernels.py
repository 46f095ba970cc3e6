"""Numba kernels of permutation importance for tree models, over the flat node arrays of
`treeshap_kernels`: each row's leaves, and where each feature first splits its paths,
are found once; a shuffled column then sends a row down again only the trees whose path
splits on that column, from that split on. The sums add the trees in order, as the
models' own kernels do, so that the predictions are bit for bit those of ``predict``.
"""

import numba

LEAF = -1


@numba.njit(cache=True, nogil=True, parallel=True)
def leaves_and_first_splits(X, feature, threshold, left, right, roots, leaf, first):
    """leaf[i, t]: the leaf tree t sends row X[i] to; first[f, i, t]: the first node of
    that path splitting on feature f, or -1 (filled with -1 by the caller)."""
    for i in numba.prange(X.shape[0]):
        for t in range(roots.shape[0]):
            node = roots[t]
            while feature[node] != LEAF:
                f = feature[node]
                if first[f, i, t] < 0:
                    first[f, i, t] = node
                node = left[node] if X[i, f] <= threshold[node] else right[node]
            leaf[i, t] = node


@numba.njit(cache=True, nogil=True, parallel=True)
def shuffled_tree_sums(X, columns, feature, threshold, left, right, value, roots, leaf, first,
                       sums):
    """sums[i] += Σ over trees of the leaf value row X[i] gets, where X is the rows of
    `leaf` and `first` with the features `columns` shuffled. A tree walks again from the
    first split on one of them (parents are numbered before children, so the smallest
    node); a tree whose path splits on none keeps its leaf. sums holds the model's
    starting value."""
    for i in numba.prange(X.shape[0]):
        for t in range(roots.shape[0]):
            node = leaf[i, t]
            begin = -1
            for c in columns:
                split = first[c, i, t]
                if split >= 0 and (begin < 0 or split < begin):
                    begin = split
            if begin >= 0:
                node = begin
                while feature[node] != LEAF:
                    x = X[i, feature[node]]
                    node = left[node] if x <= threshold[node] else right[node]
            for k in range(value.shape[1]):
                sums[i, k] += value[node, k]
