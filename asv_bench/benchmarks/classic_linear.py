"""Fit time of the linear models and naive Bayes, nanoml beside scikit-learn on the same data."""

import numpy as np

from .peers import _FitPair, _sklearn


def _regression(n, d=20):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    return X, X @ rng.standard_normal(d) + 0.5 * rng.standard_normal(n)


def _classes(n, d=50, k=10, spread=0.3):
    """Overlapping Gaussian classes: the solvers need their usual number of iterations."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, k, n)
    return spread * rng.standard_normal((k, d))[y] + rng.standard_normal((n, d)), y


def _pixels(n, d=784, k=10):
    """Fashion-MNIST-shaped integer intensities 0..255 whose mean depends on the class."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, k, n)
    level = 0.5 + 0.05 * rng.uniform(0.0, 1.0, (k, d))[y]
    return np.floor(255 * np.clip(level + 0.3 * rng.standard_normal((n, d)), 0, 1)), y


class LinearRegressionFit(_FitPair):
    params = [[1_000, 100_000, 1_000_000]]

    def setup(self, rows):
        from nanoml_classic.linear import LinearRegression

        self.theirs = _sklearn("linear_model").LinearRegression()
        self.X, self.y = _regression(rows)
        self.ours = LinearRegression()
        self._warm()


class RidgeFit(_FitPair):
    params = [[1_000, 100_000, 1_000_000]]

    def setup(self, rows):
        from nanoml_classic.linear import Ridge

        self.theirs = _sklearn("linear_model").Ridge(alpha=1.0)
        self.X, self.y = _regression(rows)
        self.ours = Ridge(alpha=1.0)
        self._warm()


class LassoFit(_FitPair):
    params = [[1_000, 100_000, 1_000_000]]

    def setup(self, rows):
        from nanoml_classic.linear import Lasso

        self.theirs = _sklearn("linear_model").Lasso(alpha=0.01)
        self.X, self.y = _regression(rows)
        self.ours = Lasso(alpha=0.01)
        self._warm()


class ElasticNetFit(_FitPair):
    params = [[1_000, 100_000, 1_000_000]]

    def setup(self, rows):
        from nanoml_classic.linear import ElasticNet

        self.theirs = _sklearn("linear_model").ElasticNet(alpha=0.01, l1_ratio=0.5)
        self.X, self.y = _regression(rows)
        self.ours = ElasticNet(alpha=0.01, l1_ratio=0.5)
        self._warm()


class LogisticRegressionFit(_FitPair):
    """Ten classes, 50 features, C=1, lbfgs with at most 100 iterations on both sides."""

    params = [[1_000, 100_000]]

    def setup(self, rows):
        from nanoml_classic.logistic import LogisticRegression

        self.theirs = _sklearn("linear_model").LogisticRegression(C=1.0, max_iter=100)
        self.X, self.y = _classes(rows)
        self.ours = LogisticRegression(C=1.0, max_iter=100)
        self._warm()


class LinearSVMFit(_FitPair):
    """Two classes, 50 features; scikit-learn's LinearSVC with the hinge loss."""

    params = [[1_000, 100_000]]

    def setup(self, rows):
        from nanoml_classic.logistic import LinearSVM

        self.theirs = _sklearn("svm").LinearSVC(loss="hinge", C=1.0)
        self.X, self.y = _classes(rows, k=2, spread=0.5)
        self.ours = LinearSVM(C=1.0)
        self._warm()


class GaussianNBFit(_FitPair):
    params = [[1_000, 60_000]]

    def setup(self, rows):
        from nanoml_classic.naive_bayes import GaussianNB

        self.theirs = _sklearn("naive_bayes").GaussianNB()
        self.X, self.y = _pixels(rows)
        self.ours = GaussianNB()
        self._warm()


class MultinomialNBFit(_FitPair):
    params = [[1_000, 60_000]]

    def setup(self, rows):
        from nanoml_classic.naive_bayes import MultinomialNB

        self.theirs = _sklearn("naive_bayes").MultinomialNB()
        self.X, self.y = _pixels(rows)
        self.ours = MultinomialNB()
        self._warm()
