"""Least-squares linear regression, solved exactly or by gradient descent."""

import numpy as np

from nanoml import Learner
from nanoml.errors import ParameterError
from nanoml.validation import check_array, check_choice, check_number, check_targets
from nanoml_classic.linear_kernels import gradient_descent_normal


class LinearRegression(Learner):
    """y ≈ X @ coef_ + intercept_, minimising mean squared error (+ optional L2 penalty).

    ``solver="exact"`` solves the least-squares problem directly; ``solver="gd"`` runs
    gradient descent (a Numba kernel) on standardised features, the tutorial's method,
    recording the loss per step in ``history_``. Both return coefficients in the
    original feature units. ``l2`` adds ``l2/2 * ||coef||²`` on standardised features
    for gd and on raw features for exact, as ridge regression does.
    """

    name = "linear-regression"
    task = "regression"
    default_dataset = "quadratic"
    description = "least squares with a bias: exact solve or Numba gradient descent"
    search_space = {"l2": [0.0, 1e-3, 1e-2, 1e-1, 1.0]}

    def __init__(self, solver="exact", lr=0.1, n_iter=1000, l2=0.0, tol=1e-10):
        self.solver = solver
        self.lr = lr
        self.n_iter = n_iter
        self.l2 = l2
        self.tol = tol

    def _check_params(self):
        check_choice("solver", self.solver, ("exact", "gd"))
        check_number("lr", self.lr, low=0.0, low_open=True)
        check_number("n_iter", self.n_iter, low=1, integer=True)
        check_number("l2", self.l2, low=0.0)
        check_number("tol", self.tol, low=0.0)

    def fit(self, X, y):
        self._check_params()
        X = check_array(X)
        y = check_targets(y, X.shape[0])
        x_mean, y_mean = X.mean(axis=0), y.mean()
        Xc, yc = X - x_mean, y - y_mean
        if self.solver == "exact":
            coef = self._solve_exact(Xc, yc)
            self.history_ = {}
        else:
            coef = self._solve_gd(Xc, yc)
        self.coef_ = coef
        self.intercept_ = float(y_mean - x_mean @ coef)
        self.n_features_in_ = X.shape[1]
        return self

    def _solve_exact(self, Xc, yc):
        if self.l2 == 0.0:
            return np.linalg.lstsq(Xc, yc, rcond=None)[0]
        n, d = Xc.shape
        return np.linalg.solve(Xc.T @ Xc / n + self.l2 * np.eye(d), Xc.T @ yc / n)

    def _solve_gd(self, Xc, yc):
        n = Xc.shape[0]
        scale = Xc.std(axis=0)
        scale[scale == 0.0] = 1.0  # constant features stay at weight 0
        Xs = Xc / scale
        gram = Xs.T @ Xs / n  # matrix products stay on NumPy's BLAS
        bound = np.linalg.eigvalsh(gram)[-1] + self.l2
        if self.lr >= 2.0 / bound:
            raise ParameterError(
                f"lr={self.lr} makes gradient descent diverge on this data; "
                f"use lr < {2.0 / bound:.4g}"
            )
        w = np.zeros(Xc.shape[1])
        losses = np.empty(self.n_iter)
        steps = gradient_descent_normal(
            gram, Xs.T @ yc / n, float(yc @ yc / n), w, float(self.lr), float(self.l2),
            int(self.n_iter), float(self.tol), losses,
        )
        self.n_iter_ = int(steps)
        self.history_ = {"loss": losses[:steps].tolist()}
        return w / scale

    def predict(self, X):
        self.check_fitted()
        X = check_array(X, n_features=self.n_features_in_)
        return X @ self.coef_ + self.intercept_
