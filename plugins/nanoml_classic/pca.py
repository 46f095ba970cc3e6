"""Principal component analysis by SVD of the centred data or eigh of its covariance."""

import os

import numpy as np
import scipy.linalg

from nanoml import Learner, metrics
from nanoml.errors import InputError, ParameterError
from nanoml.state_schema import Array, Int, StateSchema
from nanoml.validation import (
    FLOAT32_SQUARES_HIGH,
    FLOAT32_SQUARES_LOW,
    SQUARES_HIGH,
    SQUARES_LOW,
    check_array,
    check_choice,
    check_number,
    check_squares,
    working_dtype,
)
from nanoml_classic.pca_kernels import column_sums_and_extents

# Rows of X centred at a time when the covariance must be summed from centred rows.
_BLOCK_ROWS = 2048
SOLVERS = ("auto", "full", "covariance_eigh", "randomized")
# Magnitudes whose squares stay normal numbers of the dtype, with room to sum many of them.
_SQUARES_RANGE = {np.float64: (SQUARES_LOW, SQUARES_HIGH),
                  np.float32: (FLOAT32_SQUARES_LOW, FLOAT32_SQUARES_HIGH)}
# Largest mean²/variance of a feature for which Xᵀ·X - n·mean·meanᵀ keeps enough digits
# (relative error about eps times this): 2e-10 in float64, 1e-5 in float32.
_CANCELLATION = {np.float64: 1e6, np.float32: 1e2}


class PCA(Learner):
    """Project rows onto the directions of largest variance.

    `n_components` is a count (a whole number, 2.0 included), a fraction in (0, 1) of the
    variance to keep (the fewest components whose explained variance ratio exceeds it;
    the default keeps 95 %), or None for all. `svd_solver` picks the route as
    scikit-learn's does: "auto" forms and diagonalises the covariance matrix
    ("covariance_eigh") when there are at most 1000 features and ten times more rows,
    takes a randomized truncated SVD ("randomized", Halko et al., seeded by `seed`) when a
    count below 80 % of min(rows, features) is wanted from data with more than 500 rows
    or features, and the centred data's exact SVD ("full") otherwise. Float32 X stays
    float32 on the covariance route (its GEMM at twice the speed, no float64 copy).
    Component signs follow scikit-learn's svd_flip: the entry of largest magnitude in
    each component is positive. `whiten` scales the projections to unit variance.
    """

    name = "pca"
    task = "decomposition"
    default_dataset = "digits"
    description = "principal component analysis: covariance eigh, exact or randomized SVD"
    search_space = {"n_components": [2, 5, 10, 20, 0.8, 0.9, 0.95, 0.99]}

    def __init__(self, n_components=0.95, whiten=False, svd_solver="auto", seed=0):
        self.n_components = n_components
        self.whiten = whiten
        self.svd_solver = svd_solver
        self.seed = seed

    state_schema = StateSchema(
        n_features_in_=Int(low=1),
        mean_=Array(np.float64, shape=("n_features_in_",)),
        components_=Array(np.float64, shape=("n_kept", "n_features_in_")),
        explained_variance_=Array(np.float64, shape=("n_kept",), low=0),
        explained_variance_ratio_=Array(np.float64, shape=("n_kept",), low=0),
    )

    def check_params(self):
        self._check_params(None)

    def _check_params(self, limit):
        """The number of components wanted: an int, a float fraction in (0, 1), or None;
        at most `limit` (min(n_samples, n_features)) where known."""
        if not isinstance(self.whiten, bool):
            raise ParameterError(f"whiten must be true or false, got {self.whiten!r}")
        check_choice("svd_solver", self.svd_solver, SOLVERS)
        check_number("seed", self.seed, low=0, integer=True)
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
        if limit is not None and k > limit:
            raise ParameterError(
                f"n_components={k} exceeds min(n_samples, n_features) = {limit}"
            )
        return int(k)  # 2.0 counts as 2: `--set n_components=2` arrives as a float

    def fit(self, X, y=None):
        X = check_array(X, dtype=working_dtype(X))
        n, d = X.shape
        if n < 2:
            raise InputError(f"X has {n} sample; PCA needs at least 2 to estimate a variance")
        wanted = self._check_params(min(n, d))
        solver = self._solver(n, d, wanted)
        if solver == "covariance_eigh":
            top = wanted if isinstance(wanted, int) else None
            self.mean_, variances, components, total = _covariance_eigh(X, top)
        else:
            X = check_squares(np.asarray(X, dtype=np.float64))
            self.mean_ = X.mean(axis=0)
            centred = X - self.mean_
            if solver == "full":
                _, s, components = scipy.linalg.svd(centred, full_matrices=False)
                total = float(np.sum(s * s)) / (n - 1)
            else:
                s, components = _randomized_svd(centred, wanted,
                                                 np.random.default_rng(self.seed))
                total = float(np.vdot(centred, centred)) / (n - 1)
            variances = s * s / (n - 1)
        components = _flip_signs(components)
        ratios = variances / total if total > 0 else np.zeros_like(variances)
        k = _n_kept(wanted, ratios, min(n, d))
        self.components_ = np.ascontiguousarray(components[:k])
        self.explained_variance_ = variances[:k]
        self.explained_variance_ratio_ = ratios[:k]
        self.n_features_in_ = d
        return self

    def _solver(self, n, d, wanted):
        """The route `svd_solver` names, or the one scikit-learn's "auto" takes for the shape."""
        if self.svd_solver == "randomized" and not isinstance(wanted, int):
            raise ParameterError(
                f"svd_solver='randomized' needs a whole number of components, got "
                f"n_components={self.n_components!r}"
            )
        if self.svd_solver != "auto":
            return self.svd_solver
        if d <= 1000 and n >= 10 * d:
            return "covariance_eigh"
        if max(n, d) > 500 and isinstance(wanted, int) and wanted < 0.8 * min(n, d):
            return "randomized"
        return "full"

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


def _covariance_eigh(X, top=None):
    """The mean, eigenvalues (descending, clipped at 0) and eigenvectors (rows) of X's
    covariance, the `top` largest only when given (about half the time of all of them),
    and the total variance. Float32 X keeps its dtype for Xᵀ·X unless its squares could
    leave float32's range; sums and the eigenproblem are float64."""
    n, d = X.shape
    sums, extents = np.zeros(d), np.zeros(d)
    column_sums_and_extents(X, sums, extents)
    mean = sums / n
    low, high = _SQUARES_RANGE[X.dtype.type]
    if np.any((extents > high) | ((extents > 0) & (extents < low))):
        X = check_squares(np.asarray(X, dtype=np.float64))  # raises past float64's range
    cov = (X.T @ X).astype(np.float64)  # NumPy hands Xᵀ·X to BLAS's syrk: half a GEMM
    # Xᵀ·X/n - mean·meanᵀ cancels digits when a feature's mean dwarfs its spread: the
    # covariance keeps about eps·(second moment / variance) relative error. Past
    # _CANCELLATION[dtype], sum the centred rows instead (a block at a time, no copy of X).
    variance = np.diag(cov) / n - mean * mean
    if np.any(mean * mean > _CANCELLATION[X.dtype.type] * np.maximum(variance, 0.0)):
        cov = np.zeros((d, d))
        shift = mean.astype(X.dtype)
        for start in range(0, n, _BLOCK_ROWS):
            block = X[start : start + _BLOCK_ROWS] - shift
            cov += block.T @ block
    else:
        cov -= n * np.outer(mean, mean)
    cov /= n - 1
    if top is None:
        values, vectors = np.linalg.eigh(cov)
    else:
        values, vectors = scipy.linalg.eigh(cov, subset_by_index=[d - top, d - 1])
    total = float(np.trace(cov))
    values = np.maximum(values[::-1], 0.0)
    return mean, values, np.ascontiguousarray(vectors[:, ::-1].T), total


def _randomized_svd(A, k, rng, n_oversamples=10):
    """(singular values, right singular vectors as rows) of A's top k, by Halko et al.'s
    randomized range finder with scikit-learn's randomized_svd defaults: k + 10 random
    directions, 7 power iterations (4 when k is at least a tenth of min(A.shape)), each
    normalised by an LU factorisation (none for at most 2), on Aᵀ when A is wide."""
    n_iter = 7 if k < 0.1 * min(A.shape) else 4
    wide = A.shape[0] < A.shape[1]
    M = A.T if wide else A
    Q = rng.standard_normal((M.shape[1], k + n_oversamples))
    if n_iter > 2:
        def normalise(Y):
            return scipy.linalg.lu(Y, permute_l=True, check_finite=False)[0]
    else:
        def normalise(Y):
            return Y
    for _ in range(n_iter):
        Q = normalise(M @ Q)
        Q = normalise(M.T @ Q)
    Q = scipy.linalg.qr(M @ Q, mode="economic", check_finite=False)[0]
    U, s, Vt = scipy.linalg.svd(Q.T @ M, full_matrices=False, check_finite=False)
    return s[:k], (Q @ U)[:, :k].T if wide else Vt[:k]


def _flip_signs(components):
    """Make the largest-magnitude entry of each row positive (scikit-learn's svd_flip)."""
    rows = np.arange(components.shape[0])
    signs = np.sign(components[rows, np.argmax(np.abs(components), axis=1)])
    signs[signs == 0] = 1.0
    return components * signs[:, None]
