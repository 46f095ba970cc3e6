"""Exact SHAP values where the model allows: TreeSHAP for trees and forests, and the closed
form of a linear model. Both sum, for each row, to the prediction minus the expected value.

As Captum's methods: build the explainer from the model (and the background rows the
expectation is over), then ``attribute(X)`` -> attributions of shape (rows, features,
outputs), with ``return_convergence_delta=True`` also the additivity error per row and
output, ``Σ_j φ_j + E[f] - f(x)``.
"""

import numpy as np

from nanoml.errors import ParameterError
from nanoml.explain import leaf_table_kernels as tables
from nanoml.explain import treeshap_kernels as kernels
from nanoml.validation import check_array

TREE_ARRAYS = ("feature_", "threshold_", "left_", "right_", "value_", "roots_")
# Leaves whose paths split on more unique features than this are explained by Algorithm 2:
# their tables (2^d entries) would cost more than they save.
TABLE_MAX_FEATURES = 16
# Coalition-table entries built at once (32 MiB); a larger forest is explained in parts.
TABLE_ENTRIES = 1 << 22


def is_tree_model(model):
    """Whether `model` stores fitted trees as nanoml's flat node arrays."""
    return all(hasattr(model, name) for name in TREE_ARRAYS)


def is_linear_model(model):
    """Whether `model`'s output (prediction or decision scores) is ``X @ coef_.T + intercept_``."""
    return (model.task in ("classification", "regression") and hasattr(model, "coef_")
            and hasattr(model, "intercept_") and np.ndim(model.coef_) in (1, 2))


def is_boosted(model):
    """Whether `model` adds its trees' values to a baseline (gradient boosting) rather than
    averaging them (trees and forests)."""
    return hasattr(model, "baseline_") and hasattr(model, "raw_score")


def tree_output(model, X):
    """What TreeSHAP explains: a boosted model's raw scores (log-odds for a classifier),
    else class probabilities (rows x classes), or the prediction as one column."""
    if is_boosted(model):
        return np.asarray(model.raw_score(X), np.float64)
    if model.task == "classification":
        return np.asarray(model.predict_proba(X), np.float64)
    return np.asarray(model.predict(X), np.float64).reshape(-1, 1)


def node_values(model):
    """(values: nodes x outputs, scale, offset) with output = offset + scale * the sum of
    the trees' leaf values: a forest averages its trees; a boosted model adds each tree's
    one value to the output it boosts (trees listed output by output within an iteration)
    and to its baseline."""
    if not is_boosted(model):
        return model.value_, 1.0 / model.roots_.shape[0], 0.0
    n_outputs = model.baseline_.shape[0]
    tree = np.searchsorted(model.roots_, np.arange(model.value_.shape[0]), side="right") - 1
    values = np.zeros((model.value_.shape[0], n_outputs))
    values[np.arange(len(tree)), tree % n_outputs] = model.value_
    return values, 1.0, np.asarray(model.baseline_, np.float64)


class TreeSHAP:
    """Exact (path-dependent) TreeSHAP of a nanoml decision tree, random forest or
    gradient-boosted model (of its raw scores).

    A feature left out of a coalition follows both branches of its splits, weighted by the
    share of `background` rows (usually the training rows) that go each way; the expected
    value is the mean output over those shares. Polynomial time: O(leaves · depth²) per
    tree and row (Lundberg et al. 2020).
    """

    def __init__(self, model, background):
        if not is_tree_model(model):
            raise ParameterError(f"TreeSHAP needs a nanoml tree or forest, got {model!r}")
        model.check_fitted()
        self.model = model
        X = check_array(background, name="background", n_features=model.n_features_in_)
        n_nodes = model.feature_.shape[0]
        self.cover = np.empty(n_nodes)
        kernels.node_cover(X, model.feature_, model.threshold_, model.left_, model.right_,
                           model.roots_, np.empty(n_nodes), self.cover)
        depth = np.empty(n_nodes, np.int64)
        self.max_depth = kernels.tree_depths(model.feature_, model.left_, model.right_,
                                             model.roots_, depth)
        leaves = model.feature_ == kernels.LEAF
        self.values, self.scale, offset = node_values(model)
        self.expected_value = offset + self.scale * (self.cover[leaves] @ self.values[leaves])
        self.leaves = np.flatnonzero(leaves)
        width = max(self.max_depth, 1)
        self.paths = (np.empty((len(self.leaves), width), np.int64),
                      np.empty((len(self.leaves), width)), np.empty((len(self.leaves), width)),
                      np.empty((len(self.leaves), width)), np.empty(len(self.leaves), np.int64))
        tables.leaf_paths(model.feature_, model.threshold_, model.left_, model.right_,
                          self.cover, self.leaves, *self.paths)

    def tabulate(self, n_rows):
        """Whether explaining `n_rows` rows is cheaper with the coalition tables."""
        size = self.paths[-1]
        if size.max(initial=0) > TABLE_MAX_FEATURES:
            return False
        return float(np.sum((2.0 ** size) * (size + 1))) <= n_rows * float(np.sum(size * size))

    def attribute(self, X, return_convergence_delta=False):
        """SHAP values (rows, features, outputs); with the additivity errors when asked."""
        m = self.model
        X = check_array(X, n_features=m.n_features_in_)
        phi = np.zeros((X.shape[0], X.shape[1], self.values.shape[1]))
        if self.tabulate(X.shape[0]):
            self._tabulated(X, phi)
        else:
            kernels.tree_shap(X, m.feature_, m.threshold_, m.left_, m.right_, self.values,
                              self.cover, m.roots_, self.max_depth, phi)
        phi *= self.scale
        if not return_convergence_delta:
            return phi
        return phi, phi.sum(axis=1) + self.expected_value - tree_output(m, X)

    def _tabulated(self, X, phi):
        """Add every leaf's share to phi, leaves taken in parts of at most TABLE_ENTRIES
        table entries."""
        entries = 2 ** self.paths[-1]
        ends = np.cumsum(entries)
        start = 0
        while start < len(entries):
            stop = max(int(np.searchsorted(ends, ends[start] - entries[start] + TABLE_ENTRIES,
                                           side="right")), start + 1)
            part = [array[start:stop] for array in self.paths]
            offset = np.concatenate(([0], np.cumsum(entries[start:stop])[:-1]))
            table = np.empty(int(entries[start:stop].sum()))
            tables.coalition_tables(part[3], part[4], offset, table)
            tables.tree_shap_tabulated(X, self.values[self.leaves[start:stop]], *part,
                                       offset, table, phi)
            start = stop


class LinearSHAP:
    """Exact SHAP values of a linear model with independent features: φ_j = w_j (x_j - E x_j).

    A classifier's explained output is its decision scores (log-odds for logistic
    regression), which are linear in X; its probabilities are not.
    """

    def __init__(self, model, background):
        if not is_linear_model(model):
            raise ParameterError(f"linear SHAP needs a linear model (coef_, intercept_), "
                                 f"got {model!r}")
        model.check_fitted()
        self.model = model
        self.coef = np.atleast_2d(np.asarray(model.coef_, np.float64))  # outputs x features
        X = check_array(background, name="background", n_features=self.coef.shape[1])
        self.mean = X.mean(axis=0)
        self.expected_value = self.coef @ self.mean + np.asarray(model.intercept_, np.float64)

    def output(self, X):
        """The model's own explained output, rows x outputs."""
        if self.model.task == "classification":
            return np.asarray(self.model.decision_function(X), np.float64).reshape(len(X), -1)
        return np.asarray(self.model.predict(X), np.float64).reshape(-1, 1)

    def attribute(self, X, return_convergence_delta=False):
        """SHAP values (rows, features, outputs); with the additivity errors when asked."""
        X = check_array(X, n_features=self.coef.shape[1])
        phi = (X - self.mean)[:, :, None] * self.coef.T[None]
        if not return_convergence_delta:
            return phi
        return phi, phi.sum(axis=1) + self.expected_value - self.output(X)
