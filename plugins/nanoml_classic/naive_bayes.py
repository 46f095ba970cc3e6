"""Naive Bayes classifiers: Gaussian and multinomial feature likelihoods."""

import numpy as np
import scipy.sparse
import scipy.special

from nanoml import Learner
from nanoml.errors import InputError
from nanoml.state_schema import Array, Classes, Float, Int, StateSchema
from nanoml.validation import check_array, check_number, check_sparse, encode_labels
from nanoml_classic.naive_bayes_kernels import (
    class_scatter,
    class_sums,
    class_sums_csr,
    gaussian_log_likelihood,
)


class _NaiveBayes(Learner):
    """Shared by the naive Bayes classifiers: predictions from per-class joint log-likelihoods.

    Subclasses define ``_log_likelihood(X)``: log p(x, class) up to a constant per row,
    shape (samples, classes).
    """

    task = "classification"
    state_schema = StateSchema(
        n_features_in_=Int(low=1),
        classes_=Classes(),
        class_count_=Array(np.float64, shape=("n_classes",), low=0),
    )

    def _class_sums(self, X, y):
        """(codes, per-class feature sums, per-class counts) of validated X; sets classes_."""
        self.classes_, codes = encode_labels(y, X.shape[0])
        self.n_features_in_ = X.shape[1]
        sums = np.zeros((self.classes_.shape[0], X.shape[1]))
        counts = np.zeros(self.classes_.shape[0])
        if scipy.sparse.issparse(X):
            class_sums_csr(X.indptr, X.indices, X.data, codes, sums, counts)
        else:
            class_sums(X, codes, sums, counts)
        self.class_count_ = counts
        return codes, sums, counts

    def predict(self, X):
        best = self._log_likelihood(X).argmax(axis=1)
        return self.classes_[best]

    def predict_proba(self, X):
        """Posterior class probabilities, shape (samples, classes), in ``classes_`` order."""
        return scipy.special.softmax(self._log_likelihood(X), axis=1)


class GaussianNB(_NaiveBayes):
    """Naive Bayes with one Gaussian per feature and class (scikit-learn's GaussianNB).

    Each variance gets ``var_smoothing`` times the largest feature variance added, which
    keeps constant features from dividing by zero. Priors are the class frequencies.
    """

    name = "gaussian-nb"
    default_dataset = "iris"
    description = "Gaussian naive Bayes: per-class feature means and variances"
    search_space = {"var_smoothing": [1e-11, 1e-9, 1e-7, 1e-5]}
    state_schema = _NaiveBayes.state_schema.extend(
        epsilon_=Float(low=0),
        theta_=Array(np.float64, shape=("n_classes", "n_features_in_")),
        var_=Array(np.float64, shape=("n_classes", "n_features_in_"), above=0),
        class_prior_=Array(np.float64, shape=("n_classes",), low=0, high=1),
    )

    def __init__(self, var_smoothing=1e-9):
        self.var_smoothing = var_smoothing

    def check_params(self):
        check_number("var_smoothing", self.var_smoothing, low=0.0)

    def fit(self, X, y):
        self.check_params()
        X = check_array(X)
        codes, sums, counts = self._class_sums(X, y)
        means = sums / counts[:, None]
        scatter = np.zeros_like(means)
        class_scatter(X, codes, means, scatter)
        # total variance = within-class scatter + between-class spread of the means
        overall = counts @ means / X.shape[0]
        total = (scatter.sum(axis=0) + counts @ (means - overall) ** 2) / X.shape[0]
        self.epsilon_ = float(self.var_smoothing * total.max())
        self.theta_ = means
        self.var_ = scatter / counts[:, None] + self.epsilon_
        self.class_prior_ = counts / X.shape[0]
        return self

    def _log_likelihood(self, X):
        self.check_fitted()
        X = check_array(X, n_features=self.n_features_in_)
        offset = np.log(self.class_prior_) - 0.5 * np.log(2.0 * np.pi * self.var_).sum(axis=1)
        out = np.empty((X.shape[0], self.theta_.shape[0]))
        gaussian_log_likelihood(X, self.theta_, 1.0 / self.var_, offset, out)
        return out


class MultinomialNB(_NaiveBayes):
    """Naive Bayes over counts (scikit-learn's MultinomialNB): word counts, pixel intensities.

    Each class's feature distribution is its summed feature values plus ``alpha``
    (additive smoothing), normalised; priors are the class frequencies. Features must
    be non-negative. X may be a scipy.sparse matrix (word counts): it is never densified.
    """

    name = "multinomial-nb"
    default_dataset = "digits"
    description = "multinomial naive Bayes over non-negative counts, additive smoothing"
    search_space = {"alpha": [0.01, 0.1, 0.5, 1.0, 2.0]}
    accepts_sparse = True
    state_schema = _NaiveBayes.state_schema.extend(
        feature_count_=Array(np.float64, shape=("n_classes", "n_features_in_"), low=0),
        feature_log_prob_=Array(np.float64, shape=("n_classes", "n_features_in_"), high=0),
        class_log_prior_=Array(np.float64, shape=("n_classes",), high=0),
    )

    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def check_params(self):
        check_number("alpha", self.alpha, low=0.0, low_open=True)

    def fit(self, X, y):
        self.check_params()
        X = _check_rows(X)
        values = X.data if scipy.sparse.issparse(X) else X
        lowest = values.min(initial=0.0)
        if lowest < 0.0:
            where = _position(X, values.argmin())
            raise InputError(
                f"X must be non-negative for multinomial-nb (counts or frequencies), got "
                f"{lowest} at index {where}; use gaussian-nb for "
                "real-valued features"
            )
        _, sums, counts = self._class_sums(X, y)
        self.feature_count_ = sums
        smoothed = sums + self.alpha
        self.feature_log_prob_ = np.log(smoothed) - np.log(smoothed.sum(axis=1, keepdims=True))
        self.class_log_prior_ = np.log(counts) - np.log(X.shape[0])
        return self

    def _log_likelihood(self, X):
        self.check_fitted()
        X = _check_rows(X, n_features=self.n_features_in_)
        return X @ self.feature_log_prob_.T + self.class_log_prior_


def _check_rows(X, n_features=None):
    """Validated X: CSR if it came sparse, else a dense array."""
    check = check_sparse if scipy.sparse.issparse(X) else check_array
    return check(X, n_features=n_features)


def _position(X, flat):
    """(row, column) of the `flat`-th stored value of X (dense: of its flat index)."""
    if not scipy.sparse.issparse(X):
        return tuple(int(i) for i in np.unravel_index(flat, X.shape))
    row = np.searchsorted(X.indptr, flat, side="right") - 1
    return int(row), int(X.indices[flat])
