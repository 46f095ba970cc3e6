"""CART decision trees for classification and regression, stored as flat node arrays.

The classes here are also the common ground of the random forests (forest.py): a fitted
model of either kind is one or more trees concatenated into ``feature_``, ``threshold_``,
``left_``, ``right_``, ``value_`` with the first node of each tree in ``roots_``, so it
saves as plain arrays and predicts with one kernel.
"""

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from nanoml import Learner
from nanoml.errors import ParameterError
from nanoml.state_schema import Array, Classes, Int, StateSchema, Trees
from nanoml.validation import (
    check_array,
    check_choice,
    check_number,
    check_targets,
    encode_labels,
)
from nanoml_classic import tree_kernels

CRITERIA = {"gini": tree_kernels.GINI, "entropy": tree_kernels.ENTROPY}
# Features of more distinct values than this are carried presorted (see rank_features),
# while they number at most CARRY_RATIO times the features a split draws.
CARRY_DISTINCT = 256
CARRY_RATIO = 16
RANK_ON_THREADS = 1_000_000  # values in X from which ranking is shared among threads


def resolve_max_features(max_features, n_features):
    """How many features each split draws: None all, 'sqrt', 'log2', a count or a fraction."""
    if max_features is None:
        return n_features
    if max_features == "sqrt":
        return max(1, int(np.sqrt(n_features)))
    if max_features == "log2":
        return max(1, int(np.log2(n_features)))
    if isinstance(max_features, float):
        return max(1, int(max_features * n_features))
    if max_features > n_features:
        raise ParameterError(
            f"max_features={max_features} exceeds the {n_features} features of X; "
            f"use at most {n_features}"
        )
    return int(max_features)


def rank_features(X, max_features, pool, threads):
    """(ranks, presorted, carried): what `tree_kernels.build_tree` reads, shared by all trees.

    ranks[f, i] is X[i, f]'s rank among the distinct values of feature f. Features of
    many distinct values, which a node could only sort by comparisons, are carried
    presorted down the tree instead (carried[f] their row in presorted, else -1), unless
    there are so many of them that splitting their orders at every node costs more than
    sorting the few each node draws. The features are ranked in `threads` chunks on
    `pool` (NumPy's argsort and the kernel both release the GIL), or in one go here
    without a pool.
    """
    Xt = np.ascontiguousarray(X.T)
    ranks = np.empty(Xt.shape, np.int32)
    n_distinct = np.empty(Xt.shape[0], np.int64)

    def rank(rows):
        order = np.argsort(Xt[rows], axis=1)
        tree_kernels.rank_columns(Xt[rows], order, ranks[rows], n_distinct[rows])
        return order[n_distinct[rows] > CARRY_DISTINCT]

    bounds = np.linspace(0, Xt.shape[0], (threads if pool else 1) + 1).astype(int)
    chunks = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    presorted = np.concatenate(list((pool.map if pool else map)(rank, chunks)))
    ranks = ranks.astype(_rank_dtype(int(n_distinct.max())))
    many = np.flatnonzero(n_distinct > CARRY_DISTINCT)
    carried = np.full(Xt.shape[0], -1, np.int64)
    if len(many) <= CARRY_RATIO * max_features:
        carried[many] = np.arange(len(many))
    else:
        presorted = presorted[:0]
    return ranks, presorted, carried


def _rank_dtype(n_distinct):
    """The narrowest type that holds ranks below `n_distinct`: nodes gather their samples'
    ranks at scattered positions, so 1-byte ranks (pixels, categories) keep four times
    as many of them in cache as 4-byte ones."""
    for dtype in (np.uint8, np.uint16):
        if n_distinct <= np.iinfo(dtype).max + 1:
            return dtype
    return np.int32


def grow_trees(X, y, n_outputs, criterion, params, n_trees, bootstrap):
    """Grow `n_trees` trees; returns (feature, threshold, left, right, value, roots).

    Every tree draws its bootstrap sample (when `bootstrap`) and its feature choices from a
    seed of its own, derived from ``params["seed"]``, so the result does not depend on how
    many threads grew it. Trees are grown on a thread pool: the kernel releases the GIL.
    """
    n, d = X.shape
    max_features = resolve_max_features(params["max_features"], d)
    max_depth = -1 if params["max_depth"] is None else int(params["max_depth"])
    seeds = np.random.default_rng(params["seed"]).integers(0, 2**63 - 1, size=n_trees)

    def grow(seed):
        rng = np.random.default_rng(seed)
        if bootstrap:
            weight = np.bincount(rng.integers(0, n, size=n), minlength=n)
        else:
            weight = np.ones(n, np.int64)
        return tree_kernels.build_tree(
            X, ranks, presorted, carried, y, weight, n_outputs, criterion, max_depth,
            int(params["min_samples_split"]), int(params["min_samples_leaf"]), max_features,
            int(rng.integers(1, 2**63 - 1)),
        )

    threads = numba.get_num_threads()
    with ThreadPoolExecutor(max_workers=threads) as pool:  # starts threads only when used
        big = X.size >= RANK_ON_THREADS
        ranks, presorted, carried = rank_features(X, max_features, pool if big else None, threads)
        trees = list(pool.map(grow, seeds)) if n_trees > 1 else [grow(seeds[0])]
    sizes = np.array([tree[0].shape[0] for tree in trees])
    roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)

    def children(column):  # child ids become absolute once the trees are concatenated
        return np.concatenate([
            np.where(tree[column] == tree_kernels.LEAF, tree_kernels.LEAF, tree[column] + root)
            for tree, root in zip(trees, roots, strict=True)
        ])

    feature = np.concatenate([tree[0] for tree in trees])
    threshold = np.concatenate([tree[1] for tree in trees])
    value = np.concatenate([tree[4] for tree in trees])
    return feature, threshold, children(2), children(3), value, roots


class _Trees(Learner):
    """Fit grows trees into flat arrays; predictions average the leaves the samples reach."""

    state_schema = StateSchema(
        checks=[Trees()],
        n_features_in_=Int(low=1),
        feature_=Array(np.int64, shape=("n_nodes",), low=-1, below="n_features_in_"),
        threshold_=Array(np.float64, shape=("n_nodes",)),
        left_=Array(np.int64, shape=("n_nodes",), low=-1, below="n_nodes"),
        right_=Array(np.int64, shape=("n_nodes",), low=-1, below="n_nodes"),
        value_=Array(np.float64, shape=("n_nodes", 1)),
        roots_=Array(np.int64, shape=(lambda v: v.get("n_estimators", 1),), low=0,
                     below="n_nodes"),
    )

    def check_params(self):
        self._check_params()

    def _grow_settings(self):
        """(number of trees, whether each draws a bootstrap sample)."""
        return 1, False

    def _check_params(self):
        if self.max_depth is not None:
            check_number("max_depth", self.max_depth, low=1, integer=True)
        check_number("min_samples_split", self.min_samples_split, low=2, integer=True)
        check_number("min_samples_leaf", self.min_samples_leaf, low=1, integer=True)
        mf = self.max_features
        if mf is None or isinstance(mf, str):
            check_choice("max_features", mf, (None, "sqrt", "log2"))
        elif isinstance(mf, float):
            check_number("max_features", mf, low=0.0, high=1.0, low_open=True)
        else:
            check_number("max_features", mf, low=1, integer=True)
        check_number("seed", self.seed, low=0, integer=True)

    def _grow(self, X, y, n_outputs, criterion):
        n_trees, bootstrap = self._grow_settings()
        arrays = grow_trees(X, y, n_outputs, criterion, self.get_params(), n_trees, bootstrap)
        self.feature_, self.threshold_, self.left_, self.right_, self.value_, self.roots_ = arrays
        self.n_features_in_ = X.shape[1]

    def tree_sums(self, X):
        """Per row and output, the sum over the trees of the leaf value each gives X[row]."""
        self.check_fitted()
        X = check_array(X, n_features=self.n_features_in_)
        out = np.zeros((X.shape[0], self.value_.shape[1]))
        tree_kernels.sum_tree_values(
            X, self.feature_, self.threshold_, self.left_, self.right_, self.value_,
            self.roots_, out,
        )
        return out

    def predict(self, X):
        return self.predict_from_tree_sums(self.tree_sums(X))


class _TreeClassifier(_Trees):
    task = "classification"
    state_schema = _Trees.state_schema.extend(
        classes_=Classes(),
        value_=Array(np.float64, shape=("n_nodes", "n_classes")),
    )

    def _check_params(self):
        check_choice("criterion", self.criterion, tuple(CRITERIA))
        super()._check_params()

    def fit(self, X, y):
        self._check_params()
        X = check_array(X)
        self.classes_, codes = encode_labels(y, X.shape[0])
        self._grow(X, codes.astype(np.float64), len(self.classes_), CRITERIA[self.criterion])
        return self

    def predict_proba(self, X):
        """Class probabilities (columns in the order of ``classes_``): leaf class shares."""
        return self.tree_sums(X) / self.roots_.shape[0]

    def predict_from_tree_sums(self, sums):
        """The predictions of rows whose `tree_sums` are `sums`."""
        return self.classes_[np.argmax(sums / self.roots_.shape[0], axis=1)]


class _TreeRegressor(_Trees):
    task = "regression"

    def fit(self, X, y):
        self._check_params()
        X = check_array(X)
        y = check_targets(y, X.shape[0])
        self._grow(X, y, 1, tree_kernels.SQUARED_ERROR)
        return self

    def predict_from_tree_sums(self, sums):
        """The predictions of rows whose `tree_sums` are `sums`."""
        return sums[:, 0] / self.roots_.shape[0]


class DecisionTreeClassifier(_TreeClassifier):
    """CART classification tree: binary splits chosen greedily by Gini or entropy decrease.

    With max_features=None it grows the same tree as scikit-learn's DecisionTreeClassifier
    (same stopping rules, thresholds halfway between neighbouring values), up to which of
    two equally good splits is taken.
    """

    name = "decision-tree"
    default_dataset = "breast-cancer"
    description = "CART classification tree (Gini or entropy), Numba ranked-column builder"
    search_space = {
        "criterion": ["gini", "entropy"],
        "max_depth": [None, 3, 5, 10],
        "min_samples_leaf": [1, 2, 5, 10],
    }

    def __init__(self, criterion="gini", max_depth=None, min_samples_split=2,
                 min_samples_leaf=1, max_features=None, seed=0):
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.seed = seed


class DecisionTreeRegressor(_TreeRegressor):
    """CART regression tree: binary splits chosen greedily by squared-error decrease."""

    name = "decision-tree-regressor"
    default_dataset = "quadratic"
    description = "CART regression tree (squared error), Numba ranked-column builder"
    search_space = {"max_depth": [None, 3, 5, 10], "min_samples_leaf": [1, 2, 5, 10]}

    def __init__(self, max_depth=None, min_samples_split=2, min_samples_leaf=1,
                 max_features=None, seed=0):
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.seed = seed
