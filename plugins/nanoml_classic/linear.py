"""Linear regression: least squares, ridge, lasso and elastic net."""

import numpy as np
import scipy.linalg

from nanoml import Learner
from nanoml.errors import ParameterError, warn_not_converged
from nanoml.state_schema import Array, Float, Int, Json, StateSchema
from nanoml.validation import (
    check_array,
    check_choice,
    check_number,
    check_squares,
    check_targets,
)
from nanoml_classic.linear_kernels import enet_dense_cd, enet_gram_cd, gradient_descent_normal

# Centring XᵀX by a rank-one correction loses log10 of this many digits of a feature's
# spread at most; past it the rows are centred before the product.
_MAX_CANCELLATION = 1e4
# Cholesky on the normal equations squares X's condition number: past this (on the
# diagonally scaled Gram matrix) an SVD of the rows is the accurate solve.
_MIN_RCOND = 1e-8
# Coordinate descent runs on the Gram matrix up to this many features (and at least as
# many rows): its n·d² BLAS cost beats a few O(nd) sweeps over the columns only while d
# is small (measured: at 60000 x 784, sweeping the columns took half the time).
_GRAM_MAX_FEATURES = 256


def centered_gram(X, y):
    """Means and sufficient statistics of centred least squares.

    Returns (x_mean, y_mean, XcᵀXc, Xcᵀyc, ycᵀyc) for the centred data Xc, yc. XᵀX and
    Xᵀ[yc, 1] take one BLAS pass over X each, with no centred copy of X; centring XᵀX is
    then a rank-one correction, accurate unless a feature's mean dwarfs its spread, in
    which case the rows are centred before the product.
    """
    n = X.shape[0]
    y_mean = float(y.mean())
    rhs = np.empty((n, 2))
    rhs[:, 0] = y - y_mean  # centred y sums to zero, so Xᵀyc already equals Xcᵀyc
    rhs[:, 1] = 1.0
    xty, sums = (X.T @ rhs).T
    x_mean = sums / n
    gram = X.T @ X
    raw_diagonal = gram.diagonal().copy()
    gram -= n * np.outer(x_mean, x_mean)
    if np.any(gram.diagonal() * _MAX_CANCELLATION < raw_diagonal):
        Xc = X - x_mean
        gram = Xc.T @ Xc
        xty = Xc.T @ rhs[:, 0]
    return x_mean, y_mean, gram, np.ascontiguousarray(xty), float(rhs[:, 0] @ rhs[:, 0])


def _solve_spd(A, b):
    """x with A x = b for symmetric positive definite A by Cholesky, or None.

    None means A is singular or too ill-conditioned for the normal equations to be
    accurate; the estimate is taken on A scaled to a unit diagonal, since Cholesky's
    accuracy does not depend on the features' units.
    """
    scale = np.sqrt(A.diagonal())
    if not np.all(scale > 0.0):
        return None
    scaled = A / np.outer(scale, scale)
    try:
        factor = scipy.linalg.cho_factor(scaled, check_finite=False)
    except np.linalg.LinAlgError:
        return None
    rcond, info = scipy.linalg.lapack.dpocon(factor[0], np.abs(scaled).sum(axis=0).max())
    if info != 0 or rcond < _MIN_RCOND:
        return None
    return scipy.linalg.cho_solve(factor, b / scale, check_finite=False) / scale


def least_squares(X, y, alpha):
    """(coef, intercept) minimising ||y - Xw - b||² + alpha ||w||², the intercept b unpenalised.

    Tall data solve the centred normal equations by Cholesky, one pass over X; wide,
    rank-deficient or ill-conditioned data take an SVD-based solve of the centred rows,
    which gives the minimum-norm solution where X is rank-deficient.
    """
    n, d = X.shape
    coef = None
    if n >= d:
        x_mean, y_mean, gram, xty, _ = centered_gram(X, y)
        gram.flat[:: d + 1] += alpha
        coef = _solve_spd(gram, xty)
    else:
        x_mean, y_mean = X.mean(axis=0), float(y.mean())
    if coef is None:
        Xc, yc = X - x_mean, y - y_mean
        if alpha > 0.0:  # ridge is least squares on the rows stacked over sqrt(alpha)·I
            Xc = np.vstack([Xc, np.sqrt(alpha) * np.eye(d)])
            yc = np.concatenate([yc, np.zeros(d)])
        coef = np.linalg.lstsq(Xc, yc, rcond=None)[0]
    return coef, float(y_mean - x_mean @ coef)


class _LinearRegressor(Learner):
    """Shared by the linear regressors: predictions are X @ coef_ + intercept_."""

    task = "regression"
    default_dataset = "quadratic"
    state_schema = StateSchema(
        n_features_in_=Int(low=1),
        coef_=Array(np.float64, shape=("n_features_in_",)),
        intercept_=Float(),
        n_iter_=Int(low=0, optional=True),  # the iterative solvers'
        dual_gap_=Float(optional=True),
        history_=Json(optional=True),
    )

    def _check_data(self, X, y):
        X = check_squares(check_array(X))
        return X, check_squares(check_targets(y, X.shape[0]), name="y")

    def predict(self, X):
        self.check_fitted()
        X = check_array(X, n_features=self.n_features_in_)
        return X @ self.coef_ + self.intercept_


class LinearRegression(_LinearRegressor):
    """y ≈ X @ coef_ + intercept_, minimising mean squared error (+ optional L2 penalty).

    ``solver="exact"`` solves the least-squares problem directly (Cholesky on the
    normal equations, an SVD where those are ill-conditioned); ``solver="gd"`` runs
    gradient descent (a Numba kernel) on standardised features, the tutorial's method,
    recording the loss per step in ``history_``. Both return coefficients in the
    original feature units. ``l2`` adds ``l2/2 * ||coef||²`` to half the mean squared
    error, on standardised features for gd and on raw features for exact.
    """

    name = "linear-regression"
    description = "least squares with a bias: exact solve or Numba gradient descent"
    search_space = {"l2": [0.0, 1e-3, 1e-2, 1e-1, 1.0]}

    def __init__(self, solver="exact", lr=0.1, n_iter=1000, l2=0.0, tol=1e-10):
        self.solver = solver
        self.lr = lr
        self.n_iter = n_iter
        self.l2 = l2
        self.tol = tol

    def check_params(self):
        check_choice("solver", self.solver, ("exact", "gd"))
        check_number("lr", self.lr, low=0.0, low_open=True)
        check_number("n_iter", self.n_iter, low=1, integer=True)
        check_number("l2", self.l2, low=0.0)
        check_number("tol", self.tol, low=0.0)

    def fit(self, X, y):
        self.check_params()
        X, y = self._check_data(X, y)
        if self.solver == "exact":
            self.coef_, self.intercept_ = least_squares(X, y, self.l2 * X.shape[0])
            self.history_ = {}
        else:
            x_mean, y_mean, gram, xty, yty = centered_gram(X, y)
            self.coef_ = self._solve_gd(gram, xty, yty, X.shape[0])
            self.intercept_ = float(y_mean - x_mean @ self.coef_)
        self.n_features_in_ = X.shape[1]
        return self

    def _solve_gd(self, gram, xty, yty, n):
        scale = np.sqrt(gram.diagonal() / n)  # the features' standard deviations
        scale[scale == 0.0] = 1.0  # constant features stay at weight 0
        gram = gram / (n * np.outer(scale, scale))
        bound = np.linalg.eigvalsh(gram)[-1] + self.l2
        if self.lr >= 2.0 / bound:
            raise ParameterError(
                f"lr={self.lr} makes gradient descent diverge on this data; "
                f"use lr < {2.0 / bound:.4g}"
            )
        w = np.zeros(gram.shape[0])
        losses = np.empty(self.n_iter)
        steps = gradient_descent_normal(
            gram, xty / (n * scale), yty / n, w, float(self.lr), float(self.l2),
            int(self.n_iter), float(self.tol), losses,
        )
        self.n_iter_ = int(steps)
        self.history_ = {"loss": losses[:steps].tolist()}
        return w / scale


class Ridge(_LinearRegressor):
    """Least squares with an L2 penalty: minimises ||y - X w - b||² + alpha ||w||².

    scikit-learn's Ridge objective (sum of squares, intercept unpenalised), solved in
    closed form.
    """

    name = "ridge"
    description = "L2-penalised least squares, closed form (Cholesky on the Gram matrix)"
    search_space = {"alpha": [0.01, 0.1, 1.0, 10.0, 100.0]}

    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def check_params(self):
        check_number("alpha", self.alpha, low=0.0)

    def fit(self, X, y):
        self.check_params()
        X, y = self._check_data(X, y)
        self.coef_, self.intercept_ = least_squares(X, y, float(self.alpha))
        self.n_features_in_ = X.shape[1]
        return self


class ElasticNet(_LinearRegressor):
    """Minimises 1/(2n) ||y - Xw - b||² + alpha·l1_ratio·||w||₁ + alpha·(1-l1_ratio)/2·||w||².

    scikit-learn's ElasticNet objective, solved by cyclic coordinate descent (a Numba
    kernel) until the duality gap is at most tol·||y - ȳ||². Tall, narrow data run on
    the centred Gram matrix, so each sweep costs O(d²) instead of O(nd); other data
    sweep over the centred columns. ``n_iter_`` counts sweeps; ``dual_gap_`` is the final gap
    on the objective's scale. The default alpha is 0.01, not scikit-learn's 1.0, which
    zeroes every coefficient on unit-scale data such as the quadratic dataset.
    """

    name = "elastic-net"
    description = "L1+L2-penalised least squares by Numba coordinate descent"
    search_space = {"alpha": [1e-4, 1e-3, 1e-2, 1e-1, 1.0], "l1_ratio": [0.1, 0.5, 0.9]}

    def __init__(self, alpha=0.01, l1_ratio=0.5, max_iter=1000, tol=1e-4):
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.max_iter = max_iter
        self.tol = tol

    def _l1_share(self):
        return check_number("l1_ratio", self.l1_ratio, low=0.0, high=1.0)

    def check_params(self):
        check_number("alpha", self.alpha, low=0.0, low_open=True)
        self._l1_share()
        check_number("max_iter", self.max_iter, low=1, integer=True)
        check_number("tol", self.tol, low=0.0)

    def fit(self, X, y):
        self.check_params()
        ratio = self._l1_share()
        X, y = self._check_data(X, y)
        n, d = X.shape
        # the kernels minimise the objective times n: ½||r||² + l1||w||₁ + l2/2 ||w||²
        l1, l2 = self.alpha * ratio * n, self.alpha * (1.0 - ratio) * n
        coef = np.zeros(d)
        if d <= min(n, _GRAM_MAX_FEATURES):
            x_mean, y_mean, gram, xty, yty = centered_gram(X, y)
            sweeps, gap = enet_gram_cd(
                gram, xty, yty, coef, l1, l2, int(self.max_iter), float(self.tol)
            )
        else:
            x_mean, y_mean = X.mean(axis=0), float(y.mean())
            Xc = np.empty((n, d), order="F")  # columns contiguous for the sweeps
            np.subtract(X, x_mean, out=Xc)
            sweeps, gap = enet_dense_cd(
                Xc, y - y_mean, coef, l1, l2, int(self.max_iter), float(self.tol)
            )
        self.coef_ = coef
        self.intercept_ = float(y_mean - x_mean @ coef)
        self.n_iter_ = int(sweeps)
        self.dual_gap_ = float(gap) / n
        if self.n_iter_ >= self.max_iter:
            warn_not_converged(f"{self.name}'s coordinate descent",
                               f"max_iter={self.max_iter} sweeps", self.tol,
                               "standardise the features, raise alpha or raise max_iter")
        self.n_features_in_ = d
        return self


class Lasso(ElasticNet):
    """The elastic net with l1_ratio = 1: minimises 1/(2n) ||y - Xw - b||² + alpha ||w||₁."""

    name = "lasso"
    description = "L1-penalised least squares by Numba coordinate descent"
    search_space = {"alpha": [1e-4, 1e-3, 1e-2, 1e-1, 1.0]}

    def __init__(self, alpha=0.01, max_iter=1000, tol=1e-4):
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol

    def _l1_share(self):
        return 1.0
