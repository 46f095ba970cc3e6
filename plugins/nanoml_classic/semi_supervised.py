"""Label spreading (Zhou et al., 2004): semi-supervised classification over a similarity graph."""

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph

from nanoml import Learner
from nanoml.errors import InputError, ParameterError
from nanoml.state_schema import LABELS, Array, Classes, Int, Require, StateSchema
from nanoml.validation import (
    check_array,
    check_choice,
    check_number,
    check_targets,
    encode_labels,
    unit_scale,
)
from nanoml_classic.distances import squared_distances
from nanoml_classic.neighbors import nearest
from nanoml_classic.svm import kernel_matrix


class LabelSpreading(Learner):
    """Spread the known labels of a few rows to every row along a similarity graph.

    In y, -1 (or "-1" among string labels) marks an unlabelled row. The graph is the
    k-nearest-neighbour connectivity of the rows (`kernel="knn"`) or the dense RBF
    similarity exp(-gamma·||xᵢ - xⱼ||²); with S its symmetrically normalised form,
    the label distributions iterate F ← alpha·S·F + (1 - alpha)·Y, as scikit-learn's
    LabelSpreading does. New rows are labelled from their neighbours' (or RBF-weighted)
    distributions.

    `labelled_fraction` hides labels before fitting: of the labelled rows, a stratified
    random share (at least one per class, drawn from `seed`) keeps its label and the rest
    become unlabelled. It defaults to 0.1 so that `nanoml run label-spreading` on a fully
    labelled dataset shows semi-supervised learning; set it to 1.0 to use y as given.
    """

    name = "label-spreading"
    task = "classification"
    default_dataset = "digits"
    description = "semi-supervised: spreads a few labels over a kNN or RBF graph (Zhou et al.)"
    search_space = {"alpha": [0.05, 0.1, 0.2, 0.5, 0.8], "n_neighbors": [3, 5, 7, 10, 15]}

    def __init__(
        self,
        kernel="knn",
        n_neighbors=7,
        gamma=20.0,
        alpha=0.2,
        max_iter=30,
        tol=1e-3,
        labelled_fraction=0.1,
        seed=0,
    ):
        self.kernel = kernel
        self.n_neighbors = n_neighbors
        self.gamma = gamma
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.labelled_fraction = labelled_fraction
        self.seed = seed

    state_schema = StateSchema(
        checks=[Require(lambda v: v["kernel"] != "knn" or v["n_neighbors"] <= v["n_samples"],
                        "X_fit_", "holds fewer rows than n_neighbors")],
        n_features_in_=Int(low=1),
        n_iter_=Int(low=0),
        classes_=Classes(),
        labelled_=Array("b", shape=("n_samples",)),
        X_fit_=Array(np.float64, shape=("n_samples", "n_features_in_")),
        label_distributions_=Array(np.float64, shape=("n_samples", "n_classes"), low=0),
        transduction_=Array(LABELS, shape=("n_samples",)),
    )

    def check_params(self):
        self._check_params(None)

    def _check_params(self, n_samples):
        check_choice("kernel", self.kernel, ("knn", "rbf"))
        check_number("n_neighbors", self.n_neighbors, low=1, integer=True)
        check_number("gamma", self.gamma, low=0.0, low_open=True)
        check_number("alpha", self.alpha, low=0.0, high=1.0, low_open=True)
        if self.alpha == 1.0:
            raise ParameterError("alpha must be below 1.0 (1.0 would forget the known labels)")
        check_number("max_iter", self.max_iter, low=1, integer=True)
        check_number("tol", self.tol, low=0.0)
        check_number("labelled_fraction", self.labelled_fraction, low=0.0, high=1.0, low_open=True)
        check_number("seed", self.seed, low=0, integer=True)
        if self.kernel == "knn" and n_samples is not None and self.n_neighbors > n_samples:
            raise InputError(
                f"n_neighbors={self.n_neighbors} exceeds the {n_samples} samples in X"
            )

    def fit(self, X, y):
        X = check_array(X)
        n = X.shape[0]
        y = check_targets(y, n, numeric=False)
        self._check_params(n)
        labelled = ~_unlabelled(y)
        if not labelled.any():
            raise InputError("y has no labelled sample: every entry is -1 (unlabelled)")
        self.classes_, codes = encode_labels(y[labelled], int(labelled.sum()))
        known = np.full(n, -1, dtype=np.int64)
        known[labelled] = codes
        known = self._hide_labels(known, np.random.default_rng(self.seed))
        self.labelled_ = known >= 0  # the training rows whose labels were used

        self.X_fit_ = X
        graph = self._graph(X)
        seeds = np.zeros((n, self.classes_.shape[0]))
        seeds[self.labelled_, known[self.labelled_]] = 1.0
        static = (1.0 - self.alpha) * seeds
        spread, previous = seeds, np.zeros_like(seeds)
        steps = 0
        while steps < self.max_iter and np.abs(spread - previous).sum() >= self.tol:
            previous = spread
            spread = self.alpha * (graph @ spread) + static
            steps += 1
        self.n_iter_ = steps
        self.label_distributions_ = _normalise_rows(spread)
        self.transduction_ = self.classes_[np.argmax(self.label_distributions_, axis=1)]
        self.n_features_in_ = X.shape[1]
        return self

    def _hide_labels(self, known, rng):
        """Keep a stratified `labelled_fraction` of the known labels (>= 1 per class)."""
        if self.labelled_fraction == 1.0:
            return known
        kept = np.full_like(known, -1)
        for code in range(self.classes_.shape[0]):
            rows = np.flatnonzero(known == code)
            keep = max(1, int(round(self.labelled_fraction * rows.size)))
            chosen = rng.choice(rows, size=keep, replace=False)
            kept[chosen] = code
        return kept

    def _graph(self, X):
        """S = D^-1/2 W D^-1/2 with a zero diagonal (scikit-learn's normalisation)."""
        if self.kernel == "knn":
            neighbours = self._neighbours(X)
            n, k = neighbours.shape
            weights = scipy.sparse.csr_matrix(
                (np.ones(n * k), neighbours.ravel(), np.arange(0, n * k + 1, k)), shape=(n, n)
            )
            graph = -scipy.sparse.csgraph.laplacian(weights, normed=True)
            graph = graph.tocsr()
            graph.setdiag(0.0)
            graph.eliminate_zeros()
            return graph
        weights = kernel_matrix(X, X, "rbf", self.gamma)
        graph = -scipy.sparse.csgraph.laplacian(weights, normed=True)
        np.fill_diagonal(graph, 0.0)
        return graph

    def _neighbours(self, Q):
        """Indices of the n_neighbors fitted rows nearest each row of Q (a row of the fitted
        data counts as its own neighbour, as in scikit-learn)."""
        scale = unit_scale(Q, self.X_fit_)
        return nearest(Q / scale, self.X_fit_ / scale, self.n_neighbors)[1]

    def predict_proba(self, X):
        """Class probabilities (columns in the order of `classes_`) for each row of X."""
        self.check_fitted()
        X = check_array(X, n_features=self.n_features_in_)
        if self.kernel == "knn":
            scores = self.label_distributions_[self._neighbours(X)].sum(axis=1)
        else:
            dist = squared_distances(X, self.X_fit_)
            # Each row is normalised below, so shifting its exponents by their minimum
            # changes nothing but keeps far-away rows from underflowing to all zeros.
            dist -= dist.min(axis=1, keepdims=True)
            scores = np.exp(-self.gamma * dist) @ self.label_distributions_
        return _normalise_rows(scores)

    def predict(self, X):
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


def _unlabelled(y):
    """Rows whose label is -1 (or the string "-1")."""
    if y.dtype.kind in "iuf":
        return y == -1
    return y.astype(str) == "-1"


def _normalise_rows(scores):
    """Rows scaled to sum to one; an all-zero row (no labelled row reached) stays zero."""
    totals = scores.sum(axis=1, keepdims=True)
    totals[totals == 0.0] = 1.0
    return scores / totals
