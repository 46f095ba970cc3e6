"""Histogram gradient boosting (LightGBM, scikit-learn's HistGradientBoosting*).

Features are binned once into uint8 codes (up to 255 quantile bins and one for missing
values). Each tree grows leaf-wise, always splitting the leaf whose best split lowers the
second-order loss most, until `max_leaf_nodes`. While the larger child has DIRECT_ROWS rows
or more, a node's histogram is built for the smaller child only and the sibling's is the
parent's minus it; below that, both children's splits are searched straight from their
rows, without stored histograms. Leaves hold -G / (H + l2) times the
learning rate. A fitted model is its trees as flat arrays (see boosting_kernels), trees
ordered iteration by iteration and, within one, class by class.
"""

import heapq

import numpy as np

from nanoml import Learner
from nanoml.errors import ParameterError
from nanoml.state_schema import Array, Classes, Int, StateSchema, Trees, score_columns
from nanoml.validation import (
    check_array,
    check_choice,
    check_number,
    check_targets,
    encode_labels,
)
from nanoml_classic import boosting_kernels as kernels

MIN_HESSIAN = 1e-3  # a child needs at least this much hessian (scikit-learn's default)
BINNING_SAMPLE = 200_000  # rows the bin thresholds are computed from (scikit-learn's)
AUTO_EARLY_STOPPING_ROWS = 10_000  # early_stopping="auto" turns it on above this
# A training loss this many times the constant prediction's means the steps overshoot and
# grow (learning_rate too large): stop rather than return a model of infinite error.
DIVERGED_LOSS_RATIO = 1e6
_NO_HISTOGRAM = np.empty((0, kernels.N_BINS, 3))  # build_histogram's "no parent"
# Nodes whose larger child has fewer rows than this have their children's splits searched
# from the rows (find_splits_of_rows) rather than from stored histograms, whose zeroing,
# subtraction and search over every bin would cost more than the rows do.
DIRECT_ROWS = 4096


def check_features(X, n_features=None):
    """check_array that lets NaN through as a missing value (infinity is still refused)."""
    arr = np.asarray(X) if not hasattr(X, "nnz") else X
    if getattr(arr, "dtype", None) is not None and arr.dtype.kind == "f":
        missing = np.isnan(arr)
        if missing.any():
            arr = check_array(np.where(missing, 0.0, arr), n_features=n_features)
            arr[missing] = np.nan
            return arr
    return check_array(X, n_features=n_features)


def bin_thresholds(X, max_bins, rng):
    """Per feature, the upper edges of its bins: midpoints of the distinct values when there
    are at most max_bins of them, else quantiles (scikit-learn's rules, edges for edges).

    Returns (thresholds padded with +inf to max_bins - 1 columns, count per feature).
    """
    if X.shape[0] > BINNING_SAMPLE:
        X = X[rng.choice(X.shape[0], BINNING_SAMPLE, replace=False)]
    d = X.shape[1]
    thresholds = np.full((d, max_bins), np.inf)  # column max_bins - 1 stays +inf
    counts = np.zeros(d, np.int64)
    percentiles = np.linspace(0, 100, num=max_bins + 1)[1:-1]
    for f, column in enumerate(np.ascontiguousarray(X.T)):
        column = np.sort(column[~np.isnan(column)])  # one sort gives both rules
        distinct = column[np.concatenate(([True], column[1:] != column[:-1]))]
        if distinct.shape[0] <= max_bins:
            edges = 0.5 * (distinct[:-1] + distinct[1:])
        else:
            # scikit-learn's quantile rule (averaged inverted CDF). With the midpoint
            # rule, 100 iterations on 60k Fashion-MNIST rows grew leaves of values past
            # 1,000 (a few wrong rows alone in leaves of tiny hessian) and test accuracy
            # fell from 0.888 after 50 iterations to 0.817.
            edges = np.unique(np.percentile(column, percentiles,
                                            method="averaged_inverted_cdf"))
        thresholds[f, : edges.shape[0]] = edges
        counts[f] = edges.shape[0]
    return thresholds, counts


def grow_tree(Xb, Xb_by_row, n_bins, thresholds, gradient, hessian, rows, buffer, params,
              spare):
    """Grow one tree leaf-wise on binned features; returns (node arrays, leaves).

    `Xb` holds the codes feature by feature, `Xb_by_row` (the same codes, indexed alike)
    row by row: a large node's histograms read columns, a small node's reads its rows,
    each row's codes in one stretch of memory rather than one cache line per feature.

    `rows` (0 .. n-1 in order, so that histograms read the columns in order) is reordered
    until every leaf's rows are one segment; leaves are their (starts, ends, values), for
    the caller to add to the raw predictions. `spare` is a list of histogram
    arrays kept from tree to tree: the tree takes what it needs and gives every one back,
    because a fresh array costs more in page faults than a small node's histogram.
    """
    d = Xb.shape[0]
    l2 = params["l2_regularization"]
    min_leaf = params["min_samples_leaf"]
    max_depth = params["max_depth"]
    gain = np.empty(d)
    split_bin = np.empty(d, np.int64)
    missing_left = np.empty(d, np.bool_)
    left = np.empty((d, 3))
    nodes = []  # [feature, threshold, missing_left, left, right, g, h, count, start, end]
    heap = []

    def histogram(start, end, parent=_NO_HISTOGRAM):
        """The histogram of rows[start:end]; `parent`, when given, loses it in place."""
        hist = spare.pop() if spare else np.empty((d, kernels.N_BINS, 3))
        kernels.build_histogram(Xb, rows, start, end, gradient, hessian, hist, parent)
        return hist

    def add_node(start, end, g, h, count):
        nodes.append([kernels.LEAF, 0.0, 0, kernels.LEAF, kernels.LEAF, g, h, count, start, end])
        return len(nodes) - 1

    def can_split(count, depth):
        return count >= 2 * min_leaf and (max_depth is None or depth < max_depth)

    def consider(node, depth, hist=None):
        """Push the node's best split onto the heap with its histogram, None for a node
        searched from its rows."""
        _, _, _, _, _, g, h, count, start, end = nodes[node]
        if hist is None:
            kernels.find_splits_of_rows(Xb_by_row, rows, start, end, gradient, hessian,
                                        n_bins, g, h, count, l2, min_leaf, MIN_HESSIAN,
                                        gain, split_bin, missing_left, left)
        else:
            kernels.find_splits(hist, n_bins, g, h, count, l2, min_leaf, MIN_HESSIAN,
                                gain, split_bin, missing_left, left)
        f = int(np.argmax(gain))
        if gain[f] > 0.0:
            split = (f, int(split_bin[f]), bool(missing_left[f]), left[f].copy())
            heapq.heappush(heap, (-gain[f], node, depth, split, hist))
        elif hist is not None:
            spare.append(hist)

    n = rows.shape[0]
    root = add_node(0, n, float(gradient.sum(dtype=np.float64)),
                    float(hessian.sum(dtype=np.float64)), float(n))
    if can_split(n, 0):
        consider(root, 0, histogram(0, n) if n >= DIRECT_ROWS else None)
    n_leaves = 1
    while heap and n_leaves < params["max_leaf_nodes"]:
        _, node, depth, (f, b, to_left, left_totals), hist = heapq.heappop(heap)
        parent = nodes[node]
        start, end = parent[8], parent[9]
        n_left = kernels.partition(Xb[f], rows, start, end, b, to_left, buffer)
        g_left, h_left, c_left = (float(v) for v in left_totals)
        children = (
            add_node(start, start + n_left, g_left, h_left, c_left),
            add_node(start + n_left, end, parent[5] - g_left, parent[6] - h_left,
                     parent[7] - c_left),
        )
        parent[:5] = [f, thresholds[f, b], to_left, children[0], children[1]]
        n_leaves += 1
        splittable = [c for c in children if can_split(nodes[c][7], depth + 1)]
        small, large = sorted(children, key=lambda c: nodes[c][7])
        if (hist is not None and splittable and n_leaves < params["max_leaf_nodes"]
                and nodes[large][7] >= DIRECT_ROWS):
            # the parent's histogram becomes the larger child's
            small_hist = histogram(nodes[small][8], nodes[small][9], parent=hist)
            for child, child_hist in ((small, small_hist), (large, hist)):
                if child in splittable:
                    consider(child, depth + 1, child_hist)
                else:
                    spare.append(child_hist)
            continue
        if hist is not None:
            spare.append(hist)
        if n_leaves < params["max_leaf_nodes"]:
            for child in splittable:
                consider(child, depth + 1)
    spare.extend(entry[4] for entry in heap if entry[4] is not None)

    columns = list(zip(*nodes, strict=True))
    leaves = np.flatnonzero(np.array(columns[3]) == kernels.LEAF)
    g, h = np.array(columns[5]), np.array(columns[6])
    value = np.zeros(len(nodes))
    value[leaves] = -params["learning_rate"] * g[leaves] / (h[leaves] + l2)
    tree = (
        np.array(columns[0], np.int64),
        np.array(columns[1], np.float64),
        np.array(columns[2], np.uint8),
        np.array(columns[3], np.int64),
        np.array(columns[4], np.int64),
        value,
    )
    starts = np.array(columns[8], np.int64)[leaves]
    ends = np.array(columns[9], np.int64)[leaves]
    return tree, (starts, ends, value[leaves])


def concatenate_trees(trees):
    """Trees -> (feature, threshold, missing_left, left, right, value, roots), ids absolute."""
    sizes = np.array([tree[0].shape[0] for tree in trees])
    roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)

    def children(column):
        return np.concatenate([
            np.where(tree[column] == kernels.LEAF, kernels.LEAF, tree[column] + root)
            for tree, root in zip(trees, roots, strict=True)
        ])

    joined = [np.concatenate([tree[c] for tree in trees]) for c in (0, 1, 2)]
    value = np.concatenate([tree[5] for tree in trees])
    return (*joined, children(3), children(4), value, roots)


# -- losses: baseline raw prediction, gradient and hessian, mean loss -------------------
# raw predictions are (outputs, rows); y is class codes or targets.

def _softmax(raw):
    e = np.exp(raw - raw.max(axis=0))
    return e / e.sum(axis=0)


def _log_loss_binary(y, raw):
    return float(np.mean(np.logaddexp(0.0, raw[0]) - y * raw[0]))


def _log_loss_multi(y, raw):
    top = raw.max(axis=0)
    lse = top + np.log(np.exp(raw - top).sum(axis=0))
    return float(np.mean(lse - raw[y, np.arange(y.shape[0])]))


# Hessians of saturated probabilities are floored here: a leaf of exact zeros would divide
# by zero (its raw score then grows past the divergence check, which names learning_rate).
_TINY_HESSIAN = 1e-16


def _gradients_binary(y, raw):
    p = 1.0 / (1.0 + np.exp(-raw))
    return p - y, np.maximum(p * (1.0 - p), _TINY_HESSIAN)


def _gradients_multi(y, raw):
    p = _softmax(raw)
    h = np.maximum(p * (1.0 - p), _TINY_HESSIAN)
    p[y, np.arange(y.shape[0])] -= 1.0
    return p, h


def _gradients_squared(y, raw):
    return raw - y, np.ones_like(raw)


def _squared_loss(y, raw):
    return float(0.5 * np.mean((raw[0] - y) ** 2))


class _Boosting(Learner):
    """The boosting loop shared by the classifier and the regressor."""

    allow_nan = True  # NaN is a missing value, routed at every split
    state_schema = StateSchema(
        checks=[Trees()],
        n_features_in_=Int(low=1),
        n_iter_=Int(low=1),
        baseline_=Array(np.float64, shape=(1,)),
        feature_=Array(np.int64, shape=("n_nodes",), low=-1, below="n_features_in_"),
        threshold_=Array(np.float64, shape=("n_nodes",), finite=False),
        missing_left_=Array(np.uint8, shape=("n_nodes",), high=1),
        left_=Array(np.int64, shape=("n_nodes",), low=-1, below="n_nodes"),
        right_=Array(np.int64, shape=("n_nodes",), low=-1, below="n_nodes"),
        value_=Array(np.float64, shape=("n_nodes",)),
        # trees iteration by iteration, one per output (baseline_ entry) in each
        roots_=Array(np.int64, shape=(lambda v: v["n_iter_"] * v["baseline_"].shape[0],),
                     low=0, below="n_nodes"),
        validation_score_=Array(np.float64, shape=("n_scores",), optional=True),
    )

    def check_params(self):
        self._check_params()

    def _check_params(self):
        check_number("learning_rate", self.learning_rate, low=0.0, low_open=True)
        check_number("max_iter", self.max_iter, low=1, integer=True)
        check_number("max_leaf_nodes", self.max_leaf_nodes, low=2, integer=True)
        if self.max_depth is not None:
            check_number("max_depth", self.max_depth, low=1, integer=True)
        check_number("min_samples_leaf", self.min_samples_leaf, low=1, integer=True)
        check_number("l2_regularization", self.l2_regularization, low=0.0)
        check_number("max_bins", self.max_bins, low=2, high=255, integer=True)
        check_choice("early_stopping", self.early_stopping, ("auto", True, False))
        check_number("validation_fraction", self.validation_fraction, low=0.0, high=1.0,
                     low_open=True)
        check_number("n_iter_no_change", self.n_iter_no_change, low=1, integer=True)
        check_number("tol", self.tol, low=0.0)
        check_number("seed", self.seed, low=0, integer=True)

    def _boost(self, X, y, n_outputs, baseline, gradients, loss):
        """Fit the trees; sets the learned state. y: class codes or float targets."""
        rng = np.random.default_rng(self.seed)
        n = X.shape[0]
        early = self.early_stopping is True or (
            self.early_stopping == "auto" and n > AUTO_EARLY_STOPPING_ROWS)
        if early:
            order = rng.permutation(n)
            n_val = max(1, int(round(self.validation_fraction * n)))
            X_val, y_val = X[order[:n_val]], y[order[:n_val]]
            X, y = X[order[n_val:]], y[order[n_val:]]
            n = X.shape[0]
        thresholds, counts = bin_thresholds(X, self.max_bins, rng)
        Xb = np.empty((X.shape[1], n), np.uint8)
        kernels.bin_features(X, thresholds, counts, Xb)
        Xb_by_row = np.ascontiguousarray(Xb.T).T
        n_bins = counts + 1
        params = self.get_params()
        buffer = np.empty(n, np.int64)
        spare = []  # histogram arrays, reused by every tree
        raw = np.repeat(baseline[:, None], n, axis=1)
        trees = []
        if early:
            raw_val = np.repeat(baseline[None, :], X_val.shape[0], axis=0)
            scores = [-loss(y_val, raw_val.T)]
        start = loss(y, raw)
        for iteration in range(1, self.max_iter + 1):
            # float32, as scikit-learn and LightGBM keep them (sums stay float64): in
            # float64, 100 iterations on 60k Fashion-MNIST rows grew a leaf of value
            # -150 at iteration 51 (20 rows, 8 of them confidently wrong, hessian
            # 0.005) and test accuracy fell from 0.886 to 0.821; in float32 no leaf
            # passes 50. Half the bytes to gather, too.
            g, h = (values.astype(np.float32) for values in gradients(y, raw))
            grown = []
            for k in range(n_outputs):
                rows = np.arange(n, dtype=np.int64)
                tree, leaves = grow_tree(Xb, Xb_by_row, n_bins, thresholds, g[k], h[k],
                                         rows, buffer, params, spare)
                kernels.add_leaf_values(rows, *leaves, raw[k])
                grown.append(tree)
            trees.extend(grown)
            self._check_not_diverged(start, loss(y, raw), iteration)
            if early:
                kernels.add_tree_values(X_val, *concatenate_trees(grown), n_outputs, raw_val)
                scores.append(-loss(y_val, raw_val.T))
                if _should_stop(scores, self.n_iter_no_change, self.tol):
                    break
        (self.feature_, self.threshold_, self.missing_left_, self.left_, self.right_,
         self.value_, self.roots_) = concatenate_trees(trees)
        self.baseline_ = baseline
        self.n_iter_ = len(trees) // n_outputs
        self.n_features_in_ = X.shape[1]
        if early:
            self.validation_score_ = np.array(scores)

    def _check_not_diverged(self, start, current, iteration):
        """ParameterError (learning_rate) when the training loss, `start` for the constant
        prediction, has grown past DIVERGED_LOSS_RATIO times that or is no longer finite."""
        if not current <= DIVERGED_LOSS_RATIO * max(start, 1e-300):
            raise ParameterError(
                f"the training loss became {current:.4g} at iteration {iteration} (from "
                f"{start:.4g}); learning_rate={self.learning_rate} makes gradient boosting "
                "diverge: lower it"
            )

    def predict(self, X):
        return self.predict_from_tree_sums(self.raw_score(X))

    def raw_score(self, X):
        """Raw scores (rows, outputs): the baseline plus every tree's leaf value; log-odds
        for a classifier, one column for two classes."""
        self.check_fitted()
        X = check_features(X, self.n_features_in_)
        raw = np.repeat(self.baseline_[None, :], X.shape[0], axis=0)
        kernels.add_tree_values(X, self.feature_, self.threshold_, self.missing_left_,
                                self.left_, self.right_, self.value_, self.roots_,
                                self.baseline_.shape[0], raw)
        return raw


def _should_stop(scores, n_iter_no_change, tol):
    """scikit-learn's rule: none of the last n scores beats the one before them by tol."""
    if len(scores) <= n_iter_no_change:
        return False
    reference = scores[-n_iter_no_change - 1] + tol
    return not any(score > reference for score in scores[-n_iter_no_change:])


class GradientBoostingClassifier(_Boosting):
    """Histogram gradient boosting on the log loss: one tree per iteration for two classes,
    one per class (softmax) for more, as scikit-learn's HistGradientBoostingClassifier.

    early_stopping="auto" holds out validation_fraction of the rows and stops after
    n_iter_no_change iterations without a validation-loss gain above tol, when there are
    more than 10,000 rows.
    """

    name = "gradient-boosting"
    task = "classification"
    state_schema = _Boosting.state_schema.extend(
        classes_=Classes(),  # one output for two classes, else one per class
        baseline_=Array(np.float64, shape=(score_columns,)),
    )
    default_dataset = "digits"
    description = "histogram gradient boosting (LightGBM-style), leaf-wise trees, Numba"
    search_space = {
        "learning_rate": [0.05, 0.1, 0.2],
        "max_leaf_nodes": [15, 31, 63],
        "min_samples_leaf": [10, 20, 50],
        "l2_regularization": [0.0, 1.0],
    }

    def __init__(self, learning_rate=0.1, max_iter=100, max_leaf_nodes=31, max_depth=None,
                 min_samples_leaf=20, l2_regularization=0.0, max_bins=255,
                 early_stopping="auto", validation_fraction=0.1, n_iter_no_change=10,
                 tol=1e-7, seed=0):
        self.store_params(locals())

    def fit(self, X, y):
        self._check_params()
        X = check_features(X)
        self.classes_, codes = encode_labels(y, X.shape[0])
        prior = np.bincount(codes, minlength=len(self.classes_)) / codes.shape[0]
        if len(self.classes_) == 2:
            baseline = np.array([np.log(prior[1] / prior[0])])
            self._boost(X, codes.astype(np.float64), 1, baseline, _gradients_binary,
                        _log_loss_binary)
        else:
            self._boost(X, codes, len(self.classes_), np.log(prior), _gradients_multi,
                        _log_loss_multi)
        return self

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``."""
        return _probabilities(self.raw_score(X))

    def predict_from_tree_sums(self, sums):
        """The predictions of rows whose `raw_score` is `sums`."""
        return self.classes_[np.argmax(_probabilities(sums), axis=1)]


def _probabilities(raw):
    """Class probabilities from raw scores: the logistic of one column, else softmax."""
    if raw.shape[1] == 1:
        p = 1.0 / (1.0 + np.exp(-raw[:, 0]))
        return np.column_stack([1.0 - p, p])
    return _softmax(raw.T).T


class GradientBoostingRegressor(_Boosting):
    """Histogram gradient boosting on the squared error (HistGradientBoostingRegressor)."""

    name = "gradient-boosting-regressor"
    task = "regression"
    default_dataset = "quadratic"
    description = "histogram gradient boosting on the squared error, leaf-wise trees, Numba"
    search_space = GradientBoostingClassifier.search_space

    def __init__(self, learning_rate=0.1, max_iter=100, max_leaf_nodes=31, max_depth=None,
                 min_samples_leaf=20, l2_regularization=0.0, max_bins=255,
                 early_stopping="auto", validation_fraction=0.1, n_iter_no_change=10,
                 tol=1e-7, seed=0):
        self.store_params(locals())

    def fit(self, X, y):
        self._check_params()
        X = check_features(X)
        y = check_targets(y, X.shape[0])
        self._boost(X, y, 1, np.array([y.mean()]), _gradients_squared, _squared_loss)
        return self

    def predict_from_tree_sums(self, sums):
        """The predictions of rows whose `raw_score` is `sums`."""
        return sums[:, 0]
