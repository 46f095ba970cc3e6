"""Exact SHAP values where the model allows: TreeSHAP for trees and forests, and the closed
form of a linear model. Both sum, for each row, to the prediction minus the expected value.

As Captum's methods: build the explainer from the model (and the background rows the
expectation is over), then ``attribute(X)`` -> attributions of shape (rows, features,
outputs), with ``return_convergence_delta=True`` also the additivity error per row and
output, ``Σ_j φ_j + E[f] - f(x)``.
"""

import numpy as np

from nanoml.errors import ParameterError
from nanoml.explain import treeshap_kernels as kernels
from nanoml.validation import check_array

TREE_ARRAYS = ("feature_", "threshold_", "left_", "right_", "value_", "roots_")


def is_tree_model(model):
    """Whether `model` stores fitted trees as nanoml's flat node arrays."""
    return all(hasattr(model, name) for name in TREE_ARRAYS)


def is_linear_model(model):
    """Whether `model`'s output (prediction or decision scores) is ``X @ coef_.T + intercept_``."""
    return (model.task in ("classification", "regression") and hasattr(model, "coef_")
            and hasattr(model, "intercept_") and np.ndim(model.coef_) in (1, 2))


def tree_output(model, X):
    """What TreeSHAP explains: class probabilities (rows x classes), or the prediction as
    one column."""
    if model.task == "classification":
        return np.asarray(model.predict_proba(X), np.float64)
    return np.asarray(model.predict(X), np.float64).reshape(-1, 1)


class TreeSHAP:
    """Exact (path-dependent) TreeSHAP of a nanoml decision tree or random forest.

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
        n_trees = model.roots_.shape[0]
        self.expected_value = (self.cover[leaves] @ model.value_[leaves]) / n_trees

    def attribute(self, X, return_convergence_delta=False):
        """SHAP values (rows, features, outputs); with the additivity errors when asked."""
        m = self.model
        X = check_array(X, n_features=m.n_features_in_)
        phi = np.zeros((X.shape[0], X.shape[1], m.value_.shape[1]))
        kernels.tree_shap(X, m.feature_, m.threshold_, m.left_, m.right_, m.value_,
                          self.cover, m.roots_, self.max_depth, phi)
        phi /= m.roots_.shape[0]
        if not return_convergence_delta:
            return phi
        return phi, phi.sum(axis=1) + self.expected_value - tree_output(m, X)


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
