"""Principal component analysis by SVD of the centred data or eigh of its covariance."""

import os

import numpy as np
import scipy.linalg

from nanoml import Learner, metrics
from nanoml.errors import InputError, ParameterError
from nanoml.validation import check_array, check_number

# Rows of X centred at a time when the covariance must be summed from centred rows.
_BLOCK_ROWS = 2048


class PCA(Learner):
    """Project rows onto the directions of largest variance.

    `n_components` is a count (a whole number, 2.0 included), a fraction in (0, 1) of the
    variance to keep (the fewest components whose explained variance ratio exceeds it;
    the default keeps 95 %), or None for all. With at least ten times more rows than
    features the covariance matrix is formed and diagonalised (much faster than an SVD
    of the data, and what scikit-learn does for such shapes); otherwise the centred
    data's SVD is taken. Component signs follow scikit-learn's svd_flip: the entry of
    largest magnitude in each component is positive. `whiten` scales the projections to
    unit variance.
    """

    name = "pca"
    task = "decomposition"
    default_dataset = "digits"
    description = "principal component analysis: covariance eigh or SVD, optional whitening"
    search_space = {"n_components": [2, 5, 10, 20, 0.8, 0.9, 0.95, 0.99]}

    def __init__(self, n_components=0.95, whiten=False):
        self.n_components = n_components
        self.whiten = whiten

    def _check_params(self, limit):
        """The number of components wanted: an int, a float fraction in (0, 1), or None."""
        if not isinstance(self.whiten, bool):
            raise ParameterError(f"whiten must be true or false, got {self.whiten!r}")
        k = self.n_components
        if k is None:
            return None
        check_number("n_components", k, low=0.0, low_open=True)
        if k < 1:
            return float(k)
        if k != int(k):
            raise ParameterError(
                f"n_components must be a whole number of components or a fraction of "
                f"variance in (0, 1), got {k!r}"
            )
        if k > limit:
            raise ParameterError(
                f"n_components={k} exceeds min(n_samples, n_features) = {limit}"
            )
        return int(k)  # 2.0 counts as 2: `--set n_components=2` arrives as a float

    def fit(self, X, y=None):
        X = check_array(X)
        n, d = X.shape
        if n < 2:
            raise InputError(f"X has {n} sample; PCA needs at least 2 to estimate a variance")
        wanted = self._check_params(min(n, d))
        self.mean_ = X.mean(axis=0)
        if n >= 10 * d:
            top = wanted if isinstance(wanted, int) else None
            variances, components, total = _covariance_eigh(X, self.mean_, top)
        else:
            _, s, components = scipy.linalg.svd(X - self.mean_, full_matrices=False)
            variances = s * s / (n - 1)
            total = variances.sum()
        components = _flip_signs(components)
        ratios = variances / total if total > 0 else np.zeros_like(variances)
        k = _n_kept(wanted, ratios, min(n, d))
        self.components_ = np.ascontiguousarray(components[:k])
        self.explained_variance_ = variances[:k]
        self.explained_variance_ratio_ = ratios[:k]
        self.n_features_in_ = d
        return self

    def _scale(self):
        """Per-component divisor of the projections: 1, or the standard deviation when
        whitening (floored so a zero-variance component cannot divide by zero)."""
        if not self.whiten:
            return np.ones_like(self.explained_variance_)
        return np.maximum(np.sqrt(self.explained_variance_), np.finfo(np.float64).eps)

    def transform(self, X):
        """Coordinates of each row along the components (whitened if `whiten`)."""
        self.check_fitted()
        X = check_array(X, n_features=self.n_features_in_)
        return (X - self.mean_) @ self.components_.T / self._scale()

    def inverse_transform(self, Z):
        """Rows in the original feature space whose projections are Z."""
        self.check_fitted()
        Z = check_array(Z, name="Z", n_features=self.components_.shape[0])
        return (Z * self._scale()) @ self.components_ + self.mean_

    def predict(self, X):
        return self.transform(X)

    def evaluate(self, X, y=None):
        """Share of X's variance (around the fitted mean) that the components keep, and the
        mean squared reconstruction error; on the training data the share equals
        ``explained_variance_ratio_.sum()``."""
        self.check_fitted()
        X = check_array(X, n_features=self.n_features_in_)
        restored = self.inverse_transform(self.transform(X))
        mse = metrics.mean_squared_error(X, restored)
        total = metrics.mean_squared_error(X, np.broadcast_to(self.mean_, X.shape))
        kept = 1.0 - mse / total if total > 0 else 1.0
        return {"explained_variance_ratio": kept, "reconstruction_mse": mse}

    def score(self, X, y=None):
        """Share of X's variance the components keep (higher is better)."""
        return self.evaluate(X)["explained_variance_ratio"]

    def write_artifacts(self, folder, dataset):
        """The base's figures and explained_variance.png: each kept component's share of
        the training variance, and their running total."""
        from nanoml import plots

        written = super().write_artifacts(folder, dataset)
        k = len(self.explained_variance_ratio_)
        plots.plot_explained_variance(
            self.explained_variance_ratio_, os.path.join(folder, "explained_variance.png"),
            title=f"{self.name} on {dataset.name}: explained variance ({k} components)",
        )
        return [*written, "explained_variance.png"]


def _n_kept(wanted, ratios, limit):
    """How many components to keep; a fraction keeps the fewest whose ratios exceed it."""
    if wanted is None:
        return limit
    if isinstance(wanted, float):
        return min(limit, int(np.searchsorted(np.cumsum(ratios), wanted, side="right")) + 1)
    return wanted


def _covariance_eigh(X, mean, top=None):
    """Eigenvalues (descending, clipped at 0) and eigenvectors (rows) of X's covariance,
    the `top` largest only when given (about half the time of all of them), and the
    total variance."""
    n, d = X.shape
    cov = X.T @ X  # NumPy hands Xᵀ·X to BLAS's symmetric rank-k update: half a GEMM
    # Xᵀ·X/n - mean·meanᵀ cancels digits when a feature's mean dwarfs its spread: the
    # covariance keeps about eps·(second moment / variance) relative error. Past a
    # millionfold, sum the centred rows instead (a block at a time, no copy of X).
    second_moment = np.diag(cov) / n
    variance = second_moment - mean * mean
    if np.any(mean * mean > 1e6 * np.maximum(variance, 0.0)):
        cov = np.zeros((d, d))
        for start in range(0, n, _BLOCK_ROWS):
            block = X[start : start + _BLOCK_ROWS] - mean
            cov += block.T @ block
    else:
        cov -= n * np.outer(mean, mean)
    cov /= n - 1
    if top is None:
        values, vectors = np.linalg.eigh(cov)
    else:
        values, vectors = scipy.linalg.eigh(cov, subset_by_index=[d - top, d - 1])
    total = float(np.trace(cov))
    return np.maximum(values[::-1], 0.0), np.ascontiguousarray(vectors[:, ::-1].T), total


def _flip_signs(components):
    """Make the largest-magnitude entry of each row positive (scikit-learn's svd_flip)."""
    rows = np.arange(components.shape[0])
    signs = np.sign(components[rows, np.argmax(np.abs(components), axis=1)])
    signs[signs == 0] = 1.0
    return components * signs[:, None]
